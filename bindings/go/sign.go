package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// Signing with a keychain's keys of purpose sign, and verification with a
// public key alone. The rules (which key signs, which keys verify, the
// encodings) are the core's; this file translates the ks_keychain_sign
// family of the C ABI.

// Algorithm is a signing algorithm. Its numbers are the C library's
// KS_ALG_* values, the same in every language. The zero value,
// AlgorithmNone, is the Algorithm of a key that does not sign.
type Algorithm int

const (
	// AlgorithmNone: no algorithm (KeyInfo of a key of another purpose, an
	// Event other than EventSigned). It has no name.
	AlgorithmNone Algorithm = C.KS_ALG_NONE
	// AlgorithmEd25519: Ed25519 (RFC 8032), 64-byte signatures; the
	// algorithm of minisign.
	AlgorithmEd25519 Algorithm = C.KS_ALG_ED25519
	// AlgorithmECDSAP256: ECDSA on NIST P-256 with SHA-256 (AWS KMS
	// ECC_NIST_P256; crypto/ecdsa with elliptic.P256()).
	AlgorithmECDSAP256 Algorithm = C.KS_ALG_ECDSA_P256
	// AlgorithmECDSASecp256k1: ECDSA on secp256k1 with SHA-256 (AWS KMS
	// ECC_SECG_P256K1).
	AlgorithmECDSASecp256k1 Algorithm = C.KS_ALG_ECDSA_SECP256K1
)

// String is the algorithm's name, the same in every language ("ed25519",
// "ecdsa-p256", "ecdsa-secp256k1"), read from the C library
// (ks_algorithm_name), or "Algorithm(N)" for AlgorithmNone and numbers the
// library does not know.
func (a Algorithm) String() string {
	if n := C.ks_algorithm_name(C.int(a)); n != nil {
		return C.GoString(n)
	}
	return fmt.Sprintf("Algorithm(%d)", int(a))
}

// SignatureFormat says how an ECDSA signature is encoded. Ed25519
// signatures are the 64 bytes of RFC 8032 in either format. The zero value
// is not a format.
type SignatureFormat int

const (
	// SignatureDER: ASN.1 DER SEQUENCE { r, s } (X9.62), at most
	// MaxSignatureLen bytes: what OpenSSL, AWS KMS and crypto/ecdsa's
	// SignASN1/VerifyASN1 use. Sign's format.
	SignatureDER SignatureFormat = C.KS_SIG_DER
	// SignatureRaw: r ‖ s, 32 bytes each, big-endian (IEEE P1363; JOSE,
	// WebCrypto): 64 bytes.
	SignatureRaw SignatureFormat = C.KS_SIG_RAW
)

// PublicKeyFormat says how PublicKey encodes a public key. The zero value
// is not a format.
type PublicKeyFormat int

const (
	// PublicKeyPEM: PEM of the SubjectPublicKeyInfo ("-----BEGIN PUBLIC
	// KEY-----"), as x509.ParsePKIXPublicKey (after pem.Decode) and
	// `openssl pkey -pubin` read it.
	PublicKeyPEM PublicKeyFormat = C.KS_PUBKEY_PEM
	// PublicKeyDER: DER of the SubjectPublicKeyInfo (RFC 5280; RFC 8410 for
	// Ed25519), as x509.ParsePKIXPublicKey reads it.
	PublicKeyDER PublicKeyFormat = C.KS_PUBKEY_DER
	// PublicKeyRaw: the bare key, what VerifySignature takes: 32 bytes for
	// Ed25519 (an ed25519.PublicKey), the 65-byte uncompressed point
	// 0x04 ‖ x ‖ y for ECDSA (crypto/ecdh's PublicKey.Bytes()).
	PublicKeyRaw PublicKeyFormat = C.KS_PUBKEY_RAW
	// PublicKeyMinisign: the text of a minisign .pub file (Ed25519 keys
	// only; ErrUnsupported for ECDSA).
	PublicKeyMinisign PublicKeyFormat = C.KS_PUBKEY_MINISIGN
)

