package keystrata

/*
#include "kgo.h"

enum { KGO_SEAL_TO = 1, KGO_UNSEAL_TO = 2, KGO_ENCRYPT_TO = 3, KGO_DECRYPT_TO = 4 };

// One cgo crossing per operation: the ks_ call writes straight into the
// Go buffer. Status and message come back by value (a pointer to a Go
// local would make it escape to the heap); the message is copied only on
// failure, in the same C call.
typedef struct { ks_status st; char *msg; } kgo_res;

static inline kgo_res kgo_aead_to(int op, const ks_keychain *kc, const uint8_t *in, size_t in_len,
		const uint8_t *aad, size_t aad_len, uint8_t *out, size_t out_len) {
	kgo_res r = { KS_OK, NULL };
	switch (op) {
	case KGO_SEAL_TO: r.st = ks_keychain_seal_to(kc, in, in_len, aad, aad_len, out, out_len); break;
	case KGO_UNSEAL_TO: r.st = ks_keychain_unseal_to(kc, in, in_len, aad, aad_len, out, out_len); break;
	case KGO_ENCRYPT_TO: r.st = ks_keychain_encrypt_to(kc, in, in_len, aad, aad_len, out, out_len); break;
	default: r.st = ks_keychain_decrypt_to(kc, in, in_len, aad, aad_len, out, out_len); break;
	}
	if (r.st != KS_OK) r.msg = kgo_strdup(ks_last_error_message());
	return r;
}
*/
import "C"

import (
	"encoding/binary"
	"runtime"
	"unsafe"
)

// Bytes Seal and Encrypt add to their plaintext.
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
	return kc.aeadTo(C.KGO_SEAL_TO, dst, plaintext, aad, len(plaintext)+SealOverhead)
}

// UnsealTo appends Unseal(ciphertext, aad) to dst and returns the extended
// slice; nothing is allocated when dst has room. dst's new bytes must not
// overlap ciphertext or aad. Errors: as Unseal.
func (kc *Keychain) UnsealTo(dst, ciphertext, aad []byte) ([]byte, error) {
	return kc.aeadTo(C.KGO_UNSEAL_TO, dst, ciphertext, aad, unsealedLen(ciphertext))
}

// EncryptTo appends Encrypt(plaintext, aad) to dst and returns the
// extended slice; nothing is allocated when dst has room for
// len(plaintext)+EncryptOverhead more bytes. dst's new bytes must not
// overlap plaintext or aad. Errors: as Encrypt.
func (kc *Keychain) EncryptTo(dst, plaintext, aad []byte) ([]byte, error) {
	return kc.aeadTo(C.KGO_ENCRYPT_TO, dst, plaintext, aad, len(plaintext)+EncryptOverhead)
}

// DecryptTo appends Decrypt(blob, aad) to dst and returns the extended
// slice; nothing is allocated when dst has room. dst's new bytes must not
// overlap blob or aad. Errors: as Decrypt.
func (kc *Keychain) DecryptTo(dst, blob, aad []byte) ([]byte, error) {
	return kc.aeadTo(C.KGO_DECRYPT_TO, dst, blob, aad, decryptedLen(blob))
}

// unsealedLen is the plaintext length of a sealed ciphertext, or 0 when it
// is malformed (the library then reports the Format error).
func unsealedLen(ct []byte) int {
	if len(ct) < SealOverhead || ct[0] != 0x01 {
		return 0
	}
	return len(ct) - SealOverhead
}

// decryptedLen is the plaintext length of an envelope ciphertext, or 0
// when its framing is wrong (the library then reports the Format error).
func decryptedLen(blob []byte) int {
	if len(blob) < 4 {
		return 0
	}
	n := uint64(binary.BigEndian.Uint32(blob))
	rest := uint64(len(blob) - 4)
	if n < SealOverhead || n > rest || rest-n < 28 {
		return 0
	}
	return int(rest - n - 28)
}

// aeadTo runs op with its output written straight into dst's spare
// capacity (grown once if short): one cgo call, no C allocation, no copy.
func (kc *Keychain) aeadTo(op C.int, dst, in, aad []byte, n int) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return dst, err
	}
	defer kc.release()
	total := len(dst) + n
	var buf []byte
	if cap(dst) >= total {
		buf = dst[:total]
	} else {
		buf = make([]byte, total, max(total, 2*cap(dst)))
		copy(buf, dst)
	}
	out := buf[len(dst):]
	ip, il := cbytes(in)
	ap, al := cbytes(aad)
	var outp *C.uint8_t
	if n > 0 {
		outp = (*C.uint8_t)(unsafe.Pointer(&out[0]))
	}
	r := C.kgo_aead_to(op, p, ip, il, ap, al, outp, C.size_t(n))
	runtime.KeepAlive(in)
	runtime.KeepAlive(aad)
	runtime.KeepAlive(out)
	if err := cErr(r.st, r.msg); err != nil {
		return dst, err
	}
	return buf, nil
}
