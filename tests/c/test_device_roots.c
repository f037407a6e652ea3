/*
 * ks_root_pkcs11_new and ks_root_kmip_new against the real peers: a
 * SoftHSM2 token and a PyKMIP server on loopback; ks_signer_pkcs11_new
 * (Ed25519, P-256, secp256k1 key pairs made in the token) against the
 * same token; ks_root_kmip_new against Cosmian KMS 5.0 too;
 * ks_root_aws_kms_new and ks_signer_aws_kms_new against moto's
 * AWS KMS server (keys made through scripts/peers/moto.sh key). Started by
 * scripts/peers.sh (make test does it; the settings come from the
 * KS_TEST_* environment variables it exports).
 *
 * Prints "device-roots: N passed, M failed"; exits non-zero on failure or
 * when the peers are not running (exit 77, "skipped", unless
 * KEYSTRATA_REQUIRE_PEERS=1, which makes it a failure).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keystrata.h"

/* Every call passes E: this thread's error slot. E frees the error object
 * of the previous call first, so a failure nobody reports leaks nothing;
 * last_msg() reads the message of the last call (or ""). */
static _Thread_local ks_error *t_err;
#define E (ks_error_free(t_err), t_err = NULL, &t_err)
static const char *last_msg(void)
{
    return ks_error_message(t_err);
}

static int g_pass, g_fail;

static bool check_(bool ok, const char *expr, int line)
{
    if (ok) {
        g_pass++;
    } else {
        g_fail++;
        fprintf(stderr, "test_device_roots.c:%d: FAILED: %s (last error: %s)\n", line, expr,
                last_msg());
    }
    return ok;
}
#define CHECK(c) check_((c), #c, __LINE__)

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0') {
        bool required = getenv("KEYSTRATA_REQUIRE_PEERS") && strcmp(getenv("KEYSTRATA_REQUIRE_PEERS"), "1") == 0;
        fprintf(stderr, "device-roots: %s unset: peers not started (eval \"$(bash scripts/peers.sh start)\")\n", name);
        exit(required ? 1 : 77);
    }
    return v;
}

static void unique(char *buf, size_t n, const char *prefix)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(buf, n, "%s-%ld-%ld", prefix, (long)ts.tv_sec, ts.tv_nsec);
}

/* Save a keychain under `root`, load it back, unseal; another root of the
 * same kind (`other`) and an age root must refuse it. */
static void save_load(const ks_root *root, const ks_root *other)
{
    ks_keychain *kc = NULL, *again = NULL, *wrong = NULL;
    ks_buffer sealed = {0}, saved = {0}, pt = {0};
    CHECK(ks_root_health_check(root, E) == KS_OK);
    CHECK(ks_keychain_generate(NULL, &kc, E) == KS_OK);
    CHECK(ks_keychain_seal(kc, (const uint8_t *)"secret", 6, (const uint8_t *)"a", 1, &sealed, E) == KS_OK);
    CHECK(ks_keychain_save(kc, root, &saved, E) == KS_OK);
    CHECK(saved.len > 4 && memcmp(saved.data, "KSWR", 4) == 0);
    CHECK(ks_keychain_load(saved.data, saved.len, root, &again, E) == KS_OK);
    CHECK(ks_keychain_unseal(again, sealed.data, sealed.len, (const uint8_t *)"a", 1, &pt, E) == KS_OK);
    CHECK(pt.len == 6 && memcmp(pt.data, "secret", 6) == 0);
    ks_status st = ks_keychain_load(saved.data, saved.len, other, &wrong, E);
    CHECK(st != KS_OK && wrong == NULL);
    ks_root *age = NULL;
    CHECK(ks_root_age_generate(&age, E) == KS_OK);
    CHECK(ks_keychain_load(saved.data, saved.len, age, &wrong, E) == KS_ERR_FORMAT);
    ks_root_free(age);
    ks_buffer_free(&sealed);
    ks_buffer_free(&saved);
    ks_buffer_free(&pt);
    ks_keychain_free(kc);
    ks_keychain_free(again);
}

