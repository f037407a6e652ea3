package keystrata

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// The mapping of signing: Go types and errors over the C calls. The rules
// (which key signs and verifies, the encodings) are tested in the core.

var algorithms = []Algorithm{AlgorithmEd25519, AlgorithmECDSAP256, AlgorithmECDSASecp256k1}

func signingKC(t *testing.T, alg Algorithm) (*Keychain, KeyInfo) {
	t.Helper()
	kc := newKC(t, nil)
	info, err := kc.RotateSigning(alg)
	if err != nil {
		t.Fatal(err)
	}
	return kc, info
}

func TestAlgorithmNames(t *testing.T) {
	want := map[Algorithm]string{
		AlgorithmEd25519:        "ed25519",
		AlgorithmECDSAP256:      "ecdsa-p256",
		AlgorithmECDSASecp256k1: "ecdsa-secp256k1",
		AlgorithmNone:           "Algorithm(0)",
		Algorithm(99):           "Algorithm(99)",
		Algorithm(-1):           "Algorithm(-1)",
	}
	for a, name := range want {
		if a.String() != name {
			t.Errorf("%d: %q, want %q", int(a), a.String(), name)
		}
	}
	if PurposeSign.String() != "sign" || EventSigned.String() != "signed" || EventVerifyFailed.String() != "verify failed" {
		t.Error(PurposeSign, EventSigned, EventVerifyFailed)
	}
}

func TestSignRoundTripEveryAlgorithm(t *testing.T) {
	msg := []byte("release-1.2.3.tar.gz")
	for _, alg := range algorithms {
		t.Run(alg.String(), func(t *testing.T) {
			kc, key := signingKC(t, alg)
			if key.Purpose != PurposeSign || key.Algorithm != alg || !key.Primary || key.Status != KeyEnabled || key.Version != 1 {
				t.Fatalf("new key %+v", key)
			}
			primary, err := kc.PrimaryOf(PurposeSign)
			if err != nil || primary.KeyID != key.KeyID || primary.Algorithm != alg {
				t.Fatalf("signing primary %+v, %v", primary, err)
			}
			enc, _ := kc.Primary()
			if enc.Algorithm != AlgorithmNone {
				t.Fatalf("encryption key with an algorithm: %+v", enc)
			}

			sig, err := kc.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if sig.KeyID != key.KeyID || sig.Algorithm != alg || len(sig.Bytes) > MaxSignatureLen || cap(sig.Bytes) != len(sig.Bytes) {
				t.Fatalf("signature %+v (len %d, cap %d)", sig, len(sig.Bytes), cap(sig.Bytes))
			}
			raw, err := kc.SignAs(msg, SignatureRaw)
			if err != nil || len(raw.Bytes) != 64 || raw.KeyID != key.KeyID || raw.Algorithm != alg {
				t.Fatalf("raw signature %+v, %v", raw, err)
			}
			if alg == AlgorithmEd25519 && !bytes.Equal(sig.Bytes, raw.Bytes) {
				t.Fatal("Ed25519: DER and raw differ") // deterministic, one encoding
			}
			pub, err := kc.PublicKey(key.KeyID, PublicKeyRaw)
			if err != nil {
				t.Fatal(err)
			}
			if (alg == AlgorithmEd25519 && len(pub) != 32) || (alg != AlgorithmEd25519 && (len(pub) != 65 || pub[0] != 4)) {
				t.Fatalf("raw public key %x", pub)
			}

			for _, s := range [][]byte{sig.Bytes, raw.Bytes} {
				got, err := kc.Verify(msg, s)
				if err != nil || got.KeyID != key.KeyID || got.Algorithm != alg || got.Purpose != PurposeSign {
					t.Fatalf("Verify: %+v, %v", got, err)
				}
				if got, err := kc.VerifyWith(key.KeyID, msg, s); err != nil || got.KeyID != key.KeyID {
					t.Fatalf("VerifyWith: %+v, %v", got, err)
				}
				if err := VerifySignature(alg, pub, msg, s); err != nil {
					t.Fatalf("VerifySignature: %v", err)
				}
				if _, err := kc.Verify([]byte("release-1.2.4.tar.gz"), s); !errors.Is(err, ErrAuthentication) {
					t.Fatalf("other message: %v", err)
				}
				if err := VerifySignature(alg, pub, msg[1:], s); !errors.Is(err, ErrAuthentication) {
					t.Fatalf("VerifySignature, other message: %v", err)
				}
				bad := bytes.Clone(s)
				bad[len(bad)-1] ^= 1
				if _, err := kc.VerifyWith(key.KeyID, msg, bad); !errors.Is(err, ErrAuthentication) {
					t.Fatalf("tampered signature: %v", err)
				}
			}
			if _, err := kc.Verify(msg, nil); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("empty signature: %v", err)
			}
			if err := VerifySignature(alg, pub[:len(pub)-1], msg, sig.Bytes); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("short public key: %v", err)
			}

			// Every format of the public key; minisign is Ed25519's alone.
			for _, f := range []PublicKeyFormat{PublicKeyPEM, PublicKeyDER, PublicKeyMinisign} {
				b, err := kc.PublicKey(key.KeyID, f)
				if f == PublicKeyMinisign && alg != AlgorithmEd25519 {
					if !errors.Is(err, ErrUnsupported) {
						t.Fatalf("minisign for %s: %v", alg, err)
					}
					continue
				}
				if err != nil || len(b) == 0 {
					t.Fatalf("format %d: %v", f, err)
				}
			}
			pemKey, _ := kc.PublicKey(key.KeyID, PublicKeyPEM)
			der, _ := kc.PublicKey(key.KeyID, PublicKeyDER)
			if block, _ := pem.Decode(pemKey); block == nil || block.Type != "PUBLIC KEY" || !bytes.Equal(block.Bytes, der) {
				t.Fatalf("PEM is not the DER: %s", pemKey)
			}
			if alg == AlgorithmEd25519 {
				mini, _ := kc.PublicKey(key.KeyID, PublicKeyMinisign)
				if !strings.HasPrefix(string(mini), "untrusted comment: ") {
					t.Fatalf("minisign public key %q", mini)
				}
			}
		})
	}
}

