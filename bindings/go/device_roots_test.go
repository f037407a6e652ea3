package keystrata

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The device roots against the real peers (a SoftHSM2 token, PyKMIP and
// Cosmian KMS servers and moto's AWS KMS on loopback), started by scripts/peers.sh; `make test` does it.
// Without them these tests skip, or fail when KEYSTRATA_REQUIRE_PEERS=1.
func peerEnv(t *testing.T, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var missing []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			missing = append(missing, n)
		}
		out[n] = v
	}
	if len(missing) > 0 {
		msg := "peer not started (" + strings.Join(missing, ", ") + ` unset): run eval "$(bash scripts/peers.sh start)"`
		if os.Getenv("KEYSTRATA_REQUIRE_PEERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return out
}

func uniqueLabel(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "go-" + hex.EncodeToString(b)
}

func pkcs11Config(t *testing.T) Pkcs11Config {
	e := peerEnv(t, "KS_TEST_PKCS11_MODULE", "KS_TEST_PKCS11_TOKEN", "KS_TEST_PKCS11_PIN")
	return Pkcs11Config{
		Module:     e["KS_TEST_PKCS11_MODULE"],
		TokenLabel: e["KS_TEST_PKCS11_TOKEN"],
		PIN:        e["KS_TEST_PKCS11_PIN"],
		KeyLabel:   uniqueLabel(t),
		CreateKey:  true,
	}
}

// kmipConfig is a new named key on the PyKMIP peer (KS_TEST_KMIP_*).
func kmipConfig(t *testing.T) KmipConfig { return kmipServerConfig(t, "KMIP") }

// kmipServerConfig is a new named key on the KMIP server whose settings
// are KS_TEST_<prefix>_* (KMIP: PyKMIP; COSMIAN: Cosmian KMS 5.0).
func kmipServerConfig(t *testing.T, prefix string) KmipConfig {
	v := func(what string) string { return "KS_TEST_" + prefix + "_" + what }
	e := peerEnv(t, v("HOST"), v("PORT"), v("CA"), v("CERT"), v("KEY"))
	port, err := strconv.Atoi(e[v("PORT")])
	if err != nil {
		t.Fatal(err)
	}
	return KmipConfig{
		Host:      e[v("HOST")],
		Port:      port,
		CAFile:    e[v("CA")],
		CertFile:  e[v("CERT")],
		KeyFile:   e[v("KEY")],
		KeyName:   uniqueLabel(t),
		Timeout:   3 * time.Second,
		CreateKey: true,
	}
}

func deviceRoots(t *testing.T) map[string]func(t *testing.T) *Root {
	return map[string]func(t *testing.T) *Root{
		"pkcs11": func(t *testing.T) *Root {
			r, err := NewPkcs11Root(pkcs11Config(t))
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		"kmip": func(t *testing.T) *Root {
			r, err := NewKmipRoot(kmipConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		// Cosmian KMS 5.0 finds keys by name in KMIP 2.0 only.
		"cosmian": func(t *testing.T) *Root {
			cfg := kmipServerConfig(t, "COSMIAN")
			cfg.Version = "2.0"
			r, err := NewKmipRoot(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		// The same server through its HTTPS JSON TTLV API.
		"cosmian-json": func(t *testing.T) *Root {
			cfg := kmipServerConfig(t, "COSMIAN")
			port, err := strconv.Atoi(peerEnv(t, "KS_TEST_COSMIAN_HTTPS_PORT")["KS_TEST_COSMIAN_HTTPS_PORT"])
			if err != nil {
				t.Fatal(err)
			}
			cfg.Port, cfg.Version, cfg.HTTPSJSON = port, "2.0", true
			r, err := NewKmipRoot(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
		"aws-kms": func(t *testing.T) *Root {
			r, err := NewAwsKmsRoot(awsKmsConfig(t, "SYMMETRIC_DEFAULT"))
			if err != nil {
				t.Fatal(err)
			}
			return r
		},
	}
}

func TestDeviceRootsSaveLoad(t *testing.T) {
	for name, mk := range deviceRoots(t) {
		t.Run(name, func(t *testing.T) {
			root := mk(t)
			defer root.Close()
			if err := root.HealthCheck(); err != nil {
				t.Fatal(err)
			}
			kc := newKC(t, nil)
			sealed, err := kc.Seal([]byte("secret"), []byte("aad"))
			if err != nil {
				t.Fatal(err)
			}
			saved, err := kc.Save(root)
			if err != nil || !bytes.HasPrefix(saved, []byte("KSWR")) {
				t.Fatalf("save: %v %q", err, saved[:min(len(saved), 8)])
			}
			again, err := Load(saved, root)
			if err != nil {
				t.Fatal(err)
			}
			defer again.Close()
			if pt, err := again.Unseal(sealed, []byte("aad")); err != nil || string(pt) != "secret" {
				t.Fatalf("unseal after load: %q %v", pt, err)
			}
			// Another key of the same kind, and an age root, refuse it.
			other := mk(t)
			if _, err := Load(saved, other); err == nil {
				t.Fatal("loaded under another device key")
			}
			other.Close()
			age, _ := GenerateAgeRoot()
			if _, err := Load(saved, age); !errors.Is(err, ErrFormat) {
				t.Fatalf("under an age root: %v", err)
			}
			// Bound to a file, reopened.
			path := filepath.Join(t.TempDir(), "kc.ks")
			b, err := Open(path, root, nil)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := b.Encrypt([]byte("doc"), nil)
			if err != nil {
				t.Fatal(err)
			}
			b.Close()
			b, err = Open(path, root, nil)
			if err != nil {
				t.Fatal(err)
			}
			if pt, err := b.Decrypt(blob, nil); err != nil || string(pt) != "doc" {
				t.Fatalf("decrypt after reopen: %q %v", pt, err)
			}
			b.Close()
			// Concurrent saves and loads through one root.
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := kc.Save(root)
					if err == nil {
						var k *Keychain
						k, err = Load(s, root)
						if err == nil {
							k.Close()
						}
					}
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			root.Close()
			if err := root.HealthCheck(); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("health after close: %v", err)
			}
		})
	}
}

func TestPkcs11RootErrors(t *testing.T) {
	cfg := pkcs11Config(t)
	wrong := cfg
	wrong.PIN = "not-the-pin-0000"
	_, err := NewPkcs11Root(wrong)
	if !errors.Is(err, ErrBackend) || strings.Contains(err.Error(), "not-the-pin-0000") {
		t.Fatalf("wrong PIN: %v", err)
	}
	missing := cfg
	missing.CreateKey = false
	if _, err := NewPkcs11Root(missing); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("missing key: %v", err)
	}
	noToken := cfg
	noToken.TokenLabel = "no-such-token"
	if _, err := NewPkcs11Root(noToken); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no token: %v", err)
	}
	badModule := cfg
	badModule.Module = "/nonexistent/libpkcs11.so"
	if _, err := NewPkcs11Root(badModule); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("bad module: %v", err)
	}
	both := cfg
	both.PINEnv = "X"
	if _, err := NewPkcs11Root(both); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("PIN and PINEnv: %v", err)
	}
	viaEnv := cfg
	viaEnv.PIN, viaEnv.PINEnv = "", "KS_TEST_GO_PIN"
	t.Setenv("KS_TEST_GO_PIN", cfg.PIN)
	r, err := NewPkcs11Root(viaEnv)
	if err != nil {
		t.Fatalf("PIN from env: %v", err)
	}
	r.Close()
	unset := viaEnv
	unset.PINEnv = "KS_TEST_SURELY_UNSET_VARIABLE"
	if _, err := NewPkcs11Root(unset); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("unset PIN variable: %v", err)
	}
}

func TestKmipRootErrors(t *testing.T) {
	cfg := kmipConfig(t)
	v2 := cfg
	v2.Version = "2.0"
	r, err := NewKmipRoot(v2)
	if err != nil {
		t.Fatalf("KMIP 2.0: %v", err)
	}
	r.Close()
	unknown := cfg
	unknown.KeyName, unknown.CreateKey = uniqueLabel(t), false
	if _, err := NewKmipRoot(unknown); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key name: %v", err)
	}
	bad := cfg
	bad.Version = "3.0"
	if _, err := NewKmipRoot(bad); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("bad version: %v", err)
	}
	noFile := cfg
	noFile.CAFile = "/nonexistent/ca.pem"
	if _, err := NewKmipRoot(noFile); !errors.Is(err, ErrIo) {
		t.Fatalf("missing CA file: %v", err)
	}
	closed := cfg
	closed.Port = 1
	closed.Timeout = 2 * time.Second
	start := time.Now()
	if _, err := NewKmipRoot(closed); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("nothing listening: %v", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("connect took %v", d)
	}
}

