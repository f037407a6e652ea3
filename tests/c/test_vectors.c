/*
 * The shared vectors (tests/vectors/README.md) through the C ABI: keystrata's
 * own known answers, Tink's, and Wycheproof AES-GCM and HKDF-SHA256.
 */
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* keystrata.json                                                      */
/* ------------------------------------------------------------------ */

/* Fills an envelope of our own from JSON {key_id, key_version, provider,
 * ciphertext_hex}: the strings point into the JSON, the ciphertext into *ct
 * (free it with bytes_free). */
static ks_envelope envelope_from_json(const json_t *e, bytes_t *ct)
{
    *ct = hex(jstr(e, "ciphertext_hex"));
    ks_envelope env = {(char *)jstr(e, "key_id"), (uint32_t)jint(e, "key_version"), (char *)jstr(e, "provider"),
                       ct->p, ct->n};
    return env;
}

/* Reads a JSON string->string map into *out via ks_envelope_from_metadata. */
static ks_status envelope_from_metadata_json(const json_t *m, ks_envelope *out, ks_error **err)
{
    size_t n = json_object_size(m);
    const char **names = calloc(n + 1, sizeof *names);
    const char **values = calloc(n + 1, sizeof *values);
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v)
    {
        names[i] = k;
        values[i] = json_string_value(v) ? json_string_value(v) : "";
        i++;
    }
    ks_status st = ks_envelope_from_metadata(names, values, n, out, err);
    free(names);
    free(values);
    return st;
}

/* Checks an envelope's metadata form equals exactly the JSON map. */
static void check_metadata_equals(const ks_envelope *env, const json_t *m)
{
    ks_metadata md;
    if (!OK(ks_envelope_to_metadata(env, &md, E)))
        return;
    CHECK(md.count == 4);
    CHECK(md.count == json_object_size(m));
    for (size_t i = 0; i < md.count; i++) {
        const char *want = json_string_value(json_object_get(m, md.entries[i].name));
        CHECK(want != NULL && strcmp(want, md.entries[i].value) == 0);
        /* Sorted by name. */
        CHECK(i == 0 || strcmp(md.entries[i - 1].name, md.entries[i].name) < 0);
    }
    ks_metadata_clear(&md);
    CHECK(md.entries == NULL && md.count == 0);
}

static void check_envelope_equals(const ks_envelope *env, const json_t *e)
{
    CHECK(strcmp(env->key_id, jstr(e, "key_id")) == 0);
    CHECK(env->key_version == (uint32_t)jint(e, "key_version"));
    CHECK(strcmp(env->provider, jstr(e, "provider")) == 0);
    bytes_t ct = hex(jstr(e, "ciphertext_hex"));
    CHECK(env->ciphertext_len == ct.n && env->ciphertext != NULL && memcmp(env->ciphertext, ct.p, ct.n) == 0);
    bytes_free(&ct);
}

typedef struct {
    int unseal, decrypt, unwrap, metadata, derive_origin_key, derive, invalid;
} ks_counts;