// Go's standard library verifies what the keychain signs, with the public
// key it exports.
func TestStdlibVerifiesOurSignatures(t *testing.T) {
	msg := []byte("the quick brown fox")
	digest := sha256.Sum256(msg)

	t.Run("ecdsa-p256", func(t *testing.T) {
		kc, key := signingKC(t, AlgorithmECDSAP256)
		pemKey, _ := kc.PublicKey(key.KeyID, PublicKeyPEM)
		block, _ := pem.Decode(pemKey)
		if block == nil {
			t.Fatalf("not PEM: %s", pemKey)
		}
		parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		pub, ok := parsed.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Fatalf("PEM holds %T", parsed)
		}
		der, _ := kc.PublicKey(key.KeyID, PublicKeyDER)
		if fromDER, err := x509.ParsePKIXPublicKey(der); err != nil || !pub.Equal(fromDER) {
			t.Fatalf("DER: %v", err)
		}
		raw, _ := kc.PublicKey(key.KeyID, PublicKeyRaw)
		if b, err := pub.Bytes(); err != nil || !bytes.Equal(b, raw) {
			t.Fatalf("raw %x, stdlib %x", raw, b)
		}

		sig, _ := kc.Sign(msg)
		if !ecdsa.VerifyASN1(pub, digest[:], sig.Bytes) {
			t.Fatal("crypto/ecdsa rejects our DER signature")
		}
		rs, _ := kc.SignAs(msg, SignatureRaw)
		r, s := new(big.Int).SetBytes(rs.Bytes[:32]), new(big.Int).SetBytes(rs.Bytes[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			t.Fatal("crypto/ecdsa rejects our raw signature")
		}
		fromDigest, err := kc.SignDigest(digest[:], SignatureDER)
		if err != nil || fromDigest.KeyID != key.KeyID || fromDigest.Algorithm != AlgorithmECDSAP256 {
			t.Fatalf("SignDigest: %+v, %v", fromDigest, err)
		}
		if !ecdsa.VerifyASN1(pub, digest[:], fromDigest.Bytes) {
			t.Fatal("crypto/ecdsa rejects our digest signature")
		}
		if ecdsa.VerifyASN1(pub, make([]byte, 32), sig.Bytes) {
			t.Fatal("crypto/ecdsa accepts a signature over another digest")
		}
	})

	t.Run("ed25519", func(t *testing.T) {
		kc, key := signingKC(t, AlgorithmEd25519)
		der, _ := kc.PublicKey(key.KeyID, PublicKeyDER)
		parsed, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			t.Fatal(err)
		}
		pub, ok := parsed.(ed25519.PublicKey)
		if !ok {
			t.Fatalf("DER holds %T", parsed)
		}
		raw, _ := kc.PublicKey(key.KeyID, PublicKeyRaw)
		if !bytes.Equal(pub, raw) {
			t.Fatalf("raw %x, stdlib %x", raw, pub)
		}
		sig, _ := kc.Sign(msg)
		if !ed25519.Verify(pub, msg, sig.Bytes) {
			t.Fatal("crypto/ed25519 rejects our signature")
		}
		if ed25519.Verify(pub, msg[1:], sig.Bytes) {
			t.Fatal("crypto/ed25519 accepts a signature over another message")
		}
	})

	// The standard library has no secp256k1: the keychain and the bare
	// public key check each other's raw and DER forms instead.
	t.Run("ecdsa-secp256k1", func(t *testing.T) {
		kc, key := signingKC(t, AlgorithmECDSASecp256k1)
		raw, _ := kc.PublicKey(key.KeyID, PublicKeyRaw)
		fromDigest, err := kc.SignDigest(digest[:], SignatureRaw)
		if err != nil || len(fromDigest.Bytes) != 64 {
			t.Fatalf("SignDigest: %v", err)
		}
		if err := VerifySignature(AlgorithmECDSASecp256k1, raw, msg, fromDigest.Bytes); err != nil {
			t.Fatalf("VerifySignature of a digest signature: %v", err)
		}
		if err := VerifySignature(AlgorithmECDSAP256, raw, msg, fromDigest.Bytes); err == nil {
			t.Fatal("a secp256k1 signature verifies as P-256")
		}
	})
}

