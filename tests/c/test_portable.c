/*
 * Portable ciphertexts: ks_keychain_encrypt_portable, decryption with a
 * ks_root alone and its KEK cache, against tests/vectors/portable.json.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------------------ */
/* Portable ciphertexts                                                */
/* ------------------------------------------------------------------ */

static const char *const k_portable_roots[4] = {"age", "wrong_age", "passphrase", "wrong_passphrase"};

/* The root a name of portable.json's "roots" describes (NULL on error). */
static ks_root *portable_root(const json_t *roots, const char *name)
{
    const json_t *r = json_object_get(roots, name);
    ks_root *root = NULL;
    if (!REQUIRE(json_is_object(r)))
        return NULL;
    const char *id = json_string_value(json_object_get(r, "age_identity"));
    if (id) {
        OK(ks_root_age_new(&id, 1, NULL, 0, &root, E));
    } else {
        const char *p = jstr(r, "passphrase");
        OK(ks_root_passphrase_new((const uint8_t *)p, strlen(p), (uint8_t)jint(r, "work_factor"), &root, E));
    }
    return root;
}

static ks_root *portable_root_named(ks_root *const roots[4], const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(k_portable_roots[i], name) == 0)
            return roots[i];
    REQUIRE(!"a root name portable.json does not define");
    return NULL;
}

typedef struct {
    const ks_root *root;
    const ks_buffer *blob;
    pthread_barrier_t *start;
    bool ok;
} portable_thread_arg;

static void *portable_thread(void *p)
{
    portable_thread_arg *a = p;
    pthread_barrier_wait(a->start);
    ks_buffer out = {NULL, 0};
    a->ok = ks_root_decrypt_portable(a->root, a->blob->data, a->blob->len, (const uint8_t *)"t", 1, &out, NULL) == KS_OK &&
            out.len == 6 && memcmp(out.data, "thread", 6) == 0;
    ks_buffer_free(&out);
    return NULL;
}

