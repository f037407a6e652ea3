package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// The rest of signing: minisign signatures, trust files (TrustedKeys) and
// signers whose key lives outside the keychain (Signer). The rules are
// the core's; this file translates the ks_keychain_sign_minisign,
// ks_trusted_keys and ks_signer families of the C ABI.

// ---------------------------------------------------------------------
// minisign
// ---------------------------------------------------------------------

// SignMinisign signs data as `minisign -S` does, with the signing primary
// (which must be Ed25519), and returns the text of the .minisig file: a
// prehashed signature, and trustedComment under the global signature
// (unlike minisign's CLI, nothing is added to the comment). `minisign -V`
// verifies it with the key's PublicKey(keyID, PublicKeyMinisign). Emits an
// EventSigned like every signature. Errors: ErrUnknownKey (no signing
// key), ErrUnsupported (an ECDSA signing primary), ErrInvalidInput (a
// comment minisign cannot carry: a line end or another control character,
// over 8173 bytes), ErrUnavailable (closed).
func (kc *Keychain) SignMinisign(data []byte, trustedComment string) (string, error) {
	if hasNUL(trustedComment) {
		return "", newError(C.KS_ERR_INVALID_INPUT, "the trusted comment contains a NUL byte")
	}
	p, err := kc.acquire()
	if err != nil {
		return "", err
	}
	defer kc.release()
	var cs cStrings
	defer cs.done()
	comment := cs.add(trustedComment)
	dp, dl := cbytes(data)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_keychain_sign_minisign(p, dp, dl, comment, &out, &cerr)
	runtime.KeepAlive(data)
	if err := cErr(st, cerr); err != nil {
		return "", err
	}
	return string(takeBuffer(&out)), nil
}

// VerifyMinisign verifies a minisign signature (the text of a .minisig
// file, prehashed or legacy, as `minisign -S` or SignMinisign make it) of
// data with the enabled Ed25519 signing key whose minisign key ID it
// names, and returns that key. Imported keys keep their minisign key ID.
// A failure emits EventVerifyFailed. Errors: ErrAuthentication (it does not
// verify, trusted comment included), ErrUnknownKey (no enabled key has the
// key ID), ErrFormat (not a minisign signature), ErrUnsupported (an
// unknown algorithm), ErrUnavailable (closed).
func (kc *Keychain) VerifyMinisign(data []byte, signature string) (KeyInfo, error) {
	p, err := kc.acquire()
	if err != nil {
		return KeyInfo{}, err
	}
	defer kc.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	dp, dl := cbytes(data)
	sp, sl := cstringBytes(signature)
	st := C.ks_keychain_verify_minisign(p, dp, dl, sp, sl, &co.info, &co.err)
	runtime.KeepAlive(data)
	runtime.KeepAlive(signature)
	if err := co.error(st); err != nil {
		return KeyInfo{}, err
	}
	return keyInfoFromC(&co.info), nil
}

// ImportMinisignSecretKey imports a minisign secret key (the text of the
// file `minisign -G` writes) as an Ed25519 signing key that keeps its
// minisign key ID, so its signatures verify against the .pub file
// published before. It becomes the signing primary if the keychain has
// none (otherwise Promote it). password decrypts an encrypted key; pass
// nil for one made with `minisign -G -W` (a password given for it is
// ignored). The library wipes its copy of the password; password itself
// is the caller's to clear. A bound keychain writes its store first.
// Decrypting runs scrypt with the key's own limits (at most minisign's:
// about 1 GiB and seconds).
//
// Errors: ErrAuthentication (wrong password), ErrInvalidInput (an
// encrypted key and no password; the key is in the keychain already),
// ErrPolicy (scrypt limits above minisign's own), ErrUnsupported,
// ErrFormat (not a minisign secret key), ErrUnavailable (closed).
func (kc *Keychain) ImportMinisignSecretKey(text string, password []byte) (KeyInfo, error) {
	p, err := kc.acquire()
	if err != nil {
		return KeyInfo{}, err
	}
	defer kc.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	tp, tl := cstringBytes(text)
	pp, pl := cbytes(password)
	st := C.ks_keychain_import_minisign_secret_key(p, tp, tl, pp, pl, &co.info, &co.err)
	runtime.KeepAlive(text)
	runtime.KeepAlive(password)
	if err := co.error(st); err != nil {
		return KeyInfo{}, err
	}
	return keyInfoFromC(&co.info), nil
}