/* Every valid and invalid case of keychain `k` against `kc`. */
static void run_keychain_cases(const ks_keychain *kc, const json_t *k, ks_counts *n)
{
    size_t i;
    json_t *c;
    char ctx[256];

    json_array_foreach(jarr(k, "unseal"), i, c)
    {
        snprintf(ctx, sizeof ctx, "unseal[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                pt = hex(jstr(c, "plaintext_hex"));
        CHECK(ct.n >= 5 && be32(ct.p + 1) == (uint32_t)jint(c, "key_id"));
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out, E)))
            CHECK(buf_eq(out, pt.p, pt.n));
        ks_buffer_free(&out);
        /* The length from the ciphertext alone, then the plaintext into exactly that. */
        size_t need = 0, got_len = 0;
        if (OK(ks_keychain_unseal_to(kc, ct.p, ct.n, aad.p, aad.n, NULL, 0, &need, E)) && CHECK(need == pt.n)) {
            uint8_t *room = malloc(need + 1);
            if (OK(ks_keychain_unseal_to(kc, ct.p, ct.n, aad.p, aad.n, room, need, &got_len, E)))
                CHECK(got_len == pt.n && memcmp(room, pt.p, pt.n) == 0);
            free(room);
        }
        bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
        n->unseal++;
    }

    json_array_foreach(jarr(k, "decrypt"), i, c)
    {
        snprintf(ctx, sizeof ctx, "decrypt[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                pt = hex(jstr(c, "plaintext_hex"));
        CHECK(ct.n >= 9 && be32(ct.p + 5) == (uint32_t)jint(c, "key_id"));
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_decrypt(kc, ct.p, ct.n, aad.p, aad.n, &out, E)))
            CHECK(buf_eq(out, pt.p, pt.n));
        ks_buffer_free(&out);
        size_t need = 0, got_len = 0;
        if (OK(ks_keychain_decrypt_to(kc, ct.p, ct.n, aad.p, aad.n, NULL, 0, &need, E)) && CHECK(need == pt.n)) {
            uint8_t *room = malloc(need + 1);
            if (OK(ks_keychain_decrypt_to(kc, ct.p, ct.n, aad.p, aad.n, room, need, &got_len, E)))
                CHECK(got_len == pt.n && memcmp(room, pt.p, pt.n) == 0);
            free(room);
        }
        bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
        n->decrypt++;
    }

    json_array_foreach(jarr(k, "unwrap"), i, c)
    {
        snprintf(ctx, sizeof ctx, "unwrap[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t context = hex(jstr(c, "context_hex")), key = hex(jstr(c, "key_hex"));
        const json_t *ej = json_object_get(c, "envelope"), *mj = json_object_get(c, "metadata");
        CHECK(json_is_object(ej) && json_is_object(mj));
        /* From the four fields; writing it must give exactly `metadata`. */
        bytes_t ect;
        ks_envelope env = envelope_from_json(ej, &ect);
        check_metadata_equals(&env, mj);
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_unwrap_key(kc, &env, context.p, context.n, &out, E)))
            CHECK(buf_eq(out, key.p, key.n));
        ks_buffer_free(&out);
        /* The same into a buffer the caller sizes: the size first, then the key. */
        size_t need = 0;
        if (OK(ks_keychain_unwrap_key_to(kc, &env, context.p, context.n, NULL, 0, &need, E)) &&
            CHECK(need == key.n && need <= env.ciphertext_len)) {
            uint8_t got[4096];
            size_t got_len = 0;
            if (OK(ks_keychain_unwrap_key_to(kc, &env, context.p, context.n, got, sizeof got, &got_len, E)))
                CHECK(got_len == key.n && memcmp(got, key.p, key.n) == 0);
        }
        bytes_free(&ect);
        n->unwrap++;
        /* From the metadata map; reading it must give `envelope`. */
        ks_envelope menv;
        if (OK(envelope_from_metadata_json(mj, &menv, E))) {
            check_envelope_equals(&menv, ej);
            out = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, &menv, context.p, context.n, &out, E)))
                CHECK(buf_eq(out, key.p, key.n));
            ks_buffer_free(&out);
            ks_envelope_clear(&menv);
            CHECK(menv.key_id == NULL && menv.provider == NULL && menv.ciphertext == NULL && menv.ciphertext_len == 0);
        }
        n->metadata++;
        bytes_free(&context), bytes_free(&key);
    }

    json_array_foreach(jarr(k, "derive_origin_key"), i, c)
    {
        snprintf(ctx, sizeof ctx, "derive_origin_key[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        const char *origin = jstr(c, "origin"), *instance = jstr(c, "instance");
        const char *es = jstr(c, "epoch");
        char *end = NULL;
        errno = 0;
        unsigned long long epoch = strtoull(es, &end, 10);
        CHECK(errno == 0 && end && *end == '\0' && es[0] != '-');
        bytes_t key = hex(jstr(c, "key_hex"));
        CHECK(key.n == 32);
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)origin, strlen(origin),
                                             (const uint8_t *)instance, strlen(instance),
                                             (uint64_t)epoch, &out, E)))
            CHECK(buf_eq(out, key.p, key.n));
        ks_buffer_free(&out);
        bytes_free(&key);
        n->derive_origin_key++;
    }

    json_array_foreach(jarr(k, "derive"), i, c)
    {
        snprintf(ctx, sizeof ctx, "derive[%zu] %s", i, jstr(c, "comment"));
        g_ctx = ctx;
        bytes_t info = hex(jstr(c, "info_hex")), okm = hex(jstr(c, "okm_hex"));
        ks_buffer out = sent_buf();
        if (OK(ks_keychain_derive(kc, 0, info.p, info.n, (size_t)jint(c, "length"), &out, E)))
            CHECK(buf_eq(out, okm.p, okm.n));
        ks_buffer_free(&out);
        bytes_free(&info), bytes_free(&okm);
        n->derive++;
    }

    json_array_foreach(jarr(k, "invalid"), i, c)
    {
        snprintf(ctx, sizeof ctx, "invalid[%zu] %s: %s", i, jstr(c, "op"), jstr(c, "comment"));
        g_ctx = ctx;
        const char *op = jstr(c, "op");
        ks_status want = (ks_status)jint(c, "error_code");
        CHECK(want >= KS_ERR_INVALID_INPUT && want <= KS_ERR_INTERNAL);
        CHECK(strlen(ks_status_name((int)want)) > 7);
        ks_buffer out = sent_buf();
        if (strcmp(op, "unseal") == 0 || strcmp(op, "decrypt") == 0) {
            bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex"));
            bool unseal = op[0] == 'u';
            if (unseal)
                EXPECT(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out, E), want);
            else
                EXPECT(ks_keychain_decrypt(kc, ct.p, ct.n, aad.p, aad.n, &out, E), want);
            /* Into a caller's buffer (room for anything): the same error, no length. */
            uint8_t *room = malloc(ct.n + 1);
            size_t got_len = 77;
            if (unseal)
                EXPECT(ks_keychain_unseal_to(kc, ct.p, ct.n, aad.p, aad.n, room, ct.n, &got_len, E), want);
            else
                EXPECT(ks_keychain_decrypt_to(kc, ct.p, ct.n, aad.p, aad.n, room, ct.n, &got_len, E), want);
            CHECK(got_len == 77);
            free(room);
            bytes_free(&ct), bytes_free(&aad);
        } else if (strcmp(op, "unwrap") == 0) {
            bytes_t context = hex(jstr(c, "context_hex")), ect;
            ks_envelope env = envelope_from_json(json_object_get(c, "envelope"), &ect);
            EXPECT(ks_keychain_unwrap_key(kc, &env, context.p, context.n, &out, E), want);
            uint8_t got[64];
            size_t got_len = 77;
            EXPECT(ks_keychain_unwrap_key_to(kc, &env, context.p, context.n, got, sizeof got, &got_len, E), want);
            CHECK(got_len == 77);
            bytes_free(&ect);
            bytes_free(&context);
        } else if (strcmp(op, "derive") == 0) {
            bytes_t info = hex(jstr(c, "info_hex"));
            EXPECT(ks_keychain_derive(kc, 0, info.p, info.n, (size_t)jint(c, "length"), &out, E), want);
            bytes_free(&info);
        } else if (strcmp(op, "envelope_from_metadata") == 0) {
            ks_envelope env;
            memset(&env, 0xAB, sizeof env);
            EXPECT(envelope_from_metadata_json(json_object_get(c, "metadata"), &env, E), want);
            CHECK(all_byte((const uint8_t *)&env, sizeof env, 0xAB));
        } else {
            fprintf(stderr, "unknown invalid op \"%s\"\n", op);
            CHECK(!"known invalid op");
        }
        CHECK(buf_untouched(out));
        n->invalid++;
    }
    g_ctx = "";
}

