package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"runtime"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// A Keychain holds AES-256 keys with one primary per purpose (encrypt,
// derive) and, once RotateSigning made the first, signing keys (Ed25519,
// ECDSA) with a signing primary. Create one with Generate, Load, LoadFile,
// Open or ImportTinkCleartext, and Close it when done: Close wipes the key
// material (a finalizer does it otherwise, at some later garbage
// collection).
//
// A Keychain is safe for concurrent use by many goroutines, including the
// lifecycle methods (Rotate, Promote, ...) and Close. After Close every
// method returns an error wrapping ErrUnavailable.
type Keychain struct {
	ptr  *C.ks_keychain
	life lifeline

	subsMu sync.Mutex
	subs   map[uint64]cgo.Handle // live event subscriptions, by subscription ID
	slots  []unsafe.Pointer      // C memory holding each subscription's handle (user_data)
}

func newKeychain(p *C.ks_keychain) *Keychain {
	kc := &Keychain{ptr: p}
	runtime.SetFinalizer(kc, (*Keychain).finalize)
	return kc
}

func (kc *Keychain) acquire() (*C.ks_keychain, error) {
	if kc == nil {
		return nil, newError(C.KS_ERR_UNAVAILABLE, "keychain is nil")
	}
	if !kc.life.acquire() {
		return nil, errClosed("keychain")
	}
	return kc.ptr, nil
}

func (kc *Keychain) release() {
	if kc.life.release() {
		kc.free()
	}
	runtime.KeepAlive(kc)
}

// free runs exactly once, when no call is in flight.
func (kc *Keychain) free() {
	C.ks_keychain_free(kc.ptr)
	kc.ptr = nil
	kc.subsMu.Lock()
	for _, h := range kc.subs {
		dropHandle(h)
	}
	kc.subs = nil
	// No callback runs once ks_keychain_free returned.
	for _, p := range kc.slots {
		C.free(p)
	}
	kc.slots = nil
	kc.subsMu.Unlock()
}

func (kc *Keychain) finalize() {
	if first, _ := kc.life.shut(); first {
		kc.free()
	}
}

// Close wipes the keychain's key material and releases it. It is
// idempotent and safe to call concurrently with other methods: calls in
// flight finish (or fail with ErrUnavailable), later calls fail with an
// error wrapping ErrUnavailable. Subscriptions end with it.
func (kc *Keychain) Close() error {
	if kc == nil || !kc.life.acquire() {
		return nil
	}
	first, _ := kc.life.shut()
	if first {
		runtime.SetFinalizer(kc, nil)
		// Closing cannot fail on a live handle; the error is not wanted.
		C.ks_keychain_close(kc.ptr, nil)
	}
	kc.release()
	return nil
}

// Generate creates a keychain with one encryption key and one derivation
// key, both primary, under policy (nil for DefaultPolicy()). The keychain
// is unbound: persist it with Save or SaveFile; it never rotates by itself.
func Generate(policy *Policy) (*Keychain, error) {
	cp, err := policy.toC()
	if err != nil {
		return nil, err
	}
	var out *C.ks_keychain
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_generate(cp, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newKeychain(out), nil
}

// Load opens a keychain saved by Save with root. The result is unbound.
// Errors: ErrAuthentication (wrong identity or passphrase, tampered),
// ErrFormat (not a saved keychain), ErrUnsupported (newer format version).
func Load(data []byte, root *Root) (*Keychain, error) {
	rp, err := root.acquire()
	if err != nil {
		return nil, err
	}
	defer root.release()
	dp, dl := cbytes(data)
	var out *C.ks_keychain
	var cerr *C.ks_error
	st := C.ks_keychain_load(dp, dl, rp, &out, &cerr)
	runtime.KeepAlive(data)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newKeychain(out), nil
}

// LoadFile loads a keychain from the file path (unbound). Errors: as Load,
// plus ErrIo if the file cannot be read.
func LoadFile(path string, root *Root) (*Keychain, error) {
	if hasNUL(path) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "path contains a NUL byte")
	}
	rp, err := root.acquire()
	if err != nil {
		return nil, err
	}
	defer root.release()
	var cs cStrings
	defer cs.done()
	cpath := cs.add(path)
	var out *C.ks_keychain
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_load_file(cpath, rp, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newKeychain(out), nil
}

