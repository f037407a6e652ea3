package keystrata

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// myKMS is a key manager of the test's own: a second keychain standing in
// for a KMS client. Embedding *Keychain gives it ActiveKeyVersion,
// HealthCheck and Close, the optional methods.
type myKMS struct {
	*Keychain
	wraps, unwraps atomic.Int32
	closed         atomic.Int32
	fail           error              // returned by WrapKey and UnwrapKey when set
	panics         bool               // WrapKey panics
	edit           func(*KeyEnvelope) // changes what WrapKey returns
	unwrapResult   []byte             // returned by UnwrapKey when set
	mu             sync.Mutex         // guards lastUnwrap: UnwrapKey runs on many goroutines
	lastUnwrap     []byte             // what UnwrapKey returned last
}

func (k *myKMS) Provider() string { return "my-kms" }

func (k *myKMS) WrapKey(key, context []byte) (*KeyEnvelope, error) {
	k.wraps.Add(1)
	if k.panics {
		panic("secret-looking panic value AGE-SECRET-KEY-1")
	}
	if k.fail != nil {
		return nil, k.fail
	}
	env, err := k.Keychain.WrapKey(key, context)
	if err == nil && k.edit != nil {
		k.edit(env)
	}
	return env, err
}

func (k *myKMS) UnwrapKey(env *KeyEnvelope, context []byte) ([]byte, error) {
	k.unwraps.Add(1)
	if k.fail != nil {
		return nil, k.fail
	}
	if k.unwrapResult != nil {
		return k.unwrapResult, nil
	}
	inner := *env
	inner.Provider = Provider
	key, err := k.Keychain.UnwrapKey(&inner, context)
	k.mu.Lock()
	k.lastUnwrap = key
	k.mu.Unlock()
	return key, err
}

func (k *myKMS) Close() error {
	k.closed.Add(1)
	return k.Keychain.Close()
}

func newMyKMS(t *testing.T) *myKMS {
	t.Helper()
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &myKMS{Keychain: kc}
}

func TestCustomRootSavesAndLoads(t *testing.T) {
	kms := newMyKMS(t)
	root, err := NewCustomRoot(kms)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	kc := mustGenerate(t)
	sealed, err := kc.Seal([]byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	saved, err := kc.Save(root)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(saved, []byte("KSWR")) || kms.wraps.Load() != 1 {
		t.Fatalf("saved %q..., %d wraps", saved[:4], kms.wraps.Load())
	}
	back, err := Load(saved, root)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if pt, err := back.Unseal(sealed, nil); err != nil || string(pt) != "hello" {
		t.Fatalf("unseal after load: %q, %v", pt, err)
	}
	// The slice UnwrapKey returned was wiped once copied.
	kms.mu.Lock()
	last := kms.lastUnwrap
	kms.mu.Unlock()
	if len(last) != 32 || !bytes.Equal(last, make([]byte, 32)) {
		t.Fatalf("the unwrapped key was not wiped: %d bytes", len(last))
	}
	saved[len(saved)-1] ^= 1
	if _, err := Load(saved, root); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("tampered: %v", err)
	}
	if err := root.HealthCheck(); err != nil {
		t.Fatal(err)
	}
}

