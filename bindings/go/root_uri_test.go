package keystrata

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRootFromURI(t *testing.T) {
	kc := newKC(t, nil)
	ct, err := kc.Seal([]byte("uri"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("KS_GO_TEST_PASSPHRASE", "correct horse battery staple")
	pr, err := NewRootFromURI("passphrase:env:KS_GO_TEST_PASSPHRASE")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	saved, err := kc.Save(pr)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Load(saved, pr)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if pt, err := back.Unseal(ct, nil); err != nil || string(pt) != "uri" {
		t.Fatalf("unseal after a round trip through the URI root: %q %v", pt, err)
	}

	// age:FILE, loading what a generated root saved.
	gen, err := GenerateAgeRoot()
	if err != nil {
		t.Fatal(err)
	}
	defer gen.Close()
	ids, err := gen.InsecureAgeIdentities()
	if err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	path := filepath.Join(t.TempDir(), "identity.txt")
	if err := os.WriteFile(path, []byte(ids[0]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ar, err := NewRootFromURI("age:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer ar.Close()
	saved, err = kc.Save(gen)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := Load(saved, ar); err != nil {
		t.Fatal(err)
	} else {
		k.Close()
	}

	for _, bad := range []string{"nope:x", "no scheme", "passphrase:a\x00b"} {
		if _, err := NewRootFromURI(bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%q: %v, want ErrInvalidInput", bad, err)
		}
	}
	huge := "kmip://" + strings.Repeat("x", 100000)
	if _, err := NewRootFromURI(huge); err == nil || len(err.Error()) > 1000 {
		t.Errorf("a 100 kB URI: error of %d bytes: %.200v", len(err.Error()), err)
	}
}

func TestDeprecatedExportNameIsTheSameCall(t *testing.T) {
	kc := newKC(t, nil)
	a, err := kc.InsecureExportTinkCleartext()
	if err != nil {
		t.Fatal(err)
	}
	b, err := kc.ExportTinkCleartext()
	if err != nil || string(a) != string(b) {
		t.Fatalf("the deprecated name differs: %v", err)
	}
}
