/*
 * A root of your own (ks_root_custom_new): a "KMS" written in C as
 * callbacks, here a second keychain standing in for the KMS client. What
 * is tested is the mapping: callbacks called with the documented
 * arguments, their statuses and messages carried back, the output-size
 * retry, userdata freed exactly once when the last reference goes, and
 * misbehaving callbacks turned into errors, never crashes. The rules
 * themselves (sizes, provider names) are the core's CustomRoot, tested in
 * Rust.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum kms_mode {
    KMS_OK,
    KMS_FAIL_UNAVAILABLE, /* every callback: KS_ERR_UNAVAILABLE with a message */
    KMS_FAIL_BARE,        /* KS_ERR_KEY_DISABLED, no error object */
    KMS_FAIL_WEIRD,       /* an unknown status number */
    KMS_SMALL_FIRST,      /* wrap: claim the first buffer is too small */
    KMS_OVERCLAIM,        /* wrap: *out_len beyond cap with KS_OK */
    KMS_NO_NUL,           /* wrap: key_id without NUL */
    KMS_VERSION0,         /* wrap and active_key_version: version 0 */
};

typedef struct {
    ks_keychain *kc; /* the "KMS" */
    enum kms_mode mode;
    atomic_int wraps, unwraps, health, frees;
    atomic_size_t first_cap;
    atomic_int bad_args; /* a callback saw an argument it should not have */
} kms;

static int kms_fail(kms *k, ks_error **err)
{
    switch (k->mode) {
    case KMS_FAIL_UNAVAILABLE:
        if (err)
            *err = ks_error_new(KS_ERR_UNAVAILABLE, "my-kms: endpoint unreachable");
        return KS_ERR_UNAVAILABLE;
    case KMS_FAIL_BARE:
        return KS_ERR_KEY_DISABLED;
    case KMS_FAIL_WEIRD:
        return 4242;
    default:
        return KS_OK;
    }
}

static int kms_wrap(void *ud, const uint8_t *key, size_t key_len, const uint8_t *ctx, size_t ctx_len, uint8_t *out,
                    size_t cap, size_t *out_len, char *key_id, size_t key_id_cap, uint32_t *key_version,
                    ks_error **err)
{
    kms *k = ud;
    int n = atomic_fetch_add(&k->wraps, 1);
    if (!key || key_len == 0 || (ctx_len && !ctx) || !out || !out_len || !key_id || !key_version || !err ||
        key_id_cap != KS_CUSTOM_KEY_ID_CAP)
        atomic_fetch_add(&k->bad_args, 1);
    int st = kms_fail(k, err);
    if (st != KS_OK)
        return st;
    ks_envelope env = {0};
    ks_status s = ks_keychain_wrap_key(k->kc, key, key_len, ctx, ctx_len, &env, NULL);
    if (s != KS_OK)
        return s;
    if (n == 0)
        atomic_store(&k->first_cap, cap);
    if ((k->mode == KMS_SMALL_FIRST && cap < 4096) || env.ciphertext_len > cap) {
        *out_len = k->mode == KMS_SMALL_FIRST ? 4096 : env.ciphertext_len;
        ks_envelope_clear(&env);
        if (err)
            *err = ks_error_new(KS_ERR_BUFFER_TOO_SMALL, "need more room");
        return KS_ERR_BUFFER_TOO_SMALL;
    }
    memcpy(out, env.ciphertext, env.ciphertext_len);
    *out_len = k->mode == KMS_OVERCLAIM ? cap + 1 : env.ciphertext_len;
    if (k->mode == KMS_NO_NUL)
        memset(key_id, 'k', key_id_cap);
    else
        snprintf(key_id, key_id_cap, "%s", env.key_id);
    *key_version = k->mode == KMS_VERSION0 ? 0 : env.key_version;
    ks_envelope_clear(&env);
    return KS_OK;
}

static int kms_unwrap(void *ud, const ks_envelope *env, const uint8_t *ctx, size_t ctx_len, uint8_t *out, size_t cap,
                      size_t *out_len, ks_error **err)
{
    kms *k = ud;
    atomic_fetch_add(&k->unwraps, 1);
    if (!env || !env->provider || strcmp(env->provider, "my-kms") != 0 || !env->key_id || !env->ciphertext ||
        (ctx_len && !ctx) || !out || cap != 4096 || !out_len || !err)
        atomic_fetch_add(&k->bad_args, 1);
    int st = kms_fail(k, err);
    if (st != KS_OK)
        return st;
    ks_envelope inner = *env;
    inner.provider = (char *)"keystrata";
    return ks_keychain_unwrap_key_to(k->kc, &inner, ctx, ctx_len, out, cap, out_len, err);
}

