package keystrata

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// The gateway-side interface, exactly as Go gateways declare it.
type gatewayKeyManager interface {
	Provider() string
	WrapKey(ctx context.Context, plaintext []byte, metadata map[string]string) (*KeyEnvelope, error)
	UnwrapKey(ctx context.Context, env *KeyEnvelope, metadata map[string]string) ([]byte, error)
	ActiveKeyVersion(ctx context.Context) (int, error)
	HealthCheck(ctx context.Context) error
	Close(ctx context.Context) error
}

var _ gatewayKeyManager = (*KeyManager)(nil)

func TestKeyManagerContract(t *testing.T) {
	kc := newKC(t, nil)
	// Everything bound (0.1's behaviour), so every entry matters below.
	var km gatewayKeyManager = kc.KeyManager(WithMetadataBinding(BindAll()))
	ctx := context.Background()
	mc := func(m map[string]string) []byte {
		t.Helper()
		b, err := MetadataContext(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if km.Provider() != "keystrata" {
		t.Fatal(km.Provider())
	}
	if err := km.HealthCheck(ctx); err != nil {
		t.Fatal(err)
	}
	meta := map[string]string{"bucket": "b", "key": "reports/q3.pdf"}
	dek := bytes.Repeat([]byte{7}, 32)
	env, err := km.WrapKey(ctx, dek, meta)
	if err != nil || env.Provider != "keystrata" || env.KeyVersion != 1 {
		t.Fatalf("%+v %v", env, err)
	}
	got, err := km.UnwrapKey(ctx, env, map[string]string{"key": "reports/q3.pdf", "bucket": "b"})
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatal(err)
	}
	// The object's full metadata, envelope entries included, also unwraps.
	full, _ := env.ToMetadata()
	for k, v := range meta {
		full[k] = v
	}
	env2, _ := EnvelopeFromMetadata(full)
	if got, err := km.UnwrapKey(ctx, env2, full); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("full metadata: %v", err)
	}
	// A different metadata map fails, including lookalike encodings.
	for _, other := range []map[string]string{
		nil,
		{"bucket": "b"},
		{"bucket": "b", "key": "reports/q4.pdf"},
		{"bucket": "b", "key": "reports/q3.pdf", "extra": ""},
		{"bucket": "b\nkey=reports/q3.pdf"},
	} {
		if _, err := km.UnwrapKey(ctx, env, other); !errors.Is(err, ErrAuthentication) {
			t.Errorf("metadata %q: got %v, want ErrAuthentication", other, err)
		}
	}
	if !bytes.Equal(mc(map[string]string{"a=b": "c"}), []byte("a%3Db=c\n")) ||
		bytes.Equal(mc(map[string]string{"a=b": "c"}), mc(map[string]string{"a": "b=c"})) ||
		mc(map[string]string{}) != nil {
		t.Error("MetadataContext encoding")
	}
	// What a KeyManager wraps, the Keychain unwraps with MetadataContext.
	if got, err := kc.UnwrapKey(env, mc(meta)); err != nil || !bytes.Equal(got, dek) {
		t.Fatal(err)
	}
	kc.Rotate()
	if v, err := km.ActiveKeyVersion(ctx); err != nil || v != 2 {
		t.Fatal(v, err)
	}
	if got, err := km.UnwrapKey(ctx, env, meta); err != nil || !bytes.Equal(got, dek) {
		t.Fatal(err)
	}

	// A cancelled context is honoured before any work starts.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	before, _ := kc.Counters()
	if _, err := km.WrapKey(cctx, dek, meta); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := km.UnwrapKey(cctx, env, meta); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if _, err := km.ActiveKeyVersion(cctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := km.HealthCheck(cctx); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if after, _ := kc.Counters(); after != before {
		t.Fatal("work done under a cancelled context")
	}

	// Close: idempotent; afterwards Wrap/Unwrap fail with ErrUnavailable.
	if err := km.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := km.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := km.WrapKey(ctx, dek, meta); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if _, err := km.UnwrapKey(ctx, env, meta); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if err := km.HealthCheck(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	// The keychain itself stays open; closing it ends every view.
	if _, err := kc.Seal(nil, nil); err != nil {
		t.Fatal(err)
	}
	km2 := kc.KeyManager()
	kc.Close()
	if _, err := km2.WrapKey(ctx, dek, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	if err := km2.HealthCheck(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
}

// 64 goroutines wrap and unwrap through KeyManager() while another rotates:
// every envelope unwraps to its key, nothing is lost.
func TestKeyManagerConcurrentRotation(t *testing.T) {
	kc := newKC(t, nil)
	km := kc.KeyManager()
	ctx := context.Background()
	const workers, perWorker = 64, 40
	type wrapped struct {
		env  *KeyEnvelope
		dek  []byte
		meta map[string]string
	}
	results := make([][]wrapped, workers)
	var stop atomic.Bool
	var rotations atomic.Int64
	var rotWG sync.WaitGroup
	rotWG.Add(1)
	go func() {
		defer rotWG.Done()
		for !stop.Load() {
			if _, err := kc.Rotate(); err != nil {
				t.Error(err)
				return
			}
			rotations.Add(1)
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				dek := make([]byte, 32)
				rand.Read(dek)
				meta := map[string]string{"object": string(rune('a'+w%26)) + "/" + string(rune('0'+i%10))}
				env, err := km.WrapKey(ctx, dek, meta)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := km.UnwrapKey(ctx, env, meta)
				if err != nil || !bytes.Equal(got, dek) {
					t.Errorf("worker %d: immediate unwrap: %v", w, err)
					return
				}
				results[w] = append(results[w], wrapped{env, dek, meta})
			}
		}(w)
	}
	wg.Wait()
	stop.Store(true)
	rotWG.Wait()
	versions := map[int]bool{}
	n := 0
	for _, rs := range results {
		for _, r := range rs {
			got, err := km.UnwrapKey(ctx, r.env, r.meta)
			if err != nil || !bytes.Equal(got, r.dek) {
				t.Fatalf("lost envelope v%d: %v", r.env.KeyVersion, err)
			}
			versions[r.env.KeyVersion] = true
			n++
		}
	}
	if n != workers*perWorker {
		t.Fatalf("%d envelopes, want %d", n, workers*perWorker)
	}
	c, _ := kc.Counters()
	if c.Wrap != uint64(n) || c.UnwrapOK != uint64(2*n) || c.UnwrapFailed != 0 {
		t.Fatalf("counters %+v", c)
	}
	t.Logf("%d envelopes over %d key versions, %d rotations", n, len(versions), rotations.Load())
	if rotations.Load() < 2 || len(versions) < 2 {
		t.Fatalf("rotation did not overlap: %d rotations, %d versions", rotations.Load(), len(versions))
	}
}