static void check_keys_listing(const ks_keychain *kc, const json_t *keys)
{
    size_t want = json_array_size(keys), count = 0;
    CHECK(want > 0);
    OK(ks_keychain_key_count(kc, &count, E));
    CHECK(count == want);
    ks_key_info infos[16];
    count = 0;
    if (!OK(ks_keychain_keys(kc, infos, 16, &count, E)) || !CHECK(count == want))
        return;
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        CHECK(infos[i].key_id == (uint32_t)jint(k, "key_id"));
        CHECK(infos[i].version == (uint32_t)jint(k, "version"));
        CHECK(infos[i].purpose == purpose_of(jstr(k, "purpose")));
        CHECK(infos[i].status == status_of(jstr(k, "status")));
        CHECK(infos[i].primary == json_is_true(json_object_get(k, "primary")));
        ks_key_info one;
        if (OK(ks_keychain_key_info(kc, i, &one, E)))
            CHECK(one.key_id == infos[i].key_id && one.status == infos[i].status);
    }
}

static void group_keystrata_vectors(const char *dir)
{
    group_begin("vectors/keystrata.json");
    ks_counts n = {0};
    json_t *j = load_json(dir, "keystrata.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    CHECK(jint(j, "keychain_format_version") == 1);
    const json_t *k = json_object_get(j, "keychain");
    CHECK(json_is_object(k));

    /* The age-saved keychain, loaded with its identity. */
    const char *ident = jstr(k, "age_identity"), *recip = jstr(k, "age_recipient");
    ks_root *root = SENT;
    OK(ks_root_age_new(&ident, 1, NULL, 0, &root, E));
    CHECK(root != SENT && root != NULL);
    ks_buffer rb = sent_buf();
    if (OK(ks_root_age_recipient(root, 0, &rb, E)))
        CHECK(buf_eq(rb, (const uint8_t *)recip, strlen(recip)));
    ks_buffer_free(&rb);

    bytes_t saved = base64(jstr(k, "saved_age_base64"));
    CHECK(saved.n > 22 && memcmp(saved.p, "age-encryption.org/v1\n", 22) == 0);
    ks_keychain *kc = SENT;
    if (OK(ks_keychain_load(saved.p, saved.n, root, &kc, E))) {
        check_keys_listing(kc, jarr(k, "keys"));
        run_keychain_cases(kc, k, &n);

        /* The same again after a save/load round trip through C. */
        ks_buffer again = sent_buf();
        ks_keychain *kc2 = NULL;
        if (OK(ks_keychain_save(kc, root, &again, E)) &&
            OK(ks_keychain_load(again.data, again.len, root, &kc2, E))) {
            check_keys_listing(kc2, jarr(k, "keys"));
            ks_counts n2 = {0};
            run_keychain_cases(kc2, k, &n2);
            CHECK(n2.invalid == n.invalid && n2.unseal == n.unseal);
        }
        ks_buffer_free(&again);
        ks_keychain_free(kc2);
        ks_keychain_free(kc);
    }

    /* Another identity does not open it; a truncated file does not load. */
    ks_root *other = NULL;
    OK(ks_root_age_generate(&other, E));
    kc = SENT;
    EXPECT(ks_keychain_load(saved.p, saved.n, other, &kc, E), KS_ERR_AUTHENTICATION);
    CHECK(kc == SENT);
    EXPECT(ks_keychain_load(saved.p, saved.n - 1, root, &kc, E), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_load(saved.p, 10, root, &kc, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_load(NULL, 0, root, &kc, E), KS_ERR_FORMAT);
    CHECK(kc == SENT);
    /* Flip one byte in the middle of the payload. */
    saved.p[saved.n / 2 + 40 < saved.n ? saved.n / 2 + 40 : saved.n - 1] ^= 0x01;
    EXPECT(ks_keychain_load(saved.p, saved.n, root, &kc, E), KS_ERR_AUTHENTICATION);
    CHECK(kc == SENT);
    ks_root_free(other);
    ks_root_free(root);
    bytes_free(&saved);

    /* The passphrase-saved keychain. */
    const json_t *p = json_object_get(j, "saved_passphrase");
    const char *pass = jstr(p, "passphrase");
    ks_root *proot = NULL;
    OK(ks_root_passphrase_new((const uint8_t *)pass, strlen(pass), (uint8_t)jint(p, "work_factor"), &proot, E));
    bytes_t psaved = base64(jstr(p, "saved_age_base64"));
    kc = NULL;
    if (OK(ks_keychain_load(psaved.p, psaved.n, proot, &kc, E))) {
        size_t i;
        json_t *c;
        char ctx[256];
        json_array_foreach(jarr(p, "unseal"), i, c)
        {
            snprintf(ctx, sizeof ctx, "saved_passphrase.unseal[%zu] %s", i, jstr(c, "comment"));
            g_ctx = ctx;
            bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                    pt = hex(jstr(c, "plaintext_hex"));
            ks_buffer out = sent_buf();
            if (OK(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out, E)))
                CHECK(buf_eq(out, pt.p, pt.n));
            ks_buffer_free(&out);
            bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
            n.unseal++;
        }
        g_ctx = "";
        ks_keychain_free(kc);
    }
    ks_root *wrongp = NULL;
    OK(ks_root_passphrase_new((const uint8_t *)"not it", 6, 10, &wrongp, E));
    kc = SENT;
    EXPECT(ks_keychain_load(psaved.p, psaved.n, wrongp, &kc, E), KS_ERR_AUTHENTICATION);
    CHECK(kc == SENT);
    ks_root_free(wrongp);
    ks_root_free(proot);
    bytes_free(&psaved);
    json_decref(j);

    int total = n.unseal + n.decrypt + n.unwrap + n.metadata + n.derive_origin_key + n.derive + n.invalid;
    CHECK(n.unseal > 0 && n.decrypt > 0 && n.unwrap > 0 && n.derive_origin_key > 0 && n.derive > 0 &&
          n.invalid > 0);
    char extra[256];
    snprintf(extra, sizeof extra,
             "  (%d cases: unseal %d, decrypt %d, unwrap %d, metadata %d, derive_origin_key %d, "
             "derive %d, invalid %d)",
             total, n.unseal, n.decrypt, n.unwrap, n.metadata, n.derive_origin_key, n.derive, n.invalid);
    group_end(extra);
}

/* ------------------------------------------------------------------ */
/* tink.json                                                           */
/* ------------------------------------------------------------------ */

static void group_tink_vectors(const char *dir)
{
    group_begin("vectors/tink.json");
    int n_aead = 0, n_env = 0, n_fail = 0, n_unsup = 0, n_keysets = 0;
    json_t *j = load_json(dir, "tink.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    size_t i, x;
    json_t *ks, *c;
    char ctx[256];
    json_array_foreach(jarr(j, "keysets"), i, ks)
    {
        const char *name = jstr(ks, "name");
        const char *keyset = jstr(ks, "keyset_json");
        ks_keychain *kc = SENT;
        snprintf(ctx, sizeof ctx, "keyset %s", name);
        g_ctx = ctx;
        if (!OK(ks_keychain_import_tink_cleartext((const uint8_t *)keyset, strlen(keyset), &kc, E)))
            continue;
        n_keysets++;
        ks_key_info pi;
        if (OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &pi, E)))
            CHECK(pi.key_id == (uint32_t)(unsigned long long)jint(ks, "primary_key_id"));
        /* Imported, then exported and imported again: same answers. */
        ks_buffer exported = sent_buf();
        ks_keychain *kc2 = NULL;
        if (OK(ks_keychain_insecure_export_tink_cleartext(kc, &exported, E)))
            OK(ks_keychain_import_tink_cleartext(exported.data, exported.len, &kc2, E));
        ks_buffer_free(&exported);
        const ks_keychain *both[2] = {kc, kc2};
        for (int w = 0; w < 2; w++) {
            if (!both[w])
                continue;
            json_array_foreach(jarr(ks, "aead"), x, c)
            {
                snprintf(ctx, sizeof ctx, "%s aead[%zu] %s%s", name, x, jstr(c, "comment"),
                         w ? " (re-imported)" : "");
                bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                        pt = hex(jstr(c, "plaintext_hex"));
                CHECK(ct.n >= 5 && ct.p[0] == 1 &&
                      be32(ct.p + 1) == (uint32_t)(unsigned long long)jint(c, "key_id"));
                ks_buffer out = sent_buf();
                if (OK(ks_keychain_unseal(both[w], ct.p, ct.n, aad.p, aad.n, &out, E)))
                    CHECK(buf_eq(out, pt.p, pt.n));
                ks_buffer_free(&out);
                bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
                n_aead += w == 0;
            }
            json_array_foreach(jarr(ks, "envelope"), x, c)
            {
                snprintf(ctx, sizeof ctx, "%s envelope[%zu] %s%s", name, x, jstr(c, "comment"),
                         w ? " (re-imported)" : "");
                bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex")),
                        pt = hex(jstr(c, "plaintext_hex"));
                ks_buffer out = sent_buf();
                if (OK(ks_keychain_decrypt(both[w], ct.p, ct.n, aad.p, aad.n, &out, E)))
                    CHECK(buf_eq(out, pt.p, pt.n));
                ks_buffer_free(&out);
                bytes_free(&ct), bytes_free(&aad), bytes_free(&pt);
                n_env += w == 0;
            }
        }
        json_array_foreach(jarr(ks, "aead_must_fail"), x, c)
        {
            snprintf(ctx, sizeof ctx, "%s aead_must_fail[%zu] %s", name, x, jstr(c, "comment"));
            bytes_t ct = hex(jstr(c, "ciphertext_hex")), aad = hex(jstr(c, "aad_hex"));
            ks_buffer out = sent_buf();
            EXPECT(ks_keychain_unseal(kc, ct.p, ct.n, aad.p, aad.n, &out, E), KS_ERR_KEY_DISABLED);
            CHECK(buf_untouched(out));
            bytes_free(&ct), bytes_free(&aad);
            n_fail++;
        }
        ks_keychain_free(kc2);
        ks_keychain_free(kc);
    }
    json_array_foreach(jarr(j, "unsupported"), i, c)
    {
        snprintf(ctx, sizeof ctx, "unsupported %s", jstr(c, "name"));
        g_ctx = ctx;
        const char *keyset = jstr(c, "keyset_json");
        ks_keychain *kc = SENT;
        EXPECT(ks_keychain_import_tink_cleartext((const uint8_t *)keyset, strlen(keyset), &kc, E),
               KS_ERR_UNSUPPORTED);
        CHECK(kc == SENT);
        n_unsup++;
    }
    g_ctx = "";
    /* Not a keyset at all. */
    ks_keychain *kc = SENT;
    EXPECT(ks_keychain_import_tink_cleartext((const uint8_t *)"{\"x\":1}", 7, &kc, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_import_tink_cleartext((const uint8_t *)"\xff\xfe", 2, &kc, E), KS_ERR_INVALID_INPUT);
    CHECK(kc == SENT);
    json_decref(j);
    CHECK(n_keysets > 0 && n_aead > 0 && n_env > 0 && n_fail > 0 && n_unsup > 0);
    char extra[200];
    snprintf(extra, sizeof extra, "  (%d cases: %d keysets, aead %d, envelope %d, aead_must_fail %d, unsupported %d)",
             n_keysets + n_aead + n_env + n_fail + n_unsup, n_keysets, n_aead, n_env, n_fail, n_unsup);
    group_end(extra);
}

/* ------------------------------------------------------------------ */
/* Wycheproof                                                          */
/* ------------------------------------------------------------------ */

static void group_wycheproof_aes_gcm(const char *dir)
{
    group_begin("wycheproof/aes_gcm");
    int n_valid = 0, n_invalid = 0, n_refused = 0;
    json_t *j = load_json(dir, "wycheproof/aes_gcm_test.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    size_t gi, ti;
    json_t *g, *t;
    char ctx[128];
    json_array_foreach(jarr(j, "testGroups"), gi, g)
    {
        long long key_size = jint(g, "keySize"), iv_size = jint(g, "ivSize"), tag_size = jint(g, "tagSize");
        bool ours = key_size == 256 && iv_size == 96 && tag_size == 128;
        json_array_foreach(jarr(g, "tests"), ti, t)
        {
            snprintf(ctx, sizeof ctx, "tcId %lld (%s)", jint(t, "tcId"), jstr(t, "comment"));
            g_ctx = ctx;
            const char *result = jstr(t, "result");
            CHECK(strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0);
            bool valid = strcmp(result, "valid") == 0;
            bytes_t key = hex(jstr(t, "key")), iv = hex(jstr(t, "iv")), aad = hex(jstr(t, "aad")),
                    msg = hex(jstr(t, "msg")), ct = hex(jstr(t, "ct")), tag = hex(jstr(t, "tag"));
            bytes_t sealed = {malloc(ct.n + tag.n + 1), ct.n + tag.n};
            memcpy(sealed.p, ct.p, ct.n);
            memcpy(sealed.p + ct.n, tag.p, tag.n);
            ks_buffer enc = sent_buf(), dec = sent_buf();
            if (ours) {
                if (valid) {
                    if (OK(ks_hazmat_aes256gcm_encrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, msg.p, msg.n, &enc, E)))
                        CHECK(buf_eq(enc, sealed.p, sealed.n));
                    if (OK(ks_hazmat_aes256gcm_decrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, sealed.p,
                                                      sealed.n, &dec, E)))
                        CHECK(buf_eq(dec, msg.p, msg.n));
                    n_valid++;
                } else {
                    EXPECT(ks_hazmat_aes256gcm_decrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, sealed.p,
                                                      sealed.n, &dec, E),
                           KS_ERR_AUTHENTICATION);
                    CHECK(buf_untouched(dec));
                    /* And encrypting msg never yields the invalid ct||tag. */
                    if (OK(ks_hazmat_aes256gcm_encrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, msg.p, msg.n, &enc, E)))
                        CHECK(!buf_eq(enc, sealed.p, sealed.n));
                    n_invalid++;
                }
            } else {
                /* Outside keystrata's format (key not 256 bits, IV not 96): refused. */
                EXPECT(ks_hazmat_aes256gcm_encrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, msg.p, msg.n, &enc, E),
                       KS_ERR_INVALID_INPUT);
                EXPECT(ks_hazmat_aes256gcm_decrypt(key.p, key.n, iv.p, iv.n, aad.p, aad.n, sealed.p, sealed.n,
                                                  &dec, E),
                       KS_ERR_INVALID_INPUT);
                CHECK(buf_untouched(enc) && buf_untouched(dec));
                n_refused++;
            }
            if (!buf_untouched(enc))
                ks_buffer_free(&enc);
            if (!buf_untouched(dec))
                ks_buffer_free(&dec);
            bytes_free(&key), bytes_free(&iv), bytes_free(&aad), bytes_free(&msg), bytes_free(&ct),
                bytes_free(&tag), bytes_free(&sealed);
        }
    }
    g_ctx = "";
    CHECK(n_valid + n_invalid + n_refused == jint(j, "numberOfTests"));
    json_decref(j);
    CHECK(n_valid > 0 && n_invalid > 0);
    char extra[160];
    snprintf(extra, sizeof extra, "  (%d cases: AES-256/96-bit IV valid %d, invalid %d; refused %d)",
             n_valid + n_invalid + n_refused, n_valid, n_invalid, n_refused);
    group_end(extra);
}

