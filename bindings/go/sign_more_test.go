package keystrata

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The mapping of minisign, trust files and signers over the C calls, with
// real bytes from minisign's CLI and Go's standard library. The rules are
// tested in the core.

var sample = []byte("keystrata-1.2.3.tar.gz contents")

// minisignLine is the base64 line of a minisign public key text.
func minisignLine(t *testing.T, pub string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(pub), "\n")
	if len(lines) != 2 {
		t.Fatalf("not a minisign public key: %q", pub)
	}
	return strings.TrimSpace(lines[1])
}

func TestMinisignWithTheKeychain(t *testing.T) {
	kc := newKC(t, nil)
	if _, err := kc.SignMinisign(sample, "c"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no signing key: %v", err)
	}
	if _, err := kc.RotateSigning(AlgorithmECDSAP256); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.SignMinisign(sample, "c"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("ECDSA primary: %v", err)
	}
	ed, err := kc.RotateSigning(AlgorithmEd25519)
	if err != nil {
		t.Fatal(err)
	}
	const comment = "timestamp:1767225600\tfile:keystrata-1.2.3.tar.gz"
	sig, err := kc.SignMinisign(sample, comment)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sig, "untrusted comment: ") || !strings.Contains(sig, "\ntrusted comment: "+comment+"\n") {
		t.Fatalf("signature text %q", sig)
	}
	who, err := kc.VerifyMinisign(sample, sig)
	if err != nil || who.KeyID != ed.KeyID || who.Algorithm != AlgorithmEd25519 {
		t.Fatalf("VerifyMinisign: %+v, %v", who, err)
	}
	if _, err := kc.VerifyMinisign(sample[1:], sig); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("other data: %v", err)
	}
	tampered := strings.Replace(sig, "timestamp:1", "timestamp:2", 1)
	if _, err := kc.VerifyMinisign(sample, tampered); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("changed trusted comment: %v", err)
	}

	pub, err := kc.PublicKey(ed.KeyID, PublicKeyMinisign)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{string(pub), minisignLine(t, string(pub))} {
		got, err := MinisignVerify(key, sample, sig)
		if err != nil || got != comment {
			t.Fatalf("MinisignVerify: %q, %v", got, err)
		}
	}
	if _, err := MinisignVerify(string(pub), sample, tampered); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("MinisignVerify, changed comment: %v", err)
	}
	// The raw key inside the minisign line is the key's Ed25519 key.
	rawLine, _ := base64.StdEncoding.DecodeString(minisignLine(t, string(pub)))
	raw, _ := kc.PublicKey(ed.KeyID, PublicKeyRaw)
	if len(rawLine) != 42 || !bytes.Equal(rawLine[10:], raw) {
		t.Fatalf("minisign line %x, raw key %x", rawLine, raw)
	}

	// Empty data and an empty comment.
	empty, err := kc.SignMinisign(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := MinisignVerify(string(pub), nil, empty); err != nil || got != "" {
		t.Fatalf("empty: %q, %v", got, err)
	}

	// Comments minisign cannot carry, and garbage.
	for _, bad := range []string{"two\nlines", "nul\x00byte", "\x1b[31m", strings.Repeat("x", 9000)} {
		if _, err := kc.SignMinisign(sample, bad); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("comment %.20q: %v", bad, err)
		}
	}
	for _, bad := range []string{"", "garbage", "untrusted comment: x\nRWQ=\n", "\xff\xfe", strings.Repeat("A", 100<<10)} {
		if _, err := kc.VerifyMinisign(sample, bad); !errors.Is(err, ErrFormat) {
			t.Errorf("signature %.20q: %v", bad, err)
		}
		if _, err := MinisignVerify(string(pub), sample, bad); !errors.Is(err, ErrFormat) {
			t.Errorf("MinisignVerify, signature %.20q: %v", bad, err)
		}
		if _, err := kc.ImportMinisignSecretKey(bad, []byte("pw")); !errors.Is(err, ErrFormat) || strings.Contains(err.Error(), "pw") {
			t.Errorf("import %.20q: %v", bad, err)
		}
	}
	for _, bad := range []string{"", "not a key", "nul\x00", "\xff"} {
		if _, err := MinisignVerify(bad, sample, sig); !errors.Is(err, ErrFormat) {
			t.Errorf("public key %q: %v", bad, err)
		}
	}

	// Another keychain's key: another key ID.
	other, _ := signingKC(t, AlgorithmEd25519)
	otherPub, _ := other.PublicKey(mustPrimarySign(t, other).KeyID, PublicKeyMinisign)
	if _, err := MinisignVerify(string(otherPub), sample, sig); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("another key: %v", err)
	}
	if _, err := other.VerifyMinisign(sample, sig); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("another keychain: %v", err)
	}

	// Closed.
	kc.Close()
	if _, err := kc.SignMinisign(sample, ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: %v", err)
	}
	if _, err := kc.VerifyMinisign(sample, sig); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: %v", err)
	}
	if _, err := kc.ImportMinisignSecretKey("x", nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: %v", err)
	}
}

