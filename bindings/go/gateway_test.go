package keystrata

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
)

// The constraints of kenchrcum/s3-encryption-gateway's engine
// (internal/crypto/engine.go), reproduced: it wraps a fresh 32-byte data
// key with the user's metadata, stores the envelope in four metadata
// entries beside its own, and to decrypt rebuilds the envelope from the
// stored map, refuses a wrapped key outside 32..64 bytes, and unwraps with
// the stored, expanded map (for multipart uploads: bucket and upload ID).

type gatewayKM interface {
	WrapKey(ctx context.Context, plaintext []byte, metadata map[string]string) (*KeyEnvelope, error)
	UnwrapKey(ctx context.Context, env *KeyEnvelope, metadata map[string]string) ([]byte, error)
}

// engineEncrypt is the engine's wrap path: the returned map is what the
// object store keeps.
func engineEncrypt(t *testing.T, km gatewayKM, user map[string]string, extra map[string]string) ([]byte, map[string]string, error) {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env, err := km.WrapKey(context.Background(), key, user)
	if err != nil {
		return nil, nil, err
	}
	stored := map[string]string{}
	for k, v := range user {
		stored[k] = v
	}
	for k, v := range extra {
		stored[k] = v
	}
	stored[MetaKeyVersion] = fmt.Sprintf("%d", env.KeyVersion)
	stored[MetaKMSID] = env.KeyID
	stored[MetaProvider] = env.Provider
	stored[MetaWrappedKey] = base64.StdEncoding.EncodeToString(env.Ciphertext)
	return key, stored, nil
}

// engineDecrypt is the engine's unwrap path, its checks included.
func engineDecrypt(km gatewayKM, stored map[string]string, unwrapMeta map[string]string) ([]byte, error) {
	ct, err := base64.StdEncoding.DecodeString(stored[MetaWrappedKey])
	if err != nil {
		return nil, err
	}
	version, _ := strconv.Atoi(stored[MetaKeyVersion])
	env := &KeyEnvelope{
		KeyID:      stored[MetaKMSID],
		KeyVersion: version,
		Provider:   stored[MetaProvider],
		Ciphertext: ct,
	}
	if env.KeyID == "" || len(env.Ciphertext) == 0 {
		return nil, errors.New("engine: missing key ID or wrapped key")
	}
	if len(env.Ciphertext) < 32 || len(env.Ciphertext) > 64 {
		return nil, fmt.Errorf("engine: wrapped key ciphertext has unexpected size %d bytes", len(env.Ciphertext))
	}
	key, err := km.UnwrapKey(context.Background(), env, unwrapMeta)
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("engine: key of size %d", len(key))
	}
	return key, nil
}

var (
	gwUser    = map[string]string{"x-amz-meta-owner": "alice", "bucket": "photos", "key": "cat.png"}
	gwChunked = map[string]string{
		"x-amz-meta-encryption-algorithm": "AES256-GCM",
		"x-amz-meta-encryption-chunked":   "true",
		"x-amz-meta-encryption-iv":        "AAAAAAAAAAAAAAAA",
	}
	gwMultipart = map[string]string{"bucket": "photos", "uploadId": "u-1"}
)

func expanded(stored map[string]string) map[string]string { return stored }

func TestGatewayEngineFlowsWithTheDefaults(t *testing.T) {
	km := newKC(t, nil).KeyManager()
	// Buffered mode: unwrap with the stored map.
	key, stored, err := engineEncrypt(t, km, gwUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(stored[MetaWrappedKey]); n == 0 {
		t.Fatal("no wrapped key stored")
	}
	got, err := engineDecrypt(km, stored, expanded(stored))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("buffered: %v", err)
	}
	// Chunked mode: the engine adds its own entries before storing.
	key, stored, err = engineEncrypt(t, km, gwUser, gwChunked)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := engineDecrypt(km, stored, expanded(stored)); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("chunked: %v", err)
	}
	// Multipart: unwrapped with bucket and upload ID only.
	if got, err := engineDecrypt(km, stored, gwMultipart); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("multipart: %v", err)
	}
	ct, _ := base64.StdEncoding.DecodeString(stored[MetaWrappedKey])
	if len(ct) != 61 {
		t.Fatalf("compact wrapped key is %d bytes, want 61", len(ct))
	}
}

