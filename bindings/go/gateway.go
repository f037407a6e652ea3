package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"context"
	"runtime"
)

// WrapForm is the layout of an envelope's ciphertext (docs/FORMAT.md §4,
// §4.1). Unwrapping reads it from the ciphertext and accepts both.
type WrapForm uint32

const (
	// WrapFull is the sealed-ciphertext form (Tink-prefixed; key + 33
	// bytes): what (*Keychain).WrapKey makes.
	WrapFull WrapForm = C.KS_WRAP_FULL
	// WrapCompact leaves the key ID to the envelope's KeyID field (key +
	// 29 bytes: 61 for a 32-byte key), inside the 32..64-byte window that
	// gateways built around AES key wrap check. The KeyManager's default.
	WrapCompact WrapForm = C.KS_WRAP_COMPACT
)

// WrapKeyWith is WrapKey in the given form.
func (kc *Keychain) WrapKeyWith(key, context []byte, form WrapForm) (*KeyEnvelope, error) {
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	kp, kl := cbytes(key)
	cp, cl := cbytes(context)
	co := callOuts.Get().(*callOut)
	defer callOuts.Put(co)
	st := C.ks_keychain_wrap_key_with(p, kp, kl, cp, cl, C.uint32_t(form), &co.env, &co.err)
	runtime.KeepAlive(key)
	runtime.KeepAlive(context)
	if err := co.error(st); err != nil {
		return nil, err
	}
	return envelopeFromC(&co.env), nil
}

// MetadataBinding says which entries of an object's metadata map a
// wrapped key is bound to (docs/FORMAT.md §4.2). The zero value binds
// nothing.
type MetadataBinding struct {
	code  uint32
	names []string
}

// BindNothing binds no entry: the wrap context is empty whatever the map
// holds. The KeyManager's default, because gateways pass one map when
// wrapping (the user's) and another when unwrapping (the stored, expanded
// one; for multipart uploads only bucket and upload ID).
func BindNothing() MetadataBinding { return MetadataBinding{code: C.KS_BIND_NOTHING} }

// BindOnly binds exactly the named entries (those present). A name present
// at wrap time must be present, with the same value, at unwrap time.
func BindOnly(names ...string) MetadataBinding {
	return MetadataBinding{code: C.KS_BIND_ONLY, names: append([]string(nil), names...)}
}

// BindAll binds every entry but the four envelope entries: the behaviour
// of the KeyManager in 0.1. Use it to unwrap envelopes made then.
func BindAll() MetadataBinding { return MetadataBinding{code: C.KS_BIND_ALL} }

func (b MetadataBinding) kind() uint32 {
	if b.code == 0 {
		return C.KS_BIND_NOTHING
	}
	return b.code
}

// Context returns the wrap context of metadata under b, computed by the
// core (the same bytes in every language). Strings may not contain NUL
// bytes (InvalidInput).
func (b MetadataBinding) Context(metadata map[string]string) ([]byte, error) {
	if b.kind() == C.KS_BIND_NOTHING || len(metadata) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(metadata))
	values := make([]string, 0, len(metadata))
	for k, v := range metadata {
		if hasNUL(k, v) {
			return nil, newError(C.KS_ERR_INVALID_INPUT, "a metadata entry contains a NUL byte")
		}
		names = append(names, k)
		values = append(values, v)
	}
	for _, n := range b.names {
		if hasNUL(n) {
			return nil, newError(C.KS_ERR_INVALID_INPUT, "a bound metadata name contains a NUL byte")
		}
	}
	var cs cStrings
	defer cs.done()
	cn, cv, cb := cs.array(names), cs.array(values), cs.array(b.names)
	var n C.size_t
	var cerr *C.ks_error
	st := C.ks_metadata_context(cn, cv, C.size_t(len(names)), C.uint32_t(b.kind()), cb, C.size_t(len(b.names)), nil, 0, &n, &cerr)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, nil
	}
	out := make([]byte, 0, int(n))
	op, ocap := cout(out)
	st = C.ks_metadata_context(cn, cv, C.size_t(len(names)), C.uint32_t(b.kind()), cb, C.size_t(len(b.names)), op, ocap, &n, &cerr)
	runtime.KeepAlive(out)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return out[:int(n)], nil
}

// KeyManagerOption configures a KeyManager view.
type KeyManagerOption func(*KeyManager)

// WithMetadataBinding sets which metadata entries envelopes are bound to
// (default BindNothing()).
func WithMetadataBinding(b MetadataBinding) KeyManagerOption {
	return func(m *KeyManager) { m.binding = b }
}

// WithWrapForm sets the form WrapKey makes (default WrapCompact).
// UnwrapKey opens both forms whatever this says.
func WithWrapForm(f WrapForm) KeyManagerOption {
	return func(m *KeyManager) { m.form = f }
}

// RotationPlan is a rotation prepared by PrepareRotation: the version
// active when it was made and the one PromoteActiveVersion makes active.
type RotationPlan struct {
	CurrentVersion int
	TargetVersion  int
	// TargetKeyID is the key ID of TargetVersion.
	TargetKeyID uint32
}

// PrepareRotation prepares a two-step rotation (the shape of gateways'
// RotatableKeyManager). With target nil: the newest enabled encryption key
// newer than the active one, or, if there is none, a new key, added (and
// stored, for a bound keychain) but not active. With a target: that
// version (ErrUnknownKey if no encryption key has it, ErrKeyDisabled,
// ErrKeyDestroyed, ErrPolicy if it is already active).
func (m *KeyManager) PrepareRotation(ctx context.Context, target *int) (RotationPlan, error) {
	if err := m.check(ctx); err != nil {
		return RotationPlan{}, err
	}
	t := 0
	if target != nil {
		if *target <= 0 || uint64(*target) > 0xffffffff {
			return RotationPlan{}, newError(C.KS_ERR_INVALID_INPUT, "target version out of range")
		}
		t = *target
	}
	p, err := m.kc.acquire()
	if err != nil {
		return RotationPlan{}, err
	}
	defer m.kc.release()
	var plan C.ks_rotation_plan
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_prepare_rotation(p, C.uint32_t(t), &plan, &cerr), cerr); err != nil {
		return RotationPlan{}, err
	}
	return RotationPlan{
		CurrentVersion: int(plan.current_version),
		TargetVersion:  int(plan.target_version),
		TargetKeyID:    uint32(plan.target_key_id),
	}, nil
}

// PromoteActiveVersion makes plan's target active if the active version is
// still plan.CurrentVersion (checked and changed in one step, in the store
// for a bound keychain). Another rotation since the plan: an error for
// which errors.Is(err, ErrPolicy) holds and whose message says "rotation
// conflict"; nothing changes. Wraps in flight finish under the version
// they started with, and both versions keep unwrapping.
func (m *KeyManager) PromoteActiveVersion(ctx context.Context, plan RotationPlan) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	if plan.CurrentVersion < 0 || plan.TargetVersion < 0 ||
		uint64(plan.CurrentVersion) > 0xffffffff || uint64(plan.TargetVersion) > 0xffffffff {
		return newError(C.KS_ERR_INVALID_INPUT, "plan version out of range")
	}
	p, err := m.kc.acquire()
	if err != nil {
		return err
	}
	defer m.kc.release()
	c := C.ks_rotation_plan{
		current_version: C.uint32_t(plan.CurrentVersion),
		target_version:  C.uint32_t(plan.TargetVersion),
		target_key_id:   C.uint32_t(plan.TargetKeyID),
	}
	var cerr *C.ks_error
	return cErr(C.ks_keychain_promote_version(p, &c, nil, &cerr), cerr)
}