static void group_portable(const char *dir)
{
    group_begin("portable ciphertexts");

    /* Vectors: one root handle per name, its KEK cache kept across cases
     * (a cache must never change an answer); each case decrypted twice. */
    ks_root *vroots[4] = {NULL, NULL, NULL, NULL};
    int n_ok = 0, n_bad = 0;
    json_t *j = load_json(dir, "portable.json");
    if (j) {
        CHECK(jint(j, "format_version") == 1);
        const json_t *rs = json_object_get(j, "roots");
        for (int i = 0; i < 4; i++)
            vroots[i] = portable_root(rs, k_portable_roots[i]);
        size_t i;
        json_t *c;
        json_array_foreach(jarr(j, "decrypt"), i, c)
        {
            g_ctx = jstr(c, "comment");
            ks_root *r = portable_root_named(vroots, jstr(c, "root"));
            bytes_t blob = hex(jstr(c, "blob_hex")), aad = hex(jstr(c, "aad_hex")), pt = hex(jstr(c, "plaintext_hex"));
            for (int rep = 0; rep < 2; rep++) {
                ks_buffer out = sent_buf();
                if (OK(ks_root_decrypt_portable(r, blob.p, blob.n, aad.p, aad.n, &out, E)))
                    CHECK(buf_eq(out, pt.p, pt.n));
                ks_buffer_free(&out);
            }
            n_ok++;
            bytes_free(&blob);
            bytes_free(&aad);
            bytes_free(&pt);
        }
        json_array_foreach(jarr(j, "invalid"), i, c)
        {
            g_ctx = jstr(c, "comment");
            ks_root *r = portable_root_named(vroots, jstr(c, "root"));
            bytes_t blob = hex(jstr(c, "blob_hex")), aad = hex(jstr(c, "aad_hex"));
            ks_status want = (ks_status)jint(c, "error_code");
            CHECK((int)want >= 1 && (int)want <= 12);
            ks_buffer out = sent_buf();
            EXPECT(ks_root_decrypt_portable(r, blob.p, blob.n, aad.p, aad.n, &out, E), want);
            CHECK(buf_untouched(out));
            n_bad++;
            bytes_free(&blob);
            bytes_free(&aad);
        }
        g_ctx = "";
        CHECK(n_ok == 7 && n_bad == 28);
        /* Under "age": 6 valid cases twice; 4 wrapped KEKs unwrapped once
         * each, and 6 invalid cases that reach the root (never cached). */
        ks_portable_counters pc;
        if (OK(ks_root_portable_counters(vroots[0], &pc, E)))
            CHECK(pc.decrypt_ok == 12 && pc.decrypt_failed == 26 && pc.cached_keks == 4 && pc.root_calls == 10);
        json_decref(j);
    }
    for (int i = 0; i < 4; i++)
        ks_root_free(vroots[i]);

    /* Round trip: a bound keychain encrypts; a separate root handle made
     * from the identity alone decrypts, calling the root once per KEK. */
    char path[512];
    snprintf(path, sizeof path, "%s/portable.age", g_tmpdir);
    ks_root *root = NULL, *reader = NULL;
    ks_keychain *kc = NULL;
    ks_buffer id = sent_buf();
    enum { N = 20 };
    ks_buffer blobs[2 * N];
    memset(blobs, 0, sizeof blobs);
    if (OK(ks_root_age_generate(&root, E)) && OK(ks_root_age_identity(root, 0, &id, E)) &&
        OK(ks_keychain_open(path, root, NULL, &kc, E))) {
        char *ident = calloc(1, id.len + 1);
        memcpy(ident, id.data, id.len);
        const char *idp = ident;
        OK(ks_root_age_new(&idp, 1, NULL, 0, &reader, E));
        free(ident);
        char msg[32];
        for (int i = 0; i < 2 * N; i++) {
            if (i == N)
                OK(ks_keychain_rotate(kc, NULL, E));
            int len = snprintf(msg, sizeof msg, "portable %d", i);
            OK(ks_keychain_encrypt_portable(kc, (const uint8_t *)msg, (size_t)len, (const uint8_t *)"ctx", 3, &blobs[i], E));
        }
        /* The keychain is not needed to decrypt. */
        ks_keychain_free(kc);
        kc = NULL;
        ks_portable_counters pc;
        for (int i = 0; i < 2 * N; i++) {
            int len = snprintf(msg, sizeof msg, "portable %d", i);
            ks_buffer out = sent_buf();
            if (OK(ks_root_decrypt_portable(reader, blobs[i].data, blobs[i].len, (const uint8_t *)"ctx", 3, &out, E)))
                CHECK(buf_eq(out, (const uint8_t *)msg, (size_t)len));
            ks_buffer_free(&out);
            if (i == N - 1 && OK(ks_root_portable_counters(reader, &pc, E)))
                CHECK(pc.root_calls == 1 && pc.cached_keks == 1 && pc.decrypt_ok == N);
        }
        if (OK(ks_root_portable_counters(reader, &pc, E)))
            CHECK(pc.root_calls == 2 && pc.cached_keks == 2 && pc.decrypt_ok == 2 * N && pc.decrypt_failed == 0);
        /* Header: "KSP" 0x01, then a wrapped KEK that is an age file. */
        CHECK(blobs[0].len > 8 && memcmp(blobs[0].data, "KSP\x01", 4) == 0);
        CHECK(memcmp(blobs[0].data + 8, "age-encryption.org/v1\n", 22) == 0);
        /* One wrapping per KEK: the first N share their wrapped bytes. */
        uint32_t n0 = be32(blobs[0].data + 4), n1 = be32(blobs[N - 1].data + 4), n2 = be32(blobs[N].data + 4);
        CHECK(n0 == n1 && memcmp(blobs[0].data + 8, blobs[N - 1].data + 8, n0) == 0);
        CHECK(n0 != n2 || memcmp(blobs[0].data + 8, blobs[N].data + 8, n0) != 0);

        /* Wrong aad: opaque Authentication, output untouched. */
        ks_buffer out = sent_buf();
        EXPECT(ks_root_decrypt_portable(reader, blobs[0].data, blobs[0].len, (const uint8_t *)"no", 2, &out, E),
               KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(out));
        CHECK(strstr(h_msg, "could not be authenticated") != NULL);
        /* Another identity: Authentication, the same opaque message. */
        ks_root *other = NULL;
        if (OK(ks_root_age_generate(&other, E)) &&
            EXPECT(ks_root_decrypt_portable(other, blobs[0].data, blobs[0].len, (const uint8_t *)"ctx", 3, &out, E),
                   KS_ERR_AUTHENTICATION))
            CHECK(strstr(h_msg, "could not be authenticated") != NULL);
        ks_root_free(other);

        /* clear: the next decryption calls the root again. */
        OK(ks_root_portable_clear(reader, E));
        if (OK(ks_root_portable_counters(reader, &pc, E)))
            CHECK(pc.cached_keks == 0 && pc.root_calls == 2);
        OK(ks_root_decrypt_portable(reader, blobs[0].data, blobs[0].len, (const uint8_t *)"ctx", 3, &out, E));
        ks_buffer_free(&out);
        if (OK(ks_root_portable_counters(reader, &pc, E)))
            CHECK(pc.cached_keks == 1 && pc.root_calls == 3);

        /* Threads meeting one new wrapped KEK at once: one root call. */
        ks_keychain *kc2 = NULL;
        ks_buffer tb = sent_buf();
        if (OK(ks_keychain_open(path, root, NULL, &kc2, E)) &&
            OK(ks_keychain_encrypt_portable(kc2, (const uint8_t *)"thread", 6, (const uint8_t *)"t", 1, &tb, E))) {
            enum { T = 6 };
            pthread_barrier_t start;
            pthread_barrier_init(&start, NULL, T);
            pthread_t th[T];
            portable_thread_arg ta[T];
            for (int t = 0; t < T; t++) {
                ta[t] = (portable_thread_arg){reader, &tb, &start, false};
                CHECK(pthread_create(&th[t], NULL, portable_thread, &ta[t]) == 0);
            }
            for (int t = 0; t < T; t++) {
                pthread_join(th[t], NULL);
                CHECK(ta[t].ok);
            }
            pthread_barrier_destroy(&start);
            if (OK(ks_root_portable_counters(reader, &pc, E)))
                CHECK(pc.root_calls == 4);
        }
        ks_buffer_free(&tb);
        ks_keychain_free(kc2);
    }
    ks_buffer_free(&id);
    for (int i = 0; i < 2 * N; i++)
        ks_buffer_free(&blobs[i]);

    /* An unbound keychain has no root: Policy, output untouched. */
    ks_keychain *ub = NULL;
    if (OK(ks_keychain_generate(NULL, &ub, E))) {
        ks_buffer out = sent_buf();
        EXPECT(ks_keychain_encrypt_portable(ub, (const uint8_t *)"x", 1, NULL, 0, &out, E), KS_ERR_POLICY);
        CHECK(buf_untouched(out));
        CHECK(strstr(h_msg, "open(location, root)") != NULL);
    }
    ks_keychain_free(ub);

    /* NULL arguments. */
    ks_buffer out = sent_buf();
    ks_portable_counters pc;
    EXPECT(ks_keychain_encrypt_portable(NULL, (const uint8_t *)"x", 1, NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_decrypt_portable(NULL, (const uint8_t *)"KSP", 3, NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    if (root) {
        EXPECT(ks_root_decrypt_portable(root, NULL, 3, NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_decrypt_portable(root, (const uint8_t *)"KSP", 3, NULL, 1, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_decrypt_portable(root, (const uint8_t *)"KSP", 3, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_decrypt_portable(root, NULL, 0, NULL, 0, &out, E), KS_ERR_FORMAT);
        EXPECT(ks_root_portable_counters(root, NULL, E), KS_ERR_NULL_ARGUMENT);
    }
    /* A root never used for portable decryption reports zeros. */
    ks_root *fresh = NULL;
    if (OK(ks_root_age_generate(&fresh, E)) && OK(ks_root_portable_counters(fresh, &pc, E)))
        CHECK(pc.decrypt_ok == 0 && pc.decrypt_failed == 0 && pc.root_calls == 0 && pc.cached_keks == 0);
    OK(ks_root_portable_clear(fresh, E));
    ks_root_free(fresh);
    EXPECT(ks_root_portable_counters(NULL, &pc, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_portable_clear(NULL, E), KS_ERR_NULL_ARGUMENT);
    CHECK(buf_untouched(out));
    ks_root_free(reader);
    ks_root_free(root);
    char extra[96];
    snprintf(extra, sizeof extra, "  (vectors: decrypt %d, invalid %d; round trip %d blobs)", n_ok, n_bad, 2 * N);
    group_end(extra);
}



void run_portable(const char *dir)
{
    group_portable(dir);
}