// The keychain verifies what Go's standard library signs with its own keys.
func TestWeVerifyStdlibSignatures(t *testing.T) {
	msg := []byte("signed by crypto/ecdsa and crypto/ed25519")
	digest := sha256.Sum256(msg)

	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecdhPub, err := priv.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	pub := ecdhPub.Bytes() // 04 ‖ x ‖ y
	der, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(AlgorithmECDSAP256, pub, msg, der); err != nil {
		t.Fatalf("crypto/ecdsa DER signature: %v", err)
	}
	r, s, err := ecdsa.Sign(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 64)
	r.FillBytes(raw[:32])
	s.FillBytes(raw[32:])
	if err := VerifySignature(AlgorithmECDSAP256, pub, msg, raw); err != nil {
		t.Fatalf("crypto/ecdsa raw signature: %v", err)
	}
	if err := VerifySignature(AlgorithmECDSAP256, pub, []byte("other"), der); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("other message: %v", err)
	}
	if err := VerifySignature(AlgorithmECDSASecp256k1, pub, msg, der); err == nil {
		t.Fatal("a P-256 signature verifies as secp256k1")
	}

	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edSig := ed25519.Sign(edPriv, msg)
	if err := VerifySignature(AlgorithmEd25519, edPub, msg, edSig); err != nil {
		t.Fatalf("crypto/ed25519 signature: %v", err)
	}
	edSig[0] ^= 1
	if err := VerifySignature(AlgorithmEd25519, edPub, msg, edSig); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("tampered Ed25519 signature: %v", err)
	}
	if err := VerifySignature(AlgorithmEd25519, pub, msg, edSig); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("a 65-byte Ed25519 key: %v", err)
	}
}

