/*
 * ks_root_pkcs11_new and ks_root_kmip_new against the real peers: a
 * SoftHSM2 token and a PyKMIP server on loopback, started by
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

static void kmip(void)
{
    const char *host = env("KS_TEST_KMIP_HOST");
    int port = atoi(env("KS_TEST_KMIP_PORT"));
    const char *ca = env("KS_TEST_KMIP_CA"), *cert = env("KS_TEST_KMIP_CERT"), *key = env("KS_TEST_KMIP_KEY");
    char name[64], name2[64];
    unique(name, sizeof name, "c-kmip-a");
    unique(name2, sizeof name2, "c-kmip-b");
    ks_root *root = NULL, *other = NULL, *r = NULL;
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, 14, 3000, KS_ROOT_CREATE_KEY, &root, E) == KS_OK);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name2, 20, 3000, KS_ROOT_CREATE_KEY, &other, E) == KS_OK);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, 0, 0, 0, &r, E) == KS_OK);
    ks_root_free(r);
    r = NULL;
    if (root && other)
        save_load(root, other);
    char missing[64];
    unique(missing, sizeof missing, "c-kmip-missing");
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, missing, 14, 3000, 0, &r, E) == KS_ERR_UNKNOWN_KEY);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, "1", name, 14, 3000, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, NULL, 14, 3000, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, ca, cert, key, NULL, name, 13, 3000, 0, &r, E) == KS_ERR_INVALID_INPUT);
    CHECK(ks_root_kmip_new(host, (uint16_t)port, NULL, "/nonexistent/ca.pem", cert, key, NULL, name, 14, 3000, 0, &r, E) == KS_ERR_IO);
    CHECK(ks_root_kmip_new(host, 1, NULL, ca, cert, key, NULL, name, 14, 2000, 0, &r, E) == KS_ERR_UNAVAILABLE);
    CHECK(ks_root_kmip_new(NULL, (uint16_t)port, NULL, ca, cert, key, NULL, name, 14, 3000, 0, &r, E) == KS_ERR_NULL_ARGUMENT);
    CHECK(r == NULL);
    ks_root_free(root);
    ks_root_free(other);
}

int main(void)
{
    pkcs11();
    kmip();
    printf("device-roots: %d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
