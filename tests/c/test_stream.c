/*
 * Streaming encryption through the C ABI: round trips at every segment
 * boundary of both formats fed in odd pieces, the exact lengths the calls
 * announce, truncation, tampering, reordering, wrong aad and key, Tink's
 * committed vectors (tests/vectors/stream.json), and hostile arguments.
 * The format's rules are the core's (core/src/stream.rs and
 * core/tests/stream.rs, which runs Tink both ways).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Plaintext bytes a full segment carries, and the first segment. */
#define SEG4K 4096u
#define SEG1M 1048576u
#define FIRST(seg) ((seg) - 40u - 16u)
#define FULL(seg) ((seg) - 16u)

typedef struct {
    uint8_t *p;
    size_t n, cap;
} vec_t;

static void vec_put(vec_t *v, const uint8_t *p, size_t n)
{
    if (v->n + n > v->cap) {
        v->cap = (v->n + n) * 2 + 64;
        v->p = realloc(v->p, v->cap);
        if (!v->p)
            abort();
    }
    if (n)
        memcpy(v->p + v->n, p, n);
    v->n += n;
}

static uint8_t *xmalloc(size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        abort();
    return p;
}

/*
 * Per-call checks inside the stream helpers: a failure counts and is
 * reported with its line, a pass is not counted (the callers count one
 * check per stream).
 */
static bool qcheck_(bool ok, const char *expr, int line)
{
    return ok || check_(false, expr, __FILE__, line);
}
#define QCHECK(c) qcheck_((c), #c, __LINE__)

/* The status of a call whose error object is checked and freed. */
static ks_status st_of(ks_status st, ks_error *e)
{
    QCHECK(ks_error_status(e) == st);
    QCHECK((st == KS_OK) == (e == NULL));
    ks_error_free(e);
    return st;
}

/*
 * Encrypts pt in pieces of `chunk` bytes. Every call is asked its length
 * first (out NULL), refused one byte short, and must then produce exactly
 * that many bytes. Returns false on any failure.
 */
static bool encrypt_stream(ks_keychain *kc, const uint8_t *aad, size_t aad_len, const uint8_t *pt, size_t n,
                           size_t chunk, vec_t *ct)
{
    ks_stream_encryptor *enc = NULL;
    if (!OK(ks_stream_encryptor_new(kc, aad, aad_len, &enc, E)))
        return false;
    bool ok = true;
    ks_status st;
    for (size_t off = 0, k = 0; ok && off < n; off += k) {
        size_t want = SENT_LEN, got = SENT_LEN, need = 0;
        k = n - off < chunk ? n - off : chunk;
        st = ks_stream_encrypt_update(enc, pt + off, k, NULL, 0, &want, NULL);
        if (!QCHECK(st == KS_OK && want != SENT_LEN))
            break;
        uint8_t *out = xmalloc(want);
        if (want > 0) {
            st = ks_stream_encrypt_update(enc, pt + off, k, out, want - 1, &need, NULL);
            ok = QCHECK(st == KS_ERR_BUFFER_TOO_SMALL && need == want);
        }
        if (ok) {
            st = ks_stream_encrypt_update(enc, pt + off, k, out, want, &got, NULL);
            ok = QCHECK(st == KS_OK && got == want);
        }
        if (ok)
            vec_put(ct, out, got);
        free(out);
    }
    size_t want = 0, got = 0;
    st = ks_stream_encrypt_finish(enc, NULL, 0, &want, NULL);
    if (ok && QCHECK(st == KS_OK)) {
        uint8_t *out = xmalloc(want);
        st = ks_stream_encrypt_finish(enc, out, want - 1, &got, NULL);
        ok = QCHECK(st == KS_ERR_BUFFER_TOO_SMALL && got == want);
        if (ok) {
            st = ks_stream_encrypt_finish(enc, out, want, &got, NULL);
            ok = QCHECK(st == KS_OK && got == want);
        }
        if (ok)
            vec_put(ct, out, got);
        free(out);
    } else {
        ok = false;
    }
    ks_stream_encryptor_free(enc);
    return ok;
}

/*
 * Decrypts ct in pieces of `chunk` bytes into pt; returns the first failing
 * status. Every update is asked its length first: at most the documented
 * bound, and exactly what the call returns when `exact`. A failing call
 * returns nothing, and every later call the same status.
 */
