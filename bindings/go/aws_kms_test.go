package keystrata

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// NewAwsKmsRoot and NewAwsKmsSigner against moto's AWS KMS server on
// loopback (scripts/peers.sh starts it and exports fake credentials);
// keys are made with scripts/peers/moto.sh key, as the C suite does.

// moto runs scripts/peers/moto.sh CMD DIR ARG and returns its output line.
func moto(t *testing.T, cmd, arg string) string {
	t.Helper()
	e := peerEnv(t, "KS_TEST_AWS_CTL", "KS_TEST_AWS_DIR")
	out, err := exec.Command("bash", e["KS_TEST_AWS_CTL"], cmd, e["KS_TEST_AWS_DIR"], arg).Output()
	if err != nil {
		t.Fatalf("moto.sh %s %s: %v", cmd, arg, err)
	}
	return strings.TrimSpace(string(out))
}

// awsKmsConfig is a new moto key of spec (SYMMETRIC_DEFAULT,
// ECC_NIST_P256, ECC_SECG_P256K1).
func awsKmsConfig(t *testing.T, spec string) AwsKmsConfig {
	t.Helper()
	e := peerEnv(t, "KS_TEST_AWS_ENDPOINT")
	return AwsKmsConfig{
		KeyID:       moto(t, "key", spec),
		Region:      "us-east-1",
		EndpointURL: e["KS_TEST_AWS_ENDPOINT"],
		Timeout:     5 * time.Second,
	}
}

func TestAwsKmsRootErrors(t *testing.T) {
	good := awsKmsConfig(t, "SYMMETRIC_DEFAULT")
	signing := awsKmsConfig(t, "ECC_NIST_P256")
	for _, c := range []struct {
		name string
		edit func(*AwsKmsConfig)
		want error
	}{
		{"no such key", func(c *AwsKmsConfig) { c.KeyID = "0b1c2d3e-0000-4000-8000-000000000000" }, ErrUnknownKey},
		{"no such alias", func(c *AwsKmsConfig) { c.KeyID = "alias/no-such-alias" }, ErrUnknownKey},
		{"a signing key", func(c *AwsKmsConfig) { c.KeyID = signing.KeyID }, ErrUnsupported},
		{"empty key", func(c *AwsKmsConfig) { c.KeyID = "" }, ErrInvalidInput},
		{"NUL", func(c *AwsKmsConfig) { c.Region = "us-east-1\x00" }, ErrInvalidInput},
		{"negative timeout", func(c *AwsKmsConfig) { c.Timeout = -time.Second }, ErrInvalidInput},
		{"user info", func(c *AwsKmsConfig) { c.EndpointURL = "http://user:secret-pw@127.0.0.1:1" }, ErrInvalidInput},
		{"unreachable", func(c *AwsKmsConfig) { c.EndpointURL = "http://127.0.0.1:1"; c.Timeout = 2 * time.Second }, ErrUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.edit(&cfg)
			r, err := NewAwsKmsRoot(cfg)
			if !errors.Is(err, c.want) || r != nil {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Fatalf("the endpoint's password is in the message: %v", err)
			}
		})
	}
	// A disabled key: refused at open, and by a root opened before.
	r, err := NewAwsKmsRoot(good)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	moto(t, "disable-key", good.KeyID)
	if err := r.HealthCheck(); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("health of a disabled key: %v", err)
	}
	kc := newKC(t, nil)
	if _, err := kc.Save(r); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("save under a disabled key: %v", err)
	}
	if _, err := NewAwsKmsRoot(good); !errors.Is(err, ErrKeyDisabled) {
		t.Fatalf("open a disabled key: %v", err)
	}
}

func TestAwsKmsSigner(t *testing.T) {
	msg := []byte("official release 1.0")
	for spec, alg := range map[string]Algorithm{"ECC_NIST_P256": AlgorithmECDSAP256, "ECC_SECG_P256K1": AlgorithmECDSASecp256k1} {
		t.Run(spec, func(t *testing.T) {
			cfg := awsKmsConfig(t, spec)
			s, err := NewAwsKmsSigner(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got, err := s.Algorithm(); err != nil || got != alg {
				t.Fatalf("algorithm %v %v", got, err)
			}
			raw, err := s.PublicKey(PublicKeyRaw)
			if err != nil || len(raw) != 65 {
				t.Fatalf("raw public key: %d %v", len(raw), err)
			}
			sig, err := s.Sign(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(alg, raw, msg, sig); err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(alg, raw, msg[1:], sig); !errors.Is(err, ErrAuthentication) {
				t.Fatalf("another message: %v", err)
			}
			digest := sha256.Sum256(msg)
			dsig, err := s.SignDigest(digest[:])
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifySignature(alg, raw, msg, dsig); err != nil {
				t.Fatalf("a digest's signature is the message's: %v", err)
			}
			if _, err := s.SignDigest(digest[:31]); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("short digest: %v", err)
			}
			if _, err := s.PublicKey(PublicKeyMinisign); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("minisign form of an ECDSA key: %v", err)
			}
			// Go's own crypto/ecdsa verifies the P-256 signature from the
			// PEM the signer exports (it has no secp256k1).
			if alg == AlgorithmECDSAP256 {
				p, err := s.PublicKey(PublicKeyPEM)
				if err != nil {
					t.Fatal(err)
				}
				block, _ := pem.Decode(p)
				if block == nil {
					t.Fatalf("not PEM: %q", p)
				}
				pub, err := x509.ParsePKIXPublicKey(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
					t.Fatal("crypto/ecdsa rejects the KMS signature")
				}
			}
			// A disabled key stops signing at once.
			moto(t, "disable-key", cfg.KeyID)
			if _, err := s.Sign(msg); !errors.Is(err, ErrKeyDisabled) {
				t.Fatalf("sign with a disabled key: %v", err)
			}
			if err := s.HealthCheck(); !errors.Is(err, ErrKeyDisabled) {
				t.Fatalf("health of a disabled key: %v", err)
			}
			if _, err := NewAwsKmsSigner(cfg); !errors.Is(err, ErrKeyDisabled) {
				t.Fatalf("open a disabled key: %v", err)
			}
			s.Close()
			if _, err := s.Sign(msg); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("sign after close: %v", err)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		sym := awsKmsConfig(t, "SYMMETRIC_DEFAULT")
		if _, err := NewAwsKmsSigner(sym); !errors.Is(err, ErrUnsupported) {
			t.Fatalf("a symmetric key: %v", err)
		}
		sym.KeyID = "alias/no-such-alias"
		if _, err := NewAwsKmsSigner(sym); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("no such alias: %v", err)
		}
		sym.EndpointURL, sym.Timeout = "http://127.0.0.1:1", 2*time.Second
		if _, err := NewAwsKmsSigner(sym); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("unreachable: %v", err)
		}
	})
}