func mustPrimarySign(t *testing.T, kc *Keychain) KeyInfo {
	t.Helper()
	k, err := kc.PrimaryOf(PurposeSign)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// minisignCLI is the path of the minisign command; the test skips without
// it, or fails under KEYSTRATA_REQUIRE_PEERS=1 (setup installs it).
func minisignCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("minisign")
	if err != nil {
		if os.Getenv("KEYSTRATA_REQUIRE_PEERS") == "1" {
			t.Fatal("minisign is not installed (apt minisign)")
		}
		t.Skip("minisign is not installed (apt minisign)")
	}
	return p
}

func runCLI(t *testing.T, name string, args ...string) error {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// The real minisign, both ways: a key it made is imported, what we sign
// with it passes `minisign -V`, and what it signs verifies here.
func TestMinisignCLIBothWays(t *testing.T) {
	cli := minisignCLI(t)
	dir := t.TempDir()
	pubPath, keyPath := filepath.Join(dir, "k.pub"), filepath.Join(dir, "k.key")
	dataPath := filepath.Join(dir, "data")
	if err := runCLI(t, cli, "-G", "-W", "-p", pubPath, "-s", keyPath); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dataPath, sample, 0o600); err != nil {
		t.Fatal(err)
	}
	keyText, _ := os.ReadFile(keyPath)
	pubText, _ := os.ReadFile(pubPath)

	kc := newKC(t, nil)
	info, err := kc.ImportMinisignSecretKey(string(keyText), nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Purpose != PurposeSign || info.Algorithm != AlgorithmEd25519 || !info.Primary {
		t.Fatalf("imported %+v", info)
	}
	if _, err := kc.ImportMinisignSecretKey(string(keyText), nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("imported twice: %v", err)
	}
	ours, _ := kc.PublicKey(info.KeyID, PublicKeyMinisign)
	if minisignLine(t, string(ours)) != minisignLine(t, string(pubText)) {
		t.Fatalf("public key %q, minisign's %q", ours, pubText)
	}

	// Ours, verified by minisign -V (also -H: prehashed).
	sig, err := kc.SignMinisign(sample, "made by keystrata")
	if err != nil {
		t.Fatal(err)
	}
	sigPath := filepath.Join(dir, "ours.minisig")
	os.WriteFile(sigPath, []byte(sig), 0o600)
	if err := runCLI(t, cli, "-V", "-H", "-m", dataPath, "-x", sigPath, "-p", pubPath); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dataPath, []byte("tampered"), 0o600)
	if err := runCLI(t, cli, "-V", "-m", dataPath, "-x", sigPath, "-p", pubPath); err == nil {
		t.Fatal("minisign accepts our signature of other data")
	}
	os.WriteFile(dataPath, sample, 0o600)

	// minisign -S's (prehashed and legacy), verified here.
	for _, legacy := range []bool{false, true} {
		p := filepath.Join(dir, fmt.Sprintf("cli-%v.minisig", legacy))
		args := []string{"-S", "-s", keyPath, "-m", dataPath, "-x", p, "-t", "made by minisign"}
		if legacy {
			args = append(args, "-l")
		}
		if err := runCLI(t, cli, args...); err != nil {
			t.Fatal(err)
		}
		text, _ := os.ReadFile(p)
		who, err := kc.VerifyMinisign(sample, string(text))
		if err != nil || who.KeyID != info.KeyID {
			t.Fatalf("legacy %v: %+v, %v", legacy, who, err)
		}
		comment, err := MinisignVerify(string(pubText), sample, string(text))
		if err != nil || comment != "made by minisign" {
			t.Fatalf("MinisignVerify, legacy %v: %q, %v", legacy, comment, err)
		}
		if _, err := kc.VerifyMinisign(sample[:3], string(text)); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("other data: %v", err)
		}
	}

	// The imported key signs ordinary Ed25519 signatures too, which
	// crypto/ed25519 verifies with the key in minisign's .pub file.
	raw, _ := base64.StdEncoding.DecodeString(minisignLine(t, string(pubText)))
	plain, err := kc.Sign(sample)
	if err != nil || !ed25519.Verify(ed25519.PublicKey(raw[10:]), sample, plain.Bytes) {
		t.Fatalf("crypto/ed25519 rejects the imported key's signature: %v", err)
	}

	// A key the keychain made itself: its .pub passes minisign -V too.
	own, err := kc.RotateSigning(AlgorithmEd25519)
	if err != nil {
		t.Fatal(err)
	}
	ownPub, _ := kc.PublicKey(own.KeyID, PublicKeyMinisign)
	ownPubPath := filepath.Join(dir, "own.pub")
	os.WriteFile(ownPubPath, ownPub, 0o600)
	sig, _ = kc.SignMinisign(sample, "own key")
	os.WriteFile(sigPath, []byte(sig), 0o600)
	if err := runCLI(t, cli, "-V", "-m", dataPath, "-x", sigPath, "-p", ownPubPath); err != nil {
		t.Fatal(err)
	}
	if err := runCLI(t, cli, "-V", "-m", dataPath, "-x", sigPath, "-p", pubPath); err == nil {
		t.Fatal("minisign accepts the new key's signature under the imported key")
	}
}