static void group_wycheproof_hkdf(const char *dir)
{
    group_begin("wycheproof/hkdf_sha256");
    int n_valid = 0, n_invalid = 0;
    json_t *j = load_json(dir, "wycheproof/hkdf_sha256_test.json");
    if (!j) {
        group_end(NULL);
        return;
    }
    size_t gi, ti;
    json_t *g, *t;
    char ctx[128];
    json_array_foreach(jarr(j, "testGroups"), gi, g)
    {
        json_array_foreach(jarr(g, "tests"), ti, t)
        {
            snprintf(ctx, sizeof ctx, "tcId %lld (%s)", jint(t, "tcId"), jstr(t, "comment"));
            g_ctx = ctx;
            const char *result = jstr(t, "result");
            CHECK(strcmp(result, "valid") == 0 || strcmp(result, "invalid") == 0);
            bytes_t ikm = hex(jstr(t, "ikm")), salt = hex(jstr(t, "salt")), info = hex(jstr(t, "info")),
                    okm = hex(jstr(t, "okm"));
            size_t size = (size_t)jint(t, "size");
            /* An empty salt is passed as NULL: "no salt". */
            const uint8_t *sp = salt.n ? salt.p : NULL;
            ks_buffer out = sent_buf();
            if (strcmp(result, "valid") == 0) {
                if (OK(ks_hazmat_hkdf_sha256(sp, salt.n, ikm.p, ikm.n, info.p, info.n, size, &out, E)))
                    CHECK(buf_eq(out, okm.p, okm.n));
                ks_buffer_free(&out);
                n_valid++;
            } else {
                EXPECT(ks_hazmat_hkdf_sha256(sp, salt.n, ikm.p, ikm.n, info.p, info.n, size, &out, E),
                       KS_ERR_INVALID_INPUT);
                CHECK(buf_untouched(out));
                n_invalid++;
            }
            bytes_free(&ikm), bytes_free(&salt), bytes_free(&info), bytes_free(&okm);
        }
    }
    g_ctx = "";
    CHECK(n_valid + n_invalid == jint(j, "numberOfTests"));
    json_decref(j);
    CHECK(n_valid > 0 && n_invalid > 0);
    char extra[96];
    snprintf(extra, sizeof extra, "  (%d cases: valid %d, invalid %d)", n_valid + n_invalid, n_valid, n_invalid);
    group_end(extra);
}
/* Wycheproof's signature vectors (tests/vectors/wycheproof/README.md)
 * through ks_verify_signature: every case of ECDSA P-256 and secp256k1 with
 * SHA-256 (DER and P1363) and Ed25519. A valid case verifies; an invalid
 * one fails with KS_ERR_AUTHENTICATION (or KS_ERR_INVALID_INPUT for a
 * public key keystrata refuses). */
