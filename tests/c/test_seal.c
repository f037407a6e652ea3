/*
 * Seal, unseal, encrypt, decrypt: hostile arguments, every truncation and
 * every flipped byte, and the forms whose output the caller sizes
 * (ks_keychain_{seal,unseal,encrypt,decrypt}_to): the length query with
 * out == NULL, a capacity too small, exactly enough, more than enough.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void group_hostile_aead(void)
{
    group_begin("seal/encrypt: hostile");
    const size_t HUGE = (size_t)-1;
    const uint8_t small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ks_buffer out = sent_buf();
    ks_buffer sealed = {NULL, 0}, encd = {NULL, 0};
    OK(ks_keychain_seal(kc, (const uint8_t *)"secret", 6, (const uint8_t *)"aad", 3, &sealed, E));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"document", 8, (const uint8_t *)"aad", 3, &encd, E));

    /* --- seal / unseal / encrypt / decrypt share one shape --- */
    typedef ks_status (*bytes_fn)(const ks_keychain *, const uint8_t *, size_t, const uint8_t *, size_t, ks_buffer *, ks_error **);
    const struct {
        const char *name;
        bytes_fn f;
        const ks_buffer *valid;
    } ops[] = {
        {"seal", ks_keychain_seal, NULL},
        {"unseal", ks_keychain_unseal, &sealed},
        {"encrypt", ks_keychain_encrypt, NULL},
        {"decrypt", ks_keychain_decrypt, &encd},
    };
    for (size_t i = 0; i < 4; i++) {
        g_ctx = ops[i].name;
        const uint8_t *in = ops[i].valid ? ops[i].valid->data : small;
        size_t in_len = ops[i].valid ? ops[i].valid->len : sizeof small;
        const uint8_t *aad = (const uint8_t *)"aad";
        EXPECT(ops[i].f(NULL, in, in_len, aad, 3, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, NULL, in_len, aad, 3, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, in, in_len, NULL, 3, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, in, in_len, aad, 3, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ops[i].f(kc, in, HUGE, aad, 3, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ops[i].f(kc, in, in_len, aad, HUGE, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ops[i].f(kc, NULL, HUGE, aad, 3, &out, E), KS_ERR_NULL_ARGUMENT);
        CHECK(buf_untouched(out));
        /* The valid call works (NULL aad with length 0 is the empty aad). */
        ks_buffer ok = sent_buf();
        if (ops[i].valid) {
            EXPECT(ops[i].f(kc, in, in_len, NULL, 0, &ok, E), KS_ERR_AUTHENTICATION); /* wrong aad */
            CHECK(buf_untouched(ok));
            if (OK(ops[i].f(kc, in, in_len, aad, 3, &ok, E)))
                ks_buffer_free(&ok);
        } else if (OK(ops[i].f(kc, in, in_len, NULL, 0, &ok, E))) {
            ks_buffer_free(&ok);
        }
    }
    g_ctx = "";

    /* --- truncated and tampered ciphertexts: every length, every byte --- */
    for (size_t len = 0; len < sealed.len; len++) {
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_unseal(kc, sealed.data, len, (const uint8_t *)"aad", 3, &o, E),
               len < 33 ? KS_ERR_FORMAT : KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
    }
    for (size_t pos = 0; pos < sealed.len; pos++) {
        uint8_t *t = malloc(sealed.len);
        memcpy(t, sealed.data, sealed.len);
        t[pos] ^= 0x80;
        ks_buffer o = sent_buf();
        /* prefix byte -> Format; key ID -> no such key; the rest -> Authentication */
        EXPECT(ks_keychain_unseal(kc, t, sealed.len, (const uint8_t *)"aad", 3, &o, E),
               pos == 0 ? KS_ERR_FORMAT : pos < 5 ? KS_ERR_UNKNOWN_KEY : KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
        free(t);
    }
    for (size_t len = 0; len < encd.len; len++) {
        ks_buffer o = sent_buf();
        ks_status st = ks_keychain_decrypt(kc, encd.data, len, (const uint8_t *)"aad", 3, &o, NULL);
        CHECK(st == KS_ERR_FORMAT || st == KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
    }
    for (size_t pos = 0; pos < encd.len; pos++) {
        uint8_t *t = malloc(encd.len);
        memcpy(t, encd.data, encd.len);
        t[pos] ^= 0x01;
        ks_buffer o = sent_buf();
        ks_status st = ks_keychain_decrypt(kc, t, encd.len, (const uint8_t *)"aad", 3, &o, NULL);
        CHECK(st == KS_ERR_FORMAT || st == KS_ERR_AUTHENTICATION || st == KS_ERR_UNKNOWN_KEY);
        CHECK(buf_untouched(o));
        free(t);
    }
    /* A ciphertext naming a key this keychain does not have. */
    {
        ks_keychain *other = NULL;
        OK(ks_keychain_generate(NULL, &other, E));
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_unseal(other, sealed.data, sealed.len, (const uint8_t *)"aad", 3, &o, E), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_decrypt(other, encd.data, encd.len, (const uint8_t *)"aad", 3, &o, E), KS_ERR_UNKNOWN_KEY);
        CHECK(buf_untouched(o));
        ks_keychain_free(other);
    }

    ks_buffer_free(&sealed);
    ks_buffer_free(&encd);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* The counters of kc (zeros if they cannot be read, which fails a check). */
static ks_counters counters(const ks_keychain *kc)
{
    ks_counters c;
    memset(&c, 0, sizeof c);
    OK(ks_keychain_counters(kc, &c, E));
    return c;
}

typedef ks_status (*sized_fn)(const ks_keychain *, const uint8_t *, size_t, const uint8_t *, size_t, uint8_t *, size_t,
                              size_t *, ks_error **);

/*
 * One operation into a buffer the caller sizes, for an input of n bytes
 * whose result must be want_len bytes (and, for an opening, equal `want`).
 * Checks the query, a capacity one too small, exactly enough and more than
 * enough; returns the result (malloc'd, want_len bytes) or NULL.
 */
static uint8_t *sized_round(const ks_keychain *kc, sized_fn f, bool opens, const uint8_t *in, size_t n,
                            size_t want_len, const uint8_t *want)
{
    const uint8_t aad[] = "aad";
    ks_counters before = counters(kc);
    /* The query: the length alone, whatever cap says, and nothing counted. */
    size_t need = 0;
    OK(f(kc, in, n, aad, 3, NULL, 0, &need, E));
    CHECK(need == want_len);
    need = 0;
    OK(f(kc, in, n, aad, 3, NULL, 12345, &need, E));
    CHECK(need == want_len);
    uint8_t *buf = malloc(want_len + 16);
    /* One byte short: KS_ERR_BUFFER_TOO_SMALL with the length, buffer untouched. */
    if (want_len > 0) {
        memset(buf, 0xAA, want_len + 16);
        size_t got = 0;
        EXPECT(f(kc, in, n, aad, 3, buf, want_len - 1, &got, E), KS_ERR_BUFFER_TOO_SMALL);
        CHECK(got == want_len);
        CHECK(strstr(h_msg, "BufferTooSmall") != NULL);
        CHECK(all_byte(buf, want_len + 16, 0xAA));
    }
    ks_counters mid = counters(kc);
    CHECK(mid.seal == before.seal && mid.encrypt == before.encrypt && mid.unseal_ok == before.unseal_ok &&
          mid.decrypt_ok == before.decrypt_ok && mid.unseal_failed == before.unseal_failed &&
          mid.decrypt_failed == before.decrypt_failed);
    /* More than enough: exactly want_len bytes written, the rest untouched. */
    memset(buf, 0xAA, want_len + 16);
    size_t got = 0;
    bool ok = OK(f(kc, in, n, aad, 3, buf, want_len + 16, &got, E));
    ok = ok && CHECK(got == want_len) && CHECK(all_byte(buf + want_len, 16, 0xAA));
    if (ok && opens)
        CHECK(want_len == 0 || memcmp(buf, want, want_len) == 0);
    /* Exactly enough (a non-NULL out with cap 0 for an empty result). */
    uint8_t *exact = malloc(want_len + 1);
    got = 0;
    if (OK(f(kc, in, n, aad, 3, exact, want_len, &got, E)) && CHECK(got == want_len) && opens)
        CHECK(want_len == 0 || memcmp(exact, want, want_len) == 0);
    free(exact);
    ks_counters after = counters(kc);
    CHECK(after.seal + after.encrypt + after.unseal_ok + after.decrypt_ok ==
          before.seal + before.encrypt + before.unseal_ok + before.decrypt_ok + 2);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void group_sized(void)
{
    group_begin("seal/encrypt: caller-sized");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    static const size_t sizes[] = {0, 1, 64, 1000, 70000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        char ctx[32];
        snprintf(ctx, sizeof ctx, "%zu bytes", n);
        g_ctx = ctx;
        uint8_t *pt = malloc(n + 1);
        for (size_t j = 0; j < n; j++)
            pt[j] = (uint8_t)(j * 31 + 7);
        uint8_t *ct = sized_round(kc, ks_keychain_seal_to, false, pt, n, n + 33, NULL);
        if (ct) {
            /* What the ks_buffer form opens. */
            ks_buffer opened = sent_buf();
            if (OK(ks_keychain_unseal(kc, ct, n + 33, (const uint8_t *)"aad", 3, &opened, E)))
                CHECK(buf_eq(opened, pt, n));
            ks_buffer_free(&opened);
            free(sized_round(kc, ks_keychain_unseal_to, true, ct, n + 33, n, pt));
            /* A wrong aad fails and leaves no plaintext in the buffer. */
            if (n > 0) {
                uint8_t *back = malloc(n);
                memset(back, 0xAA, n);
                size_t got = 77;
                EXPECT(ks_keychain_unseal_to(kc, ct, n + 33, (const uint8_t *)"x", 1, back, n, &got, E),
                       KS_ERR_AUTHENTICATION);
                CHECK(all_zero(back, n) && got == 77);
                free(back);
            }
            free(ct);
        }
        uint8_t *blob = sized_round(kc, ks_keychain_encrypt_to, false, pt, n, n + 99, NULL);
        if (blob) {
            ks_buffer dec = sent_buf();
            if (OK(ks_keychain_decrypt(kc, blob, n + 99, (const uint8_t *)"aad", 3, &dec, E)))
                CHECK(buf_eq(dec, pt, n));
            ks_buffer_free(&dec);
            free(sized_round(kc, ks_keychain_decrypt_to, true, blob, n + 99, n, pt));
            free(blob);
        }
        /* The bytes written may not overlap an input: refused before any work. */
        if (n > 0) {
            uint8_t *room = malloc(n + 33);
            memcpy(room, pt, n);
            size_t got = 77;
            EXPECT(ks_keychain_seal_to(kc, room, n, NULL, 0, room, n + 33, &got, E), KS_ERR_INVALID_INPUT);
            EXPECT(ks_keychain_seal_to(kc, pt, n, room + n + 32, 1, room, n + 33, &got, E), KS_ERR_INVALID_INPUT);
            CHECK(got == 77);
            /* Past the bytes written, the rest of `out` may hold an input. */
            uint8_t *big = malloc(2 * n + 33);
            memcpy(big + n + 33, pt, n);
            if (OK(ks_keychain_seal_to(kc, big + n + 33, n, NULL, 0, big, 2 * n + 33, &got, E)))
                CHECK(got == n + 33);
            free(big);
            free(room);
        }
        free(pt);
    }
    g_ctx = "";

    /* NULL and impossible arguments. */
    uint8_t buf[64];
    size_t got = 77;
    const size_t HUGE = (size_t)-1;
    EXPECT(ks_keychain_seal_to(NULL, buf, 1, NULL, 0, buf + 1, 34, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, NULL, 1, NULL, 0, buf, 34, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 1, buf + 8, 34, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, buf + 8, 34, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, buf + 8, HUGE, &got, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_seal_to(kc, buf, HUGE, NULL, 0, NULL, 0, &got, E), KS_ERR_INVALID_INPUT);
    CHECK(got == 77);
    /* A malformed ciphertext: Format for the query (nothing counted) and
     * for the call (counted as a failed unseal, as ks_keychain_unseal does). */
    memset(buf, 0x05, sizeof buf);
    ks_counters before = counters(kc);
    EXPECT(ks_keychain_unseal_to(kc, buf, 10, NULL, 0, NULL, 0, &got, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_decrypt_to(kc, buf, 3, NULL, 0, NULL, 0, &got, E), KS_ERR_FORMAT);
    ks_counters mid = counters(kc);
    CHECK(mid.unseal_failed == before.unseal_failed && mid.decrypt_failed == before.decrypt_failed);
    EXPECT(ks_keychain_unseal_to(kc, buf, 10, NULL, 0, buf + 16, 40, &got, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_decrypt_to(kc, buf, 3, NULL, 0, buf + 16, 40, &got, E), KS_ERR_FORMAT);
    ks_counters after = counters(kc);
    CHECK(after.unseal_failed == before.unseal_failed + 1 && after.decrypt_failed == before.decrypt_failed + 1);
    CHECK(got == 77);
    /* After close: Unavailable, for the query too. */
    OK(ks_keychain_close(kc, E));
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, buf + 8, 34, &got, E), KS_ERR_UNAVAILABLE);
    EXPECT(ks_keychain_seal_to(kc, buf, 1, NULL, 0, NULL, 0, &got, E), KS_ERR_UNAVAILABLE);
    CHECK(got == 77);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_seal(void)
{
    group_hostile_aead();
    group_sized();
}
