/*
 * kgo.h: small static C wrappers used by the Go package (not a public API).
 *
 * ks_last_error_message() is thread-local, and a goroutine may move to
 * another OS thread between two cgo calls. So each wrapper calls one ks_
 * function and, on failure, copies the message into a malloc'd string
 * (*msg, freed by Go) within the SAME C call.
 */
#ifndef KEYSTRATA_KGO_H
#define KEYSTRATA_KGO_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keystrata.h"

static inline char *kgo_strdup(const char *s) {
	size_t n = strlen(s);
	char *d = (char *)malloc(n + 1);
	if (d != NULL) memcpy(d, s, n + 1);
	return d;
}

#define KGO_RET(call)                                                     \
	do {                                                              \
		ks_status s_ = (call);                                    \
		if (s_ != KS_OK && msg != NULL) *msg = kgo_strdup(ks_last_error_message()); \
		return s_;                                                \
	} while (0)

enum { KGO_SEAL = 1, KGO_UNSEAL = 2, KGO_ENCRYPT = 3, KGO_DECRYPT = 4 };

static inline ks_status kgo_aead(int op, const ks_keychain *kc, const uint8_t *in, size_t in_len,
		const uint8_t *aad, size_t aad_len, ks_buffer *out, char **msg) {
	switch (op) {
	case KGO_SEAL: KGO_RET(ks_keychain_seal(kc, in, in_len, aad, aad_len, out));
	case KGO_UNSEAL: KGO_RET(ks_keychain_unseal(kc, in, in_len, aad, aad_len, out));
	case KGO_ENCRYPT: KGO_RET(ks_keychain_encrypt(kc, in, in_len, aad, aad_len, out));
	default: KGO_RET(ks_keychain_decrypt(kc, in, in_len, aad, aad_len, out));
	}
}

static inline ks_status kgo_generate(const ks_policy *p, ks_keychain **out, char **msg) {
	KGO_RET(ks_keychain_generate(p, out));
}
static inline ks_status kgo_load(const uint8_t *d, size_t n, const ks_root *r, ks_keychain **out, char **msg) {
	KGO_RET(ks_keychain_load(d, n, r, out));
}
static inline ks_status kgo_save(const ks_keychain *kc, const ks_root *r, ks_buffer *out, char **msg) {
	KGO_RET(ks_keychain_save(kc, r, out));
}
static inline ks_status kgo_save_file(const ks_keychain *kc, const char *path, const ks_root *r, char **msg) {
	KGO_RET(ks_keychain_save_file(kc, path, r));
}
static inline ks_status kgo_load_file(const char *path, const ks_root *r, ks_keychain **out, char **msg) {
	KGO_RET(ks_keychain_load_file(path, r, out));
}
static inline ks_status kgo_open(const char *path, const ks_root *r, const ks_policy *p, ks_keychain **out, char **msg) {
	KGO_RET(ks_keychain_open(path, r, p, out));
}
static inline ks_status kgo_close(const ks_keychain *kc, char **msg) { KGO_RET(ks_keychain_close(kc)); }
static inline ks_status kgo_health_check(const ks_keychain *kc, char **msg) { KGO_RET(ks_keychain_health_check(kc)); }
static inline ks_status kgo_active_key_version(const ks_keychain *kc, uint32_t *out, char **msg) {
	KGO_RET(ks_keychain_active_key_version(kc, out));
}
static inline ks_status kgo_is_bound(const ks_keychain *kc, bool *out, char **msg) { KGO_RET(ks_keychain_is_bound(kc, out)); }
static inline ks_status kgo_refresh(const ks_keychain *kc, char **msg) { KGO_RET(ks_keychain_refresh(kc)); }

static inline ks_status kgo_envelope_new(const char *key_id, uint32_t ver, const char *provider, const uint8_t *ct,
		size_t ct_len, ks_envelope **out, char **msg) {
	KGO_RET(ks_envelope_new(key_id, ver, provider, ct, ct_len, out));
}
static inline ks_status kgo_envelope_from_metadata(const char *const *names, const char *const *values, size_t n,
		ks_envelope **out, char **msg) {
	KGO_RET(ks_envelope_from_metadata(names, values, n, out));
}
static inline ks_status kgo_envelope_metadata_entry(const ks_envelope *env, size_t i, const char **name,
		const char **value, char **msg) {
	KGO_RET(ks_envelope_metadata_entry(env, i, name, value));
}

static inline ks_status kgo_derive_origin_key(const ks_keychain *kc, uint32_t key_id, const uint8_t *o, size_t ol,
		const uint8_t *in, size_t il, uint64_t epoch, ks_buffer *out, char **msg) {
	KGO_RET(ks_keychain_derive_origin_key(kc, key_id, o, ol, in, il, epoch, out));
}
static inline ks_status kgo_derive(const ks_keychain *kc, uint32_t key_id, const uint8_t *info, size_t il,
		size_t length, ks_buffer *out, char **msg) {
	KGO_RET(ks_keychain_derive(kc, key_id, info, il, length, out));
}

