/*
 * Rewrap (ks_keychain_rewrap_sealed, _encrypted, _envelope): ciphertexts
 * made under an older key, made again under the current primary, the
 * plaintext never handed out; the key a ciphertext names
 * (ks_sealed_key_id, ks_encrypted_key_id); and the Prometheus text of
 * ks_keychain_metrics_text.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* The primary, a second key that is primary while `old` ciphertexts are
 * made, then `new_id` promoted. */
static bool two_keys(ks_keychain **kc, uint32_t *old_id, uint32_t *new_id)
{
    ks_key_info info;
    if (!OK(ks_keychain_generate(NULL, kc, E)))
        return false;
    bool ok = OK(ks_keychain_primary(*kc, KS_PURPOSE_ENCRYPT, &info, E));
    *old_id = info.key_id;
    ok = ok && OK(ks_keychain_add_key(*kc, KS_PURPOSE_ENCRYPT, &info, E));
    *new_id = info.key_id;
    return ok;
}

static void group_rewrap(void)
{
    group_begin("rewrap: sealed, encrypted, envelope");
    ks_keychain *kc = NULL;
    uint32_t old_id = 0, new_id = 0, id = 0;
    if (!two_keys(&kc, &old_id, &new_id)) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    const uint8_t *aad = (const uint8_t *)"aad";
    ks_buffer sealed = {0}, blob = {0}, again = {0}, again2 = {0}, pt = {0};
    ks_envelope env = {0}, env2 = {0};
    uint8_t dek[32];
    memset(dek, 0x42, sizeof dek);
    uint8_t doc[5000];
    memset(doc, 7, sizeof doc);
    OK(ks_keychain_seal(kc, (const uint8_t *)"secret", 6, aad, 3, &sealed, E));
    OK(ks_keychain_encrypt(kc, doc, sizeof doc, aad, 3, &blob, E));
    OK(ks_keychain_wrap_key(kc, dek, 32, (const uint8_t *)"ctx", 3, &env, E));
    OK(ks_sealed_key_id(sealed.data, sealed.len, &id, E));
    CHECK(id == old_id);
    OK(ks_encrypted_key_id(blob.data, blob.len, &id, E));
    CHECK(id == old_id);
    OK(ks_keychain_promote(kc, new_id, NULL, E));

    /* Sealed: the new key, the same plaintext once the old key is gone. */
    if (OK(ks_keychain_rewrap_sealed(kc, sealed.data, sealed.len, aad, 3, &again, E))) {
        OK(ks_sealed_key_id(again.data, again.len, &id, E));
        CHECK(id == new_id && again.len == sealed.len);
    }
    EXPECT(ks_keychain_rewrap_sealed(kc, sealed.data, sealed.len, (const uint8_t *)"bad", 3, &again2, E),
           KS_ERR_AUTHENTICATION);
    /* Encrypted: only the data key moves; the payload is the same bytes. */
    if (OK(ks_keychain_rewrap_encrypted(kc, blob.data, blob.len, &again2, E))) {
        OK(ks_encrypted_key_id(again2.data, again2.len, &id, E));
        CHECK(id == new_id && again2.len == blob.len);
        CHECK(memcmp(again2.data + 71, blob.data + 71, blob.len - 71) == 0);
    }
    /* Envelope: same form and context. */
    if (OK(ks_keychain_rewrap_envelope(kc, &env, (const uint8_t *)"ctx", 3, &env2, E))) {
        char want[16];
        snprintf(want, sizeof want, "%u", new_id);
        CHECK(strcmp(env2.key_id, want) == 0 && env2.ciphertext_len == env.ciphertext_len);
    }
    EXPECT(ks_keychain_rewrap_envelope(kc, &env, (const uint8_t *)"other", 5, &env2, E), KS_ERR_AUTHENTICATION);

    /* With the old key destroyed, only the rewrapped ones open. */
    OK(ks_keychain_destroy(kc, old_id, E));
    if (OK(ks_keychain_unseal(kc, again.data, again.len, aad, 3, &pt, E)))
        CHECK(buf_eq(pt, (const uint8_t *)"secret", 6));
    ks_buffer_free(&pt);
    if (OK(ks_keychain_decrypt(kc, again2.data, again2.len, aad, 3, &pt, E)))
        CHECK(buf_eq(pt, doc, sizeof doc));
    ks_buffer_free(&pt);
    if (OK(ks_keychain_unwrap_key(kc, &env2, (const uint8_t *)"ctx", 3, &pt, E)))
        CHECK(buf_eq(pt, dek, 32));
    ks_buffer_free(&pt);
    ks_buffer out = sent_buf();
    EXPECT(ks_keychain_rewrap_sealed(kc, sealed.data, sealed.len, aad, 3, &out, E), KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_rewrap_encrypted(kc, blob.data, blob.len, &out, E), KS_ERR_KEY_DESTROYED);
    CHECK(buf_untouched(out));

    /* Bad input: framing, NULL, a closed keychain. */
    EXPECT(ks_keychain_rewrap_sealed(kc, blob.data, 10, aad, 3, &out, E), KS_ERR_FORMAT);
    EXPECT(ks_keychain_rewrap_encrypted(kc, blob.data, 50, &out, E), KS_ERR_FORMAT);
    EXPECT(ks_sealed_key_id((const uint8_t *)"\x02xxxx", 5, &id, E), KS_ERR_FORMAT);
    EXPECT(ks_encrypted_key_id(blob.data, 3, &id, E), KS_ERR_FORMAT);
    EXPECT(ks_sealed_key_id(NULL, 40, &id, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_encrypted_key_id(blob.data, blob.len, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_rewrap_encrypted(NULL, blob.data, blob.len, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_rewrap_envelope(kc, NULL, NULL, 0, &env2, E), KS_ERR_NULL_ARGUMENT);
    CHECK(buf_untouched(out));
    OK(ks_keychain_close(kc, E));
    EXPECT(ks_keychain_rewrap_sealed(kc, again.data, again.len, aad, 3, &out, E), KS_ERR_UNAVAILABLE);

    ks_envelope_clear(&env);
    ks_envelope_clear(&env2);
    ks_buffer_free(&sealed);
    ks_buffer_free(&blob);
    ks_buffer_free(&again);
    ks_buffer_free(&again2);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* The value of the sample `line_start` (a metric name and labels) in the
 * Prometheus text, or -1. */
static long long sample(const ks_buffer *text, const char *line_start)
{
    size_t n = strlen(line_start);
    const char *p = (const char *)text->data, *end = p + text->len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return -1;
        if ((size_t)(nl - p) > n + 1 && memcmp(p, line_start, n) == 0 && p[n] == ' ')
            return strtoll(p + n + 1, NULL, 10);
        p = nl + 1;
    }
    return -1;
}

static void group_metrics(void)
{
    group_begin("metrics: Prometheus text");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ks_buffer ct = {0}, pt = {0}, key = {0}, text = {0};
    for (int i = 0; i < 3; i++) {
        OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &ct, E));
        if (i < 2)
            ks_buffer_free(&ct);
    }
    OK(ks_keychain_unseal(kc, ct.data, ct.len, NULL, 0, &pt, E));
    ks_buffer_free(&pt);
    EXPECT(ks_keychain_unseal(kc, ct.data, ct.len, (const uint8_t *)"x", 1, &pt, E), KS_ERR_AUTHENTICATION);
    OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"api.example.com", 15, (const uint8_t *)"i", 1, 1, &key, E));
    ks_buffer_free(&key);
    ks_key_info info;
    OK(ks_keychain_rotate(kc, &info, E));
    if (OK(ks_keychain_metrics_text(kc, &text, E))) {
        CHECK(memchr(text.data, '\0', text.len) == NULL);
        CHECK(sample(&text, "kms_seal_total{ok=\"true\"}") == 3);
        CHECK(sample(&text, "kms_unseal_total{ok=\"true\"}") == 1);
        CHECK(sample(&text, "kms_unseal_total{ok=\"false\"}") == 1);
        CHECK(sample(&text, "kms_errors_total{kind=\"Authentication\"}") == 1);
        CHECK(sample(&text, "kms_derivations_total{origin=\"api.example.com\"}") == 1);
        CHECK(sample(&text, "kms_rotations_total{scope=\"encrypt\"}") == 1);
        CHECK(sample(&text, "kms_operation_duration_seconds_count{op=\"derive\"}") == 1);
        CHECK(sample(&text, "kms_operation_duration_seconds_bucket{op=\"derive\",le=\"+Inf\"}") == 1);
    }
    ks_buffer_free(&text);
    /* After close the final figures are still readable. */
    OK(ks_keychain_close(kc, E));
    if (OK(ks_keychain_metrics_text(kc, &text, E)))
        CHECK(sample(&text, "kms_seal_total{ok=\"true\"}") == 3);
    ks_buffer_free(&text);
    ks_buffer out = sent_buf();
    EXPECT(ks_keychain_metrics_text(NULL, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_metrics_text(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
    CHECK(buf_untouched(out));
    ks_buffer_free(&ct);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_rewrap(void)
{
    group_rewrap();
    group_metrics();
}