static ks_status decrypt_stream(ks_keychain *kc, const uint8_t *aad, size_t aad_len, const uint8_t *ct, size_t n,
                                size_t chunk, bool exact, vec_t *pt)
{
    ks_stream_decryptor *dec = NULL;
    ks_error *e = NULL;
    ks_status st = ks_stream_decryptor_new(kc, aad, aad_len, &dec, &e);
    st_of(st, e);
    if (st != KS_OK)
        return st;
    for (size_t off = 0, k = 0; st == KS_OK && off < n; off += k) {
        size_t want = SENT_LEN, got = SENT_LEN;
        k = n - off < chunk ? n - off : chunk;
        size_t buffered = ks_stream_decryptor_buffered(dec);
        e = NULL;
        st = ks_stream_decrypt_update(dec, ct + off, k, NULL, 0, &want, &e);
        st_of(st, e);
        if (st != KS_OK)
            break;
        QCHECK(want <= k + buffered);
        uint8_t *out = xmalloc(want);
        memset(out, 0xEE, want);
        e = NULL;
        st = ks_stream_decrypt_update(dec, ct + off, k, out, want, &got, &e);
        st_of(st, e);
        if (st == KS_OK) {
            QCHECK(got <= want);
            QCHECK(!exact || got == want);
            vec_put(pt, out, got);
        } else {
            /* Nothing of a failing call comes back. */
            QCHECK(got == SENT_LEN);
            for (size_t i = 0; i < want; i++)
                if (out[i] != 0xEE && out[i] != 0) {
                    CHECK(!"plaintext of a failing call");
                    break;
                }
        }
        free(out);
    }
    if (st == KS_OK) {
        size_t want = 0, got = 0;
        e = NULL;
        st = ks_stream_decrypt_finish(dec, NULL, 0, &want, &e);
        st_of(st, e);
        if (st == KS_OK) {
            uint8_t *out = xmalloc(want);
            e = NULL;
            st = ks_stream_decrypt_finish(dec, out, want, &got, &e);
            st_of(st, e);
            if (st == KS_OK) {
                QCHECK(got == want);
                vec_put(pt, out, got);
            }
            free(out);
        }
    }
    if (st != KS_OK) {
        /* The same error, from every later call, queries included. */
        size_t got = SENT_LEN;
        uint8_t b[64] = {0}, o[64];
        e = NULL;
        ks_status again = ks_stream_decrypt_update(dec, b, 1, o, sizeof o, &got, &e);
        QCHECK(st_of(again, e) == st);
        e = NULL;
        again = ks_stream_decrypt_finish(dec, o, sizeof o, &got, &e);
        QCHECK(st_of(again, e) == st);
        e = NULL;
        again = ks_stream_decrypt_update(dec, b, 1, NULL, 0, &got, &e);
        QCHECK(st_of(again, e) == st);
        QCHECK(got == SENT_LEN);
    }
    ks_stream_decryptor_free(dec);
    return st;
}

static uint8_t *pattern(size_t n)
{
    uint8_t *p = xmalloc(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)((7 * i + 3) % 251);
    return p;
}

static size_t segments_of(size_t seg, size_t n)
{
    return n <= FIRST(seg) ? 1 : 1 + (n - FIRST(seg) + FULL(seg) - 1) / FULL(seg);
}

static ks_keychain *stream_keychain(uint32_t format)
{
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E)))
        return NULL;
    ks_key_info info;
    if (!OK(ks_keychain_rotate_streaming(kc, format, &info, E))) {
        ks_keychain_free(kc);
        return NULL;
    }
    CHECK(info.purpose == KS_PURPOSE_STREAM && info.primary && info.status == KS_KEY_ENABLED);
    CHECK(info.stream_format == (uint32_t)format && info.algorithm == KS_ALG_NONE);
    return kc;
}