// Open opens the keychain at location, creating it if the store is empty,
// and binds it to that store. location is a file path (or file:// URL), or
// etcd://[user@]host:port[,host:port...]/key/path (etcds:// for TLS; see
// docs/STORES.md and docs/ETCD.md).
//
// Any number of handles, processes and machines may open one location at
// once; none ever loses what another wrote. Every change of state (rotation,
// a block of usage counts) is applied to the latest stored state and written
// by compare-and-swap before the first ciphertext under it is returned;
// usage limits hold for all writers together, and at the limit exactly one
// of them rotates. A ciphertext under a key another writer made decrypts at
// once; a new primary is adopted within a second.
//
// policy (nil: keep the stored one, or the default for a new keychain)
// replaces the stored policy. The keychain keeps its own reference to root.
// A store whose contents do not open with root is an error and is left
// untouched. Errors: ErrInvalidInput (unknown scheme, bad URL),
// ErrUnavailable (store unreachable), ErrIo, and those of Load.
func Open(location string, root *Root, policy *Policy) (*Keychain, error) {
	path := location
	if hasNUL(path) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "location contains a NUL byte")
	}
	cp, err := policy.toC()
	if err != nil {
		return nil, err
	}
	rp, err := root.acquire()
	if err != nil {
		return nil, err
	}
	defer root.release()
	var cs cStrings
	defer cs.done()
	cpath := cs.add(path)
	var out *C.ks_keychain
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_open(cpath, rp, cp, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newKeychain(out), nil
}

// ImportTinkCleartext creates a keychain from a Tink cleartext JSON keyset
// of 32-byte AesGcmKey keys with TINK output prefix. Tink's ciphertexts keep
// decrypting (Unseal, and Decrypt for KmsEnvelopeAead); a fresh derivation
// key is added. Errors: ErrUnsupported (another key type, size or prefix),
// ErrFormat (not a keyset).
func ImportTinkCleartext(json []byte) (*Keychain, error) {
	jp, jl := cbytes(json)
	var out *C.ks_keychain
	var cerr *C.ks_error
	st := C.ks_keychain_import_tink_cleartext(jp, jl, &out, &cerr)
	runtime.KeepAlive(json)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newKeychain(out), nil
}

