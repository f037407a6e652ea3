package keystrata

/*
#include "kgo.h"

// An envelope's fields, read in one cgo crossing; they point into the
// envelope, so Go copies them before freeing it.
typedef struct {
	const char *key_id;
	const char *provider;
	uint32_t version;
	const uint8_t *ct;
	size_t ct_len;
} kgo_fields;

static inline kgo_fields kgo_envelope_fields(const ks_envelope *env) {
	kgo_fields f;
	f.key_id = ks_envelope_key_id(env);
	f.provider = ks_envelope_provider(env);
	f.version = ks_envelope_key_version(env);
	f.ct = ks_envelope_ciphertext(env, &f.ct_len);
	return f;
}

// Wrap and read the envelope's fields in one cgo crossing (the envelope is
// freed by a second one, once Go has copied the fields).
typedef struct { ks_status st; char *msg; ks_envelope *env; kgo_fields f; } kgo_wrapped;

static inline kgo_wrapped kgo_wrap_flat(const ks_keychain *kc, const uint8_t *k, size_t kl, const uint8_t *c,
		size_t cl) {
	kgo_wrapped r;
	memset(&r, 0, sizeof r);
	r.st = ks_keychain_wrap_key(kc, k, kl, c, cl, &r.env);
	if (r.st != KS_OK) {
		r.msg = kgo_strdup(ks_last_error_message());
		return r;
	}
	r.f = kgo_envelope_fields(r.env);
	return r;
}

// Build the envelope from Go's fields (not NUL-terminated), unwrap, copy
// the key into Go's buffer and wipe every C copy: one cgo crossing.
typedef struct { ks_status st; char *msg; size_t n; } kgo_unwrapped;

static inline char *kgo_strndup(const char *s, size_t n) {
	char *d = (char *)malloc(n + 1);
	if (d != NULL) {
		if (n > 0) memcpy(d, s, n);
		d[n] = 0;
	}
	return d;
}

static inline kgo_unwrapped kgo_unwrap_flat(const ks_keychain *kc, const char *kid, size_t kid_len, uint32_t ver,
		const char *prov, size_t prov_len, const uint8_t *ct, size_t ct_len, const uint8_t *c, size_t cl,
		uint8_t *out, size_t out_cap) {
	kgo_unwrapped r = { KS_OK, NULL, 0 };
	char *k = kgo_strndup(kid, kid_len), *p = kgo_strndup(prov, prov_len);
	ks_envelope *env = NULL;
	ks_buffer key = { NULL, 0 };
	if (k == NULL || p == NULL) {
		r.st = KS_ERR_INTERNAL;
		r.msg = kgo_strdup("out of memory");
	} else {
		r.st = ks_envelope_new(k, ver, p, ct, ct_len, &env);
		if (r.st == KS_OK) r.st = ks_keychain_unwrap_key(kc, env, c, cl, &key);
		if (r.st != KS_OK) {
			r.msg = kgo_strdup(ks_last_error_message());
		} else if (key.len > out_cap) {
			r.st = KS_ERR_INTERNAL;
			r.msg = kgo_strdup("unwrapped key longer than its ciphertext");
		} else {
			if (key.len > 0) memcpy(out, key.data, key.len);
			r.n = key.len;
		}
	}
	ks_buffer_free(&key);
	ks_envelope_free(env);
	free(k);
	free(p);
	return r;
}
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Provider is the provider name a Keychain writes into its envelopes.
const Provider = "keystrata"

// Object-metadata names of an envelope's four fields (ToMetadata,
// EnvelopeFromMetadata), as S3-style gateways store them.
const (
	MetaWrappedKey = "x-amz-meta-encryption-wrapped-key"  // base64 (standard, padded) of Ciphertext
	MetaKMSID      = "x-amz-meta-encryption-kms-id"       // KeyID
	MetaProvider   = "x-amz-meta-encryption-kms-provider" // Provider
	MetaKeyVersion = "x-amz-meta-encryption-key-version"  // KeyVersion, decimal
)

// KeyEnvelope is a wrapped data key: what WrapKey returns and UnwrapKey
// takes. KeyID is the wrapping key's ID in decimal, KeyVersion its version,
// Provider "keystrata" for a keychain. The struct is plain data: store it
// as you like, or as object metadata with ToMetadata.
type KeyEnvelope struct {
	KeyID      string
	KeyVersion int
	Provider   string
	Ciphertext []byte
}

// check refuses what no C envelope can hold, before any C call.
func (e *KeyEnvelope) check() error {
	if e == nil {
		return newError(1, "envelope is nil")
	}
	if e.KeyVersion < 0 || uint64(e.KeyVersion) > 0xffffffff {
		return newError(1, "envelope key version out of range")
	}
	if hasNUL(e.KeyID, e.Provider) {
		return newError(10, "envelope field contains a NUL byte")
	}
	return nil
}

// toC builds a C envelope for the duration of one call.
func (e *KeyEnvelope) toC() (*C.ks_envelope, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	kid, prov := C.CString(e.KeyID), C.CString(e.Provider)
	defer C.free(unsafe.Pointer(kid))
	defer C.free(unsafe.Pointer(prov))
	cp, cl := cbytes(e.Ciphertext)
	var out *C.ks_envelope
	var msg *C.char
	st := C.kgo_envelope_new(kid, C.uint32_t(e.KeyVersion), prov, cp, cl, &out, &msg)
	runtime.KeepAlive(e)
	if err := cErr(st, msg); err != nil {
		return nil, err
	}
	return out, nil
}

// envelopeFromC copies a C envelope into Go and frees it.
func envelopeFromC(env *C.ks_envelope) *KeyEnvelope {
	defer C.ks_envelope_free(env)
	return fieldsToGo(C.kgo_envelope_fields(env))
}

// fieldsToGo copies an envelope's fields (still owned by C) into Go.
func fieldsToGo(f C.kgo_fields) *KeyEnvelope {
	return &KeyEnvelope{
		KeyID:      C.GoString(f.key_id),
		KeyVersion: int(f.version),
		Provider:   C.GoString(f.provider),
		Ciphertext: C.GoBytes(unsafe.Pointer(f.ct), C.int(f.ct_len)),
	}
}

// ToMetadata returns the envelope's object-metadata form: four entries
// (MetaWrappedKey, MetaKMSID, MetaProvider, MetaKeyVersion). Errors:
// ErrInvalidInput for an envelope that cannot be written (a version out of
// range, fields that are not UTF-8).
func (e *KeyEnvelope) ToMetadata() (map[string]string, error) {
	env, err := e.toC()
	if err != nil {
		return nil, err
	}
	defer C.ks_envelope_free(env)
	n := int(C.ks_envelope_metadata_count(env))
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		var name, value *C.char
		var msg *C.char
		if err := cErr(C.kgo_envelope_metadata_entry(env, C.size_t(i), &name, &value, &msg), msg); err != nil {
			return nil, err
		}
		m[C.GoString(name)] = C.GoString(value)
	}
	return m, nil
}

// EnvelopeFromMetadata reads an envelope from object metadata (the four
// entries ToMetadata writes; other entries are ignored). Errors: ErrFormat
// if an entry is missing or malformed.
func EnvelopeFromMetadata(metadata map[string]string) (*KeyEnvelope, error) {
	names := make([]string, 0, len(metadata))
	values := make([]string, 0, len(metadata))
	for k, v := range metadata {
		if hasNUL(k, v) {
			if isEnvelopeMetadata(k) {
				return nil, newError(10, "metadata entry "+k+" contains a NUL byte")
			}
			continue
		}
		names = append(names, k)
		values = append(values, v)
	}
	cn, cv := cStrings(names), cStrings(values)
	defer freeCStrings(cn, len(names))
	defer freeCStrings(cv, len(values))
	var out *C.ks_envelope
	var msg *C.char
	if err := cErr(C.kgo_envelope_from_metadata(cn, cv, C.size_t(len(names)), &out, &msg), msg); err != nil {
		return nil, err
	}
	return envelopeFromC(out), nil
}

func isEnvelopeMetadata(name string) bool {
	switch name {
	case MetaWrappedKey, MetaKMSID, MetaProvider, MetaKeyVersion:
		return true
	}
	return false
}

// WrapKey wraps key (1..4096 bytes, typically a 32-byte data key) under the
// encryption primary, binding the envelope to the keychain's provider, the
// primary's key ID and version, and context (nil is fine): UnwrapKey needs
// the same context. Errors: ErrInvalidInput (length), and as Seal.
func (kc *Keychain) WrapKey(key, context []byte) (*KeyEnvelope, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	kp, kl := cbytes(key)
	cp, cl := cbytes(context)
	r := C.kgo_wrap_flat(p, kp, kl, cp, cl)
	runtime.KeepAlive(key)
	runtime.KeepAlive(context)
	if err := cErr(r.st, r.msg); err != nil {
		return nil, err
	}
	env := fieldsToGo(r.f)
	C.ks_envelope_free(r.env)
	return env, nil
}

// UnwrapKey returns the key wrapped in env, given the context used by
// WrapKey. The result is secret: the caller may clear it when done. Errors:
// ErrAuthentication (changed envelope or context), ErrInvalidInput
// (another provider), ErrFormat, ErrUnknownKey, ErrKeyDisabled,
// ErrKeyDestroyed.
func (kc *Keychain) UnwrapKey(env *KeyEnvelope, context []byte) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	if err := env.check(); err != nil {
		return nil, err
	}
	out := make([]byte, len(env.Ciphertext))
	var outp *C.uint8_t
	if len(out) > 0 {
		outp = (*C.uint8_t)(unsafe.Pointer(&out[0]))
	}
	cp, cl := cbytes(context)
	ctp, ctl := cbytes(env.Ciphertext)
	r := C.kgo_unwrap_flat(p, cstr(env.KeyID), C.size_t(len(env.KeyID)), C.uint32_t(env.KeyVersion),
		cstr(env.Provider), C.size_t(len(env.Provider)), ctp, ctl, cp, cl, outp, C.size_t(len(out)))
	runtime.KeepAlive(env)
	runtime.KeepAlive(context)
	if err := cErr(r.st, r.msg); err != nil {
		clear(out)
		return nil, err
	}
	return out[:int(r.n):int(r.n)], nil
}

// cstr points C at a Go string's bytes for the duration of one call (no
// copy, no NUL: pass the length beside it).
func cstr(s string) *C.char {
	if len(s) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}