// trustLine is one line of a trust file for a keychain's signing key.
func trustLine(t *testing.T, kc *Keychain, keyID uint32, name, kind, status, alg string) string {
	t.Helper()
	var key string
	if kind == "community" {
		pub, err := kc.PublicKey(keyID, PublicKeyMinisign)
		if err != nil {
			t.Fatal(err)
		}
		key = minisignLine(t, string(pub))
	} else {
		der, err := kc.PublicKey(keyID, PublicKeyDER)
		if err != nil {
			t.Fatal(err)
		}
		key = base64.StdEncoding.EncodeToString(der)
	}
	return fmt.Sprintf("%-14s %-10s %-8s %-16s %s\n", name, kind, status, alg, key)
}

func TestTrustedKeys(t *testing.T) {
	kc := newKC(t, nil)
	k1, _ := kc.RotateSigning(AlgorithmECDSASecp256k1)
	ed, _ := kc.RotateSigning(AlgorithmEd25519)
	p256, _ := kc.RotateSigning(AlgorithmECDSAP256)
	// A key of Go's own, listed as an official key.
	goKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	goDER, err := x509.MarshalPKIXPublicKey(&goKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	text := "# keystrata trusted keys v1\n\n" +
		trustLine(t, kc, p256.KeyID, "release-2026", "official", "active", "ecdsa-p256") +
		trustLine(t, kc, k1.KeyID, "release-2025", "official", "revoked", "ecdsa-secp256k1") +
		trustLine(t, kc, ed.KeyID, "alice@example", "community", "active", "minisign") +
		"go-stdlib      official   active   ecdsa-p256       " + base64.StdEncoding.EncodeToString(goDER) + "\n"
	tk, err := ParseTrustedKeys([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	defer tk.Close()
	if tk.Len() != 4 {
		t.Fatalf("Len %d", tk.Len())
	}

	// Official: DER and raw signatures of the P-256 primary.
	for _, f := range []SignatureFormat{SignatureDER, SignatureRaw} {
		sig, _ := kc.SignAs(sample, f)
		v, err := tk.Verify(sample, sig.Bytes)
		if err != nil || v != (TrustVerified{Name: "release-2026", Kind: TrustOfficial, Algorithm: AlgorithmECDSAP256}) {
			t.Fatalf("format %d: %+v, %v", f, v, err)
		}
		if _, err := tk.Verify(sample[1:], sig.Bytes); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("other data: %v", err)
		}
	}
	// Signed by crypto/ecdsa.
	digest := sha256.Sum256(sample)
	goSig, _ := ecdsa.SignASN1(rand.Reader, goKey, digest[:])
	if v, err := tk.Verify(sample, goSig); err != nil || v.Name != "go-stdlib" {
		t.Fatalf("crypto/ecdsa signature: %+v, %v", v, err)
	}
	// Community: a minisign signature, with its trusted comment.
	if _, err := kc.Promote(ed.KeyID); err != nil {
		t.Fatal(err)
	}
	ms, _ := kc.SignMinisign(sample, "by alice")
	v, err := tk.Verify(sample, []byte(ms))
	if err != nil || v != (TrustVerified{Name: "alice@example", Kind: TrustCommunity, Algorithm: AlgorithmEd25519, TrustedComment: "by alice"}) {
		t.Fatalf("community: %+v, %v", v, err)
	}
	if TrustOfficial.String() != "official" || TrustCommunity.String() != "community" || TrustKind(0).String() != "TrustKind(0)" || TrustKind(7).String() != "TrustKind(7)" {
		t.Fatal(TrustOfficial, TrustCommunity, TrustKind(0))
	}
	// Revoked: verifies, and fails naming the key.
	if _, err := kc.Promote(k1.KeyID); err != nil {
		t.Fatal(err)
	}
	revoked, _ := kc.Sign(sample)
	if _, err := tk.Verify(sample, revoked.Bytes); !errors.Is(err, ErrKeyDisabled) || !strings.Contains(err.Error(), "release-2025") {
		t.Fatalf("revoked: %v", err)
	}
	// Unknown minisign key; minisign text that does not parse.
	other, _ := signingKC(t, AlgorithmEd25519)
	oms, _ := other.SignMinisign(sample, "")
	if _, err := tk.Verify(sample, []byte(oms)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := tk.Verify(sample, []byte("untrusted comment: x\nnot base64\n")); !errors.Is(err, ErrFormat) {
		t.Fatalf("bad minisign text: %v", err)
	}

	// From a file.
	path := filepath.Join(t.TempDir(), "KEYS.txt")
	os.WriteFile(path, []byte(text), 0o600)
	loaded, err := LoadTrustedKeys(path)
	if err != nil || loaded.Len() != 4 {
		t.Fatalf("LoadTrustedKeys: %v", err)
	}
	loaded.Close()
	if _, err := LoadTrustedKeys(path + ".missing"); !errors.Is(err, ErrIo) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := LoadTrustedKeys("a\x00b"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("NUL in path: %v", err)
	}

	// Malformed files.
	for _, bad := range []string{
		"# h\nrelease official active ecdsa-p256\n",
		"r official active ecdsa-p256 bm90IGEga2V5\n",
		"r community active minisign RWQnotakey\n",
		"r official maybe ecdsa-p256 bm90IGEga2V5\n",
		"\xff\xfe\n",
		text + strings.Replace(strings.Split(text, "\n")[2], "release-2026", "release-2027", 1) + "\n",
	} {
		if _, err := ParseTrustedKeys([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("%.40q: %v", bad, err)
		}
	}
	if _, err := ParseTrustedKeys(bytes.Repeat([]byte("#"), 1<<20+1)); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("over 1 MiB: %v", err)
	}
	empty, err := ParseTrustedKeys(nil)
	if err != nil || empty.Len() != 0 {
		t.Fatalf("empty: %v", err)
	}
	if _, err := empty.Verify(sample, revoked.Bytes); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no official key: %v", err)
	}
	empty.Close()

	// Closed, and nil.
	tk.Close()
	tk.Close()
	if _, err := tk.Verify(sample, revoked.Bytes); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed: %v", err)
	}
	if tk.Len() != 0 {
		t.Fatal("Len after Close")
	}
	var nilTK *TrustedKeys
	if _, err := nilTK.Verify(sample, nil); !errors.Is(err, ErrUnavailable) || nilTK.Len() != 0 || nilTK.Close() != nil {
		t.Fatalf("nil: %v", err)
	}
}

func parseECDSA(t *testing.T, pemKey []byte) *ecdsa.PublicKey {
	t.Helper()
	block, _ := pem.Decode(pemKey)
	if block == nil {
		t.Fatalf("not PEM: %s", pemKey)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok {
		t.Fatalf("PEM holds %T", k)
	}
	return pub
}

func TestKeychainSigner(t *testing.T) {
	kc := newKC(t, nil)
	s, err := kc.Signer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Algorithm(); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no signing key: %v", err)
	}
	if err := s.HealthCheck(); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no signing key: %v", err)
	}
	if _, err := s.Sign(sample); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("no signing key: %v", err)
	}

	p256, _ := kc.RotateSigning(AlgorithmECDSAP256)
	if alg, err := s.Algorithm(); err != nil || alg != AlgorithmECDSAP256 {
		t.Fatalf("Algorithm %v, %v", alg, err)
	}
	if err := s.HealthCheck(); err != nil {
		t.Fatal(err)
	}
	pemKey, _ := s.PublicKey(PublicKeyPEM)
	pub := parseECDSA(t, pemKey)
	raw, _ := s.PublicKey(PublicKeyRaw)
	kraw, _ := kc.PublicKey(p256.KeyID, PublicKeyRaw)
	if !bytes.Equal(raw, kraw) {
		t.Fatalf("signer key %x, keychain's %x", raw, kraw)
	}
	if _, err := s.PublicKey(PublicKeyMinisign); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("minisign of ECDSA: %v", err)
	}
	if _, err := s.PublicKey(PublicKeyFormat(9)); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("bad format: %v", err)
	}
	digest := sha256.Sum256(sample)
	sig, err := s.Sign(sample)
	if err != nil || cap(sig) != len(sig) || !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Fatalf("crypto/ecdsa rejects the signer's signature: %v", err)
	}
	if who, err := kc.Verify(sample, sig); err != nil || who.KeyID != p256.KeyID {
		t.Fatalf("keychain Verify: %+v, %v", who, err)
	}
	dsig, err := s.SignDigest(digest[:])
	if err != nil || !ecdsa.VerifyASN1(pub, digest[:], dsig) {
		t.Fatalf("SignDigest: %v", err)
	}
	if _, err := s.SignDigest(digest[:31]); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("short digest: %v", err)
	}

	// A rotation takes effect at once; signatures are audited.
	var mu sync.Mutex
	var signed []Event
	sub, err := kc.Subscribe(func(e Event) {
		if e.Kind == EventSigned {
			mu.Lock()
			signed = append(signed, e)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := kc.RotateSigning(AlgorithmEd25519)
	if alg, _ := s.Algorithm(); alg != AlgorithmEd25519 {
		t.Fatalf("after rotation: %v", alg)
	}
	esig, err := s.Sign(sample)
	edPub, _ := s.PublicKey(PublicKeyRaw)
	if err != nil || len(esig) != 64 || !ed25519.Verify(edPub, sample, esig) {
		t.Fatalf("Ed25519 signer signature: %v", err)
	}
	if _, err := s.SignDigest(digest[:]); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Ed25519 digest: %v", err)
	}
	kc.Unsubscribe(sub)
	mu.Lock()
	if len(signed) != 1 || signed[0].KeyID != ed.KeyID || signed[0].Algorithm != AlgorithmEd25519 {
		t.Fatalf("events %+v", signed)
	}
	mu.Unlock()

	// Closing the signer closes only it.
	s2, _ := kc.Signer()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		s.HealthCheck(),
		func() error { _, err := s.Sign(sample); return err }(),
		func() error { _, err := s.Algorithm(); return err }(),
		func() error { _, err := s.PublicKey(PublicKeyRaw); return err }(),
	} {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("closed signer: %v", err)
		}
	}
	if _, err := kc.Sign(sample); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Sign(sample); err != nil {
		t.Fatal(err)
	}
	// Closing the keychain makes its signers unavailable.
	kc.Close()
	if _, err := s2.Sign(sample); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("keychain closed: %v", err)
	}
	if _, err := kc.Signer(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Signer of a closed keychain: %v", err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	var nilS *Signer
	if _, err := nilS.Sign(sample); !errors.Is(err, ErrUnavailable) || nilS.Close() != nil {
		t.Fatalf("nil signer: %v", err)
	}
}