func TestGatewayFullFormDoesNotFitTheEngine(t *testing.T) {
	km := newKC(t, nil).KeyManager(WithWrapForm(WrapFull))
	_, stored, err := engineEncrypt(t, km, gwUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engineDecrypt(km, stored, stored); err == nil {
		t.Fatal("a 65-byte wrapped key passed the engine's window")
	}
	// The keychain itself opens it (every form unwraps).
	ct, _ := base64.StdEncoding.DecodeString(stored[MetaWrappedKey])
	v, _ := strconv.Atoi(stored[MetaKeyVersion])
	env := &KeyEnvelope{KeyID: stored[MetaKMSID], KeyVersion: v, Provider: stored[MetaProvider], Ciphertext: ct}
	if len(ct) != 65 {
		t.Fatalf("full form is %d bytes", len(ct))
	}
	if _, err := km.UnwrapKey(context.Background(), env, nil); err != nil {
		t.Fatal(err)
	}
}

func TestGatewayBindOnlyNamedEntries(t *testing.T) {
	km := newKC(t, nil).KeyManager(WithMetadataBinding(BindOnly("bucket")))
	key, stored, err := engineEncrypt(t, km, gwUser, gwChunked)
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]map[string]string{"expanded": stored, "multipart": gwMultipart} {
		if got, err := engineDecrypt(km, stored, m); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	moved := map[string]string{"bucket": "other"}
	if _, err := engineDecrypt(km, stored, moved); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("another bucket: %v, want ErrAuthentication", err)
	}
}

// Binding every entry (0.1's default) is what broke the engine's chunked
// mode: the stored map holds entries the user's map did not.
func TestGatewayBindAllFailsOnTheExpandedMap(t *testing.T) {
	km := newKC(t, nil).KeyManager(WithMetadataBinding(BindAll()))
	_, stored, err := engineEncrypt(t, km, gwUser, gwChunked)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engineDecrypt(km, stored, stored); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("expanded map under BindAll: %v, want ErrAuthentication", err)
	}
	if _, err := engineDecrypt(km, stored, gwUser); err != nil {
		t.Fatalf("the wrap-time map: %v", err)
	}
}