func TestSignDigest(t *testing.T) {
	msg := []byte("digest me")
	digest := sha256.Sum256(msg)
	for _, alg := range []Algorithm{AlgorithmECDSAP256, AlgorithmECDSASecp256k1} {
		kc, key := signingKC(t, alg)
		for _, f := range []SignatureFormat{SignatureDER, SignatureRaw} {
			sig, err := kc.SignDigest(digest[:], f)
			if err != nil || sig.KeyID != key.KeyID || sig.Algorithm != alg {
				t.Fatalf("%s: %+v, %v", alg, sig, err)
			}
			if f == SignatureRaw && len(sig.Bytes) != 64 {
				t.Fatalf("%s raw: %d bytes", alg, len(sig.Bytes))
			}
			// A digest signature is a signature over the message, and
			// the other way round.
			if got, err := kc.Verify(msg, sig.Bytes); err != nil || got.KeyID != key.KeyID {
				t.Fatalf("%s: Verify of a digest signature: %v", alg, err)
			}
			if got, err := kc.VerifyDigest(digest[:], sig.Bytes); err != nil || got.KeyID != key.KeyID {
				t.Fatalf("%s: VerifyDigest: %v", alg, err)
			}
		}
		overMsg, _ := kc.Sign(msg)
		if _, err := kc.VerifyDigest(digest[:], overMsg.Bytes); err != nil {
			t.Fatalf("%s: VerifyDigest of a message signature: %v", alg, err)
		}
		other := sha256.Sum256([]byte("other"))
		if _, err := kc.VerifyDigest(other[:], overMsg.Bytes); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s: other digest: %v", alg, err)
		}
		for _, bad := range [][]byte{nil, digest[:31], append(digest[:], 0)} {
			if _, err := kc.SignDigest(bad, SignatureDER); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("%s: SignDigest of %d bytes: %v", alg, len(bad), err)
			}
			if _, err := kc.VerifyDigest(bad, overMsg.Bytes); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("%s: VerifyDigest of %d bytes: %v", alg, len(bad), err)
			}
		}
	}
	kc, _ := signingKC(t, AlgorithmEd25519)
	if _, err := kc.SignDigest(digest[:], SignatureDER); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Ed25519 SignDigest: %v", err)
	}
}

func TestSignBadNumbers(t *testing.T) {
	kc, key := signingKC(t, AlgorithmECDSAP256)
	msg := []byte("m")
	digest := sha256.Sum256(msg)
	sig, _ := kc.Sign(msg)
	pub, _ := kc.PublicKey(key.KeyID, PublicKeyRaw)
	for _, a := range []Algorithm{AlgorithmNone, Algorithm(4), Algorithm(-1)} {
		if _, err := kc.RotateSigning(a); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("RotateSigning(%d): %v", a, err)
		}
		if _, err := kc.AddSigningKey(a); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("AddSigningKey(%d): %v", a, err)
		}
		if err := VerifySignature(a, pub, msg, sig.Bytes); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("VerifySignature(%d): %v", a, err)
		}
	}
	for _, f := range []SignatureFormat{0, 3, -1} {
		if _, err := kc.SignAs(msg, f); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("SignAs(%d): %v", f, err)
		}
		if _, err := kc.SignDigest(digest[:], f); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("SignDigest(%d): %v", f, err)
		}
	}
	for _, f := range []PublicKeyFormat{0, 5, -1} {
		if _, err := kc.PublicKey(key.KeyID, f); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("PublicKey(%d): %v", f, err)
		}
	}
	if _, err := kc.AddKey(PurposeSign); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("AddKey(PurposeSign): %v", err)
	}
	if _, err := kc.PrimaryOf(PurposeNone); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("PrimaryOf(PurposeNone): %v", err)
	}
	keys, _ := kc.Keys()
	if len(keys) != 3 {
		t.Errorf("a refused call added a key: %+v", keys)
	}
}

