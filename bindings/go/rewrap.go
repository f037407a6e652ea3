package keystrata

/*
#include "keystrata.h"
*/
import "C"

import "runtime"

// RewrapSealed seals again, under the current encryption primary, what
// Seal made under any key of the keychain: opened with the key it names
// and aad, sealed with the same aad. The plaintext is wiped inside the
// library and never returned. For moving data off a key before it is
// disabled and destroyed; SealedKeyID says which key a ciphertext needs.
// Errors: as Unseal for the input (ErrFormat, ErrUnknownKey,
// ErrKeyDisabled, ErrKeyDestroyed, ErrAuthentication), then as Seal.
func (kc *Keychain) RewrapSealed(ciphertext, aad []byte) ([]byte, error) {
	return kc.bytesCall(ciphertext, aad, func(p *C.ks_keychain, ip *C.uint8_t, il C.size_t, ap *C.uint8_t, al C.size_t, out *C.ks_buffer, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_keychain_rewrap_sealed(p, ip, il, ap, al, out, cerr)
	})
}

// RewrapEncrypted wraps again, under the current encryption primary, the
// data key of what Encrypt (or Tink's KmsEnvelopeAead) made: only the
// data key moves; the payload is copied unchanged, so no aad is needed
// (its tag still binds it: Decrypt checks it). The result has the
// input's length. EncryptedKeyID says which key a blob needs. Errors: as
// Decrypt for the framing and the data key (ErrFormat, ErrUnknownKey,
// ErrKeyDisabled, ErrKeyDestroyed, ErrAuthentication, ErrUnsupported),
// then as Encrypt.
func (kc *Keychain) RewrapEncrypted(blob []byte) ([]byte, error) {
	return kc.bytesCall(blob, nil, func(p *C.ks_keychain, ip *C.uint8_t, il C.size_t, _ *C.uint8_t, _ C.size_t, out *C.ks_buffer, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_keychain_rewrap_encrypted(p, ip, il, out, cerr)
	})
}

// RewrapEnvelope wraps again, under the current encryption primary, a key
// that WrapKey or WrapKeyWith wrapped: the same form, bound to the same
// context. The key is wiped inside the library. Errors: as UnwrapKey,
// then as WrapKey.
func (kc *Keychain) RewrapEnvelope(env *KeyEnvelope, context []byte) (*KeyEnvelope, error) {
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
	st := C.ks_keychain_rewrap_envelope(p, &cenv, cp, cl, &co.env, &co.err)
	runtime.KeepAlive(context)
	if err := co.error(st); err != nil {
		return nil, err
	}
	return envelopeFromC(&co.env), nil
}

// SealedKeyID returns the key ID a sealed ciphertext (Seal) names, read
// from its prefix without any key. Errors: ErrFormat.
func SealedKeyID(ciphertext []byte) (uint32, error) {
	return keyIDCall(ciphertext, func(ip *C.uint8_t, il C.size_t, out *C.uint32_t, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_sealed_key_id(ip, il, out, cerr)
	})
}

// EncryptedKeyID returns the key ID an envelope-encrypted blob (Encrypt)
// needs, read from its framing without any key. Errors: ErrFormat.
func EncryptedKeyID(blob []byte) (uint32, error) {
	return keyIDCall(blob, func(ip *C.uint8_t, il C.size_t, out *C.uint32_t, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_encrypted_key_id(ip, il, out, cerr)
	})
}

func keyIDCall(b []byte, call func(*C.uint8_t, C.size_t, *C.uint32_t, **C.ks_error) C.enum_ks_status) (uint32, error) {
	bp, bl := cbytes(b)
	var out C.uint32_t
	var cerr *C.ks_error
	st := call(bp, bl, &out, &cerr)
	runtime.KeepAlive(b)
	if err := cErr(st, cerr); err != nil {
		return 0, err
	}
	return uint32(out), nil
}

// bytesCall runs a C call of the (input, aad) -> ks_buffer shape on the
// keychain and returns its output.
func (kc *Keychain) bytesCall(in, aad []byte, call func(*C.ks_keychain, *C.uint8_t, C.size_t, *C.uint8_t, C.size_t, *C.ks_buffer, **C.ks_error) C.enum_ks_status) ([]byte, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	ip, il := cbytes(in)
	ap, al := cbytes(aad)
	var out C.ks_buffer
	var cerr *C.ks_error
	st := call(p, ip, il, ap, al, &out, &cerr)
	runtime.KeepAlive(in)
	runtime.KeepAlive(aad)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return nonNil(takeBuffer(&out), nil)
}

// MetricsText returns the keychain's metrics as Prometheus text
// (exposition format 0.0.4): calls by outcome (kms_seal_total{ok} and
// the others), kms_derivations_total{origin}, kms_errors_total{kind},
// kms_rotations_total{scope} and the latency histogram
// kms_operation_duration_seconds{op} (docs/METRICS.md). Serve it on
// /metrics as it is. After Close it fails with ErrUnavailable, like every
// call.
func (kc *Keychain) MetricsText() (string, error) {
	p, err := kc.acquire()
	if err != nil {
		return "", err
	}
	defer kc.release()
	var out C.ks_buffer
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_metrics_text(p, &out, &cerr), cerr); err != nil {
		return "", err
	}
	return string(takeBuffer(&out)), nil
}