// The kinds a gateway maps to its sentinels (docs/GATEWAY.md).
func TestGatewayErrorKinds(t *testing.T) {
	kc := newKC(t, nil)
	km := kc.KeyManager()
	ctx := context.Background()
	_, stored, err := engineEncrypt(t, km, gwUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := base64.StdEncoding.DecodeString(stored[MetaWrappedKey])
	v, _ := strconv.Atoi(stored[MetaKeyVersion])
	good := KeyEnvelope{KeyID: stored[MetaKMSID], KeyVersion: v, Provider: stored[MetaProvider], Ciphertext: ct}
	cases := []struct {
		name string
		edit func(e *KeyEnvelope)
		want error
	}{
		{"tampered", func(e *KeyEnvelope) { e.Ciphertext = append([]byte(nil), ct...); e.Ciphertext[40] ^= 1 }, ErrAuthentication},
		{"other version", func(e *KeyEnvelope) { e.KeyVersion++ }, ErrAuthentication},
		{"unknown key", func(e *KeyEnvelope) { e.KeyID = "7" }, ErrUnknownKey},
		{"not decimal", func(e *KeyEnvelope) { e.KeyID = "k-1" }, ErrFormat},
		{"unknown form", func(e *KeyEnvelope) { e.Ciphertext = append([]byte{0x03}, ct[1:]...) }, ErrFormat},
		{"other provider", func(e *KeyEnvelope) { e.Provider = "cosmian-kmip" }, ErrInvalidInput},
	}
	for _, c := range cases {
		e := good
		c.edit(&e)
		if _, err := km.UnwrapKey(ctx, &e, nil); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	id, _ := strconv.ParseUint(good.KeyID, 10, 32)
	kc.Rotate()
	if err := kc.Disable(uint32(id)); err != nil {
		t.Fatal(err)
	}
	if _, err := km.UnwrapKey(ctx, &good, nil); !errors.Is(err, ErrKeyDisabled) {
		t.Errorf("disabled: %v", err)
	}
	km.Close(ctx)
	if _, err := km.WrapKey(ctx, make([]byte, 32), nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed: %v", err)
	}
}

func TestGatewayTwoStepRotation(t *testing.T) {
	kc := newKC(t, nil)
	km := kc.KeyManager()
	ctx := context.Background()
	plan, err := km.PrepareRotation(ctx, nil)
	if err != nil || plan.CurrentVersion != 1 || plan.TargetVersion != 2 {
		t.Fatalf("%+v %v", plan, err)
	}
	if v, _ := km.ActiveKeyVersion(ctx); v != 1 {
		t.Fatalf("prepare made version %d active", v)
	}
	// Wraps keep running while the plan is promoted; every envelope, made
	// under either version, unwraps afterwards.
	type made struct {
		key    []byte
		stored map[string]string
	}
	var mu sync.Mutex
	var all []made
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 50; i++ {
				key, stored, err := engineEncrypt(t, km, gwUser, nil)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, made{key, stored})
				mu.Unlock()
			}
		}()
	}
	close(start)
	if err := km.PromoteActiveVersion(ctx, plan); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if v, _ := km.ActiveKeyVersion(ctx); v != 2 {
		t.Fatalf("active %d after promote", v)
	}
	for _, m := range all {
		if got, err := engineDecrypt(km, m.stored, m.stored); err != nil || !bytes.Equal(got, m.key) {
			t.Fatalf("version %s: %v", m.stored[MetaKeyVersion], err)
		}
	}
	// A stale plan is a conflict.
	if err := km.PromoteActiveVersion(ctx, plan); !errors.Is(err, ErrPolicy) {
		t.Fatalf("stale plan: %v", err)
	}
	bad := 99
	if _, err := km.PrepareRotation(ctx, &bad); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown target: %v", err)
	}
	one := 1
	back, err := km.PrepareRotation(ctx, &one)
	if err != nil || back.TargetVersion != 1 || back.CurrentVersion != 2 {
		t.Fatalf("back to 1: %+v %v", back, err)
	}
}

// The metadata-context vectors (docs/FORMAT.md §4.2) through Go's
// bindings. A map cannot hold the duplicate-name case; C and Python run it.
func TestGatewayMetadataContextVectors(t *testing.T) {
	var doc struct {
		Keychain struct {
			MetadataContext []struct {
				Comment    string          `json:"comment"`
				Entries    [][2]string     `json:"entries"`
				Binding    json.RawMessage `json:"binding"`
				ContextHex *string         `json:"context_hex"`
			} `json:"metadata_context"`
		} `json:"keychain"`
	}
	readJSON(t, "keystrata.json", &doc)
	n := 0
	for _, c := range doc.Keychain.MetadataContext {
		if c.ContextHex == nil {
			continue
		}
		m := map[string]string{}
		for _, e := range c.Entries {
			m[e[0]] = e[1]
		}
		var b MetadataBinding
		var s string
		var names []string
		switch {
		case json.Unmarshal(c.Binding, &s) == nil && s == "all":
			b = BindAll()
		case json.Unmarshal(c.Binding, &s) == nil && s == "nothing":
			b = BindNothing()
		case json.Unmarshal(c.Binding, &names) == nil:
			b = BindOnly(names...)
		default:
			t.Fatalf("%s: binding %s", c.Comment, c.Binding)
		}
		got, err := b.Context(m)
		if err != nil || !bytes.Equal(got, unhex(t, *c.ContextHex)) {
			t.Errorf("%s: %x %v", c.Comment, got, err)
		}
		n++
	}
	if n < 8 {
		t.Fatalf("only %d metadata-context cases", n)
	}
}
