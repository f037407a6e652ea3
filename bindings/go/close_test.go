package keystrata

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestCloseSemantics(t *testing.T) {
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, _ := kc.Seal([]byte("x"), nil)
	env, _ := kc.WrapKey([]byte("k"), nil)
	if err := kc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := kc.Close(); err != nil {
		t.Fatal("double close:", err)
	}
	if kc.ptr != nil {
		t.Fatal("pointer not cleared")
	}
	root, _ := GenerateAgeRoot()
	calls := map[string]error{}
	_, calls["Seal"] = kc.Seal(nil, nil)
	_, calls["Unseal"] = kc.Unseal(ct, nil)
	_, calls["Encrypt"] = kc.Encrypt(nil, nil)
	_, calls["Decrypt"] = kc.Decrypt(ct, nil)
	_, calls["WrapKey"] = kc.WrapKey([]byte("k"), nil)
	_, calls["UnwrapKey"] = kc.UnwrapKey(env, nil)
	_, calls["DeriveOriginKey"] = kc.DeriveOriginKey("o", "i", 0)
	_, calls["Derive"] = kc.Derive(nil, 32)
	_, calls["Rotate"] = kc.Rotate()
	_, calls["RotateDerivation"] = kc.RotateDerivation()
	_, calls["AddKey"] = kc.AddKey(PurposeEncrypt)
	_, calls["Promote"] = kc.Promote(1)
	calls["Disable"] = kc.Disable(1)
	calls["Enable"] = kc.Enable(1)
	calls["Destroy"] = kc.Destroy(1)
	_, calls["Keys"] = kc.Keys()
	_, calls["Primary"] = kc.Primary()
	_, calls["Policy"] = kc.Policy()
	calls["SetPolicy"] = kc.SetPolicy(DefaultPolicy())
	_, calls["Counters"] = kc.Counters()
	calls["HealthCheck"] = kc.HealthCheck()
	_, calls["ActiveKeyVersion"] = kc.ActiveKeyVersion()
	_, calls["IsBound"] = kc.IsBound()
	_, calls["Save"] = kc.Save(root)
	calls["SaveFile"] = kc.SaveFile(t.TempDir()+"/x", root)
	_, calls["InsecureExportTinkCleartext"] = kc.InsecureExportTinkCleartext()
	_, calls["Subscribe"] = kc.Subscribe(func(Event) {})
	calls["Unsubscribe"] = kc.Unsubscribe(1)
	_, calls["KeyManager.WrapKey"] = kc.KeyManager().WrapKey(context.Background(), []byte("k"), nil)
	_, calls["RotateSigning"] = kc.RotateSigning(AlgorithmEd25519)
	_, calls["AddSigningKey"] = kc.AddSigningKey(AlgorithmEd25519)
	_, calls["Sign"] = kc.Sign([]byte("m"))
	_, calls["SignAs"] = kc.SignAs([]byte("m"), SignatureRaw)
	_, calls["SignDigest"] = kc.SignDigest(make([]byte, 32), SignatureDER)
	_, calls["Verify"] = kc.Verify([]byte("m"), make([]byte, 64))
	_, calls["VerifyWith"] = kc.VerifyWith(1, []byte("m"), make([]byte, 64))
	_, calls["VerifyDigest"] = kc.VerifyDigest(make([]byte, 32), make([]byte, 64))
	_, calls["PublicKey"] = kc.PublicKey(1, PublicKeyPEM)
	_, calls["PrimaryOf(PurposeSign)"] = kc.PrimaryOf(PurposeSign)
	for name, err := range calls {
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}

	// Roots: the same rules.
	root.Close()
	root.Close()
	if _, err := root.AgeRecipients(); !errors.Is(err, ErrUnavailable) {
		t.Error(err)
	}
	kc2, _ := Generate(nil)
	defer kc2.Close()
	if _, err := kc2.Save(root); !errors.Is(err, ErrUnavailable) {
		t.Error(err)
	}
	if _, err := Load([]byte("x"), root); !errors.Is(err, ErrUnavailable) {
		t.Error(err)
	}
	var nilKC *Keychain
	if _, err := nilKC.Seal(nil, nil); !errors.Is(err, ErrUnavailable) || nilKC.Close() != nil {
		t.Error("nil keychain", err)
	}
	if _, err := kc2.Save(nil); !errors.Is(err, ErrInvalidInput) {
		t.Error("nil root", err)
	}
}

// Close racing with calls in flight: every call either works or fails with
// ErrUnavailable; nothing crashes (run with -race).
func TestCloseWhileInUse(t *testing.T) {
	for round := 0; round < 20; round++ {
		kc, _ := Generate(nil)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 50; i++ {
					ct, err := kc.Seal([]byte("payload"), nil)
					if err == nil {
						_, err = kc.Unseal(ct, nil)
					}
					if err != nil && !errors.Is(err, ErrUnavailable) {
						t.Errorf("unexpected error: %v", err)
						return
					}
				}
			}()
		}
		close(start)
		time.Sleep(time.Duration(round) * 20 * time.Microsecond)
		kc.Close()
		wg.Wait()
		if kc.ptr != nil {
			t.Fatal("not freed after the last call")
		}
	}
}

// The finalizer frees keychains and roots that were never closed.
func TestFinalizer(t *testing.T) {
	freed := make(chan struct{}, 2)
	func() {
		kc, _ := Generate(nil)
		kc.Seal([]byte("x"), nil)
		root, _ := GenerateAgeRoot()
		// Chain a marker on the objects: wrap the package finalizer.
		runtime.SetFinalizer(kc, nil)
		runtime.SetFinalizer(root, nil)
		runtime.SetFinalizer(kc, func(k *Keychain) { k.finalize(); freed <- struct{}{} })
		runtime.SetFinalizer(root, func(r *Root) { r.finalize(); freed <- struct{}{} })
	}()
	deadline := time.After(10 * time.Second)
	for got := 0; got < 2; {
		runtime.GC()
		select {
		case <-freed:
			got++
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatal("finalizers did not run")
		}
	}
	// Closing sets no finalizer to run later (it was cleared).
	kc, _ := Generate(nil)
	kc.Close()
	runtime.GC()
}