// MinisignVerify verifies a minisign signature (.minisig text, prehashed
// or legacy) of data with a minisign public key alone, no keychain:
// publicKey is the text of a .pub file or its base64 line alone (what
// `minisign -P` takes). It returns the signature's trusted comment, which
// the signature authenticates. Errors: ErrAuthentication (it does not
// verify), ErrUnknownKey (the signature names another key ID; the message
// gives both as minisign prints them), ErrFormat (a key or signature that
// does not parse), ErrUnsupported (an unknown algorithm). Safe for
// concurrent use.
func MinisignVerify(publicKey string, data []byte, signature string) (trustedComment string, err error) {
	if hasNUL(publicKey) {
		return "", newError(C.KS_ERR_FORMAT, "the minisign public key contains a NUL byte")
	}
	var cs cStrings
	defer cs.done()
	pk := cs.add(publicKey)
	dp, dl := cbytes(data)
	sp, sl := cstringBytes(signature)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_minisign_verify(pk, dp, dl, sp, sl, &out, &cerr)
	runtime.KeepAlive(data)
	runtime.KeepAlive(signature)
	if err := cErr(st, cerr); err != nil {
		return "", err
	}
	return string(takeBuffer(&out)), nil
}

// ---------------------------------------------------------------------
// Trust files
// ---------------------------------------------------------------------

// TrustKind says which of the two signing paths a trusted key belongs to.
// Its numbers are the C library's KS_TRUST_* values.
type TrustKind int

const (
	// TrustOfficial: an official key, ECDSA (P-256 or secp256k1) whose
	// private half stays in an HSM or KMS; its signatures are DER or raw.
	TrustOfficial TrustKind = C.KS_TRUST_OFFICIAL
	// TrustCommunity: a community author's minisign key (Ed25519); its
	// signatures are .minisig text.
	TrustCommunity TrustKind = C.KS_TRUST_COMMUNITY
)

// String is the kind's name, the same in every language ("official",
// "community"), read from the C library (ks_trust_kind_name), or
// "TrustKind(N)" for a number the library does not know.
func (k TrustKind) String() string {
	if n := C.ks_trust_kind_name(C.int(k)); n != nil {
		return C.GoString(n)
	}
	return fmt.Sprintf("TrustKind(%d)", int(k))
}

// TrustVerified says which trusted key made a signature.
type TrustVerified struct {
	Name      string    // the key's name in the trust file
	Kind      TrustKind // official or community
	Algorithm Algorithm // the key's algorithm (AlgorithmEd25519 for community keys)
	// TrustedComment is a minisign signature's trusted comment, which the
	// signature authenticates; "" for an official key's signature.
	TrustedComment string
}

// TrustedKeys are the keys of a trust file (a KEYS.txt, docs/SIGNING.md):
// named public keys, official (ECDSA, base64 of the DER
// SubjectPublicKeyInfo: PublicKey(id, PublicKeyDER), or
// x509.MarshalPKIXPublicKey) or community (a minisign .pub base64 line),
// each active or revoked, one per line:
//
//	# name         kind       status   algorithm        public key
//	release-2026   official   active   ecdsa-p256       MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE...
//	alice          community  active   minisign         RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3
//
// Get them with ParseTrustedKeys or LoadTrustedKeys. TrustedKeys are
// immutable and safe for concurrent use. Close releases them (a finalizer
// does it otherwise, later); afterwards Verify returns an error wrapping
// ErrUnavailable.
type TrustedKeys struct {
	ptr  *C.ks_trusted_keys
	life lifeline
}

func newTrustedKeys(p *C.ks_trusted_keys) *TrustedKeys {
	t := &TrustedKeys{ptr: p}
	runtime.SetFinalizer(t, (*TrustedKeys).finalize)
	return t
}

