package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"fmt"
	"time"
)

// Purpose says what a key is for. The keychain keeps one primary per purpose.
type Purpose int

const (
	// PurposeNone marks events that concern no key.
	PurposeNone Purpose = C.KS_PURPOSE_NONE
	// PurposeEncrypt: a key-encryption key, used by Seal, Encrypt and WrapKey.
	PurposeEncrypt Purpose = C.KS_PURPOSE_ENCRYPT
	// PurposeDerive: an HKDF master, used by DeriveOriginKey and Derive.
	PurposeDerive Purpose = C.KS_PURPOSE_DERIVE
	// PurposeSign: a signing key (its Algorithm in KeyInfo.Algorithm), used
	// by Sign and Verify; made by RotateSigning and AddSigningKey.
	PurposeSign Purpose = C.KS_PURPOSE_SIGN
	// PurposeStream: a streaming key (RotateStreaming, AddStreamKey), used
	// by NewEncryptingWriter and NewDecryptingReader.
	PurposeStream Purpose = C.KS_PURPOSE_STREAM
)

// String is the purpose's name ("encrypt", "derive", "sign"; "none" for
// PurposeNone), read from the C library (ks_purpose_name), or "Purpose(N)".
func (p Purpose) String() string {
	if n := C.ks_purpose_name(C.int(p)); n != nil {
		return C.GoString(n)
	}
	return fmt.Sprintf("Purpose(%d)", int(p))
}

// KeyStatus says whether a key may be used.
type KeyStatus int

const (
	// KeyEnabled: usable.
	KeyEnabled KeyStatus = C.KS_KEY_ENABLED
	// KeyDisabled: kept, but refused for every operation (ErrKeyDisabled).
	KeyDisabled KeyStatus = C.KS_KEY_DISABLED
	// KeyDestroyed: material wiped; its ciphertexts fail with ErrKeyDestroyed.
	KeyDestroyed KeyStatus = C.KS_KEY_DESTROYED
)

// String is the status's name ("enabled", "disabled", "destroyed"), read
// from the C library (ks_key_status_name), or "KeyStatus(N)".
func (s KeyStatus) String() string {
	if n := C.ks_key_status_name(C.int(s)); n != nil {
		return C.GoString(n)
	}
	return fmt.Sprintf("KeyStatus(%d)", int(s))
}

// KeyInfo describes one key of a keychain. It holds no material.
type KeyInfo struct {
	KeyID     uint32    // the key ID written on the wire, in [1, 2^31-1] for generated keys
	Version   uint32    // 1, 2, 3 ... in order of creation, per purpose
	Purpose   Purpose   // what the key is for
	Status    KeyStatus // enabled, disabled or destroyed
	CreatedAt time.Time // creation time (second precision)
	Usage     uint64    // encryptions so far (bound keychain: the count reserved in its file)
	Primary   bool      // whether it is the primary of its purpose
	Algorithm Algorithm // for PurposeSign, the key's algorithm; else AlgorithmNone
	// StreamFormat is, for PurposeStream, the key's format; else 0.
	StreamFormat StreamFormat
}

func keyInfoFromC(k *C.ks_key_info) KeyInfo {
	return KeyInfo{
		KeyID:        uint32(k.key_id),
		Version:      uint32(k.version),
		Purpose:      Purpose(k.purpose),
		Status:       KeyStatus(k.status),
		CreatedAt:    time.Unix(int64(k.created_at), 0),
		Usage:        uint64(k.usage),
		Primary:      bool(k.primary),
		Algorithm:    Algorithm(k.algorithm),
		StreamFormat: StreamFormat(k.stream_format),
	}
}

// Policy is a keychain's rotation policy. Start from DefaultPolicy.
type Policy struct {
	// MaxEncryptionsPerKey is the maximum number of encryptions under one
	// key, 1..2^32 (default 2^32, the NIST SP 800-38D bound for random nonces).
	// At the limit a bound keychain (Open) rotates by itself; an unbound one
	// fails with ErrPolicy until you Rotate (and save).
	MaxEncryptionsPerKey uint64
	// MaxKeyAge is the maximum age of the encryption primary; 0 means no
	// limit (the default). Whole seconds; a fraction rounds up.
	MaxKeyAge time.Duration
	// UsageBlock is how many usage counts a bound keychain reserves in its
	// file at a time (default 65536).
	UsageBlock uint64
}

// DefaultPolicy returns the default policy: 2^32 encryptions per key, no
// age limit, usage blocks of 65536.
func DefaultPolicy() Policy { p := C.ks_policy_default(); return policyFromC(&p) }

func policyFromC(p *C.ks_policy) Policy {
	return Policy{
		MaxEncryptionsPerKey: uint64(p.max_encryptions_per_key),
		MaxKeyAge:            time.Duration(p.max_key_age_secs) * time.Second,
		UsageBlock:           uint64(p.usage_block),
	}
}

func (p *Policy) toC() (*C.ks_policy, error) {
	if p == nil {
		return nil, nil
	}
	if p.MaxKeyAge < 0 {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "negative MaxKeyAge")
	}
	secs := uint64((p.MaxKeyAge + time.Second - 1) / time.Second)
	return &C.ks_policy{
		max_encryptions_per_key: C.uint64_t(p.MaxEncryptionsPerKey),
		max_key_age_secs:        C.uint64_t(secs),
		usage_block:             C.uint64_t(p.UsageBlock),
	}, nil
}

// Counters is a snapshot of a keychain's operation counters.
type Counters struct {
	Seal          uint64 // successful seals
	UnsealOK      uint64 // successful unseals
	UnsealFailed  uint64 // failed unseals
	Encrypt       uint64 // successful encrypts
	DecryptOK     uint64 // successful decrypts
	DecryptFailed uint64 // failed decrypts
	Wrap          uint64 // successful wraps
	UnwrapOK      uint64 // successful unwraps
	UnwrapFailed  uint64 // failed unwraps
	Derive        uint64 // successful derivations
	Rotations     uint64 // rotations, manual or automatic, any purpose
	Sign          uint64 // signatures made
	VerifyOK      uint64 // successful verifications
	VerifyFailed  uint64 // failed verifications
	// Errors counts errors returned, by kind: Errors[code-1] for codes 1..12
	// (use ErrorCount for a readable lookup).
	Errors [12]uint64
}

// ErrorCount returns how many errors of kind (a sentinel such as
// ErrAuthentication) the snapshot counted.
func (c Counters) ErrorCount(kind *Error) uint64 {
	if kind == nil || kind.Code < 1 || kind.Code > len(c.Errors) {
		return 0
	}
	return c.Errors[kind.Code-1]
}

func countersFromC(c *C.ks_counters) Counters {
	r := Counters{
		Seal: uint64(c.seal), UnsealOK: uint64(c.unseal_ok), UnsealFailed: uint64(c.unseal_failed),
		Encrypt: uint64(c.encrypt), DecryptOK: uint64(c.decrypt_ok), DecryptFailed: uint64(c.decrypt_failed),
		Wrap: uint64(c.wrap), UnwrapOK: uint64(c.unwrap_ok), UnwrapFailed: uint64(c.unwrap_failed),
		Derive: uint64(c.derive), Rotations: uint64(c.rotations),
		Sign: uint64(c.sign), VerifyOK: uint64(c.verify_ok), VerifyFailed: uint64(c.verify_failed),
	}
	for i := range r.Errors {
		r.Errors[i] = uint64(c.errors[i])
	}
	return r
}