enum { KGO_ROTATE = 1, KGO_ROTATE_DERIVATION = 2, KGO_ADD_KEY = 3, KGO_PROMOTE = 4,
	KGO_DISABLE = 5, KGO_ENABLE = 6, KGO_DESTROY = 7, KGO_PRIMARY = 8 };

/* Lifecycle calls; `arg` is a key ID or a purpose, as the operation needs. */
static inline ks_status kgo_lifecycle(int op, ks_keychain *kc, uint32_t arg, ks_key_info *out, char **msg) {
	switch (op) {
	case KGO_ROTATE: KGO_RET(ks_keychain_rotate(kc, out));
	case KGO_ROTATE_DERIVATION: KGO_RET(ks_keychain_rotate_derivation(kc, out));
	case KGO_ADD_KEY: KGO_RET(ks_keychain_add_key(kc, arg, out));
	case KGO_PROMOTE: KGO_RET(ks_keychain_promote(kc, arg, out));
	case KGO_DISABLE: KGO_RET(ks_keychain_disable(kc, arg));
	case KGO_ENABLE: KGO_RET(ks_keychain_enable(kc, arg));
	case KGO_DESTROY: KGO_RET(ks_keychain_destroy(kc, arg));
	default: KGO_RET(ks_keychain_primary(kc, arg, out));
	}
}
static inline ks_status kgo_keys(const ks_keychain *kc, ks_key_info *out, size_t cap, size_t *count, char **msg) {
	KGO_RET(ks_keychain_keys(kc, out, cap, count));
}
static inline ks_status kgo_get_policy(const ks_keychain *kc, ks_policy *out, char **msg) {
	KGO_RET(ks_keychain_get_policy(kc, out));
}
static inline ks_status kgo_set_policy(ks_keychain *kc, const ks_policy *p, char **msg) {
	KGO_RET(ks_keychain_set_policy(kc, p));
}
static inline ks_status kgo_counters(const ks_keychain *kc, ks_counters *out, char **msg) {
	KGO_RET(ks_keychain_counters(kc, out));
}
static inline ks_status kgo_import_tink(const uint8_t *j, size_t n, ks_keychain **out, char **msg) {
	KGO_RET(ks_keychain_import_tink_cleartext(j, n, out));
}
static inline ks_status kgo_export_tink(const ks_keychain *kc, ks_buffer *out, char **msg) {
	KGO_RET(ks_keychain_export_tink_cleartext(kc, out));
}
static inline ks_status kgo_unsubscribe(const ks_keychain *kc, uint64_t id, char **msg) {
	KGO_RET(ks_keychain_unsubscribe(kc, id));
}

static inline ks_status kgo_root_age_new(const char *const *ids, size_t ni, const char *const *rs, size_t nr,
		ks_root **out, char **msg) {
	KGO_RET(ks_root_age_new(ids, ni, rs, nr, out));
}
static inline ks_status kgo_root_age_generate(ks_root **out, char **msg) { KGO_RET(ks_root_age_generate(out)); }
static inline ks_status kgo_root_age_string(int identity, const ks_root *r, size_t i, ks_buffer *out, char **msg) {
	if (identity) KGO_RET(ks_root_age_identity(r, i, out));
	KGO_RET(ks_root_age_recipient(r, i, out));
}
static inline ks_status kgo_root_passphrase_new(const uint8_t *p, size_t n, uint8_t wf, ks_root **out, char **msg) {
	KGO_RET(ks_root_passphrase_new(p, n, wf, out));
}

static inline ks_status kgo_root_pkcs11_new(const char *module, const char *token, const char *pin,
		const char *pin_env, const char *label, uint32_t flags, ks_root **out, char **msg) {
	KGO_RET(ks_root_pkcs11_new(module, token, pin, pin_env, label, flags, out));
}
static inline ks_status kgo_root_kmip_new(const char *host, uint16_t port, const char *server_name,
		const char *ca, const char *cert, const char *key, const char *key_id, const char *key_name,
		uint32_t version, uint32_t timeout_ms, uint32_t flags, ks_root **out, char **msg) {
	KGO_RET(ks_root_kmip_new(host, port, server_name, ca, cert, key, key_id, key_name, version, timeout_ms,
		flags, out));
}
static inline ks_status kgo_root_health_check(const ks_root *r, char **msg) {
	KGO_RET(ks_root_health_check(r));
}

static inline ks_status kgo_hazmat_gcm(int decrypt, const uint8_t *k, size_t kl, const uint8_t *n, size_t nl,
		const uint8_t *a, size_t al, const uint8_t *in, size_t il, ks_buffer *out, char **msg) {
	if (decrypt) KGO_RET(ks_hazmat_aes256gcm_decrypt(k, kl, n, nl, a, al, in, il, out));
	KGO_RET(ks_hazmat_aes256gcm_encrypt(k, kl, n, nl, a, al, in, il, out));
}
static inline ks_status kgo_hazmat_hkdf(const uint8_t *s, size_t sl, const uint8_t *k, size_t kl, const uint8_t *i,
		size_t il, size_t len, ks_buffer *out, char **msg) {
	KGO_RET(ks_hazmat_hkdf_sha256(s, sl, k, kl, i, il, len, out));
}

#endif