func (t *TrustedKeys) acquire() (*C.ks_trusted_keys, error) {
	if t == nil {
		return nil, newError(C.KS_ERR_UNAVAILABLE, "trusted keys are nil")
	}
	if !t.life.acquire() {
		return nil, errClosed("trusted keys")
	}
	return t.ptr, nil
}

func (t *TrustedKeys) release() {
	if t.life.release() {
		t.free()
	}
	runtime.KeepAlive(t)
}

func (t *TrustedKeys) free() {
	C.ks_trusted_keys_free(t.ptr)
	t.ptr = nil
}

func (t *TrustedKeys) finalize() {
	if first, _ := t.life.shut(); first {
		t.free()
	}
}

// ParseTrustedKeys parses the text of a trust file. Errors: ErrFormat (a
// malformed line: the message names its number and echoes at most 64
// characters of it; a public key that does not parse or does not match
// its algorithm; two keys with one name or one key; text that is not
// UTF-8), ErrInvalidInput (over 1 MiB or 10000 keys).
func ParseTrustedKeys(text []byte) (*TrustedKeys, error) {
	tp, tl := cbytes(text)
	var out *C.ks_trusted_keys
	var cerr *C.ks_error
	st := C.ks_trusted_keys_parse(tp, tl, &out, &cerr)
	runtime.KeepAlive(text)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newTrustedKeys(out), nil
}

