/*
 * Signing through the C ABI: every algorithm and format, caller-sized
 * signatures, public keys, verification with a key alone, the audit
 * events and counters, and hostile arguments. The rules themselves are the
 * core's (core/tests/sign.rs checks them, and OpenSSL checks our bytes).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t MSG[] = "release v1.2.3";
#define MSG_LEN (sizeof MSG - 1)

static void group_sign_round_trip(void)
{
    group_begin("sign: every algorithm, both formats");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    const ks_algorithm algs[] = {KS_ALG_ED25519, KS_ALG_ECDSA_P256, KS_ALG_ECDSA_SECP256K1};
    const char *names[] = {"ed25519", "ecdsa-p256", "ecdsa-secp256k1"};
    for (size_t i = 0; i < 3; i++) {
        g_ctx = names[i];
        ks_key_info info;
        if (!OK(ks_keychain_rotate_signing(kc, algs[i], &info, E)))
            continue;
        CHECK(info.purpose == KS_PURPOSE_SIGN && info.algorithm == algs[i] && info.primary);
        CHECK(strcmp(ks_algorithm_name(algs[i]), names[i]) == 0);
        CHECK(strcmp(ks_purpose_name(KS_PURPOSE_SIGN), "sign") == 0);
        for (uint32_t fmt = KS_SIG_DER; fmt <= KS_SIG_RAW; fmt++) {
            uint8_t sig[KS_MAX_SIGNATURE_LEN];
            size_t n = 0;
            ks_signature_info who_signed = {0};
            if (!OK(ks_keychain_sign(kc, MSG, MSG_LEN, fmt, sig, sizeof sig, &n, &who_signed, E)))
                continue;
            CHECK(who_signed.key_id == info.key_id && who_signed.key_version == info.version &&
                  who_signed.algorithm == algs[i]);
            CHECK(n > 0 && n <= KS_MAX_SIGNATURE_LEN);
            if (fmt == KS_SIG_RAW || algs[i] == KS_ALG_ED25519)
                CHECK(n == 64);
            else
                CHECK(sig[0] == 0x30); /* DER SEQUENCE */
            ks_key_info who;
            if (OK(ks_keychain_verify(kc, MSG, MSG_LEN, sig, n, &who, E)))
                CHECK(who.key_id == info.key_id && who.algorithm == algs[i]);
            OK(ks_keychain_verify_with(kc, info.key_id, MSG, MSG_LEN, sig, n, NULL, E));
            EXPECT(ks_keychain_verify(kc, MSG, MSG_LEN - 1, sig, n, NULL, E), KS_ERR_AUTHENTICATION);
            /* With the public key alone. */
            ks_buffer raw = {0};
            if (OK(ks_keychain_public_key(kc, info.key_id, KS_PUBKEY_RAW, &raw, E))) {
                CHECK(raw.len == (algs[i] == KS_ALG_ED25519 ? 32u : 65u));
                OK(ks_verify_signature(algs[i], raw.data, raw.len, MSG, MSG_LEN, sig, n, E));
                sig[n - 1] ^= 1;
                EXPECT(ks_verify_signature(algs[i], raw.data, raw.len, MSG, MSG_LEN, sig, n, E),
                       KS_ERR_AUTHENTICATION);
            }
            ks_buffer_free(&raw);
        }
        ks_buffer pem = {0};
        if (OK(ks_keychain_public_key(kc, info.key_id, KS_PUBKEY_PEM, &pem, E)))
            CHECK(pem.len > 27 && memcmp(pem.data, "-----BEGIN PUBLIC KEY-----\n", 27) == 0);
        ks_buffer_free(&pem);
        ks_buffer ms = {0};
        if (algs[i] == KS_ALG_ED25519) {
            if (OK(ks_keychain_public_key(kc, info.key_id, KS_PUBKEY_MINISIGN, &ms, E)))
                CHECK(ms.len > 30 && memcmp(ms.data, "untrusted comment: minisign public key ", 39) == 0);
        } else {
            EXPECT(ks_keychain_public_key(kc, info.key_id, KS_PUBKEY_MINISIGN, &ms, E), KS_ERR_UNSUPPORTED);
            /* A digest signed as AWS KMS signs digests. */
            uint8_t digest[32], sig[KS_MAX_SIGNATURE_LEN];
            memset(digest, 0x5a, sizeof digest);
            size_t n = 0;
            if (OK(ks_keychain_sign_digest(kc, digest, 32, KS_SIG_DER, sig, sizeof sig, &n, NULL, E)))
                OK(ks_keychain_verify_digest(kc, digest, 32, sig, n, NULL, E));
            EXPECT(ks_keychain_sign_digest(kc, digest, 31, KS_SIG_DER, sig, sizeof sig, &n, NULL, E),
                   KS_ERR_INVALID_INPUT);
        }
        ks_buffer_free(&ms);
    }
    g_ctx = "";
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_sign_sizes_and_hostile(void)
{
    group_begin("sign: caller-sized outputs and hostile arguments");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    uint8_t sig[KS_MAX_SIGNATURE_LEN];
    size_t n = SENT_LEN;
    ks_signature_info key_id = {77, 77, KS_ALG_NONE};
    /* No signing key yet. */
    EXPECT(ks_keychain_sign(kc, MSG, MSG_LEN, KS_SIG_DER, sig, sizeof sig, &n, &key_id, E), KS_ERR_UNKNOWN_KEY);
    EXPECT(ks_keychain_verify(kc, MSG, MSG_LEN, sig, 64, NULL, E), KS_ERR_UNKNOWN_KEY);
    CHECK(key_id.key_id == 77 && key_id.key_version == 77);
    ks_key_info info;
    EXPECT(ks_keychain_rotate_signing(kc, 0, &info, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_rotate_signing(kc, 4, &info, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_rotate_signing(NULL, KS_ALG_ED25519, &info, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_add_key(kc, KS_PURPOSE_SIGN, &info, E), KS_ERR_INVALID_INPUT);
    if (!OK(ks_keychain_rotate_signing(kc, KS_ALG_ECDSA_P256, NULL, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    /* The length query, and too little room: no signature is made. */
    ks_counters c0, c1;
    OK(ks_keychain_counters(kc, &c0, E));
    OK(ks_keychain_sign(kc, MSG, MSG_LEN, KS_SIG_DER, NULL, 0, &n, NULL, E));
    CHECK(n == KS_MAX_SIGNATURE_LEN);
    n = 0;
    EXPECT(ks_keychain_sign(kc, MSG, MSG_LEN, KS_SIG_DER, sig, 71, &n, NULL, E), KS_ERR_BUFFER_TOO_SMALL);
    CHECK(n == KS_MAX_SIGNATURE_LEN);
    OK(ks_keychain_counters(kc, &c1, E));
    CHECK(c1.sign == c0.sign);
    EXPECT(ks_keychain_sign(kc, MSG, MSG_LEN, 3, sig, sizeof sig, &n, NULL, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_sign(kc, NULL, 5, KS_SIG_DER, sig, sizeof sig, &n, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_sign(kc, MSG, MSG_LEN, KS_SIG_DER, sig, sizeof sig, NULL, NULL, E), KS_ERR_NULL_ARGUMENT);
    OK(ks_keychain_sign(kc, NULL, 0, KS_SIG_DER, sig, sizeof sig, &n, NULL, E)); /* the empty message */
    EXPECT(ks_keychain_verify(kc, MSG, MSG_LEN, NULL, 3, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_verify(kc, MSG, MSG_LEN, sig, 0, NULL, E), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_verify_with(kc, 12345, MSG, MSG_LEN, sig, n, NULL, E), KS_ERR_UNKNOWN_KEY);
    ks_buffer pk = sent_buf();
    EXPECT(ks_keychain_public_key(kc, 12345, KS_PUBKEY_PEM, &pk, E), KS_ERR_UNKNOWN_KEY);
    EXPECT(ks_keychain_public_key(kc, 12345, 9, &pk, E), KS_ERR_INVALID_INPUT);
    CHECK(buf_untouched(pk));
    uint8_t bad_pk[65] = {4};
    EXPECT(ks_verify_signature(KS_ALG_ECDSA_P256, bad_pk, 64, MSG, MSG_LEN, sig, n, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_verify_signature(KS_ALG_ECDSA_P256, bad_pk, 65, MSG, MSG_LEN, sig, n, E), KS_ERR_AUTHENTICATION);
    EXPECT(ks_verify_signature(99, bad_pk, 65, MSG, MSG_LEN, sig, n, E), KS_ERR_INVALID_INPUT);
    OK(ks_keychain_close(kc, E));
    EXPECT(ks_keychain_sign(kc, MSG, MSG_LEN, KS_SIG_DER, sig, sizeof sig, &n, NULL, E), KS_ERR_UNAVAILABLE);
    EXPECT(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, NULL, E), KS_ERR_UNAVAILABLE);
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_sign_audit(void)
{
    group_begin("sign: audit events and counters");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E)) || !OK(ks_keychain_rotate_signing(kc, KS_ALG_ED25519, NULL, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub, E));
    uint8_t sig[KS_MAX_SIGNATURE_LEN];
    size_t n = 0;
    ks_signature_info key_id = {0};
    OK(ks_keychain_sign(kc, MSG, MSG_LEN, KS_SIG_DER, sig, sizeof sig, &n, &key_id, E));
    EXPECT(ks_keychain_verify(kc, MSG, 3, sig, n, NULL, E), KS_ERR_AUTHENTICATION);
    ks_event e;
    if (CHECK(ev_last(&rec, KS_EVENT_SIGNED, &e)))
        CHECK(e.key_id == key_id.key_id && e.algorithm == KS_ALG_ED25519 && e.has_digest && !all_zero(e.digest, 32));
    if (CHECK(ev_last(&rec, KS_EVENT_VERIFY_FAILED, &e)))
        CHECK(e.error == KS_ERR_AUTHENTICATION && e.has_digest && e.purpose == KS_PURPOSE_SIGN);
    CHECK(strcmp(ks_event_kind_name(KS_EVENT_SIGNED), "signed") == 0);
    CHECK(strcmp(ks_event_kind_name(KS_EVENT_VERIFY_FAILED), "verify_failed") == 0);
    ks_counters c;
    if (OK(ks_keychain_counters(kc, &c, E)))
        CHECK(c.sign == 1 && c.verify_ok == 0 && c.verify_failed == 1);
    ks_keychain_free(kc);
    pthread_mutex_destroy(&rec.mu);
    group_end(NULL);
}

void run_sign(void)
{
    group_sign_round_trip();
    group_sign_sizes_and_hostile();
    group_sign_audit();
}
