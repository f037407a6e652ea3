package keystrata

/*
#include "keystrata.h"
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
		return newError(C.KS_ERR_INVALID_INPUT, "envelope is nil")
	}
	if e.KeyVersion < 0 || uint64(e.KeyVersion) > 0xffffffff {
		return newError(C.KS_ERR_INVALID_INPUT, "envelope key version out of range")
	}
	if hasNUL(e.KeyID, e.Provider) {
		return newError(C.KS_ERR_FORMAT, "envelope field contains a NUL byte")
	}
	return nil
}

// toC fills a C envelope with the Go fields for the duration of one call:
// NUL-terminated copies of the two strings (one allocation) and the
// ciphertext itself, pinned by pin (Unpin after the call).
func (e *KeyEnvelope) toC(pin *runtime.Pinner) (C.ks_envelope, error) {
	if err := e.check(); err != nil {
		return C.ks_envelope{}, err
	}
	strs := make([]byte, len(e.KeyID)+1+len(e.Provider)+1)
	copy(strs, e.KeyID)
	copy(strs[len(e.KeyID)+1:], e.Provider)
	pin.Pin(&strs[0])
	var c C.ks_envelope
	c.key_id = (*C.char)(unsafe.Pointer(&strs[0]))
	c.key_version = C.uint32_t(e.KeyVersion)
	c.provider = (*C.char)(unsafe.Pointer(&strs[len(e.KeyID)+1]))
	if len(e.Ciphertext) > 0 {
		pin.Pin(unsafe.SliceData(e.Ciphertext))
		c.ciphertext, c.ciphertext_len = cbytes(e.Ciphertext)
	}
	return c, nil
}

// envelopeFromC copies an envelope the library filled into Go and clears it.
func envelopeFromC(c *C.ks_envelope) *KeyEnvelope {
	e := &KeyEnvelope{
		KeyID:      C.GoString(c.key_id),
		KeyVersion: int(c.key_version),
		Provider:   C.GoString(c.provider),
		Ciphertext: C.GoBytes(unsafe.Pointer(c.ciphertext), C.int(c.ciphertext_len)),
	}
	C.ks_envelope_clear(c)
	return e
}

// ToMetadata returns the envelope's object-metadata form: four entries
// (MetaWrappedKey, MetaKMSID, MetaProvider, MetaKeyVersion). Errors:
// ErrInvalidInput for an envelope that cannot be written (a version out of
// range, fields that are not UTF-8).
func (e *KeyEnvelope) ToMetadata() (map[string]string, error) {
	var pin runtime.Pinner
	defer pin.Unpin()
	env, err := e.toC(&pin)
	if err != nil {
		return nil, err
	}
	var md C.ks_metadata
	var cerr *C.ks_error
	if err := cErr(C.ks_envelope_to_metadata(&env, &md, &cerr), cerr); err != nil {
		return nil, err
	}
	entries := unsafe.Slice(md.entries, int(md.count))
	m := make(map[string]string, len(entries))
	for _, kv := range entries {
		m[C.GoString(kv.name)] = C.GoString(kv.value)
	}
	C.ks_metadata_clear(&md)
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
				return nil, newError(C.KS_ERR_FORMAT, "metadata entry "+k+" contains a NUL byte")
			}
			continue
		}
		names = append(names, k)
		values = append(values, v)
	}
	var cs cStrings
	defer cs.done()
	cn, cv := cs.array(names), cs.array(values)
	var out C.ks_envelope
	var cerr *C.ks_error
	if err := cErr(C.ks_envelope_from_metadata(cn, cv, C.size_t(len(names)), &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return envelopeFromC(&out), nil
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
	return kc.WrapKeyWith(key, context, WrapFull)
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
	var pin runtime.Pinner
	defer pin.Unpin()
	cenv, err := env.toC(&pin)
	if err != nil {
		return nil, err
	}
	cp, cl := cbytes(context)
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	// The library writes the key straight into Go memory. A key is never
	// longer than its wrapped form (ks_keychain_unwrap_key_to), so this
	// buffer always has room; the library still checks, and says how much
	// it needs if not.
	out := make([]byte, 0, len(env.Ciphertext))
	for tries := 0; ; tries++ {
		op, oc := cout(out)
		st := C.ks_keychain_unwrap_key_to(p, &cenv, cp, cl, op, oc, &co.n, &co.err)
		runtime.KeepAlive(context)
		runtime.KeepAlive(out)
		if st == C.KS_OK {
			n := int(co.n)
			return out[:n:n], nil
		}
		if st != C.KS_ERR_BUFFER_TOO_SMALL || tries > 0 {
			clear(out[:cap(out)])
			return nil, co.error(st)
		}
		_ = co.error(st)
		out = make([]byte, 0, int(co.n))
	}
}