// LoadTrustedKeys reads and parses the trust file at path. Errors: ErrIo
// (it cannot be read), and those of ParseTrustedKeys.
func LoadTrustedKeys(path string) (*TrustedKeys, error) {
	if hasNUL(path) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "path contains a NUL byte")
	}
	var cs cStrings
	defer cs.done()
	var out *C.ks_trusted_keys
	var cerr *C.ks_error
	if err := cErr(C.ks_trusted_keys_load(cs.add(path), &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newTrustedKeys(out), nil
}

// Len is the number of keys the file lists, revoked ones included; 0 once
// closed.
func (t *TrustedKeys) Len() int {
	p, err := t.acquire()
	if err != nil {
		return 0
	}
	defer t.release()
	return int(C.ks_trusted_keys_count(p))
}

// Verify verifies signature over data and says which trusted key made it.
// A signature that is minisign text (.minisig) is checked against the
// community key its key ID names; any other bytes against the official
// keys (ECDSA, DER or raw r ‖ s).
//
// Errors: ErrKeyDisabled (the key that verifies was revoked; the message
// names it), ErrUnknownKey (no listed key has the minisign key ID; no
// official key is listed), ErrAuthentication (no key verifies it),
// ErrFormat (minisign text that does not parse), ErrUnavailable (closed).
func (t *TrustedKeys) Verify(data, signature []byte) (TrustVerified, error) {
	p, err := t.acquire()
	if err != nil {
		return TrustVerified{}, err
	}
	defer t.release()
	dp, dl := cbytes(data)
	sp, sl := cbytes(signature)
	var r C.ks_trust_result
	var cerr *C.ks_error
	st := C.ks_trusted_keys_verify(p, dp, dl, sp, sl, &r, &cerr)
	runtime.KeepAlive(data)
	runtime.KeepAlive(signature)
	if err := cErr(st, cerr); err != nil {
		return TrustVerified{}, err
	}
	v := TrustVerified{
		Name:      C.GoString(r.name),
		Kind:      TrustKind(r.kind),
		Algorithm: Algorithm(r.algorithm),
	}
	if r.trusted_comment != nil {
		v.TrustedComment = C.GoString(r.trusted_comment)
	}
	C.ks_trust_result_clear(&r)
	return v, nil
}

// Close releases the keys. It is idempotent; Verify afterwards returns an
// error wrapping ErrUnavailable.
func (t *TrustedKeys) Close() error {
	if t == nil {
		return nil
	}
	first, now := t.life.shut()
	if !first {
		return nil
	}
	runtime.SetFinalizer(t, nil)
	if now {
		t.free()
	}
	return nil
}

// ---------------------------------------------------------------------
// Signers
// ---------------------------------------------------------------------

// A Signer signs with a key that may never leave where it lives: a
// PKCS#11 token or HSM (NewPkcs11Signer), or a keychain's signing primary
// ((*Keychain).Signer). Every kind behaves the same: Sign returns an
// Ed25519 signature (64 bytes) or a DER ECDSA signature over
// SHA-256(message) (crypto/ecdsa's VerifyASN1 format), and signatures
// verify with PublicKey in any language, with VerifySignature and the raw
// key, or with crypto/ed25519 and crypto/ecdsa (P-256) and the PEM or DER
// one.
//
// A Signer is safe for concurrent use. Close it when done (a token signer
// logs out); Close is idempotent and may run concurrently with other
// calls, which then return an error wrapping ErrUnavailable.
type Signer struct {
	ptr  *C.ks_signer
	life lifeline
	// kc is the keychain a keychain's signer signs with: held so it stays
	// alive, and acquired for each call so that closing it makes the
	// signer unavailable rather than dangling.
	kc *Keychain
}

func newSigner(p *C.ks_signer, kc *Keychain) *Signer {
	s := &Signer{ptr: p, kc: kc}
	runtime.SetFinalizer(s, (*Signer).finalize)
	return s
}

func (s *Signer) acquire() (*C.ks_signer, error) {
	if s == nil {
		return nil, newError(C.KS_ERR_UNAVAILABLE, "signer is nil")
	}
	if !s.life.acquire() {
		return nil, errClosed("signer")
	}
	if s.kc != nil {
		if _, err := s.kc.acquire(); err != nil {
			s.releaseSelf()
			return nil, err
		}
	}
	return s.ptr, nil
}

func (s *Signer) release() {
	if s.kc != nil {
		s.kc.release()
	}
	s.releaseSelf()
}

func (s *Signer) releaseSelf() {
	if s.life.release() {
		s.free()
	}
	runtime.KeepAlive(s)
}

// free runs exactly once, when no call is in flight. A keychain's signer
// may be freed after its keychain.
func (s *Signer) free() {
	C.ks_signer_free(s.ptr)
	s.ptr = nil
}

func (s *Signer) finalize() {
	if first, _ := s.life.shut(); first {
		s.free()
	}
}

// NewPkcs11Signer opens a signing key in a PKCS#11 token or HSM: the
// private key labelled cfg.KeyLabel (and its public key, with the same
// label) in the token labelled cfg.TokenLabel. With cfg.CreateKey, a
// missing key pair of algorithm alg is generated in the token (the
// private half sensitive and never extractable); otherwise it must exist,
// and be of alg. Ed25519 signs with CKM_EDDSA; ECDSA with CKM_ECDSA over
// a SHA-256 computed here, the token's r ‖ s made DER. It loads the
// module, finds the token and logs in before returning.
//
// Errors: ErrInvalidInput (module cannot be loaded, PIN and PINEnv both
// or neither set, PINEnv unset, not an algorithm), ErrUnavailable (no
// token with the label), ErrBackend (login refused, e.g. a wrong PIN; the
// message never holds the PIN), ErrUnknownKey (no key with the label and
// CreateKey false), ErrUnsupported (the key is of another algorithm).
func NewPkcs11Signer(cfg Pkcs11Config, alg Algorithm) (*Signer, error) {
	if hasNUL(cfg.Module, cfg.TokenLabel, cfg.PIN, cfg.PINEnv, cfg.KeyLabel) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "a PKCS#11 setting contains a NUL byte")
	}
	if (cfg.PIN == "") == (cfg.PINEnv == "") {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "set exactly one of PIN and PINEnv")
	}
	var cs cStrings
	defer cs.done() // wipes the copy of the PIN
	module, token, label := cs.add(cfg.Module), cs.add(cfg.TokenLabel), cs.add(cfg.KeyLabel)
	pin, pinEnv := cs.opt(cfg.PIN), cs.opt(cfg.PINEnv)
	var out *C.ks_signer
	var cerr *C.ks_error
	st := C.ks_signer_pkcs11_new(module, token, pin, pinEnv, label, C.uint32_t(alg), createFlag(cfg.CreateKey), &out, &cerr)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newSigner(out, nil), nil
}