static int kms_version(void *ud, uint32_t *out, ks_error **err)
{
    kms *k = ud;
    int st = kms_fail(k, err);
    if (st != KS_OK)
        return st;
    *out = k->mode == KMS_VERSION0 ? 0 : 7;
    return KS_OK;
}

static int kms_health(void *ud, ks_error **err)
{
    kms *k = ud;
    atomic_fetch_add(&k->health, 1);
    return kms_fail(k, err);
}

static void kms_free(void *ud)
{
    kms *k = ud;
    atomic_fetch_add(&k->frees, 1);
}

static const ks_custom_root_callbacks CALLBACKS = {
    .wrap_key = kms_wrap,
    .unwrap_key = kms_unwrap,
    .active_key_version = kms_version,
    .health_check = kms_health,
    .free_userdata = kms_free,
};

static bool kms_init(kms *k, enum kms_mode mode)
{
    memset(k, 0, sizeof *k);
    k->mode = mode;
    return OK(ks_keychain_generate(NULL, &k->kc, E));
}

static void group_custom_root_round_trip(void)
{
    group_begin("custom root: keychains saved and loaded through C callbacks");
    kms k;
    if (!kms_init(&k, KMS_OK)) {
        group_end(NULL);
        return;
    }
    ks_root *root = NULL;
    ks_keychain *kc = NULL, *back = NULL;
    ks_buffer saved = {0}, sealed = {0}, opened = {0};
    if (OK(ks_root_custom_new("my-kms", &CALLBACKS, &k, &root, E)) && OK(ks_keychain_generate(NULL, &kc, E))) {
        OK(ks_keychain_seal(kc, (const uint8_t *)"hello", 5, NULL, 0, &sealed, E));
        if (OK(ks_keychain_save(kc, root, &saved, E))) {
            CHECK(saved.len > 4 && memcmp(saved.data, "KSWR", 4) == 0);
            CHECK(atomic_load(&k.wraps) == 1);
            /* The first offer has room for the key and some overhead. */
            CHECK(atomic_load(&k.first_cap) >= 32 + 1024);
            if (OK(ks_keychain_load(saved.data, saved.len, root, &back, E))) {
                CHECK(atomic_load(&k.unwraps) == 1);
                if (OK(ks_keychain_unseal(back, sealed.data, sealed.len, NULL, 0, &opened, E)))
                    CHECK(buf_eq(opened, (const uint8_t *)"hello", 5));
            }
            /* A tampered file fails authentication (the callback's own
             * status, carried back). */
            saved.data[saved.len - 1] ^= 1;
            ks_keychain *x = SENT;
            EXPECT(ks_keychain_load(saved.data, saved.len, root, &x, E), KS_ERR_AUTHENTICATION);
            CHECK(x == SENT);
        }
        OK(ks_root_health_check(root, E));
        CHECK(atomic_load(&k.health) == 1);
    }
    CHECK(atomic_load(&k.bad_args) == 0);
    /* userdata lives while a keychain opened with the root does. */
    char path[512];
    snprintf(path, sizeof path, "%s/custom.kc", g_tmpdir);
    ks_keychain *bound = NULL;
    if (root && OK(ks_keychain_open(path, root, NULL, &bound, E))) {
        ks_root_free(root);
        root = NULL;
        CHECK(atomic_load(&k.frees) == 0);
        ks_key_info ki;
        OK(ks_keychain_rotate(bound, &ki, E));
        ks_keychain_free(bound);
    }
    ks_root_free(root);
    CHECK(atomic_load(&k.frees) == 1);
    ks_buffer_free(&saved);
    ks_buffer_free(&sealed);
    ks_buffer_free(&opened);
    ks_keychain_free(kc);
    ks_keychain_free(back);
    ks_keychain_free(k.kc);
    group_end(NULL);
}

/* Saves a fresh keychain under a root over `mode`; returns the status. */
static ks_status save_under(enum kms_mode mode, kms *k)
{
    if (!kms_init(k, mode))
        return KS_ERR_INTERNAL;
    ks_root *root = NULL;
    ks_keychain *kc = NULL;
    ks_buffer saved = {0};
    ks_status st = KS_ERR_INTERNAL;
    if (OK(ks_root_custom_new("my-kms", &CALLBACKS, k, &root, E)) && OK(ks_keychain_generate(NULL, &kc, E)))
        st = ks_keychain_save(kc, root, &saved, E);
    if (st != KS_OK && h_err) {
        snprintf(h_msg, sizeof h_msg, "%s", ks_error_message(h_err));
    }
    ks_error_free(h_err);
    h_err = NULL;
    ks_buffer_free(&saved);
    ks_keychain_free(kc);
    ks_root_free(root);
    ks_keychain_free(k->kc);
    CHECK(atomic_load(&k->frees) == 1);
    return st;
}