static void group_wycheproof_signatures(const char *dir)
{
    static const struct {
        const char *file;
        ks_algorithm alg;
        int valid, invalid;
    } files[] = {
        {"wycheproof/ecdsa_secp256r1_sha256_test.json", KS_ALG_ECDSA_P256, 174, 310},
        {"wycheproof/ecdsa_secp256r1_sha256_p1363_test.json", KS_ALG_ECDSA_P256, 173, 89},
        {"wycheproof/ecdsa_secp256k1_sha256_test.json", KS_ALG_ECDSA_SECP256K1, 168, 308},
        {"wycheproof/ecdsa_secp256k1_sha256_p1363_test.json", KS_ALG_ECDSA_SECP256K1, 167, 85},
        {"wycheproof/ed25519_test.json", KS_ALG_ED25519, 88, 63},
    };
    group_begin("wycheproof/signatures");
    int total_valid = 0, total_invalid = 0;
    char ctx[192];
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        json_t *j = load_json(dir, files[f].file);
        if (!j)
            continue;
        int n_valid = 0, n_invalid = 0, n = 0;
        size_t gi, ti;
        json_t *g, *t;
        json_array_foreach(jarr(j, "testGroups"), gi, g)
        {
            json_t *pkj = json_object_get(g, "publicKey");
            bytes_t pk = hex(jstr(pkj, files[f].alg == KS_ALG_ED25519 ? "pk" : "uncompressed"));
            json_array_foreach(jarr(g, "tests"), ti, t)
            {
                n++;
                snprintf(ctx, sizeof ctx, "%s tcId %lld", files[f].file, jint(t, "tcId"));
                g_ctx = ctx;
                bytes_t msg = hex(jstr(t, "msg")), sig = hex(jstr(t, "sig"));
                const char *result = jstr(t, "result");
                ks_status st = ks_verify_signature(files[f].alg, pk.p, pk.n, msg.p, msg.n, sig.p, sig.n, NULL);
                if (strcmp(result, "valid") == 0) {
                    CHECK(st == KS_OK);
                    n_valid++;
                } else if (strcmp(result, "invalid") == 0) {
                    CHECK(st == KS_ERR_AUTHENTICATION || st == KS_ERR_INVALID_INPUT);
                    n_invalid++;
                }
                bytes_free(&msg), bytes_free(&sig);
            }
            bytes_free(&pk);
        }
        g_ctx = files[f].file;
        CHECK(n == jint(j, "numberOfTests"));
        CHECK(n_valid == files[f].valid && n_invalid == files[f].invalid);
        total_valid += n_valid;
        total_invalid += n_invalid;
        json_decref(j);
    }
    g_ctx = "";
    char extra[96];
    snprintf(extra, sizeof extra, "  (%d cases: valid %d, invalid %d)", total_valid + total_invalid, total_valid,
             total_invalid);
    group_end(extra);
}

void run_vectors(const char *dir)
{
    group_keystrata_vectors(dir);
    group_tink_vectors(dir);
    group_wycheproof_aes_gcm(dir);
    group_wycheproof_hkdf(dir);
    group_wycheproof_signatures(dir);
}