static void group_round_trips(void)
{
    group_begin("stream: boundaries, pieces");
    static const uint8_t AAD[] = "backup-2026-12-01";
    for (uint32_t f = KS_STREAM_AES256_GCM_HKDF_4KB; f <= KS_STREAM_AES256_GCM_HKDF_1MB; f++) {
        ks_keychain *kc = stream_keychain(f);
        if (!kc)
            continue;
        size_t seg = f == KS_STREAM_AES256_GCM_HKDF_4KB ? SEG4K : SEG1M;
        size_t sizes[] = {0,
                          1,
                          FIRST(seg) - 1,
                          FIRST(seg),
                          FIRST(seg) + 1,
                          FIRST(seg) + FULL(seg) - 1,
                          FIRST(seg) + FULL(seg),
                          FIRST(seg) + FULL(seg) + 1,
                          FIRST(seg) + 3 * FULL(seg) + 7};
        size_t chunks4k[][2] = {{1, 1}, {7, 4097}, {4095, 13}, {4096, 4096}, {65537, 40}, {(size_t)-1, 41}};
        size_t chunks1m[][2] = {{65521, 1048577}, {1048576, 999999}, {(size_t)-1, 1048575}};
        size_t (*chunks)[2] = f == KS_STREAM_AES256_GCM_HKDF_4KB ? chunks4k : chunks1m;
        size_t n_chunks = f == KS_STREAM_AES256_GCM_HKDF_4KB ? 6 : 3;
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            size_t n = sizes[s];
            uint8_t *pt = pattern(n);
            for (size_t c = 0; c < n_chunks; c++) {
                /* Byte at a time only where it stays quick. */
                if (chunks[c][0] == 1 && n > 3 * SEG4K)
                    continue;
                char ctx[96];
                snprintf(ctx, sizeof ctx, "format %u, %zu bytes, pieces %zu/%zu", f, n, chunks[c][0], chunks[c][1]);
                g_ctx = ctx;
                vec_t ct = {0}, back = {0};
                if (encrypt_stream(kc, AAD, sizeof AAD - 1, pt, n, chunks[c][0], &ct)) {
                    CHECK(ct.n == n + 40 + 16 * segments_of(seg, n));
                    CHECK(ct.n > 0 && ct.p[0] == 40);
                    if (CHECK(decrypt_stream(kc, AAD, sizeof AAD - 1, ct.p, ct.n, chunks[c][1], true, &back) == KS_OK))
                        CHECK(back.n == n && (n == 0 || memcmp(back.p, pt, n) == 0));
                }
                free(ct.p);
                free(back.p);
            }
            free(pt);
        }
        ks_keychain_free(kc);
    }
    group_end(NULL);
}

static void group_failures(void)
{
    group_begin("stream: tampering, keys, aad");
    ks_keychain *kc = stream_keychain(KS_STREAM_AES256_GCM_HKDF_4KB);
    ks_keychain *other = stream_keychain(KS_STREAM_AES256_GCM_HKDF_4KB);
    size_t n = 3 * SEG4K;
    uint8_t *pt = pattern(n);
    vec_t ct = {0};
    if (!kc || !other || !encrypt_stream(kc, (const uint8_t *)"aad", 3, pt, n, 1000, &ct)) {
        group_end(NULL);
        return;
    }
    size_t chunks[] = {1, 100, 4096, 4097, (size_t)-1};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        size_t ch = chunks[c];
        char ctx[64];
        snprintf(ctx, sizeof ctx, "pieces of %zu", ch);
        g_ctx = ctx;
        vec_t out = {0};
#define DEC(buf, len, kc_, aad, aad_len) (out.n = 0, decrypt_stream((kc_), (aad), (aad_len), (buf), (len), ch, true, &out))
        CHECK(DEC(ct.p, ct.n, kc, (const uint8_t *)"aad", 3) == KS_OK && out.n == n);
        CHECK(DEC(ct.p, ct.n, kc, (const uint8_t *)"aaD", 3) == KS_ERR_AUTHENTICATION);
        CHECK(DEC(ct.p, ct.n, kc, NULL, 0) == KS_ERR_AUTHENTICATION);
        CHECK(DEC(ct.p, ct.n, other, (const uint8_t *)"aad", 3) == KS_ERR_AUTHENTICATION);
        /* Cut short: at each segment boundary, a byte short, a last segment
         * under its 16-byte tag, a header with less than a tag after it
         * (FORMAT.md §13: Authentication once the 40-byte header is there). */
        size_t cuts[] = {SEG4K, 2 * SEG4K, 3 * SEG4K, ct.n - 1, 3 * SEG4K + 1, 3 * SEG4K + 15, 41, 55, 40};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
            CHECK(DEC(ct.p, cuts[i], kc, (const uint8_t *)"aad", 3) == KS_ERR_AUTHENTICATION);
        CHECK(DEC(ct.p, 39, kc, (const uint8_t *)"aad", 3) == KS_ERR_FORMAT);
        CHECK(DEC(ct.p, 0, kc, (const uint8_t *)"aad", 3) == KS_ERR_FORMAT);
        /* A changed byte anywhere. */
        size_t at[] = {1, 39, 40, 4095, 4096, 9000, ct.n - 1};
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            ct.p[at[i]] ^= 1;
            CHECK(DEC(ct.p, ct.n, kc, (const uint8_t *)"aad", 3) == KS_ERR_AUTHENTICATION);
            ct.p[at[i]] ^= 1;
        }
        ct.p[0] ^= 1;
        CHECK(DEC(ct.p, ct.n, kc, (const uint8_t *)"aad", 3) == KS_ERR_FORMAT);
        ct.p[0] ^= 1;
        /* Segments 1 and 2 swapped, segment 1 repeated. */
        uint8_t *re = xmalloc(ct.n + SEG4K);
        memcpy(re, ct.p, SEG4K);
        memcpy(re + SEG4K, ct.p + 2 * SEG4K, SEG4K);
        memcpy(re + 2 * SEG4K, ct.p + SEG4K, SEG4K);
        memcpy(re + 3 * SEG4K, ct.p + 3 * SEG4K, ct.n - 3 * SEG4K);
        CHECK(DEC(re, ct.n, kc, (const uint8_t *)"aad", 3) == KS_ERR_AUTHENTICATION);
        memcpy(re, ct.p, 2 * SEG4K);
        memcpy(re + 2 * SEG4K, ct.p + SEG4K, ct.n - SEG4K);
        CHECK(DEC(re, ct.n + SEG4K, kc, (const uint8_t *)"aad", 3) == KS_ERR_AUTHENTICATION);
        free(re);
