package keystrata

/*
#include "keystrata.h"
*/
import "C"

import "runtime"

// EncryptPortable envelope-encrypts plaintext into a portable ciphertext:
// the encryption primary, wrapped by the keychain's root, travels in front
// of the envelope (Encrypt's bytes), so DecryptPortable decrypts it with
// the root alone: no keychain, no store. Layout: "KSP" | 0x01 |
// BE32(len(wrappedKEK)) | wrappedKEK | envelope (docs/FORMAT.md section
// 10). The root wraps each primary once; the keychain keeps the wrapped
// form. Counts as an encrypt.
//
// Only a keychain from Open has a root: an unbound one returns ErrPolicy.
// Anyone holding the root can unwrap the KEK and decrypt everything under
// it; destroying the key does not revoke portable ciphertexts. Errors:
// ErrPolicy, ErrUnsupported (the root's wrapping exceeds 64 KiB), the
// root's own errors, ErrIo, ErrUnavailable (closed).
func (kc *Keychain) EncryptPortable(plaintext, aad []byte) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	pp, pl := cbytes(plaintext)
	ap, al := cbytes(aad)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_keychain_encrypt_portable(p, pp, pl, ap, al, &out, &cerr)
	runtime.KeepAlive(plaintext)
	runtime.KeepAlive(aad)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// DecryptPortable decrypts a portable ciphertext (EncryptPortable) with
// root alone, with the same aad. It is root.DecryptPortable(blob, aad): the
// KEKs unwrapped are cached in the Root (up to 1024, keyed by the hash of
// the wrapped bytes, wiped when they leave and by Close), so the root is
// called once per wrapped KEK, not once per message. Errors: ErrFormat
// (framing, or a wrapped part that is not a portable KEK record),
// ErrUnsupported (another format version), the root's own errors when
// unwrapping (ErrAuthentication for a wrong age identity or passphrase;
// ErrUnavailable from a device, ErrUnknownKey for a KEK wrapped under
// another device key), ErrAuthentication (tampering, wrong aad). No
// keychain is consulted: the KEK travels with the data.
func DecryptPortable(blob, aad []byte, root *Root) ([]byte, error) {
	return root.DecryptPortable(blob, aad)
}

// DecryptPortable is the package function DecryptPortable with this root.
// Safe for concurrent use.
func (r *Root) DecryptPortable(blob, aad []byte) ([]byte, error) {
	p, err := r.acquire()
	if err != nil {
		return nil, err
	}
	defer r.release()
	bp, bl := cbytes(blob)
	ap, al := cbytes(aad)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_root_decrypt_portable(p, bp, bl, ap, al, &out, &cerr)
	runtime.KeepAlive(blob)
	runtime.KeepAlive(aad)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// PortableCounters counts a root's DecryptPortable calls.
type PortableCounters struct {
	DecryptOK     uint64 // successful decryptions
	DecryptFailed uint64 // failed decryptions
	RootCalls     uint64 // KEKs unwrapped by the root (one per wrapped KEK not cached)
	CachedKEKs    uint64 // KEKs cached in the Root now
}

// PortableCounters returns a snapshot of the root's portable-decryption
// counters (all zero before the first DecryptPortable).
func (r *Root) PortableCounters() (PortableCounters, error) {
	p, err := r.acquire()
	if err != nil {
		return PortableCounters{}, err
	}
	defer r.release()
	var c C.ks_portable_counters
	var cerr *C.ks_error
	if err := cErr(C.ks_root_portable_counters(p, &c, &cerr), cerr); err != nil {
		return PortableCounters{}, err
	}
	return PortableCounters{
		DecryptOK:     uint64(c.decrypt_ok),
		DecryptFailed: uint64(c.decrypt_failed),
		RootCalls:     uint64(c.root_calls),
		CachedKEKs:    uint64(c.cached_keks),
	}, nil
}

// ClearPortableCache forgets (and wipes) the KEKs DecryptPortable cached
// in the root: the next ciphertext under each calls the root again.
func (r *Root) ClearPortableCache() error {
	p, err := r.acquire()
	if err != nil {
		return err
	}
	defer r.release()
	var cerr *C.ks_error
	return cErr(C.ks_root_portable_clear(p, &cerr), cerr)
}