// InsecureExportTinkCleartext returns the encryption keys as a Tink
// cleartext JSON keyset. It holds key material in the clear: the name is
// the warning, as tink-go's insecurecleartextkeyset.
func (kc *Keychain) InsecureExportTinkCleartext() ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	var out C.ks_buffer
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_insecure_export_tink_cleartext(p, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// ExportTinkCleartext is the old name of InsecureExportTinkCleartext.
//
// Deprecated: use InsecureExportTinkCleartext (the same call).
func (kc *Keychain) ExportTinkCleartext() ([]byte, error) { return kc.InsecureExportTinkCleartext() }

// Save returns the keychain protected by root: under an age root an age
// file (`age -d -i identity.txt` prints the keychain JSON), under a
// passphrase root an age scrypt file.
func (kc *Keychain) Save(root *Root) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	rp, err := root.acquire()
	if err != nil {
		return nil, err
	}
	defer root.release()
	var out C.ks_buffer
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_save(p, rp, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// SaveFile saves the keychain to the file path atomically (temporary file,
// fsync, rename, fsync of the directory). The keychain stays unbound.
// Errors: ErrIo.
func (kc *Keychain) SaveFile(path string, root *Root) error {
	if hasNUL(path) {
		return newError(C.KS_ERR_INVALID_INPUT, "path contains a NUL byte")
	}
	p, err := kc.acquire()
	if err != nil {
		return err
	}
	defer kc.release()
	rp, err := root.acquire()
	if err != nil {
		return err
	}
	defer root.release()
	var cs cStrings
	defer cs.done()
	cpath := cs.add(path)
	var cerr *C.ks_error
	return cErr(C.ks_keychain_save_file(p, cpath, rp, &cerr), cerr)
}

// nonNil gives the (possibly empty) result of a successful call as a
// non-nil slice and nothing on error, as the Vec-returning forms always did.
func nonNil(out []byte, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// Seal encrypts a small secret under the encryption primary with
// associated data aad (nil is fine). The result is in Tink's AEAD format,
// 0x01 | BE32(key_id) | nonce(12) | ciphertext | tag(16): len(plaintext)+33
// bytes. Errors: ErrPolicy (usage limit of an unbound keychain reached:
// Rotate and save), ErrIo (a bound keychain could not write its file),
// ErrUnavailable (closed).
func (kc *Keychain) Seal(plaintext, aad []byte) ([]byte, error) {
	out, err := kc.SealTo(nil, plaintext, aad)
	return nonNil(out, err)
}

// Unseal opens what Seal (or Tink) produced, with the same aad. Errors:
// ErrFormat (malformed), ErrUnknownKey, ErrKeyDisabled, ErrKeyDestroyed,
// ErrAuthentication (tampered, truncated, wrong aad).
func (kc *Keychain) Unseal(ciphertext, aad []byte) ([]byte, error) {
	out, err := kc.UnsealTo(nil, ciphertext, aad)
	return nonNil(out, err)
}

// Encrypt envelope-encrypts plaintext with a fresh 32-byte data key wrapped
// by the encryption primary (Tink KmsEnvelopeAead layout,
// BE32(len(enc_dek)) | enc_dek | nonce(12) | ciphertext | tag(16):
// len(plaintext)+99 bytes). Errors: as Seal.
func (kc *Keychain) Encrypt(plaintext, aad []byte) ([]byte, error) {
	out, err := kc.EncryptTo(nil, plaintext, aad)
	return nonNil(out, err)
}

// Decrypt decrypts what Encrypt (or Tink's KmsEnvelopeAead with this
// keychain as remote AEAD) produced. Errors: as Unseal.
func (kc *Keychain) Decrypt(blob, aad []byte) ([]byte, error) {
	out, err := kc.DecryptTo(nil, blob, aad)
	return nonNil(out, err)
}

// DeriveOriginKey derives the stable 32-byte key for (origin, instance,
// epoch) by HKDF-SHA256 under the derivation primary. Rotate does not
// change it; bump epoch to rotate one origin's key. The result is secret:
// the caller may clear it when done.
func (kc *Keychain) DeriveOriginKey(origin, instance string, epoch uint64) ([]byte, error) {
	return kc.DeriveOriginKeyWith(0, origin, instance, epoch)
}

// DeriveOriginKeyWith is DeriveOriginKey under the derivation key keyID
// (0 means the derivation primary). Errors: ErrUnknownKey (not a
// derivation key), ErrKeyDisabled, ErrKeyDestroyed.
func (kc *Keychain) DeriveOriginKeyWith(keyID uint32, origin, instance string, epoch uint64) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	o, in := []byte(origin), []byte(instance)
	op, ol := cbytes(o)
	ip, il := cbytes(in)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_keychain_derive_origin_key(p, C.uint32_t(keyID), op, ol, ip, il, C.uint64_t(epoch), &out, &cerr)
	runtime.KeepAlive(o)
	runtime.KeepAlive(in)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// Derive returns length bytes (1..8160) of HKDF-SHA256 with info as
// given, no salt, under the derivation primary. Errors: ErrInvalidInput for
// a length out of range.
func (kc *Keychain) Derive(info []byte, length int) ([]byte, error) {
	return kc.DeriveWith(0, info, length)
}

// DeriveWith is Derive under the derivation key keyID (0: the primary).
func (kc *Keychain) DeriveWith(keyID uint32, info []byte, length int) ([]byte, error) {
	if length < 0 {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "negative length")
	}
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	ip, il := cbytes(info)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_keychain_derive(p, C.uint32_t(keyID), ip, il, C.size_t(length), &out, &cerr)
	runtime.KeepAlive(info)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

type lifecycleOp int

const (
	opRotate lifecycleOp = iota
	opRotateDerivation
	opAddKey
	opPromote
	opDisable
	opEnable
	opDestroy
	opPrimary
	opRotateSigning
	opAddSigningKey
)

// lifecycle runs one lifecycle call; arg is a key ID, a purpose or an
// algorithm, as the operation needs.
func (kc *Keychain) lifecycle(op lifecycleOp, arg uint32) (KeyInfo, error) {
	p, err := kc.acquire()
	if err != nil {
		return KeyInfo{}, err
	}
	defer kc.release()
	var info C.ks_key_info
	var cerr *C.ks_error
	var st C.enum_ks_status
	a := C.uint32_t(arg)
	switch op {
	case opRotate:
		st = C.ks_keychain_rotate(p, &info, &cerr)
	case opRotateDerivation:
		st = C.ks_keychain_rotate_derivation(p, &info, &cerr)
	case opAddKey:
		st = C.ks_keychain_add_key(p, a, &info, &cerr)
	case opPromote:
		st = C.ks_keychain_promote(p, a, &info, &cerr)
	case opDisable:
		st = C.ks_keychain_disable(p, a, &cerr)
	case opEnable:
		st = C.ks_keychain_enable(p, a, &cerr)
	case opDestroy:
		st = C.ks_keychain_destroy(p, a, &cerr)
	case opRotateSigning:
		st = C.ks_keychain_rotate_signing(p, a, &info, &cerr)
	case opAddSigningKey:
		st = C.ks_keychain_add_signing_key(p, a, &info, &cerr)
	default:
		st = C.ks_keychain_primary(p, a, &info, &cerr)
	}
	if err := cErr(st, cerr); err != nil {
		return KeyInfo{}, err
	}
	return keyInfoFromC(&info), nil
}

// Rotate adds an encryption key and makes it primary. Old ciphertexts keep
// decrypting; derived keys do not change. A bound keychain writes its file
// first. It returns the new key.
func (kc *Keychain) Rotate() (KeyInfo, error) { return kc.lifecycle(opRotate, 0) }

// RotateDerivation adds a derivation key and makes it the derivation
// primary: every derived key changes (for compromise).
func (kc *Keychain) RotateDerivation() (KeyInfo, error) {
	return kc.lifecycle(opRotateDerivation, 0)
}

// AddKey adds an enabled, non-primary key of purpose: the first phase of a
// two-phase rotation (add, roll the keychain out, then Promote). Errors:
// ErrInvalidInput for a purpose other than PurposeEncrypt or PurposeDerive
// (a signing key needs an algorithm: AddSigningKey).
func (kc *Keychain) AddKey(purpose Purpose) (KeyInfo, error) {
	return kc.lifecycle(opAddKey, uint32(purpose))
}

// Promote makes the enabled key keyID the primary of its purpose. Errors:
// ErrUnknownKey; ErrPolicy if the key is not enabled.
func (kc *Keychain) Promote(keyID uint32) (KeyInfo, error) {
	return kc.lifecycle(opPromote, keyID)
}

// Disable disables keyID until Enable: its ciphertexts fail with
// ErrKeyDisabled; a signing key neither signs nor verifies. Errors:
// ErrUnknownKey; ErrPolicy for a primary or destroyed key.
func (kc *Keychain) Disable(keyID uint32) error {
	_, err := kc.lifecycle(opDisable, keyID)
	return err
}

// Enable enables a disabled key. Errors: ErrUnknownKey; ErrPolicy for a
// destroyed key.
func (kc *Keychain) Enable(keyID uint32) error {
	_, err := kc.lifecycle(opEnable, keyID)
	return err
}

// Destroy wipes keyID's material, irreversibly; its ciphertexts then fail
// with ErrKeyDestroyed. Destroying a destroyed key is not an error.
// Errors: ErrUnknownKey; ErrPolicy for a primary.
func (kc *Keychain) Destroy(keyID uint32) error {
	_, err := kc.lifecycle(opDestroy, keyID)
	return err
}

// Primary returns the encryption primary: the key new ciphertexts use.
func (kc *Keychain) Primary() (KeyInfo, error) { return kc.PrimaryOf(PurposeEncrypt) }

// PrimaryOf returns the primary key of purpose; for PurposeSign, the key
// Sign uses. Errors: ErrUnknownKey (PurposeSign before any RotateSigning),
// ErrInvalidInput (not a purpose).
func (kc *Keychain) PrimaryOf(purpose Purpose) (KeyInfo, error) {
	return kc.lifecycle(opPrimary, uint32(purpose))
}

// Keys lists every key, in order of creation (a consistent snapshot).
func (kc *Keychain) Keys() ([]KeyInfo, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	// The library writes into Go memory; a key added between two calls
	// makes the first too small, and the second gets room to spare.
	infos := make([]C.ks_key_info, 8)
	for {
		var n C.size_t
		var cerr *C.ks_error
		st := C.ks_keychain_keys(p, &infos[0], C.size_t(len(infos)), &n, &cerr)
		if st == C.KS_ERR_BUFFER_TOO_SMALL {
			_ = cErr(st, cerr)
			infos = make([]C.ks_key_info, int(n)+4)
			continue
		}
		if err := cErr(st, cerr); err != nil {
			return nil, err
		}
		res := make([]KeyInfo, int(n))
		for i := range res {
			res[i] = keyInfoFromC(&infos[i])
		}
		return res, nil
	}
}

// Policy returns the keychain's rotation policy.
func (kc *Keychain) Policy() (Policy, error) {
	p, err := kc.acquire()
	if err != nil {
		return Policy{}, err
	}
	defer kc.release()
	var out C.ks_policy
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_get_policy(p, &out, &cerr), cerr); err != nil {
		return Policy{}, err
	}
	return policyFromC(&out), nil
}

// SetPolicy replaces the rotation policy (written to the file if the
// keychain is bound). Errors: ErrInvalidInput for an invalid policy.
func (kc *Keychain) SetPolicy(policy Policy) error {
	cp, err := policy.toC()
	if err != nil {
		return err
	}
	p, err := kc.acquire()
	if err != nil {
		return err
	}
	defer kc.release()
	var cerr *C.ks_error
	return cErr(C.ks_keychain_set_policy(p, cp, &cerr), cerr)
}

// Counters returns a snapshot of the operation counters.
func (kc *Keychain) Counters() (Counters, error) {
	p, err := kc.acquire()
	if err != nil {
		return Counters{}, err
	}
	defer kc.release()
	var out C.ks_counters
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_counters(p, &out, &cerr), cerr); err != nil {
		return Counters{}, err
	}
	return countersFromC(&out), nil
}

// HealthCheck returns nil if the keychain can serve calls, an error
// wrapping ErrUnavailable once closed.
func (kc *Keychain) HealthCheck() error {
	p, err := kc.acquire()
	if err != nil {
		return err
	}
	defer kc.release()
	var cerr *C.ks_error
	return cErr(C.ks_keychain_health_check(p, &cerr), cerr)
}

// ActiveKeyVersion returns the encryption primary's version: what new
// envelopes carry.
func (kc *Keychain) ActiveKeyVersion() (int, error) {
	p, err := kc.acquire()
	if err != nil {
		return 0, err
	}
	defer kc.release()
	var v C.uint32_t
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_active_key_version(p, &v, &cerr), cerr); err != nil {
		return 0, err
	}
	return int(v), nil
}

// Refresh adopts the latest state of the store the keychain is bound to
// now, rather than within its refresh interval (a second). It does nothing
// for an unbound keychain. Errors: ErrUnavailable (store unreachable),
// ErrIo, and those of Load.
func (kc *Keychain) Refresh() error {
	p, err := kc.acquire()
	if err != nil {
		return err
	}
	defer kc.release()
	var cerr *C.ks_error
	return cErr(C.ks_keychain_refresh(p, &cerr), cerr)
}

// IsBound reports whether the keychain is bound to a store (Open).
func (kc *Keychain) IsBound() (bool, error) {
	p, err := kc.acquire()
	if err != nil {
		return false, err
	}
	defer kc.release()
	var b C.bool
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_is_bound(p, &b, &cerr), cerr); err != nil {
		return false, err
	}
	return bool(b), nil
}