#undef DEC
        free(out.p);
    }
    g_ctx = "segment by segment";
    /* Segment 0's plaintext comes once a byte follows it, not before; a
     * tampered segment 1 gives nothing of itself. */
    ks_stream_decryptor *dec = NULL;
    if (OK(ks_stream_decryptor_new(kc, (const uint8_t *)"aad", 3, &dec, E))) {
        uint8_t *out = xmalloc(2 * SEG4K);
        size_t got = 0;
        OK(ks_stream_decrypt_update(dec, ct.p, SEG4K, out, 2 * SEG4K, &got, E));
        CHECK(got == 0 && ks_stream_decryptor_buffered(dec) == FIRST(SEG4K) + 16);
        OK(ks_stream_decrypt_update(dec, ct.p + SEG4K, 1, out, 2 * SEG4K, &got, E));
        CHECK(got == FIRST(SEG4K) && memcmp(out, pt, got) == 0 && ks_stream_decryptor_buffered(dec) == 1);
        ct.p[SEG4K + 100] ^= 1;
        got = SENT_LEN;
        EXPECT(ks_stream_decrypt_update(dec, ct.p + SEG4K + 1, SEG4K, out, 2 * SEG4K, &got, E),
               KS_ERR_AUTHENTICATION);
        CHECK(got == SENT_LEN);
        ct.p[SEG4K + 100] ^= 1;
        free(out);
    }
    ks_stream_decryptor_free(dec);
    free(ct.p);
    free(pt);
    ks_keychain_free(kc);
    ks_keychain_free(other);
    group_end(NULL);
}

