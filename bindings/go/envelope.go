package keystrata

/*
#include "kgo.h"
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

// toC builds a C envelope for the duration of one call.
func (e *KeyEnvelope) toC() (*C.ks_envelope, error) {
	if e == nil {
		return nil, newError(1, "envelope is nil")
	}
	if e.KeyVersion < 0 || uint64(e.KeyVersion) > 0xffffffff {
		return nil, newError(1, "envelope key version out of range")
	}
	if hasNUL(e.KeyID, e.Provider) {
		return nil, newError(10, "envelope field contains a NUL byte")
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
	var n C.size_t
	ct := C.ks_envelope_ciphertext(env, &n)
	b := make([]byte, int(n))
	if n > 0 {
		copy(b, unsafe.Slice((*byte)(unsafe.Pointer(ct)), int(n)))
	}
	return &KeyEnvelope{
		KeyID:      C.GoString(C.ks_envelope_key_id(env)),
		KeyVersion: int(C.ks_envelope_key_version(env)),
		Provider:   C.GoString(C.ks_envelope_provider(env)),
		Ciphertext: b,
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
	var out *C.ks_envelope
	var msg *C.char
	st := C.kgo_wrap_key(p, kp, kl, cp, cl, &out, &msg)
	runtime.KeepAlive(key)
	runtime.KeepAlive(context)
	if err := cErr(st, msg); err != nil {
		return nil, err
	}
	return envelopeFromC(out), nil
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
	cenv, err := env.toC()
	if err != nil {
		return nil, err
	}
	defer C.ks_envelope_free(cenv)
	cp, cl := cbytes(context)
	var out C.ks_buffer
	var msg *C.char
	st := C.kgo_unwrap_key(p, cenv, cp, cl, &out, &msg)
	runtime.KeepAlive(context)
	if err := cErr(st, msg); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}
