package keystrata

/*
#include "keystrata.h"
*/
import "C"

import "runtime"

// Unexported HAZMAT helpers over ks_hazmat_*: raw AES-256-GCM with a
// caller-chosen nonce and raw HKDF-SHA256. They exist for the Wycheproof
// tests of this package only; they are not part of the API.

func hazmatGCM(decrypt bool, key, nonce, aad, in []byte) ([]byte, error) {
	kp, kl := cbytes(key)
	np, nl := cbytes(nonce)
	ap, al := cbytes(aad)
	ip, il := cbytes(in)
	var out C.ks_buffer
	var cerr *C.ks_error
	var st C.enum_ks_status
	if decrypt {
		st = C.ks_hazmat_aes256gcm_decrypt(kp, kl, np, nl, ap, al, ip, il, &out, &cerr)
	} else {
		st = C.ks_hazmat_aes256gcm_encrypt(kp, kl, np, nl, ap, al, ip, il, &out, &cerr)
	}
	runtime.KeepAlive(key)
	runtime.KeepAlive(nonce)
	runtime.KeepAlive(aad)
	runtime.KeepAlive(in)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

func hazmatHKDF(salt, ikm, info []byte, length int) ([]byte, error) {
	if length < 0 {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "negative length")
	}
	sp, sl := cbytes(salt)
	kp, kl := cbytes(ikm)
	ip, il := cbytes(info)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := C.ks_hazmat_hkdf_sha256(sp, sl, kp, kl, ip, il, C.size_t(length), &out, &cerr)
	runtime.KeepAlive(salt)
	runtime.KeepAlive(ikm)
	runtime.KeepAlive(info)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}
