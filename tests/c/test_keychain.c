/*
 * The keychain and its roots: construction, loading and saving, roots,
 * state queries and the lifecycle with hostile arguments; the lifecycle
 * and events; policy and counters; files and bound keychains; the Tink
 * round trip; close.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void group_keychain_hostile(void)
{
    group_begin("keychain: hostile");
    const size_t HUGE = (size_t)-1;
    const uint8_t small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ks_keychain *kc = NULL;
    ks_root *root = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E)) || !OK(ks_root_age_generate(&root, E))) {
        ks_keychain_free(kc);
        group_end(NULL);
        return;
    }
    ks_buffer out = sent_buf();
    ks_keychain *kout = SENT;
    ks_root *rout = SENT;
    ks_buffer sealed = {NULL, 0};
    OK(ks_keychain_seal(kc, (const uint8_t *)"secret", 6, (const uint8_t *)"aad", 3, &sealed, E));

    /* --- construction, roots, files --- */
    {
        ks_policy bad = ks_policy_default();
        bad.max_encryptions_per_key = 0;
        EXPECT(ks_keychain_generate(NULL, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_generate(&bad, &kout, E), KS_ERR_INVALID_INPUT);
        bad = ks_policy_default();
        bad.usage_block = 0;
        EXPECT(ks_keychain_generate(&bad, &kout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_load(small, 8, NULL, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load(NULL, 8, root, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load(small, 8, root, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load(small, 8, root, &kout, E), KS_ERR_FORMAT);
        EXPECT(ks_keychain_load(small, HUGE, root, &kout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_save(NULL, root, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save(kc, NULL, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save(kc, root, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(NULL, "/tmp/x", root, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(kc, NULL, root, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(kc, "/tmp/x", NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_save_file(kc, "/nonexistent-dir-ks/kc.age", root, E), KS_ERR_IO);
        EXPECT(ks_keychain_save_file(kc, "\xff\xfe", root, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_load_file(NULL, root, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load_file("/tmp/x", NULL, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load_file("/tmp/x", root, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_load_file("/nonexistent-dir-ks/kc.age", root, &kout, E), KS_ERR_IO);
        EXPECT(ks_keychain_open(NULL, root, NULL, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_open("/tmp/x", NULL, NULL, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_open("/tmp/x", root, NULL, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_open("/nonexistent-dir-ks/kc.age", root, NULL, &kout, E), KS_ERR_IO);
        EXPECT(ks_keychain_import_tink_cleartext(NULL, 5, &kout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_import_tink_cleartext(small, 8, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_import_tink_cleartext(small, HUGE, &kout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_import_tink_cleartext(NULL, 0, &kout, E), KS_ERR_FORMAT);
        EXPECT(ks_keychain_insecure_export_tink_cleartext(NULL, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_insecure_export_tink_cleartext(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        /* The deprecated name is the same call. */
        EXPECT(ks_keychain_export_tink_cleartext(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        CHECK(kout == SENT);
        CHECK(buf_untouched(out));

        const char *id = "AGE-SECRET-KEY-1garbage";
        const char *nul = NULL;
        EXPECT(ks_root_age_new(NULL, 0, NULL, 0, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(NULL, 1, NULL, 0, &rout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(NULL, 0, NULL, 1, &rout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(&nul, 1, NULL, 0, &rout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(NULL, 0, &nul, 1, &rout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(&id, 1, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_new(&id, 1, NULL, 0, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(NULL, 0, &id, 1, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(&id, HUGE, NULL, 0, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_new(NULL, 0, &id, HUGE, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_generate(NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_passphrase_new(NULL, 0, 10, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new(NULL, 4, 10, &rout, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_passphrase_new(small, 4, 10, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_passphrase_new((const uint8_t *)"pass", 4, 31, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new((const uint8_t *)"pass", 4, 255, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new((const uint8_t *)"\xff\xfe", 2, 10, &rout, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_passphrase_new(small, HUGE, 10, &rout, E), KS_ERR_INVALID_INPUT);
        CHECK(rout == SENT);
        EXPECT(ks_root_age_identity(NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_identity(root, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_identity(root, 1, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_identity(root, HUGE, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_root_age_recipient(NULL, 0, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_recipient(root, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_root_age_recipient(root, HUGE, &out, E), KS_ERR_INVALID_INPUT);
        ks_root *pr = NULL;
        if (OK(ks_root_passphrase_new((const uint8_t *)"pass", 4, 2, &pr, E))) {
            EXPECT(ks_root_age_identity(pr, 0, &out, E), KS_ERR_INVALID_INPUT);
            EXPECT(ks_root_age_recipient(pr, 0, &out, E), KS_ERR_INVALID_INPUT);
        }
        ks_root_free(pr);
        CHECK(buf_untouched(out));
        /* An age root rebuilt from the identity string opens what the generated one saved. */
        ks_buffer ident = sent_buf(), saved = sent_buf();
        if (OK(ks_root_age_identity(root, 0, &ident, E)) && OK(ks_keychain_save(kc, root, &saved, E))) {
            CHECK(ident.len > 16 && memcmp(ident.data, "AGE-SECRET-KEY-1", 16) == 0);
            char *s = calloc(ident.len + 1, 1);
            memcpy(s, ident.data, ident.len);
            const char *ids[1] = {s};
            ks_root *r2 = NULL;
            ks_keychain *k2 = NULL;
            if (OK(ks_root_age_new(ids, 1, NULL, 0, &r2, E)) && OK(ks_keychain_load(saved.data, saved.len, r2, &k2, E))) {
                ks_buffer o = sent_buf();
                if (OK(ks_keychain_unseal(k2, sealed.data, sealed.len, (const uint8_t *)"aad", 3, &o, E)))
                    CHECK(buf_eq(o, (const uint8_t *)"secret", 6));
                ks_buffer_free(&o);
            }
            ks_keychain_free(k2);
            ks_root_free(r2);
            memset(s, 0, ident.len);
            free(s);
            /* A recipient-only root saves but cannot load. */
            ks_buffer rec = sent_buf();
            if (OK(ks_root_age_recipient(root, 0, &rec, E))) {
                char *rs = calloc(rec.len + 1, 1);
                memcpy(rs, rec.data, rec.len);
                const char *recs[1] = {rs};
                ks_root *ro = NULL;
                if (OK(ks_root_age_new(NULL, 0, recs, 1, &ro, E))) {
                    ks_buffer s3 = sent_buf();
                    if (OK(ks_keychain_save(kc, ro, &s3, E))) {
                        ks_keychain *k3 = SENT;
                        CHECK(ks_keychain_load(s3.data, s3.len, ro, &k3, NULL) != KS_OK);
                        CHECK(k3 == SENT);
                        if (OK(ks_keychain_load(s3.data, s3.len, root, &k3, E)))
                            ks_keychain_free(k3);
                    }
                    ks_buffer_free(&s3);
                }
                ks_root_free(ro);
                free(rs);
            }
            ks_buffer_free(&rec);
        }
        ks_buffer_free(&ident);
        ks_buffer_free(&saved);
    }

    /* --- state queries and lifecycle with NULL / unknown keys / bad indexes --- */
    {
        uint32_t u32 = 77;
        size_t count = 77;
        bool b = true;
        ks_key_info info;
        memset(&info, 0xAB, sizeof info);
        ks_key_info before = info;
        ks_policy pol = {1, 2, 3};
        ks_counters ctr;
        uint64_t sub = 77;
        EXPECT(ks_keychain_close(NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_health_check(NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_active_key_version(NULL, &u32, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_active_key_version(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_is_bound(NULL, &b, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_is_bound(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_rotate(NULL, &info, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_rotate_derivation(NULL, &info, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_add_key(NULL, 1, &info, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_add_key(kc, 0, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_add_key(kc, 3, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_add_key(kc, UINT32_MAX, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_promote(NULL, 1, &info, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_promote(kc, 12345, &info, E), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_disable(NULL, 1, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_disable(kc, 12345, E), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_enable(NULL, 1, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_enable(kc, 12345, E), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_destroy(NULL, 1, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_destroy(kc, 12345, E), KS_ERR_UNKNOWN_KEY);
        EXPECT(ks_keychain_key_count(NULL, &count, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_count(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_info(NULL, 0, &info, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_info(kc, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_key_info(kc, 2, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_key_info(kc, HUGE, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_keys(NULL, &info, 1, &count, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_keys(kc, &info, 1, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_primary(NULL, 1, &info, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_primary(kc, 1, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_primary(kc, 0, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_primary(kc, 5, &info, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_primary(kc, KS_PURPOSE_STREAM, &info, E), KS_ERR_UNKNOWN_KEY); /* no stream key yet */
        EXPECT(ks_keychain_primary(kc, KS_PURPOSE_SIGN, &info, E), KS_ERR_UNKNOWN_KEY); /* no signing key yet */
        EXPECT(ks_keychain_get_policy(NULL, &pol, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_get_policy(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_set_policy(NULL, &pol, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_set_policy(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        pol = ks_policy_default();
        pol.max_encryptions_per_key = 0;
        EXPECT(ks_keychain_set_policy(kc, &pol, E), KS_ERR_INVALID_INPUT);
        pol.max_encryptions_per_key = (1ULL << 32) + 1;
        EXPECT(ks_keychain_set_policy(kc, &pol, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_keychain_counters(NULL, &ctr, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_counters(kc, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_subscribe(NULL, noop_cb, NULL, &sub, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_subscribe(kc, NULL, NULL, &sub, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_subscribe(kc, noop_cb, NULL, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_unsubscribe(NULL, 1, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_keychain_unsubscribe(kc, 987654321, E), KS_ERR_INVALID_INPUT);
        CHECK(u32 == 77 && count == 77 && b == true && sub == 77);
        CHECK(memcmp(&info, &before, sizeof info) == 0);
        /* Out-params that may be NULL. */
        OK(ks_keychain_add_key(kc, KS_PURPOSE_DERIVE, NULL, E));
        OK(ks_keychain_rotate(kc, NULL, E));
        OK(ks_keychain_rotate_derivation(kc, NULL, E));
        OK(ks_keychain_key_count(kc, &count, E));
        CHECK(count == 5);
    }

    ks_buffer_free(&sealed);
    ks_root_free(root);
    ks_keychain_free(kc);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */
/* ------------------------------------------------------------------ */

static void group_lifecycle(void)
{
    group_begin("lifecycle");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub, E));

    size_t count = 0;
    OK(ks_keychain_key_count(kc, &count, E));
    CHECK(count == 2);
    ks_key_info e1, d1;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &e1, E));
    OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &d1, E));
    CHECK(e1.version == 1 && e1.primary && e1.purpose == KS_PURPOSE_ENCRYPT && e1.status == KS_KEY_ENABLED);
    CHECK(d1.version == 1 && d1.primary && d1.purpose == KS_PURPOSE_DERIVE && d1.status == KS_KEY_ENABLED);
    CHECK(e1.key_id != d1.key_id && e1.key_id != 0 && e1.created_at > 1600000000ULL);
    bool bound = true;
    OK(ks_keychain_is_bound(kc, &bound, E));
    CHECK(!bound);
    OK(ks_keychain_health_check(kc, E));

    const uint8_t *aad = (const uint8_t *)"lifecycle";
    ks_buffer s1 = sent_buf(), x1 = sent_buf(), o = sent_buf();
    ks_envelope w1;
    uint8_t dek[32];
    memset(dek, 7, sizeof dek);
    OK(ks_keychain_seal(kc, (const uint8_t *)"one", 3, aad, 9, &s1, E));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"doc one", 7, aad, 9, &x1, E));
    OK(ks_keychain_wrap_key(kc, dek, 32, aad, 9, &w1, E));
    CHECK(sealed_key_id(s1) == e1.key_id);
    ks_buffer od1 = sent_buf();
    OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0, &od1, E));

    /* rotate */
    ks_key_info e2;
    memset(&e2, 0, sizeof e2);
    OK(ks_keychain_rotate(kc, &e2, E));
    CHECK(e2.version == 2 && e2.primary && e2.purpose == KS_PURPOSE_ENCRYPT && e2.status == KS_KEY_ENABLED);
    CHECK(e2.key_id != e1.key_id && e2.usage == 0);
    uint32_t v = 0;
    OK(ks_keychain_active_key_version(kc, &v, E));
    CHECK(v == 2);
    ks_event ev;
    CHECK(ev_count(&rec, KS_EVENT_KEY_ROTATED) == 1);
    if (CHECK(ev_last(&rec, KS_EVENT_KEY_ROTATED, &ev)))
        CHECK(ev.key_id == e2.key_id && ev.key_version == 2 && ev.purpose == KS_PURPOSE_ENCRYPT && !ev.automatic &&
              ev.error == KS_OK);
    ks_buffer s2 = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"two", 3, aad, 9, &s2, E));
    CHECK(sealed_key_id(s2) == e2.key_id);
    if (OK(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o, E)))
        CHECK(buf_eq(o, (const uint8_t *)"one", 3));
    ks_buffer_free(&o);
    o = sent_buf();
    if (OK(ks_keychain_decrypt(kc, x1.data, x1.len, aad, 9, &o, E)))
        CHECK(buf_eq(o, (const uint8_t *)"doc one", 7));
    ks_buffer_free(&o);
    o = sent_buf();
    if (OK(ks_keychain_unwrap_key(kc, &w1, aad, 9, &o, E)))
        CHECK(buf_eq(o, dek, 32));
    ks_buffer_free(&o);
    /* Rotation leaves derived keys alone. */
    ks_buffer od2 = sent_buf();
    if (OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0, &od2, E)))
        CHECK(buf_eq(od2, od1.data, od1.len));
    ks_buffer_free(&od2);

    /* add_key + promote: two-phase rotation */
    ks_key_info e3, p3;
    OK(ks_keychain_add_key(kc, KS_PURPOSE_ENCRYPT, &e3, E));
    CHECK(e3.version == 3 && !e3.primary && e3.status == KS_KEY_ENABLED);
    CHECK(ev_count(&rec, KS_EVENT_KEY_CREATED) >= 1);
    ks_buffer s3 = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"x", 1, NULL, 0, &s3, E));
    CHECK(sealed_key_id(s3) == e2.key_id);
    ks_buffer_free(&s3);
    OK(ks_keychain_promote(kc, e3.key_id, &p3, E));
    CHECK(p3.key_id == e3.key_id && p3.primary);
    CHECK(ev_count(&rec, KS_EVENT_KEY_PROMOTED) == 1);
    s3 = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"x", 1, NULL, 0, &s3, E));
    CHECK(sealed_key_id(s3) == e3.key_id);
    ks_buffer_free(&s3);
    OK(ks_keychain_active_key_version(kc, &v, E));
    CHECK(v == 3);

    /* disable / enable: a ciphertext under a disabled key */
    OK(ks_keychain_disable(kc, e1.key_id, E));
    CHECK(ev_count(&rec, KS_EVENT_KEY_DISABLED) == 1);
    o = sent_buf();
    EXPECT(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o, E), KS_ERR_KEY_DISABLED);
    EXPECT(ks_keychain_decrypt(kc, x1.data, x1.len, aad, 9, &o, E), KS_ERR_KEY_DISABLED);
    EXPECT(ks_keychain_unwrap_key(kc, &w1, aad, 9, &o, E), KS_ERR_KEY_DISABLED);
    CHECK(buf_untouched(o));
    ks_key_info ki;
    OK(ks_keychain_key_info(kc, 0, &ki, E));
    CHECK(ki.key_id == e1.key_id && ki.status == KS_KEY_DISABLED);
    EXPECT(ks_keychain_promote(kc, e1.key_id, NULL, E), KS_ERR_POLICY);
    OK(ks_keychain_enable(kc, e1.key_id, E));
    CHECK(ev_count(&rec, KS_EVENT_KEY_ENABLED) == 1);
    if (OK(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o, E)))
        CHECK(buf_eq(o, (const uint8_t *)"one", 3));
    ks_buffer_free(&o);
    /* The primary can be neither disabled nor destroyed. */
    EXPECT(ks_keychain_disable(kc, e3.key_id, E), KS_ERR_POLICY);
    EXPECT(ks_keychain_destroy(kc, e3.key_id, E), KS_ERR_POLICY);
    EXPECT(ks_keychain_disable(kc, d1.key_id, E), KS_ERR_POLICY);

    /* destroy: a ciphertext after its key was destroyed */
    OK(ks_keychain_destroy(kc, e1.key_id, E));
    CHECK(ev_count(&rec, KS_EVENT_KEY_DESTROYED) == 1);
    o = sent_buf();
    EXPECT(ks_keychain_unseal(kc, s1.data, s1.len, aad, 9, &o, E), KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_decrypt(kc, x1.data, x1.len, aad, 9, &o, E), KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_unwrap_key(kc, &w1, aad, 9, &o, E), KS_ERR_KEY_DESTROYED);
    CHECK(buf_untouched(o));
    OK(ks_keychain_destroy(kc, e1.key_id, E)); /* idempotent */
    EXPECT(ks_keychain_enable(kc, e1.key_id, E), KS_ERR_POLICY);
    EXPECT(ks_keychain_disable(kc, e1.key_id, E), KS_ERR_POLICY);
    EXPECT(ks_keychain_promote(kc, e1.key_id, NULL, E), KS_ERR_POLICY);
    OK(ks_keychain_key_info(kc, 0, &ki, E));
    CHECK(ki.status == KS_KEY_DESTROYED);
    /* A failed decryption is an event carrying its status. */
    if (CHECK(ev_last(&rec, KS_EVENT_DECRYPT_FAILED, &ev)))
        CHECK(ev.error == KS_ERR_KEY_DESTROYED);
    EXPECT(ks_keychain_unseal(kc, s2.data, s2.len, NULL, 0, &o, E), KS_ERR_AUTHENTICATION);
    if (CHECK(ev_last(&rec, KS_EVENT_DECRYPT_FAILED, &ev)))
        CHECK(ev.error == KS_ERR_AUTHENTICATION && ev.key_id == e2.key_id);

    /* listing */
    ks_key_info infos[8];
    memset(infos, 0xAB, sizeof infos);
    ks_key_info pattern[8];
    memcpy(pattern, infos, sizeof infos);
    count = 0;
    EXPECT(ks_keychain_keys(kc, infos, 2, &count, E), KS_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 4);
    CHECK(memcmp(infos, pattern, sizeof infos) == 0);
    count = 0;
    /* out NULL asks for the count alone, whatever cap says. */
    count = 0;
    OK(ks_keychain_keys(kc, NULL, 0, &count, E));
    CHECK(count == 4);
    count = 0;
    OK(ks_keychain_keys(kc, NULL, 4, &count, E));
    CHECK(count == 4);
    count = 0;
    EXPECT(ks_keychain_keys(kc, infos, 0, &count, E), KS_ERR_BUFFER_TOO_SMALL);
    CHECK(count == 4 && memcmp(infos, pattern, sizeof infos) == 0);
    EXPECT(ks_keychain_keys(kc, infos, (size_t)-1, &count, E), KS_ERR_INVALID_INPUT);
    count = 0;
    if (OK(ks_keychain_keys(kc, infos, 4, &count, E)) && CHECK(count == 4)) {
        CHECK(infos[0].key_id == e1.key_id && infos[0].status == KS_KEY_DESTROYED);
        CHECK(infos[1].key_id == d1.key_id && infos[1].primary);
        CHECK(infos[2].key_id == e2.key_id && !infos[2].primary && infos[2].usage >= 1);
        CHECK(infos[3].key_id == e3.key_id && infos[3].primary);
        for (size_t i = 0; i < 4; i++) {
            OK(ks_keychain_key_info(kc, i, &ki, E));
            CHECK(ki.key_id == infos[i].key_id && ki.version == infos[i].version && ki.status == infos[i].status &&
                  ki.primary == infos[i].primary && ki.purpose == infos[i].purpose);
        }
        CHECK(memcmp(&infos[4], &pattern[4], sizeof(ks_key_info) * 4) == 0);
    }
    count = 0;
    OK(ks_keychain_keys(kc, infos, 8, &count, E));
    CHECK(count == 4);
    EXPECT(ks_keychain_key_info(kc, 4, &ki, E), KS_ERR_INVALID_INPUT);

    /* derivation keys: rotate_derivation changes derived keys; the old key by ID does not */
    ks_key_info d2;
    OK(ks_keychain_rotate_derivation(kc, &d2, E));
    CHECK(d2.purpose == KS_PURPOSE_DERIVE && d2.version == 2 && d2.primary);
    ks_buffer od3 = sent_buf(), od4 = sent_buf();
    if (OK(ks_keychain_derive_origin_key(kc, 0, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0, &od3, E)))
        CHECK(od3.len == 32 && !buf_eq(od3, od1.data, od1.len));
    if (OK(ks_keychain_derive_origin_key(kc, d1.key_id, (const uint8_t *)"https://a", 9, (const uint8_t *)"i", 1, 0,
                                         &od4, E)))
        CHECK(buf_eq(od4, od1.data, od1.len));
    ks_buffer_free(&od3);
    ks_buffer_free(&od4);
    EXPECT(ks_keychain_derive(kc, e3.key_id, NULL, 0, 32, &o, E), KS_ERR_UNKNOWN_KEY);
    OK(ks_keychain_disable(kc, d1.key_id, E));
    EXPECT(ks_keychain_derive(kc, d1.key_id, NULL, 0, 32, &o, E), KS_ERR_KEY_DISABLED);
    EXPECT(ks_keychain_derive_origin_key(kc, d1.key_id, NULL, 0, NULL, 0, 0, &o, E), KS_ERR_KEY_DISABLED);
    OK(ks_keychain_destroy(kc, d1.key_id, E));
    EXPECT(ks_keychain_derive(kc, d1.key_id, NULL, 0, 32, &o, E), KS_ERR_KEY_DESTROYED);
    CHECK(buf_untouched(o));
    ks_key_info d3;
    OK(ks_keychain_add_key(kc, KS_PURPOSE_DERIVE, &d3, E));
    CHECK(!d3.primary && d3.purpose == KS_PURPOSE_DERIVE);
    OK(ks_keychain_promote(kc, d3.key_id, NULL, E));
    OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &ki, E));
    CHECK(ki.key_id == d3.key_id);

    /* unsubscribe: no more events */
    OK(ks_keychain_unsubscribe(kc, sub, E));
    int before = rec.total;
    OK(ks_keychain_rotate(kc, NULL, E));
    CHECK(rec.total == before);
    EXPECT(ks_keychain_unsubscribe(kc, sub, E), KS_ERR_INVALID_INPUT);

    ks_buffer_free(&od1);
    ks_buffer_free(&s1);
    ks_buffer_free(&s2);
    ks_buffer_free(&x1);
    ks_envelope_clear(&w1);
    ks_keychain_free(kc);
    pthread_mutex_destroy(&rec.mu);
    group_end(NULL);
}

static void group_policy_and_counters(void)
{
    group_begin("policy, counters");
    ks_policy d = ks_policy_default();
    CHECK(d.max_encryptions_per_key == (1ULL << 32) && d.max_key_age_secs == 0 && d.usage_block == 65536);

    /* An unbound keychain with a limit of 3: the 4th encryption is refused. */
    ks_policy p = d;
    p.max_encryptions_per_key = 3;
    ks_keychain *kc = NULL;
    if (OK(ks_keychain_generate(&p, &kc, E))) {
        ks_policy got;
        OK(ks_keychain_get_policy(kc, &got, E));
        CHECK(got.max_encryptions_per_key == 3 && got.max_key_age_secs == 0 && got.usage_block == 65536);
        ks_buffer b[3];
        for (int i = 0; i < 3; i++) {
            b[i] = sent_buf();
            OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &b[i], E));
        }
        ks_buffer o = sent_buf();
        EXPECT(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o, E), KS_ERR_POLICY);
        EXPECT(ks_keychain_encrypt(kc, (const uint8_t *)"s", 1, NULL, 0, &o, E), KS_ERR_POLICY);
        CHECK(buf_untouched(o));
        /* Decrypting is not limited; rotating lifts the limit. */
        if (OK(ks_keychain_unseal(kc, b[2].data, b[2].len, NULL, 0, &o, E)))
            CHECK(buf_eq(o, (const uint8_t *)"s", 1));
        ks_buffer_free(&o);
        OK(ks_keychain_rotate(kc, NULL, E));
        o = sent_buf();
        OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o, E));
        ks_buffer_free(&o);
        for (int i = 0; i < 3; i++)
            ks_buffer_free(&b[i]);
        ks_keychain_free(kc);
    }
    /* The same through ks_keychain_set_policy. */
    kc = NULL;
    if (OK(ks_keychain_generate(NULL, &kc, E))) {
        OK(ks_keychain_set_policy(kc, &p, E));
        ks_policy got;
        OK(ks_keychain_get_policy(kc, &got, E));
        CHECK(got.max_encryptions_per_key == 3);
        ks_buffer o;
        for (int i = 0; i < 3; i++) {
            o = sent_buf();
            OK(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o, E));
            ks_buffer_free(&o);
        }
        o = sent_buf();
        EXPECT(ks_keychain_seal(kc, (const uint8_t *)"s", 1, NULL, 0, &o, E), KS_ERR_POLICY);
        CHECK(buf_untouched(o));
        ks_keychain_free(kc);
    }

    /* Counters: exact after a known sequence. */
    kc = NULL;
    if (OK(ks_keychain_generate(NULL, &kc, E))) {
        ks_counters c;
        memset(&c, 0xFF, sizeof c);
        OK(ks_keychain_counters(kc, &c, E));
        CHECK(c.seal == 0 && c.unseal_ok == 0 && c.rotations == 0 && c.errors[1] == 0);
        ks_buffer s = sent_buf(), x = sent_buf(), o = sent_buf();
        ks_envelope w;
        uint8_t k[16] = {0};
        OK(ks_keychain_seal(kc, k, 16, NULL, 0, &s, E));
        OK(ks_keychain_seal(kc, k, 16, NULL, 0, &o, E));
        ks_buffer_free(&o);
        OK(ks_keychain_unseal(kc, s.data, s.len, NULL, 0, &o, E));
        ks_buffer_free(&o);
        EXPECT(ks_keychain_unseal(kc, s.data, s.len, k, 1, &o, E), KS_ERR_AUTHENTICATION);
        EXPECT(ks_keychain_unseal(kc, s.data, 3, NULL, 0, &o, E), KS_ERR_FORMAT);
        OK(ks_keychain_encrypt(kc, k, 16, NULL, 0, &x, E));
        OK(ks_keychain_decrypt(kc, x.data, x.len, NULL, 0, &o, E));
        ks_buffer_free(&o);
        EXPECT(ks_keychain_decrypt(kc, x.data, x.len, k, 2, &o, E), KS_ERR_AUTHENTICATION);
        OK(ks_keychain_wrap_key(kc, k, 16, NULL, 0, &w, E));
        OK(ks_keychain_unwrap_key(kc, &w, NULL, 0, &o, E));
        ks_buffer_free(&o);
        EXPECT(ks_keychain_unwrap_key(kc, &w, k, 1, &o, E), KS_ERR_AUTHENTICATION);
        OK(ks_keychain_derive(kc, 0, NULL, 0, 16, &o, E));
        ks_buffer_free(&o);
        OK(ks_keychain_rotate(kc, NULL, E));
        OK(ks_keychain_rotate_derivation(kc, NULL, E));
        OK(ks_keychain_counters(kc, &c, E));
        CHECK(c.seal == 2 && c.unseal_ok == 1 && c.unseal_failed == 2);
        CHECK(c.encrypt == 1 && c.decrypt_ok == 1 && c.decrypt_failed == 1);
        CHECK(c.wrap == 1 && c.unwrap_ok == 1 && c.unwrap_failed == 1);
        CHECK(c.derive == 1 && c.rotations == 2);
        CHECK(c.errors[KS_ERR_AUTHENTICATION - 1] == 3 && c.errors[KS_ERR_FORMAT - 1] == 1);
        CHECK(c.errors[KS_ERR_INVALID_INPUT - 1] == 0 && c.errors[KS_ERR_INTERNAL - 1] == 0);
        ks_buffer_free(&s);
        ks_buffer_free(&x);
        ks_envelope_clear(&w);
        ks_keychain_free(kc);
    }
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Files: save/load, bound keychains                                   */
/* ------------------------------------------------------------------ */

static bool same_listing(const ks_keychain *a, const ks_keychain *b)
{
    ks_key_info ia[64], ib[64];
    size_t na = 0, nb = 0;
    if (ks_keychain_keys(a, ia, 64, &na, NULL) != KS_OK || ks_keychain_keys(b, ib, 64, &nb, NULL) != KS_OK || na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (ia[i].key_id != ib[i].key_id || ia[i].status != ib[i].status || ia[i].primary != ib[i].primary ||
            ia[i].version != ib[i].version || ia[i].purpose != ib[i].purpose)
            return false;
    return true;
}

static void group_files(void)
{
    group_begin("save, load, bound files");
    char path[512], path2[512], path3[512];
    snprintf(path, sizeof path, "%s/saved.age", g_tmpdir);
    snprintf(path2, sizeof path2, "%s/bound.age", g_tmpdir);
    snprintf(path3, sizeof path3, "%s/auto.age", g_tmpdir);
    ks_root *root = NULL, *other = NULL, *proot = NULL;
    OK(ks_root_age_generate(&root, E));
    OK(ks_root_age_generate(&other, E));
    OK(ks_root_passphrase_new((const uint8_t *)"pässword", 9, 4, &proot, E));
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc, E));
    OK(ks_keychain_rotate(kc, NULL, E));
    ks_buffer s = sent_buf(), o = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"saved", 5, NULL, 0, &s, E));

    /* save_file / load_file */
    ks_keychain *l = NULL;
    if (OK(ks_keychain_save_file(kc, path, root, E)) && OK(ks_keychain_load_file(path, root, &l, E))) {
        CHECK(same_listing(kc, l));
        if (OK(ks_keychain_unseal(l, s.data, s.len, NULL, 0, &o, E)))
            CHECK(buf_eq(o, (const uint8_t *)"saved", 5));
        ks_buffer_free(&o);
        bool bound = true;
        OK(ks_keychain_is_bound(l, &bound, E));
        CHECK(!bound);
    }
    ks_keychain_free(l);
    l = SENT;
    EXPECT(ks_keychain_load_file(path, other, &l, E), KS_ERR_AUTHENTICATION);
    EXPECT(ks_keychain_load_file(path, proot, &l, E), KS_ERR_AUTHENTICATION);
    CHECK(l == SENT);

    /* save / load in memory, passphrase root */
    ks_buffer saved = sent_buf();
    l = NULL;
    if (OK(ks_keychain_save(kc, proot, &saved, E)) && OK(ks_keychain_load(saved.data, saved.len, proot, &l, E))) {
        CHECK(same_listing(kc, l));
        o = sent_buf();
        if (OK(ks_keychain_unseal(l, s.data, s.len, NULL, 0, &o, E)))
            CHECK(buf_eq(o, (const uint8_t *)"saved", 5));
        ks_buffer_free(&o);
    }
    ks_keychain_free(l);
    l = SENT;
    EXPECT(ks_keychain_load(saved.data, saved.len, root, &l, E), KS_ERR_AUTHENTICATION);
    CHECK(l == SENT);
    ks_buffer_free(&saved);

    /* open (bound) -> seal -> rotate -> load_file sees the rotation */
    ks_keychain *b = NULL;
    ks_key_info r;
    memset(&r, 0, sizeof r);
    ks_buffer bs = sent_buf();
    if (OK(ks_keychain_open(path2, root, NULL, &b, E))) {
        bool bound = false;
        OK(ks_keychain_is_bound(b, &bound, E));
        CHECK(bound);
        struct stat st;
        CHECK(stat(path2, &st) == 0 && st.st_size > 0);
        OK(ks_keychain_seal(b, (const uint8_t *)"bound", 5, NULL, 0, &bs, E));
        OK(ks_keychain_rotate(b, &r, E));
        l = NULL;
        if (OK(ks_keychain_load_file(path2, root, &l, E))) {
            size_t n = 0;
            OK(ks_keychain_key_count(l, &n, E));
            CHECK(n == 3);
            ks_key_info p;
            OK(ks_keychain_primary(l, KS_PURPOSE_ENCRYPT, &p, E));
            CHECK(p.key_id == r.key_id && p.version == 2);
            o = sent_buf();
            if (OK(ks_keychain_unseal(l, bs.data, bs.len, NULL, 0, &o, E)))
                CHECK(buf_eq(o, (const uint8_t *)"bound", 5));
            ks_buffer_free(&o);
            /* The usage reserved in the file covers the seal made. */
            ks_key_info infos[4];
            size_t cnt = 0;
            if (OK(ks_keychain_keys(l, infos, 4, &cnt, E)) && CHECK(cnt == 3))
                CHECK(infos[0].usage >= 1);
        }
        ks_keychain_free(l);
        /* A file that does not open with the root is an error and stays untouched. */
        bytes_t before = read_file(path2);
        ks_keychain *w = SENT;
        CHECK(ks_keychain_open(path2, other, NULL, &w, NULL) != KS_OK);
        CHECK(w == SENT);
        bytes_t after = read_file(path2);
        CHECK(before.n == after.n && before.n > 0 && memcmp(before.p, after.p, before.n) == 0);
        bytes_free(&before);
        bytes_free(&after);
        ks_keychain_free(b);
        /* Reopened: the rotation is there. */
        b = NULL;
        if (OK(ks_keychain_open(path2, root, NULL, &b, E))) {
            ks_key_info p;
            OK(ks_keychain_primary(b, KS_PURPOSE_ENCRYPT, &p, E));
            CHECK(p.key_id == r.key_id);
            o = sent_buf();
            if (OK(ks_keychain_unseal(b, bs.data, bs.len, NULL, 0, &o, E)))
                CHECK(buf_eq(o, (const uint8_t *)"bound", 5));
            ks_buffer_free(&o);
        }
        ks_keychain_free(b);
    }
    ks_buffer_free(&bs);

    /* A bound keychain rotates by itself at the limit (an automatic event). */
    ks_policy p = ks_policy_default();
    p.max_encryptions_per_key = 3;
    p.usage_block = 2;
    b = NULL;
    if (OK(ks_keychain_open(path3, root, &p, &b, E))) {
        ev_rec rec;
        ev_rec_init(&rec);
        uint64_t sub = 0;
        OK(ks_keychain_subscribe(b, ev_cb, &rec, &sub, E));
        ks_buffer sb[5];
        for (int i = 0; i < 5; i++) {
            sb[i] = sent_buf();
            OK(ks_keychain_seal(b, (const uint8_t *)"auto", 4, NULL, 0, &sb[i], E));
        }
        uint32_t v = 0;
        OK(ks_keychain_active_key_version(b, &v, E));
        CHECK(v == 2);
        CHECK(sealed_key_id(sb[0]) == sealed_key_id(sb[2]) && sealed_key_id(sb[3]) != sealed_key_id(sb[2]));
        ks_event ev;
        CHECK(ev_count(&rec, KS_EVENT_KEY_ROTATED) == 1);
        if (CHECK(ev_last(&rec, KS_EVENT_KEY_ROTATED, &ev)))
            CHECK(ev.automatic && ev.key_id == sealed_key_id(sb[3]) && ev.key_version == 2);
        ks_counters c;
        OK(ks_keychain_counters(b, &c, E));
        CHECK(c.rotations == 1 && c.seal == 5);
        OK(ks_keychain_unsubscribe(b, sub, E));
        ks_keychain_free(b);
        /* Everything opens from the file. */
        l = NULL;
        if (OK(ks_keychain_load_file(path3, root, &l, E))) {
            ks_policy got;
            OK(ks_keychain_get_policy(l, &got, E));
            CHECK(got.max_encryptions_per_key == 3 && got.usage_block == 2);
            for (int i = 0; i < 5; i++) {
                o = sent_buf();
                if (OK(ks_keychain_unseal(l, sb[i].data, sb[i].len, NULL, 0, &o, E)))
                    CHECK(buf_eq(o, (const uint8_t *)"auto", 4));
                ks_buffer_free(&o);
            }
        }
        ks_keychain_free(l);
        for (int i = 0; i < 5; i++)
            ks_buffer_free(&sb[i]);
        pthread_mutex_destroy(&rec.mu);
    }

    ks_buffer_free(&s);
    ks_keychain_free(kc);
    ks_root_free(root);
    ks_root_free(other);
    ks_root_free(proot);
    group_end(NULL);
}

/* ------------------------------------------------------------------ */
/* Tink export / import round trip                                     */
/* ------------------------------------------------------------------ */

static void group_tink_round_trip(void)
{
    group_begin("tink export/import");
    ks_keychain *kc = NULL;
    OK(ks_keychain_generate(NULL, &kc, E));
    ks_buffer s1 = sent_buf(), s2 = sent_buf(), x = sent_buf(), json = sent_buf(), o = sent_buf();
    OK(ks_keychain_seal(kc, (const uint8_t *)"v1", 2, (const uint8_t *)"a", 1, &s1, E));
    ks_key_info r;
    OK(ks_keychain_rotate(kc, &r, E));
    OK(ks_keychain_seal(kc, (const uint8_t *)"v2", 2, (const uint8_t *)"a", 1, &s2, E));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"doc", 3, NULL, 0, &x, E));
    ks_keychain *im = NULL;
    if (OK(ks_keychain_insecure_export_tink_cleartext(kc, &json, E))) {
        CHECK(json.len > 0 && json.data[0] == '{' && memchr(json.data, '\0', json.len) == NULL);
        json_error_t err;
        json_t *parsed = json_loadb((const char *)json.data, json.len, 0, &err);
        if (CHECK(parsed != NULL)) {
            CHECK((uint32_t)json_integer_value(json_object_get(parsed, "primaryKeyId")) == r.key_id);
            CHECK(json_array_size(json_object_get(parsed, "key")) == 2);
            json_decref(parsed);
        }
        if (OK(ks_keychain_import_tink_cleartext(json.data, json.len, &im, E))) {
            ks_key_info p;
            OK(ks_keychain_primary(im, KS_PURPOSE_ENCRYPT, &p, E));
            CHECK(p.key_id == r.key_id);
            if (OK(ks_keychain_unseal(im, s1.data, s1.len, (const uint8_t *)"a", 1, &o, E)))
                CHECK(buf_eq(o, (const uint8_t *)"v1", 2));
            ks_buffer_free(&o);
            o = sent_buf();
            if (OK(ks_keychain_unseal(im, s2.data, s2.len, (const uint8_t *)"a", 1, &o, E)))
                CHECK(buf_eq(o, (const uint8_t *)"v2", 2));
            ks_buffer_free(&o);
            o = sent_buf();
            if (OK(ks_keychain_decrypt(im, x.data, x.len, NULL, 0, &o, E)))
                CHECK(buf_eq(o, (const uint8_t *)"doc", 3));
            ks_buffer_free(&o);
            /* And back: what the import seals, the original opens. */
            o = sent_buf();
            ks_buffer back = sent_buf();
            if (OK(ks_keychain_seal(im, (const uint8_t *)"back", 4, NULL, 0, &back, E)) &&
                OK(ks_keychain_unseal(kc, back.data, back.len, NULL, 0, &o, E)))
                CHECK(buf_eq(o, (const uint8_t *)"back", 4));
            ks_buffer_free(&o);
            ks_buffer_free(&back);
        }
        /* A truncated keyset is refused. */
        ks_keychain *t = SENT;
        CHECK(ks_keychain_import_tink_cleartext(json.data, json.len / 2, &t, NULL) == KS_ERR_FORMAT);
        CHECK(t == SENT);
    }
    ks_buffer_free(&json);
    ks_buffer_free(&s1);
    ks_buffer_free(&s2);
    ks_buffer_free(&x);
    ks_keychain_free(im);
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_close(void)
{
    group_begin("close");
    const ks_status U = KS_ERR_UNAVAILABLE;
    ks_keychain *kc = NULL;
    ks_root *root = NULL;
    OK(ks_root_age_generate(&root, E));
    OK(ks_keychain_generate(NULL, &kc, E));
    ks_buffer s = sent_buf(), x = sent_buf(), out = sent_buf();
    ks_envelope w;
    ks_key_info e, d, info;
    OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &e, E));
    OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &d, E));
    OK(ks_keychain_add_key(kc, KS_PURPOSE_ENCRYPT, &info, E));
    OK(ks_keychain_seal(kc, (const uint8_t *)"c", 1, NULL, 0, &s, E));
    OK(ks_keychain_encrypt(kc, (const uint8_t *)"c", 1, NULL, 0, &x, E));
    OK(ks_keychain_wrap_key(kc, (const uint8_t *)"0123456789abcdef", 16, NULL, 0, &w, E));
    ev_rec rec;
    ev_rec_init(&rec);
    uint64_t sub = 0;
    OK(ks_keychain_subscribe(kc, ev_cb, &rec, &sub, E));

    OK(ks_keychain_close(kc, E));
    OK(ks_keychain_close(kc, E)); /* idempotent */
    ks_envelope eout;
    memset(&eout, 0xAB, sizeof eout);
    uint32_t u32 = 77;
    size_t count = 77;
    bool b = true;
    ks_policy pol = {1, 2, 3}, newp = ks_policy_default();
    uint64_t sub2 = 77;
    ks_key_info infos[4];
    char path[512];
    snprintf(path, sizeof path, "%s/closed.age", g_tmpdir);
    EXPECT(ks_keychain_health_check(kc, E), U);
    EXPECT(ks_keychain_seal(kc, (const uint8_t *)"c", 1, NULL, 0, &out, E), U);
    EXPECT(ks_keychain_unseal(kc, s.data, s.len, NULL, 0, &out, E), U);
    EXPECT(ks_keychain_encrypt(kc, (const uint8_t *)"c", 1, NULL, 0, &out, E), U);
    EXPECT(ks_keychain_decrypt(kc, x.data, x.len, NULL, 0, &out, E), U);
    EXPECT(ks_keychain_wrap_key(kc, (const uint8_t *)"0123456789abcdef", 16, NULL, 0, &eout, E), U);
    EXPECT(ks_keychain_unwrap_key(kc, &w, NULL, 0, &out, E), U);
    EXPECT(ks_keychain_derive(kc, 0, NULL, 0, 32, &out, E), U);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, NULL, 0, NULL, 0, 0, &out, E), U);
    EXPECT(ks_keychain_save(kc, root, &out, E), U);
    EXPECT(ks_keychain_insecure_export_tink_cleartext(kc, &out, E), U);
    EXPECT(ks_keychain_save_file(kc, path, root, E), U);
    EXPECT(ks_keychain_active_key_version(kc, &u32, E), U);
    EXPECT(ks_keychain_rotate(kc, &info, E), U);
    EXPECT(ks_keychain_rotate_derivation(kc, &info, E), U);
    EXPECT(ks_keychain_add_key(kc, KS_PURPOSE_ENCRYPT, &info, E), U);
    EXPECT(ks_keychain_promote(kc, info.key_id, &info, E), U);
    EXPECT(ks_keychain_disable(kc, e.key_id, E), U);
    EXPECT(ks_keychain_enable(kc, e.key_id, E), U);
    EXPECT(ks_keychain_destroy(kc, info.key_id, E), U);
    EXPECT(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &info, E), U);
    EXPECT(ks_keychain_key_count(kc, &count, E), U);
    EXPECT(ks_keychain_key_info(kc, 0, &info, E), U);
    EXPECT(ks_keychain_keys(kc, infos, 4, &count, E), U);
    EXPECT(ks_keychain_get_policy(kc, &pol, E), U);
    EXPECT(ks_keychain_set_policy(kc, &newp, E), U);
    EXPECT(ks_keychain_subscribe(kc, ev_cb, &rec, &sub2, E), U);
    CHECK(buf_untouched(out) && all_byte((const uint8_t *)&eout, sizeof eout, 0xAB) && u32 == 77 && count == 77 && sub2 == 77);
    /* A fact about the handle, answered after close too. */
    OK(ks_keychain_is_bound(kc, &b, E));
    CHECK(!b);
    CHECK(pol.max_encryptions_per_key == 1 && pol.max_key_age_secs == 2 && pol.usage_block == 3);
    struct stat st;
    CHECK(stat(path, &st) != 0);
    /* Kept working after close: the counters (final metrics) and unsubscribe (cleanup). */
    ks_counters c;
    if (OK(ks_keychain_counters(kc, &c, E)))
        CHECK(c.seal == 1 && c.encrypt == 1 && c.wrap == 1);
    OK(ks_keychain_unsubscribe(kc, sub, E));
    ks_keychain_free(kc);
    ks_buffer_free(&s);
    ks_buffer_free(&x);
    ks_envelope_clear(&w);
    ks_root_free(root);
    pthread_mutex_destroy(&rec.mu);
    group_end(NULL);
}


/* Roots named by a URI (the CLI's --root forms): no per-kind C code. */
static void group_root_uri(void)
{
    group_begin("keychain: roots from a URI");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    uint8_t ct_buf[64];
    size_t ct_len = 0;
    OK(ks_keychain_seal_to(kc, (const uint8_t *)"uri", 3, NULL, 0, ct_buf, sizeof ct_buf, &ct_len, E));

    /* passphrase:env:VAR (work factor: the default; the test keeps it). */
    setenv("KS_C_TEST_PASSPHRASE", "correct horse battery staple", 1);
    ks_root *pr = NULL;
    if (OK(ks_root_from_uri("passphrase:env:KS_C_TEST_PASSPHRASE", &pr, E))) {
        ks_buffer saved = sent_buf();
        if (OK(ks_keychain_save(kc, pr, &saved, E))) {
            ks_keychain *back = NULL;
            if (OK(ks_keychain_load(saved.data, saved.len, pr, &back, E))) {
                uint8_t pt[8];
                size_t n = 0;
                if (OK(ks_keychain_unseal_to(back, ct_buf, ct_len, NULL, 0, pt, sizeof pt, &n, E)))
                    CHECK(n == 3 && memcmp(pt, "uri", 3) == 0);
                ks_keychain_free(back);
            }
        }
        ks_buffer_free(&saved);
        ks_root_free(pr);
    }

    /* age:FILE, the identity file written from a generated root. */
    ks_root *gen = NULL;
    if (OK(ks_root_age_generate(&gen, E))) {
        ks_buffer id = sent_buf();
        if (OK(ks_root_age_identity(gen, 0, &id, E))) {
            char path[300];
            snprintf(path, sizeof path, "%s/identity.txt", g_tmpdir);
            FILE *f = fopen(path, "w");
            REQUIRE(f != NULL);
            if (f) {
                fwrite(id.data, 1, id.len, f);
                fputc('\n', f);
                fclose(f);
            }
            char uri[320];
            snprintf(uri, sizeof uri, "age:%s", path);
            ks_root *ar = NULL;
            ks_buffer saved = sent_buf();
            if (OK(ks_root_from_uri(uri, &ar, E)) && OK(ks_keychain_save(kc, gen, &saved, E))) {
                ks_keychain *back = NULL;
                /* Saved by the generated root, loaded by the URI root. */
                if (OK(ks_keychain_load(saved.data, saved.len, ar, &back, E)))
                    ks_keychain_free(back);
            }
            ks_buffer_free(&saved);
            ks_root_free(ar);
        }
        ks_buffer_free(&id);
        ks_root_free(gen);
    }

    /* Errors: a clear kind, nothing written, a bounded message. */
    ks_root *none = (ks_root *)SENT;
    EXPECT(ks_root_from_uri("nope:x", &none, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_root_from_uri("no scheme at all", &none, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_root_from_uri(NULL, &none, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_root_from_uri("passphrase:env:KS_C_TEST_PASSPHRASE", NULL, E), KS_ERR_NULL_ARGUMENT);
    unsetenv("KS_C_TEST_UNSET_VAR");
    h_err = H_UNSET;
    ks_status st = ks_root_from_uri("passphrase:env:KS_C_TEST_UNSET_VAR", &none, &h_err);
    CHECK(st != KS_OK);
    if (h_err != H_UNSET && h_err != NULL) {
        CHECK(strstr(ks_error_message(h_err), "correct horse") == NULL);
        ks_error_free(h_err);
    }
    char *huge = malloc(100000);
    memset(huge, 'x', 99999);
    memcpy(huge, "kmip://", 7);
    huge[99999] = '\0';
    h_err = H_UNSET;
    st = ks_root_from_uri(huge, &none, &h_err);
    CHECK(st != KS_OK);
    if (h_err != H_UNSET && h_err != NULL) {
        CHECK(strlen(ks_error_message(h_err)) < 1000);
        ks_error_free(h_err);
    }
    free(huge);
    CHECK(none == (ks_root *)SENT);
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_keychain(void)
{
    group_keychain_hostile();
    group_lifecycle();
    group_policy_and_counters();
    group_files();
    group_tink_round_trip();
    group_close();
    group_root_uri();
}