// Signer returns the keychain's signing primary as a *Signer, for code
// written against signers: it signs with whichever key is primary at the
// time of each call (so a rotation takes effect at once), with the
// keychain's events and counters. Closing the Signer does not close the
// keychain; closing the keychain makes the Signer's calls fail with
// ErrUnavailable. Errors: ErrUnavailable (the keychain is closed).
func (kc *Keychain) Signer() (*Signer, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	var out *C.ks_signer
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_signer(p, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newSigner(out, kc), nil
}

// Algorithm returns the signer's algorithm. Errors: ErrUnknownKey (a
// keychain with no signing key), ErrUnavailable (closed).
func (s *Signer) Algorithm() (Algorithm, error) {
	p, err := s.acquire()
	if err != nil {
		return AlgorithmNone, err
	}
	defer s.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	if err := co.error(C.ks_signer_algorithm(p, &co.signer.algorithm, &co.err)); err != nil {
		return AlgorithmNone, err
	}
	return Algorithm(co.signer.algorithm), nil
}

// PublicKey returns the signer's public key in format. PEM and minisign
// are text. Errors: ErrInvalidInput (not a PublicKeyFormat),
// ErrUnsupported (PublicKeyMinisign for an ECDSA key), ErrUnknownKey (a
// keychain with no signing key), ErrUnavailable (closed).
func (s *Signer) PublicKey(format PublicKeyFormat) ([]byte, error) {
	p, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	var out C.ks_buffer
	var cerr *C.ks_error
	if err := cErr(C.ks_signer_public_key(p, C.uint32_t(format), &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// Sign signs message: an Ed25519 signature (64 bytes), or a DER ECDSA
// signature over SHA-256(message). Errors: ErrUnknownKey (a keychain with
// no signing key), ErrUnavailable (closed, the device unreachable),
// ErrBackend.
func (s *Signer) Sign(message []byte) ([]byte, error) {
	return s.sign(false, message)
}

// SignDigest signs a SHA-256 digest computed elsewhere (sha256.Sum256 of
// the message), for ECDSA keys only: the DER signature Sign makes over the
// message. Errors: ErrInvalidInput (not 32 bytes), ErrUnsupported (an
// Ed25519 key), and those of Sign.
func (s *Signer) SignDigest(digest []byte) ([]byte, error) {
	return s.sign(true, digest)
}

func (s *Signer) sign(digest bool, in []byte) ([]byte, error) {
	p, err := s.acquire()
	if err != nil {
		return nil, err
	}
	defer s.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	ip, il := cbytes(in)
	out := make([]byte, 0, MaxSignatureLen)
	for tries := 0; ; tries++ {
		op, oc := cout(out)
		var st C.enum_ks_status
		if digest {
			st = C.ks_signer_sign_digest(p, ip, il, op, oc, &co.n, &co.err)
		} else {
			st = C.ks_signer_sign(p, ip, il, op, oc, &co.n, &co.err)
		}
		runtime.KeepAlive(in)
		runtime.KeepAlive(out)
		if st == C.KS_OK {
			break
		}
		if st != C.KS_ERR_BUFFER_TOO_SMALL || tries > 0 {
			return nil, co.error(st)
		}
		_ = co.error(st)
		out = make([]byte, 0, int(co.n))
	}
	n := int(co.n)
	return out[:n:n], nil
}

// HealthCheck reports whether the signer can serve: for a token, it opens
// a session and finds the key; for a keychain, it checks that it is open
// and has a signing key. Errors: ErrUnavailable (closed, device
// unreachable), ErrUnknownKey, ErrBackend.
func (s *Signer) HealthCheck() error {
	p, err := s.acquire()
	if err != nil {
		return err
	}
	defer s.release()
	var cerr *C.ks_error
	return cErr(C.ks_signer_health_check(p, &cerr), cerr)
}

// Close closes the signer (a token signer logs out) and releases it. It
// is idempotent; calls afterwards return an error wrapping ErrUnavailable.
// A keychain's Signer closes only itself, never the keychain.
func (s *Signer) Close() error {
	if s == nil || !s.life.acquire() {
		return nil
	}
	first, _ := s.life.shut()
	var err error
	if first {
		runtime.SetFinalizer(s, nil)
		var cerr *C.ks_error
		err = cErr(C.ks_signer_close(s.ptr, &cerr), cerr)
	}
	s.releaseSelf()
	return err
}