func TestNoSigningKey(t *testing.T) {
	kc := newKC(t, nil)
	msg := []byte("m")
	digest := sha256.Sum256(msg)
	if _, err := kc.Sign(msg); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Sign: %v", err)
	}
	if _, err := kc.SignDigest(digest[:], SignatureRaw); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("SignDigest: %v", err)
	}
	if _, err := kc.Verify(msg, make([]byte, 64)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify: %v", err)
	}
	if _, err := kc.PrimaryOf(PurposeSign); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("PrimaryOf(PurposeSign): %v", err)
	}
	enc, _ := kc.Primary()
	if _, err := kc.PublicKey(enc.KeyID, PublicKeyPEM); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("PublicKey of an encryption key: %v", err)
	}
	if _, err := kc.VerifyWith(enc.KeyID, msg, make([]byte, 64)); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("VerifyWith an encryption key: %v", err)
	}
}

func TestSigningLifecycle(t *testing.T) {
	msg := []byte("v1 artifact")
	kc, old := signingKC(t, AlgorithmECDSAP256)
	oldSig, _ := kc.Sign(msg)

	// Two phases: the added key does not sign until promoted.
	added, err := kc.AddSigningKey(AlgorithmEd25519)
	if err != nil || added.Primary || added.Algorithm != AlgorithmEd25519 || added.Purpose != PurposeSign {
		t.Fatalf("AddSigningKey: %+v, %v", added, err)
	}
	if sig, _ := kc.Sign(msg); sig.KeyID != old.KeyID || sig.Algorithm != AlgorithmECDSAP256 {
		t.Fatalf("signed by %+v before the promotion", sig)
	}
	if p, err := kc.Promote(added.KeyID); err != nil || !p.Primary || p.Algorithm != AlgorithmEd25519 {
		t.Fatalf("Promote: %+v, %v", p, err)
	}
	newSig, err := kc.Sign(msg)
	if err != nil || newSig.KeyID != added.KeyID || newSig.Algorithm != AlgorithmEd25519 {
		t.Fatalf("after the promotion: %+v, %v", newSig, err)
	}
	rotated, err := kc.RotateSigning(AlgorithmECDSASecp256k1)
	if err != nil || !rotated.Primary || rotated.Version != 3 {
		t.Fatalf("RotateSigning: %+v, %v", rotated, err)
	}

	// Old public keys keep verifying until their key is disabled.
	if got, err := kc.Verify(msg, oldSig.Bytes); err != nil || got.KeyID != old.KeyID {
		t.Fatalf("old signature: %+v, %v", got, err)
	}
	if err := kc.Disable(old.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Verify(msg, oldSig.Bytes); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("Verify with the old key disabled: %v", err)
	}
	if _, err := kc.VerifyWith(old.KeyID, msg, oldSig.Bytes); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("VerifyWith a disabled key: %v", err)
	}
	if _, err := kc.PublicKey(old.KeyID, PublicKeyPEM); err != nil {
		t.Fatalf("a disabled key's public key: %v", err)
	}
	if got, err := kc.Verify(msg, newSig.Bytes); err != nil || got.KeyID != added.KeyID {
		t.Fatalf("the other keys still verify: %v", err)
	}
	if err := kc.Enable(old.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.VerifyWith(old.KeyID, msg, oldSig.Bytes); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
	if err := kc.Destroy(old.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.VerifyWith(old.KeyID, msg, oldSig.Bytes); !errors.Is(err, ErrKeyDestroyed) {
		t.Fatalf("VerifyWith a destroyed key: %v", err)
	}
	if _, err := kc.PublicKey(old.KeyID, PublicKeyRaw); !errors.Is(err, ErrKeyDestroyed) {
		t.Fatalf("a destroyed key's public key: %v", err)
	}
	if err := kc.Disable(rotated.KeyID); !errors.Is(err, ErrPolicy) {
		t.Fatalf("disabling the signing primary: %v", err)
	}

	keys, _ := kc.Keys()
	var signing []Algorithm
	for _, k := range keys {
		if k.Purpose == PurposeSign {
			signing = append(signing, k.Algorithm)
		} else if k.Algorithm != AlgorithmNone {
			t.Errorf("key %+v has an algorithm", k)
		}
	}
	if len(signing) != 3 || signing[0] != AlgorithmECDSAP256 || signing[1] != AlgorithmEd25519 || signing[2] != AlgorithmECDSASecp256k1 {
		t.Fatalf("signing keys %v", signing)
	}
}

// A rotation between the signature and its return: the Signature still
// names the key that signed and that key's algorithm, not the new
// primary's. (The subscriber runs inside the signing call, after the
// signature is made.)
func TestSignRotatedMeanwhile(t *testing.T) {
	kc, key := signingKC(t, AlgorithmECDSAP256)
	var next KeyInfo
	var once sync.Once
	kc.Subscribe(func(e Event) {
		if e.Kind == EventSigned {
			once.Do(func() {
				var err error
				if next, err = kc.RotateSigning(AlgorithmEd25519); err != nil {
					t.Error(err)
				}
			})
		}
	})
	sig, err := kc.Sign([]byte("m"))
	if err != nil || sig.KeyID != key.KeyID || sig.Algorithm != AlgorithmECDSAP256 {
		t.Fatalf("%+v, %v", sig, err)
	}
	if next.KeyID == 0 || next.KeyID == key.KeyID {
		t.Fatalf("no rotation in between: %+v", next)
	}
	sig, err = kc.Sign([]byte("m"))
	if err != nil || sig.KeyID != next.KeyID || sig.Algorithm != AlgorithmEd25519 {
		t.Fatalf("after the rotation: %+v, %v", sig, err)
	}
}

// Signing keys are saved with the keychain and sign the same way after Load.
func TestSigningKeysSurviveSave(t *testing.T) {
	root, err := GenerateAgeRoot()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	kc, key := signingKC(t, AlgorithmEd25519)
	pub, _ := kc.PublicKey(key.KeyID, PublicKeyRaw)
	saved, err := kc.Save(root)
	if err != nil {
		t.Fatal(err)
	}
	kc2, err := Load(saved, root)
	if err != nil {
		t.Fatal(err)
	}
	defer kc2.Close()
	sig, err := kc2.Sign([]byte("after load"))
	if err != nil || sig.KeyID != key.KeyID || sig.Algorithm != AlgorithmEd25519 {
		t.Fatalf("%+v, %v", sig, err)
	}
	if err := VerifySignature(AlgorithmEd25519, pub, []byte("after load"), sig.Bytes); err != nil {
		t.Fatal(err)
	}
}

func TestSignEvents(t *testing.T) {
	kc := newKC(t, nil)
	var mu sync.Mutex
	var events []Event
	if _, err := kc.Subscribe(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	take := func() []Event {
		mu.Lock()
		defer mu.Unlock()
		got := events
		events = nil
		return got
	}

	key, _ := kc.RotateSigning(AlgorithmECDSAP256)
	for _, e := range take() { // key created, key rotated
		if e.Purpose != PurposeSign || e.KeyID != key.KeyID || e.Algorithm != AlgorithmNone || e.Digest != nil {
			t.Fatalf("rotation event %+v", e)
		}
	}

	msg := []byte("audit me")
	digest := sha256.Sum256(msg)
	sig, _ := kc.Sign(msg)
	got := take()
	if len(got) != 1 {
		t.Fatalf("events of one Sign: %+v", got)
	}
	e := got[0]
	if e.Kind != EventSigned || e.KeyID != key.KeyID || e.KeyVersion != key.Version || e.Purpose != PurposeSign ||
		e.Algorithm != AlgorithmECDSAP256 || e.Err != nil || len(e.Digest) != 32 || !bytes.Equal(e.Digest, digest[:]) {
		t.Fatalf("signed event %+v", e)
	}

	other := sha256.Sum256([]byte("precomputed"))
	kc.SignDigest(other[:], SignatureRaw)
	if got := take(); len(got) != 1 || got[0].Kind != EventSigned || !bytes.Equal(got[0].Digest, other[:]) {
		t.Fatalf("SignDigest event %+v", got)
	}

	kc.Verify(msg, sig.Bytes)
	if got := take(); len(got) != 0 {
		t.Fatalf("a successful verification emitted %+v", got)
	}
	kc.Verify([]byte("forged"), sig.Bytes)
	forged := sha256.Sum256([]byte("forged"))
	got = take()
	if len(got) != 1 || got[0].Kind != EventVerifyFailed || !errors.Is(got[0].Err, ErrAuthentication) ||
		!bytes.Equal(got[0].Digest, forged[:]) || got[0].Algorithm != AlgorithmNone {
		t.Fatalf("verify failed event %+v", got)
	}
	kc.VerifyDigest(digest[:5], sig.Bytes)
	got = take()
	if len(got) != 1 || got[0].Kind != EventVerifyFailed || !errors.Is(got[0].Err, ErrInvalidInput) || got[0].Digest != nil {
		t.Fatalf("short digest event %+v", got)
	}
}

func TestSignCounters(t *testing.T) {
	kc, _ := signingKC(t, AlgorithmEd25519)
	msg := []byte("count me")
	for i := 0; i < 3; i++ {
		sig, _ := kc.Sign(msg)
		kc.Verify(msg, sig.Bytes)
	}
	kc.Verify([]byte("forged"), make([]byte, 64))
	kc.SignDigest(make([]byte, 32), SignatureDER) // Ed25519: refused, not counted as a signature
	c, err := kc.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if c.Sign != 3 || c.VerifyOK != 3 || c.VerifyFailed != 1 || c.ErrorCount(ErrAuthentication) != 1 || c.ErrorCount(ErrUnsupported) != 1 {
		t.Fatalf("counters %+v", c)
	}
	if c.Rotations != 1 || c.Seal != 0 {
		t.Fatalf("other counters moved: %+v", c)
	}
}

// The caller-sized call signs into one buffer per signature, and
// verification allocates nothing.
func TestSignAllocations(t *testing.T) {
	kc, key := signingKC(t, AlgorithmEd25519)
	msg := []byte("hot path")
	sig, _ := kc.Sign(msg)
	pub, _ := kc.PublicKey(key.KeyID, PublicKeyRaw)
	if n := testing.AllocsPerRun(50, func() {
		if _, err := kc.Sign(msg); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Errorf("Sign allocated %v times", n)
	}
	if n := testing.AllocsPerRun(50, func() {
		if _, err := kc.Verify(msg, sig.Bytes); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Verify allocated %v times", n)
	}
	if n := testing.AllocsPerRun(50, func() {
		if err := VerifySignature(AlgorithmEd25519, pub, msg, sig.Bytes); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("VerifySignature allocated %v times", n)
	}
}

// Many goroutines sign and verify while another rotates the signing key:
// every signature names the key that made it and its algorithm (run with
// -race).
func TestSignConcurrently(t *testing.T) {
	kc, _ := signingKC(t, AlgorithmECDSAP256)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	rotated := make(chan struct{})
	go func() {
		defer close(rotated)
		// A few dozen keys at most: Verify tries them newest first.
		for i := 0; i < 40; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			if _, err := kc.RotateSigning(algorithms[i%len(algorithms)]); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			msg := []byte{byte(g), 'm'}
			for i := 0; i < 40; i++ {
				sig, err := kc.Sign(msg)
				if err != nil {
					t.Error(err)
					return
				}
				by, err := kc.VerifyWith(sig.KeyID, msg, sig.Bytes)
				if err != nil || by.Algorithm != sig.Algorithm || by.KeyID != sig.KeyID {
					t.Errorf("signature %+v verified by %+v: %v", sig, by, err)
					return
				}
				if _, err := kc.Verify(msg, sig.Bytes); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	<-rotated
	c, _ := kc.Counters()
	if c.Sign != 8*40 || c.VerifyOK != 2*8*40 || c.VerifyFailed != 0 {
		t.Fatalf("counters %+v", c)
	}
}