static void pkcs11(void)
{
    const char *module = env("KS_TEST_PKCS11_MODULE");
    const char *token = env("KS_TEST_PKCS11_TOKEN");
    const char *pin = env("KS_TEST_PKCS11_PIN");
    char label[64], label2[64];
    unique(label, sizeof label, "c-a");
    unique(label2, sizeof label2, "c-b");
    ks_root *root = NULL, *other = NULL, *r = NULL;
    CHECK(ks_root_pkcs11_new(module, token, pin, NULL, label, KS_ROOT_CREATE_KEY, &root, E) == KS_OK);
    CHECK(ks_root_pkcs11_new(module, token, pin, NULL, label2, KS_ROOT_CREATE_KEY, &other, E) == KS_OK);
    /* The key now exists: opening it without the flag works. */
    CHECK(ks_root_pkcs11_new(module, token, pin, NULL, label, 0, &r, E) == KS_OK);
    ks_root_free(r);
    r = NULL;
    if (root && other)
        save_load(root, other);
    /* Errors, each of its documented kind; never the PIN in a message. */
    CHECK(ks_root_pkcs11_new(module, token, "not-the-pin-0000", NULL, label, 0, &r, E) == KS_ERR_BACKEND);
    CHECK(strstr(last_msg(), "not-the-pin-0000") == NULL);
    CHECK(r == NULL);
    char missing[64];
    unique(missing, sizeof missing, "c-missing");
    CHECK(ks_root_pkcs11_new(module, token, pin, NULL, missing, 0, &r, E) == KS_ERR_UNKNOWN_KEY);
    CHECK(ks_root_pkcs11_new(module, "no-such-token", pin, NULL, label, 0, &r, E) == KS_ERR_UNAVAILABLE);
    CHECK(ks_root_pkcs11_new("/nonexistent/libpkcs11.so", token, pin, NULL, label, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_pkcs11_new(module, token, NULL, NULL, label, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_pkcs11_new(module, token, pin, "X", label, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_pkcs11_new(module, token, NULL, "KS_TEST_SURELY_UNSET_VARIABLE", label, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_pkcs11_new(module, token, pin, NULL, label, 0x80, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_pkcs11_new(NULL, token, pin, NULL, label, 0, &r, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(ks_root_pkcs11_new(module, token, pin, NULL, label, 0, NULL, E) == KS_ERR_NULL_ARGUMENT);
    setenv("KS_TEST_C_PIN", pin, 1);
    CHECK(ks_root_pkcs11_new(module, token, NULL, "KS_TEST_C_PIN", label, 0, &r, E) == KS_OK);
    ks_root_free(r);
    unsetenv("KS_TEST_C_PIN");
    CHECK(ks_root_health_check(NULL, E) == KS_ERR_NULL_ARGUMENT);
    ks_root_free(root);
    ks_root_free(other);
}

/* The base64 of a PEM's body (the DER SubjectPublicKeyInfo, as a trust
 * file lists an official key). */
static void pem_body(const ks_buffer *pem, char *out, size_t cap)
{
    size_t o = 0, i = 0;
    while (i < pem->len) {
        size_t j = i;
        while (j < pem->len && pem->data[j] != '\n')
            j++;
        if (!(j - i >= 5 && memcmp(pem->data + i, "-----", 5) == 0) && o + (j - i) + 1 <= cap) {
            memcpy(out + o, pem->data + i, j - i);
            o += j - i;
        }
        i = j + 1;
    }
    out[o] = '\0';
}

/* ks_signer_pkcs11_new: a key pair made in the token signs; its
 * signatures verify with the public key it exports, in a trust file too. */
static void pkcs11_signer(void)
{
    const char *module = env("KS_TEST_PKCS11_MODULE");
    const char *token = env("KS_TEST_PKCS11_TOKEN");
    const char *pin = env("KS_TEST_PKCS11_PIN");
    static const uint8_t msg[] = "abc";
    /* SHA-256("abc") (FIPS 180-2, B.1). */
    static const uint8_t abc_sha256[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                           0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                           0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    const ks_algorithm algs[] = {KS_ALG_ED25519, KS_ALG_ECDSA_P256, KS_ALG_ECDSA_SECP256K1};
    char p256_label[64] = "";
    for (size_t i = 0; i < 3; i++) {
        ks_algorithm alg = algs[i];
        char label[64];
        unique(label, sizeof label, "c-sign");
        ks_signer *s = NULL, *again = NULL, *wrong = NULL;
        if (!CHECK(ks_signer_pkcs11_new(module, token, pin, NULL, label, alg, KS_ROOT_CREATE_KEY, &s, E) == KS_OK))
            continue;
        ks_algorithm got = KS_ALG_NONE;
        CHECK(ks_signer_algorithm(s, &got, E) == KS_OK && got == alg);
        CHECK(ks_signer_health_check(s, E) == KS_OK);
        ks_buffer raw = {0}, pem = {0};
        CHECK(ks_signer_public_key(s, KS_PUBKEY_RAW, &raw, E) == KS_OK);
        CHECK(raw.len == (alg == KS_ALG_ED25519 ? 32u : 65u));
        CHECK(ks_signer_public_key(s, KS_PUBKEY_PEM, &pem, E) == KS_OK);
        uint8_t sig[KS_MAX_SIGNATURE_LEN];
        size_t n = 0;
        if (CHECK(ks_signer_sign(s, msg, 3, sig, sizeof sig, &n, E) == KS_OK)) {
            CHECK(alg == KS_ALG_ED25519 ? n == 64 : (sig[0] == 0x30 && n <= KS_MAX_SIGNATURE_LEN));
            CHECK(ks_verify_signature(alg, raw.data, raw.len, msg, 3, sig, n, E) == KS_OK);
            CHECK(ks_verify_signature(alg, raw.data, raw.len, msg, 2, sig, n, E) == KS_ERR_AUTHENTICATION);
        }
        CHECK(ks_signer_sign(s, msg, 3, NULL, 0, &n, E) == KS_OK && n == KS_MAX_SIGNATURE_LEN);
        CHECK(ks_signer_sign(s, msg, 3, sig, 10, &n, E) == KS_ERR_BUFFER_TOO_SMALL && n == KS_MAX_SIGNATURE_LEN);
        ks_buffer ms = {0};
        if (alg == KS_ALG_ED25519) {
            CHECK(ks_signer_sign_digest(s, abc_sha256, 32, sig, sizeof sig, &n, E) == KS_ERR_UNSUPPORTED);
            CHECK(ks_signer_public_key(s, KS_PUBKEY_MINISIGN, &ms, E) == KS_OK && ms.len > 40);
        } else {
            /* A digest computed elsewhere: the signature of the message. */
            if (CHECK(ks_signer_sign_digest(s, abc_sha256, 32, sig, sizeof sig, &n, E) == KS_OK))
                CHECK(ks_verify_signature(alg, raw.data, raw.len, msg, 3, sig, n, E) == KS_OK);
            CHECK(ks_signer_sign_digest(s, abc_sha256, 31, sig, sizeof sig, &n, E) == KS_ERR_INVALID_INPUT);
            CHECK(ks_signer_public_key(s, KS_PUBKEY_MINISIGN, &ms, E) == KS_ERR_UNSUPPORTED);
        }
        ks_buffer_free(&ms);
        /* The key exists now: opened without the flag, it is the same
         * key; as another algorithm, refused. */
        if (CHECK(ks_signer_pkcs11_new(module, token, pin, NULL, label, alg, 0, &again, E) == KS_OK)) {
            ks_buffer raw2 = {0};
            CHECK(ks_signer_public_key(again, KS_PUBKEY_RAW, &raw2, E) == KS_OK && raw2.len == raw.len &&
                  memcmp(raw2.data, raw.data, raw.len) == 0);
            ks_buffer_free(&raw2);
        }
        ks_algorithm other = alg == KS_ALG_ECDSA_P256 ? KS_ALG_ED25519 : KS_ALG_ECDSA_P256;
        CHECK(ks_signer_pkcs11_new(module, token, pin, NULL, label, other, KS_ROOT_CREATE_KEY, &wrong, E) ==
              KS_ERR_UNSUPPORTED);
        CHECK(wrong == NULL);
        /* An official key of a trust file: the token's signature names it. */
        if (alg == KS_ALG_ECDSA_P256 && pem.len > 0) {
            snprintf(p256_label, sizeof p256_label, "%s", label);
            char b64[512], text[1024];
            pem_body(&pem, b64, sizeof b64);
            snprintf(text, sizeof text, "# token keys\nhsm-release official active ecdsa-p256 %s\n", b64);
            ks_trusted_keys *tk = NULL;
            ks_trust_result r = {0};
            if (CHECK(ks_trusted_keys_parse((const uint8_t *)text, strlen(text), &tk, E) == KS_OK) &&
                CHECK(ks_signer_sign(s, msg, 3, sig, sizeof sig, &n, E) == KS_OK) &&
                CHECK(ks_trusted_keys_verify(tk, msg, 3, sig, n, &r, E) == KS_OK)) {
                CHECK(strcmp(r.name, "hsm-release") == 0 && r.kind == KS_TRUST_OFFICIAL);
                ks_trust_result_clear(&r);
            }
            ks_trusted_keys_free(tk);
        }
        /* Closed: every call is unavailable; closing twice is fine. */
        CHECK(ks_signer_close(s, E) == KS_OK);
        CHECK(ks_signer_close(s, E) == KS_OK);
        CHECK(ks_signer_sign(s, msg, 3, sig, sizeof sig, &n, E) == KS_ERR_UNAVAILABLE);
        CHECK(ks_signer_algorithm(s, &got, E) == KS_ERR_UNAVAILABLE);
        CHECK(ks_signer_health_check(s, E) == KS_ERR_UNAVAILABLE);
        /* Another handle on the key is not closed with it. */
        if (again)
            CHECK(ks_signer_sign(again, msg, 3, sig, sizeof sig, &n, E) == KS_OK);
        ks_buffer_free(&raw);
        ks_buffer_free(&pem);
        ks_signer_free(s);
        ks_signer_free(again);
    }
    /* Errors, each of its documented kind; never the PIN in a message. */
    ks_signer *s = NULL;
    char missing[64];
    unique(missing, sizeof missing, "c-sign-missing");
    CHECK(ks_signer_pkcs11_new(module, token, pin, NULL, missing, KS_ALG_ED25519, 0, &s, E) == KS_ERR_UNKNOWN_KEY);
    if (p256_label[0]) {
        CHECK(ks_signer_pkcs11_new(module, token, "not-the-pin-0000", NULL, p256_label, KS_ALG_ECDSA_P256, 0, &s, E) ==
              KS_ERR_BACKEND);
        CHECK(strstr(last_msg(), "not-the-pin-0000") == NULL);
        setenv("KS_TEST_C_PIN", pin, 1);
        CHECK(ks_signer_pkcs11_new(module, token, NULL, "KS_TEST_C_PIN", p256_label, KS_ALG_ECDSA_P256, 0, &s, E) ==
              KS_OK);
        ks_signer_free(s);
        s = NULL;
        unsetenv("KS_TEST_C_PIN");
    }
    CHECK(ks_signer_pkcs11_new(module, "no-such-token", pin, NULL, missing, KS_ALG_ED25519, 0, &s, E) ==
          KS_ERR_UNAVAILABLE);
    CHECK(ks_signer_pkcs11_new(module, token, pin, NULL, missing, 9, KS_ROOT_CREATE_KEY, &s, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_signer_pkcs11_new(module, token, pin, NULL, missing, KS_ALG_ED25519, 0x80, &s, E) == KS_ERR_INVALID_INPUT);
    CHECK(s == NULL);
}

/* A KMIP server's settings from the KS_TEST_<PREFIX>_* variables. */
static const char *kenv(const char *prefix, const char *what)
{
    char name[64];
    snprintf(name, sizeof name, "KS_TEST_%s_%s", prefix, what);
    return env(name);
}

/* ks_root_kmip_new against one KMIP server: `prefix` names its variables
 * (KMIP: PyKMIP; COSMIAN: Cosmian KMS 5.0, which looks keys up by name
 * only in KMIP 2.0: in 1.4 that is KS_ERR_UNSUPPORTED, name them by id),
 * `port_var` its port's; `tf` is 0 (binary TTLV) or KS_KMIP_HTTPS_JSON. */
static void kmip_server(const char *prefix, const char *port_var, bool names_in_1_4, uint32_t tf)
{
    const char *host = kenv(prefix, "HOST");
    int port = atoi(kenv(prefix, port_var));
    const char *ca = kenv(prefix, "CA"), *cert = kenv(prefix, "CERT"), *key = kenv(prefix, "KEY");
    uint32_t v = names_in_1_4 ? 14 : 20;
    char name[64], name2[64];
    unique(name, sizeof name, "c-kmip-a");
    unique(name2, sizeof name2, "c-kmip-b");
    ks_root *root = NULL, *other = NULL, *r = NULL;
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, v, 3000, KS_ROOT_CREATE_KEY | tf, &root, E) == KS_OK);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name2, 20, 3000, KS_ROOT_CREATE_KEY | tf, &other, E) == KS_OK);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, names_in_1_4 ? 0 : 20, 0, tf, &r, E) == KS_OK);
    ks_root_free(r);
    r = NULL;
    if (root && other)
        save_load(root, other);
    char missing[64];
    unique(missing, sizeof missing, "c-kmip-missing");
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, missing, v, 3000, tf, &r, E) == KS_ERR_UNKNOWN_KEY);
    if (!names_in_1_4)
        CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, 14, 3000, tf, &r, E) == KS_ERR_UNSUPPORTED);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, "1", name, 14, 3000, tf, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, NULL, 14, 3000, tf, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, 13, 3000, tf, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, "/nonexistent/ca.pem", cert, key, NULL, name, v, 3000, tf, &r, E) == KS_ERR_IO);
    CHECK(ks_root_kmip_new(host, 1, NULL, ca, cert, key, NULL, name, v, 2000, tf, &r, E) == KS_ERR_UNAVAILABLE);
    CHECK(ks_root_kmip_new(NULL, (uint16_t)port, NULL, ca, cert, key, NULL, name, v, 3000, tf, &r, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, v, 3000, 4 | tf, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(r == NULL);
    ks_root_free(root);
    ks_root_free(other);
}

/* The key identifier and version in the header of a keychain saved under
 * a device root (docs/FORMAT.md 7.1: "KSWR" 0x01, BE16 provider length,
 * provider, BE16 key_id length, key_id, BE32 key_version); false if the
 * bytes are not such a header. */
static bool kswr_key(const ks_buffer *saved, char *id, size_t cap, uint32_t *version)
{
    const uint8_t *p = saved->data;
    size_t n = saved->len, at = 5;
    if (n < at + 2 || memcmp(p, "KSWR\x01", 5) != 0)
        return false;
    at += 2 + (size_t)(p[at] << 8 | p[at + 1]);
    if (n < at + 2)
        return false;
    size_t id_len = (size_t)(p[at] << 8 | p[at + 1]);
    at += 2;
    if (n < at + id_len + 4 || id_len + 1 > cap)
        return false;
    memcpy(id, p + at, id_len);
    id[id_len] = '\0';
    at += id_len;
    *version = (uint32_t)p[at] << 24 | (uint32_t)p[at + 1] << 16 | (uint32_t)p[at + 2] << 8 | p[at + 3];
    return true;
}

/* Whether `saved` loads through `root`. */
static bool loads(const ks_buffer *saved, const ks_root *root)
{
    ks_keychain *kc = NULL;
    ks_status st = ks_keychain_load(saved->data, saved->len, root, &kc, E);
    ks_keychain_free(kc);
    return st == KS_OK;
}

/* ks_root_rotate_key and ks_root_active_key_version against one KMIP
 * server in KMIP 2.0 (binary TTLV): root A makes a named key, a keychain
 * is saved under it, root B on the same name rotates to version 2, A takes
 * it up on its health check (no waiting for its refresh), and the keychain
 * saved before still loads through both. A root by identifier has version
 * 1 only and cannot rotate. */
static void kmip_rotation(const char *prefix)
{
    const char *host = kenv(prefix, "HOST");
    uint16_t port = (uint16_t)atoi(kenv(prefix, "PORT"));
    const char *ca = kenv(prefix, "CA"), *cert = kenv(prefix, "CERT"), *key = kenv(prefix, "KEY");
    char name[64];
    unique(name, sizeof name, "c-kmip-rot");
    ks_root *a = NULL, *b = NULL, *by_id = NULL;
    ks_keychain *kc = NULL;
    ks_buffer saved1 = {0}, saved2 = {0};
    uint32_t v = 0, hv = 0;
    char id1[128] = "", id2[128] = "";
    if (!CHECK(ks_root_kmip_new(host, port, NULL, ca, cert, key, NULL, name, 20, 5000, KS_ROOT_CREATE_KEY, &a, E) == KS_OK))
        goto out;
    CHECK(ks_root_active_key_version(a, &v, E) == KS_OK && v == 1);
    CHECK(ks_keychain_generate(NULL, &kc, E) == KS_OK);
    if (!CHECK(ks_keychain_save(kc, a, &saved1, E) == KS_OK))
        goto out;
    CHECK(kswr_key(&saved1, id1, sizeof id1, &hv) && hv == 1);

    if (!CHECK(ks_root_kmip_new(host, port, NULL, ca, cert, key, NULL, name, 20, 5000, 0, &b, E) == KS_OK))
        goto out;
    v = 0;
    CHECK(ks_root_rotate_key(b, &v, E) == KS_OK && v == 2);
    CHECK(ks_root_active_key_version(b, &v, E) == KS_OK && v == 2);
    CHECK(ks_root_health_check(a, E) == KS_OK);
    CHECK(ks_root_active_key_version(a, &v, E) == KS_OK && v == 2);
    /* A now wraps under version 2: another key, the version in the header. */
    CHECK(ks_keychain_save(kc, a, &saved2, E) == KS_OK);
    CHECK(kswr_key(&saved2, id2, sizeof id2, &hv) && hv == 2 && strcmp(id1, id2) != 0);
    CHECK(loads(&saved1, a));
    CHECK(loads(&saved1, b));
    CHECK(loads(&saved2, b));

    /* By identifier: version 1 only, no rotation, out left alone. */
    if (CHECK(ks_root_kmip_new(host, port, NULL, ca, cert, key, id1, NULL, 20, 5000, 0, &by_id, E) == KS_OK)) {
        CHECK(ks_root_active_key_version(by_id, &v, E) == KS_OK && v == 1);
        v = 77;
        CHECK(ks_root_rotate_key(by_id, &v, E) == KS_ERR_INVALID_INPUT && v == 77);
        CHECK(ks_root_active_key_version(by_id, &v, E) == KS_OK && v == 1);
        CHECK(loads(&saved1, by_id));
    }
    CHECK(ks_root_rotate_key(a, NULL, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(ks_root_active_key_version(a, NULL, E) == KS_ERR_NULL_ARGUMENT);
out:
    ks_buffer_free(&saved1);
    ks_buffer_free(&saved2);
    ks_keychain_free(kc);
    ks_root_free(a);
    ks_root_free(b);
    ks_root_free(by_id);
}

/* Roots other than KMIP: version 1, and ks_root_rotate_key refused. */
static void rotation_elsewhere(void)
{
    ks_root *age = NULL;
    uint32_t v = 0;
    CHECK(ks_root_age_generate(&age, E) == KS_OK);
    CHECK(ks_root_active_key_version(age, &v, E) == KS_OK && v == 1);
    v = 77;
    CHECK(ks_root_rotate_key(age, &v, E) == KS_ERR_INVALID_INPUT && v == 77);
    ks_root_free(age);
    CHECK(ks_root_active_key_version(NULL, &v, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(ks_root_rotate_key(NULL, &v, E) == KS_ERR_NULL_ARGUMENT && v == 77);
}

static void kmip(void)
{
    kmip_server("KMIP", "PORT", true, 0);
    kmip_server("COSMIAN", "PORT", false, 0);
    /* The same Cosmian server through its HTTPS JSON TTLV API. */
    kmip_server("COSMIAN", "HTTPS_PORT", false, KS_KMIP_HTTPS_JSON);
    kmip_rotation("KMIP");
    kmip_rotation("COSMIAN");
    rotation_elsewhere();
}

/* A new key in the moto server (scripts/peers/moto.sh key DIR SPEC),
 * its key ID to `out`; false (and a failed check) if it cannot be made. */
static bool moto(const char *what, const char *arg, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' %s '%s' '%s'", env("KS_TEST_AWS_CTL"), what, env("KS_TEST_AWS_DIR"), arg);
    FILE *p = popen(cmd, "r");
    if (!CHECK(p != NULL))
        return false;
    char line[256] = "";
    bool got = fgets(line, sizeof line, p) != NULL;
    int rc = pclose(p);
    line[strcspn(line, "\r\n")] = '\0';
    if (out != NULL)
        snprintf(out, cap, "%s", line);
    return CHECK(rc == 0 && (out == NULL || (got && line[0] != '\0')));
}

/* ks_root_aws_kms_new and ks_signer_aws_kms_new against moto's server,
 * with the fake credentials scripts/peers/moto.sh env exports. */
static void aws_kms(void)
{
    const char *endpoint = env("KS_TEST_AWS_ENDPOINT");
    const char *region = "us-east-1";
    char sym[128], sym2[128], p256[128], k1[128];
    if (!moto("key", "SYMMETRIC_DEFAULT", sym, sizeof sym) || !moto("key", "SYMMETRIC_DEFAULT", sym2, sizeof sym2) ||
        !moto("key", "ECC_NIST_P256", p256, sizeof p256) || !moto("key", "ECC_SECG_P256K1", k1, sizeof k1))
        return;

    /* The root: save and load through KMS; another KMS key refuses. */
    ks_root *root = NULL, *other = NULL, *r = NULL;
    CHECK(ks_root_aws_kms_new(sym, region, endpoint, NULL, 5000, &root, E) == KS_OK);
    CHECK(ks_root_aws_kms_new(sym2, region, endpoint, NULL, 0, &other, E) == KS_OK);
    if (root && other)
        save_load(root, other);
    /* Errors, each of its documented kind. */
    CHECK(ks_root_aws_kms_new("0b1c2d3e-0000-4000-8000-000000000000", region, endpoint, NULL, 5000, &r, E) ==
          KS_ERR_UNKNOWN_KEY);
    CHECK(ks_root_aws_kms_new(p256, region, endpoint, NULL, 5000, &r, E) == KS_ERR_UNSUPPORTED);
    CHECK(ks_root_aws_kms_new("", region, endpoint, NULL, 5000, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_aws_kms_new(sym, "", endpoint, NULL, 5000, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_aws_kms_new(sym, region, "http://user:secret-pw@127.0.0.1:1", NULL, 5000, &r, E) ==
          KS_ERR_INVALID_INPUT);
    CHECK(strstr(last_msg(), "secret-pw") == NULL);
    CHECK(ks_root_aws_kms_new(sym, region, "http://127.0.0.1:1", NULL, 2000, &r, E) == KS_ERR_UNAVAILABLE);
    CHECK(ks_root_aws_kms_new(NULL, region, endpoint, NULL, 5000, &r, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(ks_root_aws_kms_new(sym, region, endpoint, NULL, 5000, NULL, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(r == NULL);
    ks_root_free(root);
    ks_root_free(other);

    /* The signer, both key specs: signatures verify with the exported key,
     * a digest signs as its message, and a disabled key stops signing. */
    static const uint8_t msg[] = "official release 1.0";
    const char *keys[] = {p256, k1};
    const ks_algorithm algs[] = {KS_ALG_ECDSA_P256, KS_ALG_ECDSA_SECP256K1};
    for (size_t i = 0; i < 2; i++) {
        ks_signer *s = NULL;
        if (!CHECK(ks_signer_aws_kms_new(keys[i], region, endpoint, NULL, 5000, &s, E) == KS_OK))
            continue;
        ks_algorithm got = KS_ALG_NONE;
        CHECK(ks_signer_algorithm(s, &got, E) == KS_OK && got == algs[i]);
        CHECK(ks_signer_health_check(s, E) == KS_OK);
        ks_buffer raw = {0}, ms = {0};
        CHECK(ks_signer_public_key(s, KS_PUBKEY_RAW, &raw, E) == KS_OK && raw.len == 65);
        CHECK(ks_signer_public_key(s, KS_PUBKEY_MINISIGN, &ms, E) == KS_ERR_UNSUPPORTED);
        uint8_t sig[KS_MAX_SIGNATURE_LEN];
        size_t n = 0;
        if (CHECK(ks_signer_sign(s, msg, sizeof msg - 1, sig, sizeof sig, &n, E) == KS_OK)) {
            CHECK(sig[0] == 0x30);
            CHECK(ks_verify_signature(algs[i], raw.data, raw.len, msg, sizeof msg - 1, sig, n, E) == KS_OK);
            CHECK(ks_verify_signature(algs[i], raw.data, raw.len, msg, sizeof msg - 2, sig, n, E) ==
                  KS_ERR_AUTHENTICATION);
        }
        CHECK(ks_signer_sign_digest(s, msg, 31, sig, sizeof sig, &n, E) == KS_ERR_INVALID_INPUT);
        if (moto("disable-key", keys[i], NULL, 0)) {
            CHECK(ks_signer_sign(s, msg, sizeof msg - 1, sig, sizeof sig, &n, E) == KS_ERR_KEY_DISABLED);
            CHECK(ks_signer_health_check(s, E) == KS_ERR_KEY_DISABLED);
            ks_signer *again = NULL;
            CHECK(ks_signer_aws_kms_new(keys[i], region, endpoint, NULL, 5000, &again, E) == KS_ERR_KEY_DISABLED);
            CHECK(again == NULL);
        }
        CHECK(ks_signer_close(s, E) == KS_OK);
        CHECK(ks_signer_sign(s, msg, sizeof msg - 1, sig, sizeof sig, &n, E) == KS_ERR_UNAVAILABLE);
        ks_buffer_free(&raw);
        ks_buffer_free(&ms);
        ks_signer_free(s);
    }
    ks_signer *s = NULL;
    CHECK(ks_signer_aws_kms_new(sym, region, endpoint, NULL, 5000, &s, E) == KS_ERR_UNSUPPORTED);
    CHECK(ks_signer_aws_kms_new("alias/no-such-alias", region, endpoint, NULL, 5000, &s, E) == KS_ERR_UNKNOWN_KEY);
    CHECK(ks_signer_aws_kms_new(p256, region, "http://127.0.0.1:1", NULL, 2000, &s, E) == KS_ERR_UNAVAILABLE);
    CHECK(ks_signer_aws_kms_new(NULL, region, endpoint, NULL, 5000, &s, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(s == NULL);
}

int main(void)
{
    pkcs11();
    pkcs11_signer();
    kmip();
    aws_kms();
    printf("device-roots: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
