package keystrata

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

// twoKeys: a keychain whose ciphertexts are made under oldID, then newID is
// promoted.
func twoKeys(t *testing.T) (kc *Keychain, oldID, newID uint32) {
	t.Helper()
	kc = newKC(t, nil)
	p, err := kc.Primary()
	if err != nil {
		t.Fatal(err)
	}
	n, err := kc.AddKey(PurposeEncrypt)
	if err != nil {
		t.Fatal(err)
	}
	return kc, p.KeyID, n.KeyID
}

func TestRewrap(t *testing.T) {
	kc, oldID, newID := twoKeys(t)
	aad := []byte("aad")
	sealed, _ := kc.Seal([]byte("secret"), aad)
	doc := bytes.Repeat([]byte{7}, 5000)
	blob, _ := kc.Encrypt(doc, aad)
	env, err := kc.WrapKey(bytes.Repeat([]byte{0x42}, 32), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if id, err := SealedKeyID(sealed); err != nil || id != oldID {
		t.Fatalf("sealed key id %d %v", id, err)
	}
	if id, err := EncryptedKeyID(blob); err != nil || id != oldID {
		t.Fatalf("encrypted key id %d %v", id, err)
	}
	if _, err := kc.Promote(newID); err != nil {
		t.Fatal(err)
	}
	s2, err := kc.RewrapSealed(sealed, aad)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := kc.RewrapEncrypted(blob)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := kc.RewrapEnvelope(env, []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SealedKeyID(s2); id != newID {
		t.Fatalf("rewrapped seal names %d", id)
	}
	if id, _ := EncryptedKeyID(b2); id != newID || !bytes.Equal(b2[71:], blob[71:]) {
		t.Fatalf("rewrapped blob names %d or changed its payload", id)
	}
	if e2.KeyID != strconv.FormatUint(uint64(newID), 10) {
		t.Fatalf("rewrapped envelope names %s", e2.KeyID)
	}
	if err := kc.Destroy(oldID); err != nil {
		t.Fatal(err)
	}
	if pt, err := kc.Unseal(s2, aad); err != nil || string(pt) != "secret" {
		t.Fatalf("unseal after rewrap: %q %v", pt, err)
	}
	if pt, err := kc.Decrypt(b2, aad); err != nil || !bytes.Equal(pt, doc) {
		t.Fatalf("decrypt after rewrap: %v", err)
	}
	if k, err := kc.UnwrapKey(e2, []byte("ctx")); err != nil || !bytes.Equal(k, bytes.Repeat([]byte{0x42}, 32)) {
		t.Fatalf("unwrap after rewrap: %v", err)
	}
	for name, err := range map[string]error{
		"destroyed sealed":    second(kc.RewrapSealed(sealed, aad)),
		"destroyed encrypted": second(kc.RewrapEncrypted(blob)),
	} {
		if !errors.Is(err, ErrKeyDestroyed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := kc.RewrapSealed(s2, []byte("other")); !errors.Is(err, ErrAuthentication) {
		t.Errorf("wrong aad: %v", err)
	}
	if _, err := kc.RewrapEncrypted(blob[:50]); !errors.Is(err, ErrFormat) {
		t.Errorf("short blob: %v", err)
	}
	if _, err := SealedKeyID([]byte{2, 0, 0, 0, 1}); !errors.Is(err, ErrFormat) {
		t.Errorf("not a sealed ciphertext: %v", err)
	}
	if _, err := EncryptedKeyID(nil); !errors.Is(err, ErrFormat) {
		t.Errorf("empty blob: %v", err)
	}
	kc.Close()
	if _, err := kc.RewrapSealed(s2, aad); !errors.Is(err, ErrUnavailable) {
		t.Errorf("after close: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func TestMetricsText(t *testing.T) {
	kc := newKC(t, nil)
	ct, _ := kc.Seal([]byte("s"), nil)
	if _, err := kc.Unseal(ct, []byte("x")); !errors.Is(err, ErrAuthentication) {
		t.Fatal(err)
	}
	if _, err := kc.DeriveOriginKey("api.example.com", "i", 1); err != nil {
		t.Fatal(err)
	}
	text, err := kc.MetricsText()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nkms_seal_total{ok=\"true\"} 1\n",
		"\nkms_unseal_total{ok=\"false\"} 1\n",
		"\nkms_errors_total{kind=\"Authentication\"} 1\n",
		"\nkms_derivations_total{origin=\"api.example.com\"} 1\n",
		"\nkms_operation_duration_seconds_count{op=\"derive\"} 1\n",
		"# TYPE kms_operation_duration_seconds histogram\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics text lacks %q", want)
		}
	}
	kc.Close()
	if _, err := kc.MetricsText(); !errors.Is(err, ErrUnavailable) {
		t.Errorf("after close: %v", err)
	}
}