// MaxSignatureLen is the longest signature any algorithm makes, in bytes
// (a DER-encoded ECDSA signature): a buffer this long always holds one.
const MaxSignatureLen = C.KS_MAX_SIGNATURE_LEN

// Signature is a signature and the key that made it.
type Signature struct {
	KeyID     uint32    // the signing key; PublicKey(KeyID, ...) gives its public key
	Algorithm Algorithm // that key's algorithm
	// Bytes is the signature: 64 bytes for Ed25519 and raw ECDSA, DER (at
	// most MaxSignatureLen bytes) for ECDSA by default.
	Bytes []byte
}

// RotateSigning makes a new signing key of algorithm alg the signing
// primary: what Sign uses from now on. Older signing keys stay enabled, so
// their signatures keep verifying (Disable one to revoke them). A bound
// keychain writes its store first. It returns the new key. Errors:
// ErrInvalidInput (not an algorithm), and those of writing a bound
// keychain.
func (kc *Keychain) RotateSigning(alg Algorithm) (KeyInfo, error) {
	return kc.lifecycle(opRotateSigning, uint32(alg))
}

// AddSigningKey adds an enabled signing key of algorithm alg that is not
// primary: the first phase of a two-phase rotation (give its PublicKey to
// verifiers, then Promote it). Errors: as RotateSigning.
func (kc *Keychain) AddSigningKey(alg Algorithm) (KeyInfo, error) {
	return kc.lifecycle(opAddSigningKey, uint32(alg))
}

// Sign signs message with the signing primary; ECDSA signatures are DER
// (SignAs for raw). Every signature emits an EventSigned carrying the
// SHA-256 digest of message (the audit trail). Errors: ErrUnknownKey (no
// signing key yet: RotateSigning first), ErrUnavailable (closed).
func (kc *Keychain) Sign(message []byte) (Signature, error) {
	return kc.sign(false, message, SignatureDER)
}

// SignAs is Sign with the ECDSA signature format chosen. Errors: as Sign,
// and ErrInvalidInput for a number that is not a SignatureFormat.
func (kc *Keychain) SignAs(message []byte, format SignatureFormat) (Signature, error) {
	return kc.sign(false, message, format)
}

// SignDigest signs a SHA-256 digest computed elsewhere (sha256.Sum256 of
// the message), with an ECDSA signing primary only: the signature is the
// one Sign makes over the message (what AWS KMS calls
// MessageType=DIGEST). Errors: ErrInvalidInput (digest not 32 bytes, a bad
// format), ErrUnsupported (an Ed25519 primary), and those of Sign.
func (kc *Keychain) SignDigest(digest []byte, format SignatureFormat) (Signature, error) {
	return kc.sign(true, digest, format)
}

// sign makes one signature into a fresh buffer of MaxSignatureLen bytes,
// which always suffices; should the library ever ask for more, it says
// how much, and the call is made once more.
func (kc *Keychain) sign(digest bool, in []byte, format SignatureFormat) (Signature, error) {
	p, err := kc.acquire()
	if err != nil {
		return Signature{}, err
	}
	defer kc.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	ip, il := cbytes(in)
	out := make([]byte, 0, MaxSignatureLen)
	for tries := 0; ; tries++ {
		op, oc := cout(out)
		var st C.enum_ks_status
		if digest {
			st = C.ks_keychain_sign_digest(p, ip, il, C.uint32_t(format), op, oc, &co.n, &co.signer, &co.err)
		} else {
			st = C.ks_keychain_sign(p, ip, il, C.uint32_t(format), op, oc, &co.n, &co.signer, &co.err)
		}
		runtime.KeepAlive(in)
		runtime.KeepAlive(out)
		if st == C.KS_OK {
			break
		}
		if st != C.KS_ERR_BUFFER_TOO_SMALL || tries > 0 {
			return Signature{}, co.error(st)
		}
		_ = co.error(st)
		out = make([]byte, 0, int(co.n))
	}
	n := int(co.n)
	return Signature{
		KeyID:     uint32(co.signer.key_id),
		Algorithm: Algorithm(co.signer.algorithm),
		Bytes:     out[:n:n],
	}, nil
}

type verifyOp int

