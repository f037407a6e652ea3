package keystrata

/*
#include "kgo.h"
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
	var d C.int
	if decrypt {
		d = 1
	}
	var out C.ks_buffer
	var msg *C.char
	st := C.kgo_hazmat_gcm(d, kp, kl, np, nl, ap, al, ip, il, &out, &msg)
	runtime.KeepAlive(key)
	runtime.KeepAlive(nonce)
	runtime.KeepAlive(aad)
	runtime.KeepAlive(in)
	if err := cErr(st, msg); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}

func hazmatHKDF(salt, ikm, info []byte, length int) ([]byte, error) {
	if length < 0 {
		return nil, newError(1, "negative length")
	}
	sp, sl := cbytes(salt)
	kp, kl := cbytes(ikm)
	ip, il := cbytes(info)
	var out C.ks_buffer
	var msg *C.char
	st := C.kgo_hazmat_hkdf(sp, sl, kp, kl, ip, il, C.size_t(length), &out, &msg)
	runtime.KeepAlive(salt)
	runtime.KeepAlive(ikm)
	runtime.KeepAlive(info)
	if err := cErr(st, msg); err != nil {
		return nil, err
	}
	return takeBuffer(&out), nil
}