// kswrKey reads the key identifier and version from the header of a
// keychain saved under a device root (docs/FORMAT.md 7.1: "KSWR" 0x01,
// BE16-length provider, BE16-length key_id, BE32 key_version).
func kswrKey(t *testing.T, saved []byte) (string, uint32) {
	t.Helper()
	b := saved
	if len(b) < 7 || string(b[:5]) != "KSWR\x01" {
		t.Fatalf("not a KSWR header: %q", b[:min(len(b), 8)])
	}
	b = b[5:]
	field := func() []byte {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			t.Fatal("KSWR header cut short")
		}
		n := int(binary.BigEndian.Uint16(b))
		f := b[2 : 2+n]
		b = b[2+n:]
		return f
	}
	field() // provider
	id := string(field())
	if len(b) < 4 {
		t.Fatal("KSWR header cut short")
	}
	return id, binary.BigEndian.Uint32(b)
}

// Root key rotation by versions (docs/KMIP.md, "Rotating the root key")
// against PyKMIP and Cosmian KMS 5.0 in KMIP 2.0: root A makes a named
// key, a keychain is saved under it, root B on the same name rotates to
// version 2, A takes it up on its health check (no waiting for its
// refresh), and the keychain saved before still loads through both. A
// root by identifier has version 1 only and cannot rotate.
func TestKmipRootRotateKey(t *testing.T) {
	for _, prefix := range []string{"KMIP", "COSMIAN"} {
		t.Run(prefix, func(t *testing.T) {
			cfg := kmipServerConfig(t, prefix)
			cfg.Version = "2.0"
			cfg.Timeout = 5 * time.Second
			a, err := NewKmipRoot(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if v, err := a.ActiveKeyVersion(); err != nil || v != 1 {
				t.Fatalf("A's version before: %d %v", v, err)
			}
			kc := newKC(t, nil)
			saved1, err := kc.Save(a)
			if err != nil {
				t.Fatal(err)
			}
			id1, hv := kswrKey(t, saved1)
			if hv != 1 {
				t.Fatalf("saved under version %d", hv)
			}

			bcfg := cfg
			bcfg.CreateKey = false
			b, err := NewKmipRoot(bcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if v, err := b.RotateKey(); err != nil || v != 2 {
				t.Fatalf("B rotates: %d %v", v, err)
			}
			if v, err := b.ActiveKeyVersion(); err != nil || v != 2 {
				t.Fatalf("B's version: %d %v", v, err)
			}
			if err := a.HealthCheck(); err != nil {
				t.Fatal(err)
			}
			if v, err := a.ActiveKeyVersion(); err != nil || v != 2 {
				t.Fatalf("A's version after its health check: %d %v", v, err)
			}
			saved2, err := kc.Save(a)
			if err != nil {
				t.Fatal(err)
			}
			if id2, hv := kswrKey(t, saved2); hv != 2 || id2 == id1 {
				t.Fatalf("A saves under %q version %d (version 1: %q)", id2, hv, id1)
			}
			for _, c := range []struct {
				who   string
				root  *Root
				saved []byte
			}{{"A, version 1", a, saved1}, {"B, version 1", b, saved1}, {"B, version 2", b, saved2}} {
				got, err := Load(c.saved, c.root)
				if err != nil {
					t.Fatalf("%s: %v", c.who, err)
				}
				got.Close()
			}

			idcfg := cfg
			idcfg.KeyName, idcfg.KeyID, idcfg.CreateKey = "", id1, false
			byID, err := NewKmipRoot(idcfg)
			if err != nil {
				t.Fatal(err)
			}
			defer byID.Close()
			if v, err := byID.ActiveKeyVersion(); err != nil || v != 1 {
				t.Fatalf("by identifier: %d %v", v, err)
			}
			if v, err := byID.RotateKey(); !errors.Is(err, ErrInvalidInput) || v != 0 {
				t.Fatalf("by identifier, rotate: %d %v", v, err)
			}
			if got, err := Load(saved1, byID); err != nil {
				t.Fatalf("by identifier, version 1: %v", err)
			} else {
				got.Close()
			}

			b.Close()
			if _, err := b.RotateKey(); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("rotate after Close: %v", err)
			}
			if _, err := b.ActiveKeyVersion(); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("version after Close: %v", err)
			}
		})
	}
}

// Roots that are not KMIP roots have version 1 and refuse RotateKey.
func TestRootRotateKeyElsewhere(t *testing.T) {
	r, err := GenerateAgeRoot()
	if err != nil {
		t.Fatal(err)
	}
	if v, err := r.ActiveKeyVersion(); err != nil || v != 1 {
		t.Fatalf("age root version: %d %v", v, err)
	}
	if _, err := r.RotateKey(); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("age root rotate: %v", err)
	}
	r.Close()
	if _, err := r.ActiveKeyVersion(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
	var nilRoot *Root
	if _, err := nilRoot.RotateKey(); err == nil {
		t.Fatal("nil root rotates")
	}
}
