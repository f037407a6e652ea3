package keystrata

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

type portableVectors struct {
	FormatVersion int `json:"format_version"`
	Roots         map[string]struct {
		AgeIdentity string `json:"age_identity"`
		Passphrase  string `json:"passphrase"`
		WorkFactor  int    `json:"work_factor"`
	} `json:"roots"`
	Decrypt []struct {
		Comment      string `json:"comment"`
		Root         string `json:"root"`
		KeyID        uint32 `json:"key_id"`
		PlaintextHex string `json:"plaintext_hex"`
		AADHex       string `json:"aad_hex"`
		BlobHex      string `json:"blob_hex"`
	} `json:"decrypt"`
	Invalid []struct {
		Comment   string `json:"comment"`
		Root      string `json:"root"`
		BlobHex   string `json:"blob_hex"`
		AADHex    string `json:"aad_hex"`
		Error     string `json:"error"`
		ErrorCode int    `json:"error_code"`
	} `json:"invalid"`
}

func TestPortableVectors(t *testing.T) {
	var v portableVectors
	readJSON(t, "portable.json", &v)
	if v.FormatVersion != 1 {
		t.Fatalf("format_version %d", v.FormatVersion)
	}
	// One Root per name, its KEK cache kept across cases: a cache must
	// never change an answer.
	roots := map[string]*Root{}
	for name, spec := range v.Roots {
		var r *Root
		var err error
		if spec.AgeIdentity != "" {
			r, err = NewAgeRoot([]string{spec.AgeIdentity}, nil)
		} else {
			r, err = NewPassphraseRoot(spec.Passphrase, spec.WorkFactor)
		}
		if err != nil {
			t.Fatalf("root %s: %v", name, err)
		}
		defer r.Close()
		roots[name] = r
	}
	for _, c := range v.Decrypt {
		blob, aad, want := unhex(t, c.BlobHex), unhex(t, c.AADHex), unhex(t, c.PlaintextHex)
		for i := 0; i < 2; i++ {
			got, err := DecryptPortable(blob, aad, roots[c.Root])
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: got %x, %v", c.Comment, got, err)
			}
		}
		n := binary.BigEndian.Uint32(blob[4:8])
		if id := binary.BigEndian.Uint32(blob[8+n+5 : 8+n+9]); id != c.KeyID {
			t.Errorf("%s: envelope names key %d, want %d", c.Comment, id, c.KeyID)
		}
	}
	for _, c := range v.Invalid {
		want := kindByName[c.Error]
		if want == nil || want.Code != c.ErrorCode {
			t.Fatalf("%s: unknown kind %s/%d", c.Comment, c.Error, c.ErrorCode)
		}
		_, err := roots[c.Root].DecryptPortable(unhex(t, c.BlobHex), unhex(t, c.AADHex))
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %s", c.Comment, err, c.Error)
		}
	}
	if len(v.Decrypt) != 7 || len(v.Invalid) != 28 {
		t.Fatalf("portable.json has %d + %d cases, want 7 + 28", len(v.Decrypt), len(v.Invalid))
	}
	// Under "age": 6 valid cases twice; 4 wrapped KEKs unwrapped once each,
	// 6 invalid cases reaching the root (failures are never cached).
	c, err := roots["age"].PortableCounters()
	if err != nil || c != (PortableCounters{DecryptOK: 12, DecryptFailed: 26, RootCalls: 10, CachedKEKs: 4}) {
		t.Fatalf("counters %+v, %v", c, err)
	}
}

func TestPortableRoundTripCallsTheRootOncePerKEK(t *testing.T) {
	root, err := GenerateAgeRoot()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	path := filepath.Join(t.TempDir(), "kc.age")
	kc, err := Open(path, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for i := 0; i < 40; i++ {
		if i == 20 {
			if _, err := kc.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		b, err := kc.EncryptPortable([]byte(fmt.Sprintf("message %d", i)), []byte("ctx"))
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	if c, _ := kc.Counters(); c.Encrypt != 40 {
		t.Fatalf("encrypt counter %d", c.Encrypt)
	}
	kc.Close()

	// Elsewhere: a root from the identity alone, no keychain.
	ids, err := root.InsecureAgeIdentities()
	if err != nil {
		t.Fatal(err)
	}
	reader, err := NewAgeRoot(ids, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for i, b := range blobs {
		got, err := DecryptPortable(b, []byte("ctx"), reader)
		if err != nil || string(got) != fmt.Sprintf("message %d", i) {
			t.Fatalf("blob %d: %q, %v", i, got, err)
		}
		if i == 19 {
			if c, _ := reader.PortableCounters(); c.RootCalls != 1 {
				t.Fatalf("after 20 blobs under one KEK: %+v", c)
			}
		}
	}
	if c, _ := reader.PortableCounters(); c != (PortableCounters{DecryptOK: 40, RootCalls: 2, CachedKEKs: 2}) {
		t.Fatalf("counters %+v", c)
	}

	if _, err := reader.DecryptPortable(blobs[0], []byte("other")); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong aad: %v", err)
	}
	other, _ := GenerateAgeRoot()
	defer other.Close()
	if _, err := DecryptPortable(blobs[0], []byte("ctx"), other); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("other identity: %v", err)
	}
	if _, err := reader.DecryptPortable([]byte("KSP"), nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("short: %v", err)
	}
	if err := reader.ClearPortableCache(); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.DecryptPortable(blobs[0], []byte("ctx")); err != nil {
		t.Fatal(err)
	}
	if c, _ := reader.PortableCounters(); c.RootCalls != 3 || c.CachedKEKs != 1 {
		t.Fatalf("after clear: %+v", c)
	}

	// Goroutines meeting one new wrapped KEK at once: one root call.
	kc2, err := Open(path, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc2.Close()
	shared, err := kc2.EncryptPortable([]byte("shared"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := reader.DecryptPortable(shared, nil); err != nil || string(got) != "shared" {
				t.Errorf("goroutine: %q, %v", got, err)
			}
		}()
	}
	wg.Wait()
	if c, _ := reader.PortableCounters(); c.RootCalls != 4 {
		t.Fatalf("eight goroutines, one new KEK: %+v", c)
	}

	// A closed root: ErrUnavailable, never a crash.
	reader.Close()
	if _, err := reader.DecryptPortable(blobs[0], []byte("ctx")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed root: %v", err)
	}
	if _, err := DecryptPortable(blobs[0], nil, nil); err == nil {
		t.Fatal("nil root decrypted")
	}
}

func TestPortableNeedsABoundKeychain(t *testing.T) {
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if _, err := kc.EncryptPortable([]byte("x"), nil); !errors.Is(err, ErrPolicy) {
		t.Fatalf("unbound: %v", err)
	}
	kc.Close()
	if _, err := kc.EncryptPortable([]byte("x"), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: %v", err)
	}
}
