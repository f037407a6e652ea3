/*
 * Derivation (ks_keychain_derive_origin_key, ks_keychain_derive) and the
 * HAZMAT primitives with hostile arguments.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void group_derive_hostile(void)
{
    group_begin("derive, hazmat: hostile");
    const size_t HUGE = (size_t)-1;
    const uint8_t small[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ks_keychain *kc = NULL;
    if (!OK(ks_keychain_generate(NULL, &kc, E))) {
        group_end(NULL);
        return;
    }
    ks_buffer out = sent_buf();

    /* --- derivation --- */
    EXPECT(ks_keychain_derive_origin_key(NULL, 0, small, 1, small, 1, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, NULL, 1, small, 1, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, 1, NULL, 1, 0, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, 1, small, 1, 0, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, HUGE, small, 1, 0, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive_origin_key(kc, 0, small, 1, small, HUGE, 0, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive_origin_key(kc, 12345, small, 1, small, 1, 0, &out, E), KS_ERR_UNKNOWN_KEY);
    EXPECT(ks_keychain_derive(NULL, 0, small, 1, 32, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive(kc, 0, NULL, 1, 32, &out, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, 32, NULL, E), KS_ERR_NULL_ARGUMENT);
    EXPECT(ks_keychain_derive(kc, 0, small, HUGE, 32, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, 0, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, 8161, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 0, small, 1, HUGE, &out, E), KS_ERR_INVALID_INPUT);
    EXPECT(ks_keychain_derive(kc, 12345, small, 1, 32, &out, E), KS_ERR_UNKNOWN_KEY);
    CHECK(buf_untouched(out));
    {
        ks_key_info enc_primary, der_primary;
        OK(ks_keychain_primary(kc, KS_PURPOSE_ENCRYPT, &enc_primary, E));
        OK(ks_keychain_primary(kc, KS_PURPOSE_DERIVE, &der_primary, E));
        /* An encryption key is not a derivation key, and vice versa. */
        EXPECT(ks_keychain_derive(kc, enc_primary.key_id, small, 1, 32, &out, E), KS_ERR_UNKNOWN_KEY);
        ks_buffer a = sent_buf(), b = sent_buf();
        if (OK(ks_keychain_derive(kc, 0, NULL, 0, 8160, &a, E)) &&
            OK(ks_keychain_derive(kc, der_primary.key_id, NULL, 0, 8160, &b, E)))
            CHECK(a.len == 8160 && buf_eq(b, a.data, a.len));
        ks_buffer_free(&a);
        ks_buffer_free(&b);
        /* The empty origin and instance, NULL with length 0. */
        if (OK(ks_keychain_derive_origin_key(kc, 0, NULL, 0, NULL, 0, UINT64_MAX, &a, E)))
            CHECK(a.len == 32);
        ks_buffer_free(&a);
    }

    /* --- hazmat --- */
    {
        uint8_t key[32] = {0}, nonce[12] = {0};
        EXPECT(ks_hazmat_aes256gcm_encrypt(NULL, 32, nonce, 12, NULL, 0, small, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, NULL, 12, NULL, 0, small, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 1, small, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 0, NULL, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 0, small, 8, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 31, nonce, 12, NULL, 0, small, 8, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 0, NULL, 0, small, 8, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, HUGE, nonce, 12, NULL, 0, small, 8, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, small, HUGE, small, 8, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_encrypt(key, 32, nonce, 12, NULL, 0, small, HUGE, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(NULL, 32, nonce, 12, NULL, 0, small, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, NULL, 12, NULL, 0, small, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, NULL, 8, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, small, 8, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, small, 8, &out, E), KS_ERR_AUTHENTICATION);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, NULL, 0, &out, E), KS_ERR_AUTHENTICATION);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 32, nonce, 12, NULL, 0, small, HUGE, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_aes256gcm_decrypt(key, 16, nonce, 12, NULL, 0, small, 8, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, 32, NULL, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 4, small, 8, NULL, 0, 32, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, NULL, 8, NULL, 0, 32, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, 8, NULL, 8, 32, &out, E), KS_ERR_NULL_ARGUMENT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, HUGE, NULL, 0, 32, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(small, HUGE, small, 8, NULL, 0, 32, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, 8, NULL, 0, 0, &out, E), KS_ERR_INVALID_INPUT);
        EXPECT(ks_hazmat_hkdf_sha256(NULL, 0, small, 8, NULL, 0, HUGE, &out, E), KS_ERR_INVALID_INPUT);
        CHECK(buf_untouched(out));
        ks_buffer a = sent_buf();
        if (OK(ks_hazmat_hkdf_sha256(NULL, 0, NULL, 0, NULL, 0, 8160, &a, E)))
            CHECK(a.len == 8160);
        ks_buffer_free(&a);
    }
    ks_keychain_free(kc);
    group_end(NULL);
}

void run_derive(void)
{
    group_derive_hostile();
}
