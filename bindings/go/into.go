package keystrata

/*
#include "keystrata.h"
*/
import "C"

import "runtime"

// Bytes Seal and Encrypt add to their plaintext. The library sizes every
// output itself (a caller-sized call reports the length it needs); these
// constants document the formats and are checked against it in the tests.
const (
	// SealOverhead is len(Seal(p)) - len(p): prefix 5, nonce 12, tag 16.
	SealOverhead = 33
	// EncryptOverhead is len(Encrypt(p)) - len(p): length field 4,
	// encrypted data key 67, nonce 12, tag 16.
	EncryptOverhead = 99
)

// SealTo appends Seal(plaintext, aad) to dst and returns the extended
// slice, like crypto/cipher's AEAD.Seal. When dst has room for
// len(plaintext)+SealOverhead more bytes nothing is allocated, so a caller
// that reuses one buffer seals without garbage. dst's new bytes must not
// overlap plaintext or aad (an ErrInvalidInput error; in-place sealing is
// not offered). On error dst is returned unchanged (its spare capacity may
// have been zeroed). Errors: as Seal.
func (kc *Keychain) SealTo(dst, plaintext, aad []byte) ([]byte, error) {
	return kc.aeadTo(opSeal, dst, plaintext, aad)
}

// UnsealTo appends Unseal(ciphertext, aad) to dst and returns the extended
// slice; nothing is allocated when dst has room. dst's new bytes must not
// overlap ciphertext or aad. Errors: as Unseal.
func (kc *Keychain) UnsealTo(dst, ciphertext, aad []byte) ([]byte, error) {
	return kc.aeadTo(opUnseal, dst, ciphertext, aad)
}

// EncryptTo appends Encrypt(plaintext, aad) to dst and returns the
// extended slice; nothing is allocated when dst has room for
// len(plaintext)+EncryptOverhead more bytes. dst's new bytes must not
// overlap plaintext or aad. Errors: as Encrypt.
func (kc *Keychain) EncryptTo(dst, plaintext, aad []byte) ([]byte, error) {
	return kc.aeadTo(opEncrypt, dst, plaintext, aad)
}

// DecryptTo appends Decrypt(blob, aad) to dst and returns the extended
// slice; nothing is allocated when dst has room. dst's new bytes must not
// overlap blob or aad. Errors: as Decrypt.
func (kc *Keychain) DecryptTo(dst, blob, aad []byte) ([]byte, error) {
	return kc.aeadTo(opDecrypt, dst, blob, aad)
}

type aeadOp int

const (
	opSeal aeadOp = iota
	opUnseal
	opEncrypt
	opDecrypt
)

// aeadCall makes one caller-sized call: out's spare capacity receives the
// result, or query asks only for its length (out NULL).
func aeadCall(op aeadOp, p *C.ks_keychain, in, aad, out []byte, query bool, co *callOut) C.enum_ks_status {
	ip, il := cbytes(in)
	ap, al := cbytes(aad)
	var op0 *C.uint8_t
	var oc C.size_t
	if !query {
		op0, oc = cout(out)
	}
	var st C.enum_ks_status
	switch op {
	case opSeal:
		st = C.ks_keychain_seal_to(p, ip, il, ap, al, op0, oc, &co.n, &co.err)
	case opUnseal:
		st = C.ks_keychain_unseal_to(p, ip, il, ap, al, op0, oc, &co.n, &co.err)
	case opEncrypt:
		st = C.ks_keychain_encrypt_to(p, ip, il, ap, al, op0, oc, &co.n, &co.err)
	default:
		st = C.ks_keychain_decrypt_to(p, ip, il, ap, al, op0, oc, &co.n, &co.err)
	}
	runtime.KeepAlive(in)
	runtime.KeepAlive(aad)
	runtime.KeepAlive(out)
	return st
}

// aeadTo runs op with its output written straight into dst's spare
// capacity: one cgo call and no allocation when dst has room. Without
// room it asks the library for the length first (no key is used), then
// grows dst once; with too little room the library says how much it
// needs, and dst grows once. Go never computes a length itself.
func (kc *Keychain) aeadTo(op aeadOp, dst, in, aad []byte) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return dst, err
	}
	defer kc.release()
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	buf := dst
	if cap(dst) == len(dst) {
		st := aeadCall(op, p, in, aad, nil, true, co)
		if st == C.KS_OK {
			buf = grow(dst, int(co.n))
		} else {
			// A query touches no counter; the call below fails the same
			// way in the core, which counts it and raises the event.
			_ = co.error(st)
		}
	}
	for tries := 0; ; tries++ {
		st := aeadCall(op, p, in, aad, buf, false, co)
		if st == C.KS_OK {
			return buf[:len(buf)+int(co.n)], nil
		}
		if st != C.KS_ERR_BUFFER_TOO_SMALL || tries > 0 {
			return dst, co.error(st)
		}
		_ = co.error(st)
		buf = grow(dst, int(co.n))
	}
}

// grow returns dst with room for n more bytes: dst itself if it has it,
// else a copy with at least twice dst's capacity.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	b := make([]byte, len(dst), max(len(dst)+n, 2*cap(dst)))
	copy(b, dst)
	return b
}