const (
	opVerify verifyOp = iota
	opVerifyWith
	opVerifyDigest
)

// Verify verifies signature over message with the keychain's enabled
// signing keys, newest first, and returns the key that verified. ECDSA
// signatures may be DER or raw. A disabled or destroyed key verifies
// nothing, so disabling a key revokes its signatures here. A failure emits
// EventVerifyFailed. Errors: ErrAuthentication (no key verifies it; it
// says nothing more), ErrUnknownKey (no enabled signing key),
// ErrUnavailable (closed).
func (kc *Keychain) Verify(message, signature []byte) (KeyInfo, error) {
	return kc.verify(opVerify, 0, message, signature)
}

// VerifyWith verifies with signing key keyID alone. Errors:
// ErrUnknownKey (not a signing key of this keychain), ErrKeyDisabled,
// ErrKeyDestroyed, ErrAuthentication, ErrUnavailable (closed).
func (kc *Keychain) VerifyWith(keyID uint32, message, signature []byte) (KeyInfo, error) {
	return kc.verify(opVerifyWith, keyID, message, signature)
}

// VerifyDigest verifies an ECDSA signature over a SHA-256 digest (as
// SignDigest, or Sign over the message, makes) with the enabled ECDSA
// signing keys. Errors: ErrInvalidInput (digest not 32 bytes), and those
// of Verify.
func (kc *Keychain) VerifyDigest(digest, signature []byte) (KeyInfo, error) {
	return kc.verify(opVerifyDigest, 0, digest, signature)
}

func (kc *Keychain) verify(op verifyOp, keyID uint32, in, signature []byte) (KeyInfo, error) {
	p, err := kc.acquire()
	if err != nil {
		return KeyInfo{}, err
	}
	defer kc.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	ip, il := cbytes(in)
	sp, sl := cbytes(signature)
	var st C.enum_ks_status
	switch op {
	case opVerify:
		st = C.ks_keychain_verify(p, ip, il, sp, sl, &co.info, &co.err)
	case opVerifyWith:
		st = C.ks_keychain_verify_with(p, C.uint32_t(keyID), ip, il, sp, sl, &co.info, &co.err)
	default:
		st = C.ks_keychain_verify_digest(p, ip, il, sp, sl, &co.info, &co.err)
	}
	runtime.KeepAlive(in)
	runtime.KeepAlive(signature)
	if err := co.error(st); err != nil {
		return KeyInfo{}, err
	}
	return keyInfoFromC(&co.info), nil
}

// PublicKey returns the public key of signing key keyID in format. PEM and
// minisign are text. Disabled keys have one too. Errors: ErrUnknownKey
// (not a signing key), ErrKeyDestroyed, ErrUnsupported (PublicKeyMinisign
// for an ECDSA key), ErrInvalidInput (not a PublicKeyFormat),
// ErrUnavailable (closed).
func (kc *Keychain) PublicKey(keyID uint32, format PublicKeyFormat) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	var out C.ks_buffer
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_public_key(p, C.uint32_t(keyID), C.uint32_t(format), &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

// VerifySignature verifies signature over message with a bare public key
// alone, no keychain: publicKey is what PublicKey gives as PublicKeyRaw
// (32 bytes for Ed25519, the 65-byte point 0x04 ‖ x ‖ y for ECDSA), so it
// also takes keys made elsewhere (an ed25519.PublicKey, crypto/ecdh's
// PublicKey.Bytes()). ECDSA signatures may be DER or raw. It returns nil if
// the signature verifies. Errors: ErrAuthentication (it does not),
// ErrInvalidInput (not an algorithm, a public key of the wrong length).
// Safe for concurrent use.
func VerifySignature(alg Algorithm, publicKey, message, signature []byte) error {
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	kp, kl := cbytes(publicKey)
	mp, ml := cbytes(message)
	sp, sl := cbytes(signature)
	st := C.ks_verify_signature(C.uint32_t(alg), kp, kl, mp, ml, sp, sl, &co.err)
	runtime.KeepAlive(publicKey)
	runtime.KeepAlive(message)
	runtime.KeepAlive(signature)
	return co.error(st)
}
