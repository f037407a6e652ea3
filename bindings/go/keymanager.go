package keystrata

import (
	"context"
	"sort"
	"strings"
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
// The metadata map is the wrap context: WrapKey binds the envelope to it
// and UnwrapKey must be given the same entries, or it fails with
// ErrAuthentication. The context bytes are a canonical encoding of the map:
// entries sorted by name, one "name=value\n" line each, with '%', '=' and
// '\n' in names and values escaped as "%25", "%3D" and "%0A" (so distinct
// maps never encode alike). The four envelope entries (MetaWrappedKey,
// MetaKMSID, MetaProvider, MetaKeyVersion) are left out, so a gateway may
// pass an object's full metadata, envelope included, to UnwrapKey. A nil or
// empty map is the empty context, the same as (*Keychain).WrapKey(key, nil).
//
// # Close
//
// Close ends this view only: afterwards WrapKey and UnwrapKey return an
// error wrapping ErrUnavailable and HealthCheck fails, but the Keychain
// stays open; close it with (*Keychain).Close (which also makes every
// view unavailable).
type KeyManager struct {
	kc     *Keychain
	closed atomic.Bool
}

// KeyManager returns the keychain's gateway-shaped KeyManager view.
func (kc *Keychain) KeyManager() *KeyManager { return &KeyManager{kc: kc} }

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
	return m.kc.WrapKey(plaintext, MetadataContext(metadata))
}

// UnwrapKey returns the data key in env, given the metadata WrapKey was
// given (envelope entries may be present; they are ignored). A cancelled
// ctx is honoured before any work starts.
func (m *KeyManager) UnwrapKey(ctx context.Context, env *KeyEnvelope, metadata map[string]string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	return m.kc.UnwrapKey(env, MetadataContext(metadata))
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

var metaEscaper = strings.NewReplacer("%", "%25", "=", "%3D", "\n", "%0A")

// MetadataContext returns the wrap context KeyManager derives from a
// metadata map: sorted "name=value\n" lines, '%', '=' and '\n' escaped as
// %25, %3D, %0A, the four envelope entries left out; nil for an empty map.
// Use it to unwrap with (*Keychain).UnwrapKey what a KeyManager wrapped.
func MetadataContext(metadata map[string]string) []byte {
	names := make([]string, 0, len(metadata))
	for k := range metadata {
		if !isEnvelopeMetadata(k) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(metaEscaper.Replace(k))
		b.WriteByte('=')
		b.WriteString(metaEscaper.Replace(metadata[k]))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