static void group_custom_root_misbehaving(void)
{
    group_begin("custom root: callback errors and broken callbacks");
    kms k;
    /* The callback's status and message come back, with the root named. */
    CHECK(save_under(KMS_FAIL_UNAVAILABLE, &k) == KS_ERR_UNAVAILABLE);
    CHECK(strstr(h_msg, "endpoint unreachable") != NULL);
    CHECK(strstr(h_msg, "my-kms") != NULL);
    CHECK(save_under(KMS_FAIL_BARE, &k) == KS_ERR_KEY_DISABLED);
    CHECK(strstr(h_msg, "KS_ERR_KEY_DISABLED") != NULL);
    CHECK(save_under(KMS_FAIL_WEIRD, &k) == KS_ERR_BACKEND);
    /* Too small once: called again with the room it asked for. */
    CHECK(save_under(KMS_SMALL_FIRST, &k) == KS_OK);
    CHECK(atomic_load(&k.wraps) == 2);
    /* Broken outputs are errors, never reads past a buffer. */
    CHECK(save_under(KMS_OVERCLAIM, &k) == KS_ERR_BACKEND);
    CHECK(save_under(KMS_NO_NUL, &k) == KS_ERR_BACKEND);
    CHECK(save_under(KMS_VERSION0, &k) == KS_ERR_BACKEND);
    CHECK(atomic_load(&k.bad_args) == 0);

    /* Health checks carry the status too. */
    if (kms_init(&k, KMS_FAIL_UNAVAILABLE)) {
        ks_root *root = NULL;
        if (OK(ks_root_custom_new("my-kms", &CALLBACKS, &k, &root, E)))
            EXPECT(ks_root_health_check(root, E), KS_ERR_UNAVAILABLE);
        ks_root_free(root);
        ks_keychain_free(k.kc);
    }
    group_end(NULL);
}

static void group_custom_root_hostile(void)
{
    group_begin("custom root: hostile arguments");
    kms k;
    memset(&k, 0, sizeof k);
    ks_root *out = SENT;
    ks_custom_root_callbacks cb = CALLBACKS;
    EXPECT(ks_root_custom_new(NULL, &cb, &k, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_custom_new("my-kms", NULL, &k, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_custom_new("my-kms", &cb, &k, NULL, E), KS_ERR_NULL_ARGUMENT);
    cb.wrap_key = NULL;
    EXPECT(ks_root_custom_new("my-kms", &cb, &k, &out, E), KS_ERR_NULL_ARGUMENT);
    cb = CALLBACKS;
    cb.unwrap_key = NULL;
    EXPECT(ks_root_custom_new("my-kms", &cb, &k, &out, E), KS_ERR_NULL_ARGUMENT);
    cb = CALLBACKS;
    const char *bad[] = {"", "My-KMS", "has space", "keystrata", "kmip", "age",
                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(ks_root_custom_new(bad[i], &cb, &k, &out, E), KS_ERR_INVALID_INPUT);
    CHECK(out == SENT);
    /* A failed constructor leaves userdata to the caller. */
    CHECK(atomic_load(&k.frees) == 0);
    /* Optional callbacks may be NULL; no userdata is fine. */
    ks_custom_root_callbacks minimal = {.wrap_key = kms_wrap, .unwrap_key = kms_unwrap};
    ks_root *r = NULL;
    if (kms_init(&k, KMS_OK) && OK(ks_root_custom_new("minimal.kms_1", &minimal, &k, &r, E))) {
        OK(ks_root_health_check(r, E));
        ks_root_free(r);
        CHECK(atomic_load(&k.frees) == 0);
    }
    ks_keychain_free(k.kc);

    /* ks_error_new */
    CHECK(ks_error_new(KS_OK, "x") == NULL);
    ks_error *e = ks_error_new(KS_ERR_POLICY, NULL);
    CHECK(e && ks_error_status(e) == KS_ERR_POLICY && strcmp(ks_error_message(e), "") == 0);
    ks_error_free(e);
    e = ks_error_new(777, "odd");
    CHECK(e && ks_error_status(e) == KS_ERR_INTERNAL && strcmp(ks_error_message(e), "odd") == 0);
    ks_error_free(e);
    group_end(NULL);
}

void run_custom_root(void)
{
    group_custom_root_round_trip();
    group_custom_root_misbehaving();
    group_custom_root_hostile();
}