// Many goroutines sign through one Signer while the keychain rotates,
// then the Signer and the keychain close under them: every call either
// works or fails with ErrUnavailable (run with -race).
func TestSignerConcurrently(t *testing.T) {
	kc, _ := signingKC(t, AlgorithmECDSAP256)
	s, err := kc.Signer()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			msg := []byte{byte(g)}
			for i := 0; i < 30; i++ {
				sig, err := s.Sign(msg)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := kc.Verify(msg, sig); err != nil {
					t.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 10; i++ {
			if _, err := kc.RotateSigning(algorithms[i%len(algorithms)]); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()

	start := make(chan struct{})
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 50; i++ {
				if _, err := s.Sign(sample); err != nil && !errors.Is(err, ErrUnavailable) {
					t.Errorf("while closing: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	s.Close()
	wg.Wait()
	if _, err := s.Sign(sample); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}

	// The keychain closing under a signer's calls.
	s3, _ := kc.Signer()
	start = make(chan struct{})
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < 50; i++ {
				if _, err := s3.Sign(sample); err != nil && !errors.Is(err, ErrUnavailable) {
					t.Errorf("keychain closing: %v", err)
					return
				}
			}
		}()
	}
	close(start)
	kc.Close()
	wg.Wait()
	s3.Close()
}

// A PKCS#11 signer against SoftHSM2 (scripts/peers.sh): key pairs made in
// the token sign what Go's standard library and keystrata verify.
func TestPkcs11Signer(t *testing.T) {
	cfg := pkcs11Config(t)
	msg := []byte("signed in the token")
	digest := sha256.Sum256(msg)
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			cfg := cfg
			cfg.KeyLabel = uniqueLabel(t)
			s, err := NewPkcs11Signer(cfg, alg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got, err := s.Algorithm(); err != nil || got != alg {
				t.Fatalf("Algorithm %v, %v", got, err)
			}
			if err := s.HealthCheck(); err != nil {
				t.Fatal(err)
			}
			raw, _ := s.PublicKey(PublicKeyRaw)
			der, _ := s.PublicKey(PublicKeyDER)
			sig, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(alg, raw, msg, sig); err != nil {
				t.Fatalf("VerifySignature: %v", err)
			}
			if err := VerifySignature(alg, raw, msg[1:], sig); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("other message: %v", err)
			}
			switch alg {
			case AlgorithmEd25519:
				k, err := x509.ParsePKIXPublicKey(der)
				if err != nil || !ed25519.Verify(k.(ed25519.PublicKey), msg, sig) {
					t.Fatalf("crypto/ed25519 rejects the token's signature: %v", err)
				}
				if _, err := s.SignDigest(digest[:]); !errors.Is(err, ErrUnsupported) {
					t.Fatalf("Ed25519 digest: %v", err)
				}
				if pub, err := s.PublicKey(PublicKeyMinisign); err != nil || !strings.HasPrefix(string(pub), "untrusted comment:") {
					t.Fatalf("minisign key: %q, %v", pub, err)
				}
			default:
				dsig, err := s.SignDigest(digest[:])
				if err != nil {
					t.Fatal(err)
				}
				if err := VerifySignature(alg, raw, msg, dsig); err != nil {
					t.Fatalf("digest signature: %v", err)
				}
				if alg == AlgorithmECDSAP256 {
					pemKey, _ := s.PublicKey(PublicKeyPEM)
					pub := parseECDSA(t, pemKey)
					if !ecdsa.VerifyASN1(pub, digest[:], sig) || !ecdsa.VerifyASN1(pub, digest[:], dsig) {
						t.Fatal("crypto/ecdsa rejects the token's signature")
					}
					// The token's key as a trust file's official key.
					tk, err := ParseTrustedKeys([]byte("hsm official active ecdsa-p256 " + base64.StdEncoding.EncodeToString(der) + "\n"))
					if err != nil {
						t.Fatal(err)
					}
					if v, err := tk.Verify(msg, sig); err != nil || v.Name != "hsm" || v.Kind != TrustOfficial {
						t.Fatalf("trust file: %+v, %v", v, err)
					}
					tk.Close()
				}
				if _, err := s.PublicKey(PublicKeyMinisign); !errors.Is(err, ErrUnsupported) {
					t.Fatalf("minisign of ECDSA: %v", err)
				}
			}

			// The key exists now: without CreateKey it is the same key; as
			// another algorithm it is refused.
			again := cfg
			again.CreateKey = false
			s2, err := NewPkcs11Signer(again, alg)
			if err != nil {
				t.Fatal(err)
			}
			if raw2, _ := s2.PublicKey(PublicKeyRaw); !bytes.Equal(raw2, raw) {
				t.Fatal("reopened key differs")
			}
			other := AlgorithmECDSAP256
			if alg == AlgorithmECDSAP256 {
				other = AlgorithmEd25519
			}
			if _, err := NewPkcs11Signer(cfg, other); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("other algorithm: %v", err)
			}

			// Closed: unavailable; the other handle is not.
			s.Close()
			if _, err := s.Sign(msg); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("closed: %v", err)
			}
			if _, err := s2.Sign(msg); err != nil {
				t.Fatalf("other handle after Close: %v", err)
			}
			s2.Close()
		})
	}

	// Errors, of their documented kinds; never the PIN in a message.
	missing := cfg
	missing.KeyLabel = uniqueLabel(t)
	missing.CreateKey = false
	if _, err := NewPkcs11Signer(missing, AlgorithmEd25519); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("missing key: %v", err)
	}
	wrong := cfg
	wrong.PIN = "not-the-pin-0000"
	if _, err := NewPkcs11Signer(wrong, AlgorithmEd25519); !errors.Is(err, ErrBackend) || strings.Contains(err.Error(), wrong.PIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	noToken := cfg
	noToken.TokenLabel = "no-such-token"
	if _, err := NewPkcs11Signer(noToken, AlgorithmEd25519); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no token: %v", err)
	}
	if _, err := NewPkcs11Signer(cfg, Algorithm(9)); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("bad algorithm: %v", err)
	}
	env := cfg
	env.PIN, env.PINEnv = "", "KS_TEST_GO_SIGNER_PIN"
	t.Setenv("KS_TEST_GO_SIGNER_PIN", cfg.PIN)
	s, err := NewPkcs11Signer(env, AlgorithmECDSAP256)
	if err != nil {
		t.Fatalf("PIN from the environment: %v", err)
	}
	s.Close()
}

// Arguments refused before any token is touched.
func TestPkcs11SignerArguments(t *testing.T) {
	base := Pkcs11Config{Module: "/nonexistent/p11.so", TokenLabel: "T", PIN: "1234", KeyLabel: "k"}
	for name, cfg := range map[string]Pkcs11Config{
		"both PINs":  {Module: base.Module, TokenLabel: "T", PIN: "1", PINEnv: "X", KeyLabel: "k"},
		"no PIN":     {Module: base.Module, TokenLabel: "T", KeyLabel: "k"},
		"NUL":        {Module: base.Module, TokenLabel: "T\x00", PIN: "1", KeyLabel: "k"},
		"bad module": base,
	} {
		if _, err := NewPkcs11Signer(cfg, AlgorithmEd25519); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, alg := range []Algorithm{AlgorithmNone, Algorithm(4), Algorithm(-1)} {
		if _, err := NewPkcs11Signer(base, alg); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("algorithm %d: %v", int(alg), err)
		}
	}
}