func TestCustomRootErrorsKeepTheirKind(t *testing.T) {
	cases := []struct {
		name string
		set  func(*myKMS)
		want error
		msg  string
	}{
		{"keystrata kind", func(k *myKMS) { k.fail = fmt.Errorf("endpoint unreachable: %w", ErrUnavailable) }, ErrUnavailable, "endpoint unreachable"},
		{"keystrata error", func(k *myKMS) { k.fail = &Error{Code: ErrKeyDisabled.Code, Msg: "key arn:aws:kms:x disabled"} }, ErrKeyDisabled, "arn:aws:kms:x disabled"},
		{"other error", func(k *myKMS) { k.fail = errors.New("throttled") }, ErrBackend, "throttled"},
		{"panic", func(k *myKMS) { k.panics = true }, ErrInternal, "panicked"},
		{"version 0", func(k *myKMS) { k.edit = func(e *KeyEnvelope) { e.KeyVersion = 0 } }, ErrBackend, "version 0"},
		{"negative version", func(k *myKMS) { k.edit = func(e *KeyEnvelope) { e.KeyVersion = -1 } }, ErrBackend, "key version"},
		{"empty ciphertext", func(k *myKMS) { k.edit = func(e *KeyEnvelope) { e.Ciphertext = nil } }, ErrBackend, "0 bytes"},
		{"long key ID", func(k *myKMS) { k.edit = func(e *KeyEnvelope) { e.KeyID = strings.Repeat("k", 257) } }, ErrBackend, "key ID"},
		{"NUL in key ID", func(k *myKMS) { k.edit = func(e *KeyEnvelope) { e.KeyID = "a\x00b" } }, ErrBackend, "key ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			kms := newMyKMS(t)
			c.set(kms)
			root, err := NewCustomRoot(kms)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			_, err = mustGenerate(t).Save(root)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v with %q", err, c.want, c.msg)
			}
			if strings.Contains(err.Error(), "AGE-SECRET-KEY") {
				t.Fatalf("a panic value reached the message: %v", err)
			}
		})
	}
	// A wrapped key larger than the first offer: asked again with room.
	kms := newMyKMS(t)
	kms.edit = func(e *KeyEnvelope) { e.Ciphertext = bytes.Repeat([]byte{7}, 5000) }
	root, _ := NewCustomRoot(kms)
	defer root.Close()
	if _, err := mustGenerate(t).Save(root); err != nil || kms.wraps.Load() != 2 {
		t.Fatalf("large wrapped key: %v after %d wraps", err, kms.wraps.Load())
	}
	// Unwrap results are checked too.
	kms = newMyKMS(t)
	root2, _ := NewCustomRoot(kms)
	defer root2.Close()
	saved, err := mustGenerate(t).Save(root2)
	if err != nil {
		t.Fatal(err)
	}
	kms.unwrapResult = make([]byte, 4097)
	if _, err := Load(saved, root2); !errors.Is(err, ErrBackend) {
		t.Fatalf("4097-byte key: %v", err)
	}
	kms.unwrapResult = []byte{}
	if _, err := Load(saved, root2); !errors.Is(err, ErrBackend) {
		t.Fatalf("empty key: %v", err)
	}
}

func TestCustomRootBadConstruction(t *testing.T) {
	if _, err := NewCustomRoot(nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("nil: %v", err)
	}
	for _, p := range []string{"", "KMS", "keystrata", "kmip", "a\x00b", strings.Repeat("a", 65)} {
		kms := &namedKMS{myKMS: newMyKMS(t), name: p}
		if _, err := NewCustomRoot(kms); !errors.Is(err, ErrInvalidInput) {
			t.Fatalf("provider %q: %v", p, err)
		}
		// A failed constructor does not close the caller's key manager.
		if kms.closed.Load() != 0 {
			t.Fatalf("provider %q: closed", p)
		}
	}
}

type namedKMS struct {
	*myKMS
	name string
}

func (n *namedKMS) Provider() string { return n.name }

// minimalKMS has only the three required methods.
type minimalKMS struct{ kc *Keychain }

func (m minimalKMS) Provider() string { return "minimal" }
func (m minimalKMS) WrapKey(key, context []byte) (*KeyEnvelope, error) {
	return m.kc.WrapKey(key, context)
}
func (m minimalKMS) UnwrapKey(env *KeyEnvelope, context []byte) ([]byte, error) {
	e := *env
	e.Provider = Provider
	return m.kc.UnwrapKey(&e, context)
}

func TestCustomRootMinimalAndClose(t *testing.T) {
	root, err := NewCustomRoot(minimalKMS{mustGenerate(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.HealthCheck(); err != nil {
		t.Fatal(err)
	}
	saved, err := mustGenerate(t).Save(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Load(saved, root); err != nil {
		t.Fatal(err)
	}
	root.Close()

	// The key manager's Close runs once, when the last reference goes: a
	// keychain opened with the root keeps it alive after Root.Close.
	kms := newMyKMS(t)
	root, err = NewCustomRoot(kms)
	if err != nil {
		t.Fatal(err)
	}
	bound, err := Open(filepath.Join(t.TempDir(), "kc.ks"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	root.Close()
	if kms.closed.Load() != 0 {
		t.Fatal("closed while a keychain still uses the root")
	}
	if _, err := bound.Rotate(); err != nil {
		t.Fatal(err)
	}
	bound.Close()
	if kms.closed.Load() != 1 {
		t.Fatalf("Close called %d times", kms.closed.Load())
	}
}

// Callbacks run on many goroutines at once, and the handle table stays
// balanced (run with -race by bindings/go/test.sh).
func TestCustomRootConcurrent(t *testing.T) {
	kms := newMyKMS(t)
	root, err := NewCustomRoot(kms)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	kc := mustGenerate(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < runtime.GOMAXPROCS(0)*4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				saved, err := kc.Save(root)
				if err == nil {
					_, err = Load(saved, root)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func mustGenerate(t *testing.T) *Keychain {
	t.Helper()
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	return kc
}
