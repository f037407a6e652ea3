/*
 * What an object-store gateway needs: the compact wrap form
 * (ks_keychain_wrap_key_with, 61 bytes for a 32-byte key), the metadata
 * context (ks_metadata_context, with its vectors), and two-step rotation
 * (ks_keychain_prepare_rotation / ks_keychain_promote_version).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void group_compact(void)
{
    group_begin("gateway: compact wrap form");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    uint8_t dek[32];
    memset(dek, 0x5c, sizeof dek);
    ks_envelope env;
    if (OK(ks_keychain_wrap_key_with(kc, dek, 32, NULL, 0, KS_WRAP_COMPACT, &env, E))) {
        CHECK(env.ciphertext_len == 61 && env.ciphertext[0] == 0x02);
        size_t need = 0;
        OK(ks_keychain_unwrap_key_to(kc, &env, NULL, 0, NULL, 0, &need, E));
        CHECK(need == 32);
        uint8_t out[64];
        size_t got = 0;
        if (OK(ks_keychain_unwrap_key_to(kc, &env, NULL, 0, out, sizeof out, &got, E)))
            CHECK(got == 32 && memcmp(out, dek, 32) == 0);
        ks_buffer b = sent_buf();
        if (OK(ks_keychain_unwrap_key(kc, &env, NULL, 0, &b, E)))
            CHECK(buf_eq(b, dek, 32));
        ks_buffer_free(&b);
        /* The compact marker on the full form's body: never opens. */
        env.ciphertext[0] = 0x03;
        EXPECT(ks_keychain_unwrap_key_to(kc, &env, NULL, 0, out, sizeof out, &got, E), KS_ERR_FORMAT);
        ks_envelope_clear(&env);
    }
    if (OK(ks_keychain_wrap_key_with(kc, dek, 32, NULL, 0, KS_WRAP_FULL, &env, E))) {
        CHECK(env.ciphertext_len == 65 && env.ciphertext[0] == 0x01);
        ks_envelope_clear(&env);
    }
    ks_envelope untouched;
    memset(&untouched, 0xAB, sizeof untouched);
    EXPECT(ks_keychain_wrap_key_with(kc, dek, 32, NULL, 0, 0, &untouched, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key_with(kc, dek, 32, NULL, 0, 3, &untouched, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key_with(kc, dek, 0, NULL, 0, KS_WRAP_COMPACT, &untouched, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_wrap_key_with(NULL, dek, 32, NULL, 0, KS_WRAP_COMPACT, &untouched, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_wrap_key_with(kc, dek, 32, NULL, 0, KS_WRAP_COMPACT, NULL, E), KS_ERR_NULL_ARGUMENT);
    CHECK(all_byte((const uint8_t *)&untouched, sizeof untouched, 0xAB));
    ks_keychain_free(kc);
    group_end(NULL);
}

static void group_metadata_context(const char *dir)
{
    group_begin("gateway: metadata context (vectors)");
    json_t *j = load_json(dir, "keystrata.json");
    const json_t *cases = j ? json_object_get(json_object_get(j, "keychain"), "metadata_context") : NULL;
    REQUIRE(json_is_array(cases) && json_array_size(cases) >= 8);
    size_t i;
    json_t *c;
    json_array_foreach((json_t *)cases, i, c)
    {
        g_ctx = jstr(c, "comment");
        const json_t *entries = json_object_get(c, "entries");
        size_t n = json_array_size(entries);
        const char **names = calloc(n + 1, sizeof *names), **values = calloc(n + 1, sizeof *values);
        for (size_t k = 0; k < n; k++) {
            names[k] = json_string_value(json_array_get(json_array_get(entries, k), 0));
            values[k] = json_string_value(json_array_get(json_array_get(entries, k), 1));
        }
        const json_t *bj = json_object_get(c, "binding");
        uint32_t binding = KS_BIND_ONLY;
        size_t nb = 0;
        const char **bound = NULL;
        if (json_is_string(bj))
            binding = strcmp(json_string_value(bj), "all") == 0 ? KS_BIND_ALL : KS_BIND_NOTHING;
        else {
            nb = json_array_size(bj);
            bound = calloc(nb + 1, sizeof *bound);
            for (size_t k = 0; k < nb; k++)
                bound[k] = json_string_value(json_array_get(bj, k));
        }
        size_t need = 0;
        const json_t *want_err = json_object_get(c, "error");
        if (want_err) {
            EXPECT(ks_metadata_context(names, values, n, binding, bound, nb, NULL, 0, &need, E),
                   (ks_status)jint(c, "error_code"));
        } else {
            bytes_t want = hex(jstr(c, "context_hex"));
            if (OK(ks_metadata_context(names, values, n, binding, bound, nb, NULL, 0, &need, E)))
                CHECK(need == want.n);
            uint8_t *buf = malloc(want.n + 4);
            memset(buf, 0xAA, want.n + 4);
            size_t got = 0;
            if (want.n > 0) {
                EXPECT(ks_metadata_context(names, values, n, binding, bound, nb, buf, want.n - 1, &got, E),
                       KS_ERR_BUFFER_TOO_SMALL);
                CHECK(got == want.n && all_byte(buf, want.n + 4, 0xAA));
            }
            if (OK(ks_metadata_context(names, values, n, binding, bound, nb, buf, want.n + 4, &got, E)))
                CHECK(got == want.n && memcmp(buf, want.p, want.n) == 0 && all_byte(buf + want.n, 4, 0xAA));
            free(buf);
            bytes_free(&want);
        }
        free(names);
        free(values);
        free(bound);
    }
    g_ctx = NULL;
    /* Bad arguments. */
    const char *nm[] = {"a"}, *vl[] = {"b"};
    size_t got = 77;
    EXPECT(ks_metadata_context(nm, vl, 1, 0, NULL, 0, NULL, 0, &got, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_metadata_context(nm, vl, 1, 4, NULL, 0, NULL, 0, &got, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_metadata_context(NULL, vl, 1, KS_BIND_ALL, NULL, 0, NULL, 0, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_metadata_context(nm, vl, 1, KS_BIND_ONLY, NULL, 1, NULL, 0, &got, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_metadata_context(nm, vl, 1, KS_BIND_ALL, NULL, 0, NULL, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    const char *bad_utf8[] = {"\xff"};
    EXPECT(ks_metadata_context(bad_utf8, vl, 1, KS_BIND_ALL, NULL, 0, NULL, 0, &got, E), KS_ERR_INVALID_INPUT);
    CHECK(got == 77);
    OK(ks_metadata_context(NULL, NULL, 0, KS_BIND_ALL, NULL, 0, NULL, 0, &got, E));
    CHECK(got == 0);
    json_decref(j);
    group_end(NULL);
}

static void group_rotation(void)
{
    group_begin("gateway: two-step rotation");
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    uint32_t v0 = 0;
    OK(ks_keychain_active_key_version(kc, &v0, E));
    ks_rotation_plan plan;
    if (OK(ks_keychain_prepare_rotation(kc, 0, &plan, E))) {
        CHECK(plan.current_version == v0 && plan.target_version == v0 + 1);
        uint32_t v = 0;
        OK(ks_keychain_active_key_version(kc, &v, E));
        CHECK(v == v0);
        ks_key_info info;
        if (OK(ks_keychain_promote_version(kc, &plan, &info, E)))
            CHECK(info.version == plan.target_version && info.key_id == plan.target_key_id && info.primary);
        OK(ks_keychain_active_key_version(kc, &v, E));
        CHECK(v == plan.target_version);
        /* A stale plan: a conflict (Policy), nothing changes. */
        EXPECT(ks_keychain_promote_version(kc, &plan, NULL, E), KS_ERR_POLICY);
        CHECK(strstr(h_msg, "conflict") != NULL);
    }
    ks_rotation_plan untouched;
    memset(&untouched, 0xAB, sizeof untouched);
    EXPECT(ks_keychain_prepare_rotation(kc, 99, &untouched, E), KS_ERR_UNKNOWN_KEY);
    EXPECT(ks_keychain_prepare_rotation(kc, v0 + 1, &untouched, E), KS_ERR_POLICY);
    EXPECT(ks_keychain_prepare_rotation(kc, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_prepare_rotation(NULL, 0, &untouched, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_promote_version(kc, NULL, NULL, E), KS_ERR_NULL_ARGUMENT);
    CHECK(all_byte((const uint8_t *)&untouched, sizeof untouched, 0xAB));
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_gateway(const char *dir)
{
    group_compact();
    group_metadata_context(dir);
    group_rotation();
}