static void group_keys(void)
{
    group_begin("stream: rotation, formats");
    ks_keychain *kc = stream_keychain(KS_STREAM_AES256_GCM_HKDF_4KB);
    if (!kc) {
        group_end(NULL);
        return;
    }
    size_t n = 3 * SEG4K + 5;
    uint8_t *pt = pattern(n);
    vec_t old_ct = {0}, new_ct = {0}, out = {0};
    ks_key_info first, added, promoted;
    OK(ks_keychain_primary(kc, KS_PURPOSE_STREAM, &first, E));
    encrypt_stream(kc, NULL, 0, pt, n, 5000, &old_ct);
    /* A 1 MB key, added then promoted: streams under both decrypt. */
    if (OK(ks_keychain_add_stream_key(kc, KS_STREAM_AES256_GCM_HKDF_1MB, &added, E))) {
        CHECK(!added.primary && added.purpose == KS_PURPOSE_STREAM);
        OK(ks_keychain_promote(kc, added.key_id, &promoted, E));
        CHECK(promoted.primary);
    }
    encrypt_stream(kc, NULL, 0, pt, n, 5000, &new_ct);
    CHECK(new_ct.n == n + 40 + 16); /* one 1 MB segment */
    /* The keys' formats differ: the first update's length is a bound
     * until the key is found; everything still decrypts. */
    size_t chunks[] = {1000, 4096, 4097, (size_t)-1};
    for (size_t c = 0; c < 4; c++) {
        out.n = 0;
        CHECK(decrypt_stream(kc, NULL, 0, old_ct.p, old_ct.n, chunks[c], false, &out) == KS_OK && out.n == n &&
              memcmp(out.p, pt, n) == 0);
        out.n = 0;
        CHECK(decrypt_stream(kc, NULL, 0, new_ct.p, new_ct.n, chunks[c], false, &out) == KS_OK && out.n == n &&
              memcmp(out.p, pt, n) == 0);
    }
    ks_stream_decryptor *dec = NULL;
    if (OK(ks_stream_decryptor_new(kc, NULL, 0, &dec, E))) {
        size_t want = 0;
        OK(ks_stream_decrypt_update(dec, old_ct.p, 5000, NULL, 0, &want, E));
        CHECK(want == 5000); /* the bound: the formats differ */
    }
    ks_stream_decryptor_free(dec);
    /* A disabled key decrypts nothing. */
    OK(ks_keychain_disable(kc, first.key_id, E));
    out.n = 0;
    CHECK(decrypt_stream(kc, NULL, 0, old_ct.p, old_ct.n, 4096, false, &out) == KS_ERR_AUTHENTICATION);
    free(pt);
    free(old_ct.p);
    free(new_ct.p);
    free(out.p);
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_tink(const char *dir)
{
    group_begin("stream: Tink's vectors");
    json_t *doc = load_json(dir, "stream.json");
    ks_keychain *kc = NULL;
    const char *ks = doc ? jstr(doc, "keyset_json") : NULL;
    if (!ks || !OK(ks_keychain_import_tink_cleartext((const uint8_t *)ks, strlen(ks), &kc, E))) {
        json_decref(doc);
        group_end(NULL);
        return;
    }
    size_t i;
    json_t *v;
    int n_vectors = 0;
    json_array_foreach(jarr(doc, "decrypt"), i, v)
    {
        g_ctx = jstr(v, "comment");
        bytes_t ct = hex(jstr(v, "ciphertext_hex")), aad = hex(jstr(v, "aad_hex"));
        size_t n = (size_t)jint(v, "plaintext_len");
        uint8_t *pt = pattern(n);
        size_t chunks[] = {1, 97, 4096, (size_t)-1};
        for (size_t c = 0; c < 4; c++) {
            vec_t out = {0};
            if (CHECK(decrypt_stream(kc, aad.p, aad.n, ct.p, ct.n, chunks[c], true, &out) == KS_OK))
                CHECK(out.n == n && (n == 0 || memcmp(out.p, pt, n) == 0));
            free(out.p);
            if (ct.n > 0) {
                out = (vec_t){0};
                CHECK(decrypt_stream(kc, aad.p, aad.n, ct.p, ct.n - 1, chunks[c], true, &out) ==
                      KS_ERR_AUTHENTICATION);
                free(out.p);
            }
        }
        n_vectors++;
        free(pt);
        bytes_free(&ct);
        bytes_free(&aad);
    }
    CHECK(n_vectors >= 5);
    ks_keychain_free(kc);
    json_decref(doc);
    group_end(NULL);
}

static void group_hostile(void)
{
    group_begin("stream: hostile arguments");
    ks_keychain *kc = stream_keychain(KS_STREAM_AES256_GCM_HKDF_4KB);
    if (!kc) {
        group_end(NULL);
        return;
    }
    ks_key_info info;
    const uint32_t bad[] = {0, 3, 0xFFFFFFFFu};
    for (size_t i = 0; i < 3; i++) {
        EXPECT(ks_keychain_rotate_streaming(kc, bad[i], &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_add_stream_key(kc, bad[i], &info, E), KS_ERR_INVALID_INPUT);
    }
    EXPECT(ks_keychain_rotate_streaming(NULL, KS_STREAM_AES256_GCM_HKDF_4KB, &info, E), KS_ERR_NULL_ARGUMENT);
    OK(ks_keychain_rotate_streaming(kc, KS_STREAM_AES256_GCM_HKDF_4KB, NULL, E));

    ks_stream_encryptor *enc = SENT;
    ks_stream_decryptor *dec = SENT;
    EXPECT(ks_stream_encryptor_new(NULL, NULL, 0, &enc, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_encryptor_new(kc, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_encryptor_new(kc, NULL, 5, &enc, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_decryptor_new(NULL, NULL, 0, &dec, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_decryptor_new(kc, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_decryptor_new(kc, NULL, 5, &dec, E), KS_ERR_NULL_ARGUMENT);
    CHECK(enc == SENT && dec == SENT);

    uint8_t buf[256], in[100] = {1, 2, 3};
    size_t got = SENT_LEN;
    EXPECT(ks_stream_encrypt_update(NULL, in, 3, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_encrypt_finish(NULL, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_decrypt_update(NULL, in, 3, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_decrypt_finish(NULL, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
    CHECK(got == SENT_LEN);
    CHECK(ks_stream_decryptor_buffered(NULL) == 0);
    ks_stream_encryptor_free(NULL);
    ks_stream_decryptor_free(NULL);

    enc = NULL;
    dec = NULL;
    if (OK(ks_stream_encryptor_new(kc, NULL, 0, &enc, E)) && OK(ks_stream_decryptor_new(kc, NULL, 0, &dec, E))) {
        EXPECT(ks_stream_encrypt_update(enc, NULL, 3, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_encrypt_update(enc, in, 3, buf, sizeof buf, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_encrypt_finish(enc, buf, sizeof buf, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_decrypt_update(dec, NULL, 3, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_decrypt_update(dec, in, 3, buf, sizeof buf, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_decrypt_finish(dec, buf, sizeof buf, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_encrypt_update(enc, in, 3, buf, (size_t)-1, &got, E), KS_ERR_INVALID_INPUT);
        /* out overlapping the input. */
        uint8_t big[2 * SEG4K];
        memset(big, 7, sizeof big);
        EXPECT(ks_stream_encrypt_update(enc, big, SEG4K, big + 10, SEG4K, &got, E), KS_ERR_INVALID_INPUT);
        /* None of that used the stream: it still works. */
        vec_t ct = {0};
        size_t want = 0;
        OK(ks_stream_encrypt_update(enc, in, 3, NULL, 0, &want, E));
        CHECK(want == 0);
        if (OK(ks_stream_encrypt_update(enc, in, 3, buf, 0, &got, E)))
            CHECK(got == 0);
        OK(ks_stream_encrypt_finish(enc, NULL, 0, &want, E));
        CHECK(want == 40 + 3 + 16);
        if (OK(ks_stream_encrypt_finish(enc, buf, sizeof buf, &got, E)) && CHECK(got == want))
            vec_put(&ct, buf, got);
        /* After finish: every call is refused, outputs untouched. */
        got = SENT_LEN;
        EXPECT(ks_stream_encrypt_update(enc, in, 3, buf, sizeof buf, &got, E), KS_ERR_UNAVAILABLE);
        EXPECT(ks_stream_encrypt_update(enc, in, 3, NULL, 0, &got, E), KS_ERR_UNAVAILABLE);
        EXPECT(ks_stream_encrypt_finish(enc, buf, sizeof buf, &got, E), KS_ERR_UNAVAILABLE);
        CHECK(got == SENT_LEN);
        /* The decryptor: queries consume nothing; one byte short is refused. */
        OK(ks_stream_decrypt_update(dec, ct.p, ct.n, NULL, 0, &want, E));
        CHECK(want == 0);
        OK(ks_stream_decrypt_update(dec, ct.p, ct.n, buf, 0, &got, E));
        CHECK(got == 0 && ks_stream_decryptor_buffered(dec) == ct.n - 40);
        OK(ks_stream_decrypt_finish(dec, NULL, 0, &want, E));
        CHECK(want == 3);
        got = SENT_LEN;
        EXPECT(ks_stream_decrypt_finish(dec, buf, 2, &got, E), KS_ERR_BUFFER_TOO_SMALL);
        CHECK(got == 3);
        if (OK(ks_stream_decrypt_finish(dec, buf, sizeof buf, &got, E)))
            CHECK(got == 3 && memcmp(buf, in, 3) == 0);
        got = SENT_LEN;
        EXPECT(ks_stream_decrypt_update(dec, in, 3, buf, sizeof buf, &got, E), KS_ERR_UNAVAILABLE);
        EXPECT(ks_stream_decrypt_finish(dec, buf, sizeof buf, &got, E), KS_ERR_UNAVAILABLE);
        CHECK(got == SENT_LEN);
        free(ct.p);
    }
    ks_stream_encryptor_free(enc);
    ks_stream_decryptor_free(dec);

    /* No stream key yet. */
    ks_keychain *plain = NULL;
    if (OK(ks_keychain_generate(NULL, &plain, E))) {
        enc = SENT;
        dec = SENT;
        EXPECT(ks_stream_encryptor_new(plain, NULL, 0, &enc, E), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_stream_decryptor_new(plain, NULL, 0, &dec, E), KS_ERR_UNKNOWN_KEY);
        CHECK(enc == SENT && dec == SENT);
        ks_keychain_free(plain);
    }

    /* A closed keychain makes no new stream; streams already made finish. */
    enc = NULL;
    dec = NULL;
    if (OK(ks_stream_encryptor_new(kc, NULL, 0, &enc, E)) && OK(ks_stream_decryptor_new(kc, NULL, 0, &dec, E))) {
        OK(ks_keychain_close(kc, E));
        ks_stream_encryptor *e2 = SENT;
        ks_stream_decryptor *d2 = SENT;
        EXPECT(ks_stream_encryptor_new(kc, NULL, 0, &e2, E), KS_ERR_UNAVAILABLE);
        EXPECT(ks_stream_decryptor_new(kc, NULL, 0, &d2, E), KS_ERR_UNAVAILABLE);
        EXPECT(ks_keychain_rotate_streaming(kc, KS_STREAM_AES256_GCM_HKDF_4KB, NULL, E), KS_ERR_UNAVAILABLE);
        EXPECT(ks_keychain_add_stream_key(kc, KS_STREAM_AES256_GCM_HKDF_4KB, NULL, E), KS_ERR_UNAVAILABLE);
        CHECK(e2 == SENT && d2 == SENT);
        ks_keychain_free(kc);
        kc = NULL;
        size_t a = 0, b = 0, c = 0;
        if (OK(ks_stream_encrypt_update(enc, in, sizeof in, buf, sizeof buf, &a, E)) &&
            OK(ks_stream_encrypt_finish(enc, buf + a, sizeof buf - a, &b, E))) {
            CHECK(a == 0 && b == 40 + sizeof in + 16);
            if (OK(ks_stream_decrypt_update(dec, buf, b, buf + b, sizeof buf - b, &c, E)) &&
                OK(ks_stream_decrypt_finish(dec, buf + b, sizeof buf - b, &c, E)))
                CHECK(c == sizeof in && memcmp(buf + b, in, sizeof in) == 0);
        }
    }
    ks_stream_encryptor_free(enc);
    ks_stream_decryptor_free(dec);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* A stored stream for ks_stream_seekable: bytes in memory. */
typedef struct {
    const uint8_t *p;
    size_t n;
    int calls, fail;
} store_t;

static int store_read_at(void *user_data, uint64_t offset, uint8_t *buf, size_t len, size_t *out_n)
{
    store_t *s = user_data;
    s->calls++;
    if (s->fail)
        return -1;
    size_t n = offset >= s->n ? 0 : (s->n - offset < len ? s->n - offset : len);
    if (n)
        memcpy(buf, s->p + offset, n);
    *out_n = n;
    return 0;
}

static void group_seekable(void)
{
    group_begin("stream: random access");
    ks_keychain *kc = stream_keychain(KS_STREAM_AES256_GCM_HKDF_4KB);
    size_t n = FIRST(SEG4K) + 3 * FULL(SEG4K) + 100;
    uint8_t *pt = pattern(n);
    vec_t ct = {0};
    if (!kc || !encrypt_stream(kc, (const uint8_t *)"aad", 3, pt, n, 5000, &ct)) {
        group_end(NULL);
        return;
    }
    store_t st = {ct.p, ct.n, 0, 0};
    ks_stream_seekable *s = NULL;
    if (OK(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, ct.n, &s, E))) {
        uint64_t len = 0;
        OK(ks_stream_seekable_plaintext_len(s, &len, E));
        CHECK(len == n);
        size_t offs[] = {0, 1, FIRST(SEG4K) - 1, FIRST(SEG4K), FIRST(SEG4K) + FULL(SEG4K) - 3, n - 1, n, n + 5};
        size_t lens[] = {0, 1, 17, FULL(SEG4K) + 9, 3 * SEG4K};
        uint8_t *buf = xmalloc(3 * SEG4K);
        for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
            for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
                size_t got = SENT_LEN, want = offs[i] >= n ? 0 : (n - offs[i] < lens[j] ? n - offs[i] : lens[j]);
                if (OK(ks_stream_seekable_read_at(s, offs[i], buf, lens[j], &got, E)))
                    CHECK(got == want && (want == 0 || memcmp(buf, pt + offs[i], want) == 0));
            }
        /* The callback failing is KS_ERR_IO; reads go on after it. */
        st.fail = 1;
        size_t got = SENT_LEN;
        EXPECT(ks_stream_seekable_read_at(s, FIRST(SEG4K) + 5, buf, 10, &got, E), KS_ERR_IO);
        CHECK(got == SENT_LEN);
        st.fail = 0;
        if (OK(ks_stream_seekable_read_at(s, FIRST(SEG4K) + 5, buf, 10, &got, E)))
            CHECK(got == 10 && memcmp(buf, pt + FIRST(SEG4K) + 5, 10) == 0);
        EXPECT(ks_stream_seekable_read_at(s, 0, NULL, 10, &got, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_seekable_read_at(s, 0, buf, 10, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_seekable_read_at(NULL, 0, buf, 10, &got, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_stream_seekable_plaintext_len(s, NULL, E), KS_ERR_NULL_ARGUMENT);
        /* A tampered segment fails the reads that touch it, only those. */
        ct.p[2 * SEG4K + 7] ^= 1;
        memset(buf, 0xEE, 3 * SEG4K);
        got = SENT_LEN;
        EXPECT(ks_stream_seekable_read_at(s, FIRST(SEG4K) + 10, buf, 2 * FULL(SEG4K), &got, E),
               KS_ERR_AUTHENTICATION);
        /* Nothing of the call comes back: what it wrote (segment 1's part,
         * and segment 2, decrypted straight into buf) is wiped to zero. */
        CHECK(got == SENT_LEN);
        for (size_t i = 0; i < 2 * FULL(SEG4K); i++)
            if (buf[i] != 0xEE && buf[i] != 0) {
                CHECK(!"plaintext of a failing read_at");
                break;
            }
        if (OK(ks_stream_seekable_read_at(s, 0, buf, 100, &got, E)))
            CHECK(got == 100 && memcmp(buf, pt, 100) == 0);
        if (OK(ks_stream_seekable_read_at(s, n - 50, buf, 100, &got, E)))
            CHECK(got == 50 && memcmp(buf, pt + n - 50, 50) == 0);
        ct.p[2 * SEG4K + 7] ^= 1;
        free(buf);
    }
    ks_stream_seekable_free(s);
    /* Cut at a segment boundary: the new last segment does not check. */
    store_t cut = {ct.p, 3 * SEG4K, 0, 0};
    s = NULL;
    if (OK(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &cut, cut.n, &s, E))) {
        uint8_t b[16];
        size_t got = 0;
        EXPECT(ks_stream_seekable_read_at(s, 3 * SEG4K - 200, b, sizeof b, &got, E), KS_ERR_AUTHENTICATION);
    }
    ks_stream_seekable_free(s);
    ks_stream_seekable *none = SENT;
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aaD", 3, store_read_at, &st, ct.n, &none, E),
           KS_ERR_AUTHENTICATION);
    /* Fewer bytes than a header: Format; a header and less than a tag, or a
     * last segment under its tag: a stream cut short, Authentication. */
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, 30, &none, E), KS_ERR_FORMAT);
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, 39, &none, E), KS_ERR_FORMAT);
    size_t short_lens[] = {40, 41, 55, 3 * SEG4K + 1, 3 * SEG4K + 15};
    for (size_t i = 0; i < sizeof short_lens / sizeof short_lens[0]; i++)
        EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, short_lens[i], &none, E),
               KS_ERR_AUTHENTICATION);
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, NULL, &st, ct.n, &none, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, ct.n, NULL, E),
           KS_ERR_NULL_ARGUMENT);
    st.fail = 1;
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, ct.n, &none, E), KS_ERR_IO);
    st.fail = 0;
    OK(ks_keychain_close(kc, E));
    EXPECT(ks_stream_seekable_new(kc, (const uint8_t *)"aad", 3, store_read_at, &st, ct.n, &none, E),
           KS_ERR_UNAVAILABLE);
    CHECK(none == SENT);
    ks_stream_seekable_free(NULL);
    free(ct.p);
    free(pt);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_stream(const char *dir)
{
    group_round_trips();
    group_failures();
    group_keys();
    group_tink(dir);
    group_hostile();
    group_seekable();
}
