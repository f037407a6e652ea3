/*
 * Wrapping data keys: ks_keychain_wrap_key into a flat ks_envelope the
 * library fills (released by ks_envelope_clear), envelopes the caller fills
 * to unwrap, ks_keychain_unwrap_key and its caller-sized form, and the
 * object-metadata form both ways.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* A sentinel-filled envelope: a failed call must leave it so. */
static ks_envelope sent_env(void)
{
    ks_envelope e;
    memset(&e, 0xAB, sizeof e);
    return e;
}

static bool env_untouched(const ks_envelope *e)
{
    return all_byte((const uint8_t *)e, sizeof *e, 0xAB);
}

static void group_wrap(void)
{
    group_begin("envelope: wrap, unwrap");
    const size_t HUGE = (size_t)-1;
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    uint8_t dek[32];
    memset(dek, 0x42, sizeof dek);
    ks_envelope env;
    if (!OK(ks_keychain_wrap_key(kc, dek, 32, (const uint8_t *)"ctx", 3, &env, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    /* The fields the library filled. */
    ks_key_info primary;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &primary, E));
    char want_id[16];
    snprintf(want_id, sizeof want_id, "%u", primary.key_id);
    CHECK(env.key_id != NULL && strcmp(env.key_id, want_id) == 0);
    CHECK(env.key_version == 1 && env.provider != NULL && strcmp(env.provider, "keystrata") == 0);
    CHECK(env.ciphertext != NULL && env.ciphertext_len == 32 + 33 && env.ciphertext[0] == 0x01 &&
          be32(env.ciphertext + 1) == primary.key_id);

    ks_envelope eout = sent_env();
    ks_buffer out = sent_buf();
    EXPECT(ks_keychain_wrap_key(NULL, dek, 32, NULL, 0, &eout, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, NULL, 32, NULL, 0, &eout, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 32, NULL, 3, &eout, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 32, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 0, NULL, 0, &eout, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key(kc, NULL, 0, NULL, 0, &eout, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key(kc, dek, HUGE, NULL, 0, &eout, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key(kc, dek, 32, dek, HUGE, &eout, E), KS_ERR_INVALID_INPUT);
    {
        uint8_t *big = calloc(4097, 1);
        EXPECT(ks_keychain_wrap_key(kc, big, 4097, NULL, 0, &eout, E), KS_ERR_INVALID_INPUT);
        ks_envelope e4096;
        if (OK(ks_keychain_wrap_key(kc, big, 4096, NULL, 0, &e4096, E))) {
            ks_buffer o = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, &e4096, NULL, 0, &o, E)))
                CHECK(buf_eq(o, big, 4096));
            ks_buffer_free(&o);
            ks_envelope_clear(&e4096);
        }
        free(big);
    }
    CHECK(env_untouched(&eout));
    EXPECT(ks_keychain_unwrap_key(NULL, &env, NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, NULL, NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, &env, NULL, 3, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, &env, (const uint8_t *)"ctx", 3, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key(kc, &env, (const uint8_t *)"ctx", HUGE, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_unwrap_key(kc, &env, (const uint8_t *)"ctX", 3, &out, E), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_unwrap_key(kc, &env, NULL, 0, &out, E), KS_ERR_AUTHENTICATION);
    CHECK(buf_untouched(out));
    {
        ks_buffer o = sent_buf();
        if (OK(ks_keychain_unwrap_key(kc, &env, (const uint8_t *)"ctx", 3, &o, E)))
            CHECK(buf_eq(o, dek, 32));
        ks_buffer_free(&o);
    }
    /* A keychain without the key. */
    {
        ks_keychain *other = NULL;
        OK(ks_keychain_generate(NULL, &other, E));
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_unwrap_key(other, &env, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_UNKNOWN_KEY);
        CHECK(buf_untouched(o));
        ks_keychain_free(other);
    }

    /* Envelopes the caller fills: copies of the fields, then each changed. */
    char kid[16];
    snprintf(kid, sizeof kid, "%s", env.key_id);
    uint32_t kv = env.key_version;
    size_t elen = env.ciphertext_len;
    uint8_t ect[128];
    memcpy(ect, env.ciphertext, elen);
    ks_envelope mine = {kid, kv, "keystrata", ect, elen};
    {
        ks_buffer o = sent_buf();
        if (OK(ks_keychain_unwrap_key(kc, &mine, (const uint8_t *)"ctx", 3, &o, E)))
            CHECK(buf_eq(o, dek, 32));
        ks_buffer_free(&o);
        /* The library only read it. */
        CHECK(mine.key_id == kid && mine.ciphertext == ect && mine.ciphertext_len == elen);
    }
    for (size_t len = 0; len < elen; len += 7) {
        ks_envelope e = {kid, kv, "keystrata", len ? ect : NULL, len};
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_unwrap_key(kc, &e, (const uint8_t *)"ctx", 3, &o, E),
               len < 33 ? KS_ERR_FORMAT : KS_ERR_AUTHENTICATION);
        CHECK(buf_untouched(o));
    }
    {
        ks_buffer o = sent_buf();
        uint8_t t[128];
        memcpy(t, ect, elen);
        t[elen - 1] ^= 1;
        ks_envelope e = {kid, kv, "keystrata", t, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &e, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_AUTHENTICATION);
        ks_envelope p = {kid, kv, "aws-kms", ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &p, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_INVALID_INPUT);
        ks_envelope k = {"12x", kv, "keystrata", ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &k, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_FORMAT);
        ks_envelope v = {kid, kv + 1, "keystrata", ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &v, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_AUTHENTICATION);
        /* NULL and non-UTF-8 fields. */
        ks_envelope n1 = {NULL, kv, "keystrata", ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &n1, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_NULL_ARGUMENT);
        ks_envelope n2 = {kid, kv, NULL, ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &n2, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_NULL_ARGUMENT);
        ks_envelope n3 = {kid, kv, "keystrata", NULL, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &n3, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_NULL_ARGUMENT);
        ks_envelope n4 = {kid, kv, "keystrata", ect, HUGE};
        EXPECT(ks_keychain_unwrap_key(kc, &n4, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_INVALID_INPUT);
        char bad_id[] = "\xff\xfe";
        ks_envelope u1 = {bad_id, kv, "keystrata", ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &u1, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_INVALID_INPUT);
        char bad_prov[] = "\xc3\x28";
        ks_envelope u2 = {kid, kv, bad_prov, ect, elen};
        EXPECT(ks_keychain_unwrap_key(kc, &u2, (const uint8_t *)"ctx", 3, &o, E), KS_ERR_INVALID_INPUT);
        CHECK(buf_untouched(o));
    }

    /* ks_envelope_clear frees and zeroes; a second clear is a no-op. */
    ks_envelope_clear(&env);
    CHECK(env.key_id == NULL && env.provider == NULL && env.ciphertext == NULL && env.ciphertext_len == 0 &&
          env.key_version == 0);
    ks_envelope_clear(&env);
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_unwrap_sized(void)
{
    group_begin("envelope: unwrap, caller-sized");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    static const size_t sizes[] = {1, 16, 32, 64, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t n = sizes[i];
        uint8_t *key = malloc(n);
        for (size_t j = 0; j < n; j++)
            key[j] = (uint8_t)(j * 13 + 1);
        ks_envelope env;
        if (!OK(ks_keychain_wrap_key(kc, key, n, (const uint8_t *)"obj", 3, &env, E))) {
            free(key);
            continue;
        }
        ks_counters c0;
        OK(ks_keychain_counters(kc, &c0, E));
        /* The query: the key's length from the ciphertext, no unwrapping. */
        size_t need = 0;
        OK(ks_keychain_unwrap_key_to(kc, &env, (const uint8_t *)"obj", 3, NULL, 0, &need, E));
        CHECK(need == n && need <= env.ciphertext_len);
        uint8_t *buf = malloc(n + 8);
        memset(buf, 0xAA, n + 8);
        size_t got = 0;
        EXPECT(ks_keychain_unwrap_key_to(kc, &env, (const uint8_t *)"obj", 3, buf, n - 1, &got, E),
               KS_ERR_BUFFER_TOO_SMALL);
        CHECK(got == n && all_byte(buf, n + 8, 0xAA));
        ks_counters c1;
        OK(ks_keychain_counters(kc, &c1, E));
        CHECK(c1.unwrap_ok == c0.unwrap_ok && c1.unwrap_failed == c0.unwrap_failed);
        /* A buffer as long as the wrapped form always has room. */
        uint8_t *room = malloc(env.ciphertext_len);
        got = 0;
        if (OK(ks_keychain_unwrap_key_to(kc, &env, (const uint8_t *)"obj", 3, room, env.ciphertext_len, &got, E)))
            CHECK(got == n && memcmp(room, key, n) == 0);
        free(room);
        got = 0;
        if (OK(ks_keychain_unwrap_key_to(kc, &env, (const uint8_t *)"obj", 3, buf, n + 8, &got, E)))
            CHECK(got == n && memcmp(buf, key, n) == 0 && all_byte(buf + n, 8, 0xAA));
        /* A wrong context: Authentication, nothing written. */
        memset(buf, 0xAA, n + 8);
        got = 77;
        EXPECT(ks_keychain_unwrap_key_to(kc, &env, (const uint8_t *)"obX", 3, buf, n + 8, &got, E),
               KS_ERR_AUTHENTICATION);
        CHECK(got == 77 && all_byte(buf, n + 8, 0xAA));
        ks_counters c2;
        OK(ks_keychain_counters(kc, &c2, E));
        CHECK(c2.unwrap_ok == c0.unwrap_ok + 2 && c2.unwrap_failed == c0.unwrap_failed + 1);
        free(buf);
        free(key);
        ks_envelope_clear(&env);
    }
    /* A malformed wrapped key: Format, for the query too. */
    uint8_t junk[8] = {0};
    ks_envelope bad = {"1", 1, "keystrata", junk, sizeof junk};
    size_t got = 77;
    uint8_t buf[64];
    EXPECT(ks_keychain_unwrap_key_to(kc, &bad, NULL, 0, NULL, 0, &got, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_unwrap_key_to(kc, &bad, NULL, 0, buf, sizeof buf, &got, E), KS_ERR_FORMAT);
    /* Another provider: the core's InvalidInput, whatever the buffer. */
    ks_envelope other = {"1", 1, "aws-kms", junk, sizeof junk};
    EXPECT(ks_keychain_unwrap_key_to(kc, &other, NULL, 0, buf, sizeof buf, &got, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_unwrap_key_to(NULL, &bad, NULL, 0, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key_to(kc, NULL, NULL, 0, buf, sizeof buf, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_unwrap_key_to(kc, &bad, NULL, 0, buf, sizeof buf, NULL, E), KS_ERR_NULL_ARGUMENT);
    CHECK(got == 77);
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_metadata(void)
{
    group_begin("envelope: metadata form");
    const size_t HUGE = (size_t)-1;
    ks_keychain *kc = NULL;
    ks_envelope env;
    uint8_t dek[32];
    memset(dek, 0x42, sizeof dek);
    if (!OK(ks_keychain_generate(NULL, &kc, E)) ||
        !OK(ks_keychain_wrap_key(kc, dek, 32, (const uint8_t *)"ctx", 3, &env, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ks_metadata md;
    if (OK(ks_envelope_to_metadata(&env, &md, E)) && CHECK(md.count == 4)) {
        static const char *const names[4] = {"x-amz-meta-encryption-key-version", "x-amz-meta-encryption-kms-id",
                                             "x-amz-meta-encryption-kms-provider",
                                             "x-amz-meta-encryption-wrapped-key"};
        for (size_t i = 0; i < 4; i++)
            CHECK(strcmp(md.entries[i].name, names[i]) == 0);
        CHECK(strcmp(md.entries[0].value, "1") == 0);
        CHECK(strcmp(md.entries[1].value, env.key_id) == 0);
        CHECK(strcmp(md.entries[2].value, "keystrata") == 0);
        CHECK(strlen(md.entries[3].value) == 88); /* base64 of 65 bytes */
        /* Round trip, with an unrelated entry that is ignored. */
        const char *n5[5], *v5[5];
        for (size_t i = 0; i < 4; i++) {
            n5[i] = md.entries[i].name;
            v5[i] = md.entries[i].value;
        }
        n5[4] = "x-amz-meta-unrelated";
        v5[4] = "ignored";
        ks_envelope back;
        if (OK(ks_envelope_from_metadata(n5, v5, 5, &back, E))) {
            CHECK(strcmp(back.key_id, env.key_id) == 0 && back.key_version == env.key_version &&
                  strcmp(back.provider, env.provider) == 0 && back.ciphertext_len == env.ciphertext_len &&
                  memcmp(back.ciphertext, env.ciphertext, env.ciphertext_len) == 0);
            ks_buffer o = sent_buf();
            if (OK(ks_keychain_unwrap_key(kc, &back, (const uint8_t *)"ctx", 3, &o, E)))
                CHECK(buf_eq(o, dek, 32));
            ks_buffer_free(&o);
            ks_envelope_clear(&back);
        }
        ks_envelope eout = sent_env();
        EXPECT(ks_envelope_from_metadata(NULL, v5, 4, &eout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(n5, NULL, 4, &eout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(n5, v5, 4, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(NULL, NULL, 0, &eout, E), KS_ERR_FORMAT);
        EXPECT(ks_envelope_from_metadata(n5, v5, 3, &eout, E), KS_ERR_FORMAT);
        EXPECT(ks_envelope_from_metadata(n5, v5, HUGE, &eout, E), KS_ERR_INVALID_INPUT);
        const char *nulls[4] = {n5[0], NULL, n5[2], n5[3]};
        EXPECT(ks_envelope_from_metadata(nulls, v5, 4, &eout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_envelope_from_metadata(n5, nulls, 4, &eout, E), KS_ERR_NULL_ARGUMENT);
        CHECK(env_untouched(&eout));
        ks_metadata_clear(&md);
        CHECK(md.entries == NULL && md.count == 0);
        ks_metadata_clear(&md);
    }
    /* The metadata form of an envelope the caller filled. */
    ks_envelope mine = {"7", 3, "keystrata", (uint8_t *)"\x01\x02\x03\xfa", 4};
    if (OK(ks_envelope_to_metadata(&mine, &md, E)) && CHECK(md.count == 4)) {
        CHECK(strcmp(md.entries[0].value, "3") == 0 && strcmp(md.entries[3].value, "AQID+g==") == 0);
        ks_metadata_clear(&md);
    }
    ks_metadata mout = {(ks_metadata_entry *)SENT, 77};
    EXPECT(ks_envelope_to_metadata(NULL, &mout, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_envelope_to_metadata(&env, NULL, E), KS_ERR_NULL_ARGUMENT);
    char bad[] = "\xff";
    ks_envelope badenv = {bad, 1, "keystrata", NULL, 0};
    EXPECT(ks_envelope_to_metadata(&badenv, &mout, E), KS_ERR_INVALID_INPUT);
    CHECK(mout.entries == (ks_metadata_entry *)SENT && mout.count == 77);
    ks_envelope_clear(&env);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_envelope(void)
{
    group_wrap();
    group_unwrap_sized();
    group_metadata();
}
