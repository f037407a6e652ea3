package keystrata

import (
	"context"
	"sync/atomic"
)

// KeyManager is a Keychain seen through the DEK-wrapping contract Go
// object-store gateways use, so such a gateway plugs keystrata in without an
// adapter:
//
//	Provider() string
//	WrapKey(ctx, plaintext, metadata) (*KeyEnvelope, error)
//	UnwrapKey(ctx, env, metadata) ([]byte, error)
//	ActiveKeyVersion(ctx) (int, error)
//	HealthCheck(ctx) error
//	Close(ctx) error
//
// Get one with (*Keychain).KeyManager. It is safe for concurrent use, also
// while the keychain rotates: envelopes made under an older primary keep
// unwrapping.
//
// # Metadata
//
// The metadata map becomes the wrap context through a MetadataBinding
// (docs/FORMAT.md §4.2), computed by the core so every language derives
// the same bytes. The default, BindNothing(), binds no entry: gateways
// pass the user's metadata when wrapping and the stored, expanded map
// when unwrapping, so any entry they do not carry on both paths would make
// unwrapping fail. BindOnly(names...) binds the named entries;
// BindAll() binds every entry but the four envelope entries, as this
// KeyManager did in 0.1 (use it to unwrap envelopes made then). Choose
// with WithMetadataBinding.
//
// # Wrapped-key size
//
// WrapKey makes the compact form by default (WrapCompact: 61 bytes for a
// 32-byte key), which fits the 32..64-byte window gateways built around
// AES key wrap check; the key ID and version travel in the envelope's
// KeyID and KeyVersion (the x-amz-meta-encryption-kms-id and -key-version
// entries). WithWrapForm(WrapFull) makes the 65-byte full form instead.
// UnwrapKey opens both.
//
// # Rotation
//
// PrepareRotation and PromoteActiveVersion give a gateway's rotatable
// key manager interface its two steps; see docs/GATEWAY.md for the
// adapter and the mapping of errors to a gateway's sentinels.
//
// # Close
//
// Close ends this view only: afterwards WrapKey and UnwrapKey return an
// error wrapping ErrUnavailable and HealthCheck fails, but the Keychain
// stays open; close it with (*Keychain).Close (which also makes every
// view unavailable).
type KeyManager struct {
	kc      *Keychain
	closed  atomic.Bool
	binding MetadataBinding
	form    WrapForm
}

// KeyManager returns the keychain's gateway-shaped KeyManager view: by
// default compact envelopes bound to no metadata (see the type's
// documentation; opts change that).
func (kc *Keychain) KeyManager(opts ...KeyManagerOption) *KeyManager {
	m := &KeyManager{kc: kc, binding: BindNothing(), form: WrapCompact}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Provider returns "keystrata".
func (m *KeyManager) Provider() string { return Provider }

func (m *KeyManager) check(ctx context.Context) error {
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if m.closed.Load() {
		return errClosed("key manager")
	}
	return nil
}

// WrapKey wraps plaintext (a data key, 1..4096 bytes) under the keychain's
// encryption primary, bound to metadata (see the type's documentation). A
// cancelled ctx is honoured before any work starts (ctx.Err() is returned).
func (m *KeyManager) WrapKey(ctx context.Context, plaintext []byte, metadata map[string]string) (*KeyEnvelope, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	c, err := m.binding.Context(metadata)
	if err != nil {
		return nil, err
	}
	return m.kc.WrapKeyWith(plaintext, c, m.form)
}

// UnwrapKey returns the data key in env, given the metadata WrapKey was
// given (envelope entries may be present; they are ignored). A cancelled
// ctx is honoured before any work starts.
func (m *KeyManager) UnwrapKey(ctx context.Context, env *KeyEnvelope, metadata map[string]string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	c, err := m.binding.Context(metadata)
	if err != nil {
		return nil, err
	}
	return m.kc.UnwrapKey(env, c)
}

// ActiveKeyVersion returns the version new envelopes carry.
func (m *KeyManager) ActiveKeyVersion(ctx context.Context) (int, error) {
	if err := m.check(ctx); err != nil {
		return 0, err
	}
	return m.kc.ActiveKeyVersion()
}

// HealthCheck returns nil if the manager and its keychain can serve calls.
func (m *KeyManager) HealthCheck(ctx context.Context) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	return m.kc.HealthCheck()
}

// Close ends this view (not the keychain). It is idempotent and always
// returns nil; ctx is not consulted.
func (m *KeyManager) Close(ctx context.Context) error {
	m.closed.Store(true)
	return nil
}

// MetadataContext returns the wrap context the KeyManager of 0.1 derived
// from a metadata map: every entry but the envelope's four.
//
// Deprecated: use BindAll().Context(metadata), or the binding you chose.
func MetadataContext(metadata map[string]string) ([]byte, error) {
	return BindAll().Context(metadata)
}
