package keystrata

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

const vectorDir = "../../tests/vectors"

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type vecAEAD struct {
	Comment       string `json:"comment"`
	KeyID         uint32 `json:"key_id"`
	KeyVersion    int    `json:"key_version"`
	PlaintextHex  string `json:"plaintext_hex"`
	AADHex        string `json:"aad_hex"`
	CiphertextHex string `json:"ciphertext_hex"`
}

type vecEnvelope struct {
	KeyID         string `json:"key_id"`
	KeyVersion    int    `json:"key_version"`
	Provider      string `json:"provider"`
	CiphertextHex string `json:"ciphertext_hex"`
}

func (e vecEnvelope) env(t *testing.T) *KeyEnvelope {
	return &KeyEnvelope{KeyID: e.KeyID, KeyVersion: e.KeyVersion, Provider: e.Provider, Ciphertext: unhex(t, e.CiphertextHex)}
}

type ksVectors struct {
	Keychain struct {
		AgeIdentity    string `json:"age_identity"`
		AgeRecipient   string `json:"age_recipient"`
		SavedAgeBase64 string `json:"saved_age_base64"`
		Keys           []struct {
			KeyID   uint32 `json:"key_id"`
			Version uint32 `json:"version"`
			Purpose string `json:"purpose"`
			Status  string `json:"status"`
			Primary bool   `json:"primary"`
		} `json:"keys"`
		Unseal  []vecAEAD `json:"unseal"`
		Decrypt []vecAEAD `json:"decrypt"`
		Unwrap  []struct {
			Comment    string            `json:"comment"`
			Envelope   vecEnvelope       `json:"envelope"`
			Metadata   map[string]string `json:"metadata"`
			ContextHex string            `json:"context_hex"`
			KeyHex     string            `json:"key_hex"`
		} `json:"unwrap"`
		DeriveOriginKey []struct {
			Comment  string `json:"comment"`
			Origin   string `json:"origin"`
			Instance string `json:"instance"`
			Epoch    string `json:"epoch"`
			KeyHex   string `json:"key_hex"`
		} `json:"derive_origin_key"`
		Derive []struct {
			Comment string `json:"comment"`
			InfoHex string `json:"info_hex"`
			Length  int    `json:"length"`
			OKMHex  string `json:"okm_hex"`
		} `json:"derive"`
		Invalid []struct {
			Comment       string            `json:"comment"`
			Op            string            `json:"op"`
			Error         string            `json:"error"`
			ErrorCode     int               `json:"error_code"`
			CiphertextHex string            `json:"ciphertext_hex"`
			AADHex        string            `json:"aad_hex"`
			Envelope      *vecEnvelope      `json:"envelope"`
			ContextHex    string            `json:"context_hex"`
			InfoHex       string            `json:"info_hex"`
			Length        int               `json:"length"`
			Metadata      map[string]string `json:"metadata"`
		} `json:"invalid"`
	} `json:"keychain"`
	SavedPassphrase struct {
		Passphrase     string    `json:"passphrase"`
		WorkFactor     int       `json:"work_factor"`
		SavedAgeBase64 string    `json:"saved_age_base64"`
		Unseal         []vecAEAD `json:"unseal"`
	} `json:"saved_passphrase"`
}

var kindByName = map[string]*Error{
	"InvalidInput": ErrInvalidInput, "Authentication": ErrAuthentication, "UnknownKey": ErrUnknownKey,
	"KeyDisabled": ErrKeyDisabled, "KeyDestroyed": ErrKeyDestroyed, "Policy": ErrPolicy,
	"Unsupported": ErrUnsupported, "Backend": ErrBackend, "Unavailable": ErrUnavailable,
	"Format": ErrFormat, "Io": ErrIo, "Internal": ErrInternal,
}

func loadVectorKeychain(t *testing.T, v *ksVectors) *Keychain {
	t.Helper()
	root, err := NewAgeRoot([]string{v.Keychain.AgeIdentity}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	saved, err := base64.StdEncoding.DecodeString(v.Keychain.SavedAgeBase64)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := Load(saved, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	return kc
}

func TestVectorsKeystrata(t *testing.T) {
	var v ksVectors
	readJSON(t, "keystrata.json", &v)
	kc := loadVectorKeychain(t, &v)

	t.Run("keys", func(t *testing.T) {
		keys, err := kc.Keys()
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != len(v.Keychain.Keys) {
			t.Fatalf("got %d keys, want %d", len(keys), len(v.Keychain.Keys))
		}
		for i, want := range v.Keychain.Keys {
			got := keys[i]
			if got.KeyID != want.KeyID || got.Version != want.Version || got.Purpose.String() != want.Purpose ||
				got.Status.String() != want.Status || got.Primary != want.Primary {
				t.Errorf("key %d: got %+v, want %+v", i, got, want)
			}
		}
	})
	t.Run("unseal", func(t *testing.T) {
		for _, c := range v.Keychain.Unseal {
			pt, err := kc.Unseal(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
			if err != nil || !bytes.Equal(pt, unhex(t, c.PlaintextHex)) {
				t.Errorf("%s: got %x, %v", c.Comment, pt, err)
			}
		}
	})
	t.Run("decrypt", func(t *testing.T) {
		for _, c := range v.Keychain.Decrypt {
			pt, err := kc.Decrypt(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
			if err != nil || !bytes.Equal(pt, unhex(t, c.PlaintextHex)) {
				t.Errorf("%s: got %x, %v", c.Comment, pt, err)
			}
		}
	})
	t.Run("unwrap", func(t *testing.T) {
		for _, c := range v.Keychain.Unwrap {
			env := c.Envelope.env(t)
			meta, err := env.ToMetadata()
			if err != nil {
				t.Fatalf("%s: ToMetadata: %v", c.Comment, err)
			}
			if len(meta) != len(c.Metadata) {
				t.Errorf("%s: metadata %v, want %v", c.Comment, meta, c.Metadata)
			}
			for k, want := range c.Metadata {
				if meta[k] != want {
					t.Errorf("%s: metadata[%s] = %q, want %q", c.Comment, k, meta[k], want)
				}
			}
			back, err := EnvelopeFromMetadata(c.Metadata)
			if err != nil {
				t.Fatalf("%s: EnvelopeFromMetadata: %v", c.Comment, err)
			}
			if back.KeyID != env.KeyID || back.KeyVersion != env.KeyVersion || back.Provider != env.Provider ||
				!bytes.Equal(back.Ciphertext, env.Ciphertext) {
				t.Errorf("%s: read %+v, want %+v", c.Comment, back, env)
			}
			key, err := kc.UnwrapKey(back, unhex(t, c.ContextHex))
			if err != nil || !bytes.Equal(key, unhex(t, c.KeyHex)) {
				t.Errorf("%s: got %x, %v", c.Comment, key, err)
			}
		}
	})
	t.Run("derive_origin_key", func(t *testing.T) {
		for _, c := range v.Keychain.DeriveOriginKey {
			epoch, err := strconv.ParseUint(c.Epoch, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			k, err := kc.DeriveOriginKey(c.Origin, c.Instance, epoch)
			if err != nil || !bytes.Equal(k, unhex(t, c.KeyHex)) {
				t.Errorf("%s: got %x, %v", c.Comment, k, err)
			}
		}
	})
	t.Run("derive", func(t *testing.T) {
		for _, c := range v.Keychain.Derive {
			k, err := kc.Derive(unhex(t, c.InfoHex), c.Length)
			if err != nil || !bytes.Equal(k, unhex(t, c.OKMHex)) {
				t.Errorf("%s: got %x, %v", c.Comment, k, err)
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, c := range v.Keychain.Invalid {
			want := kindByName[c.Error]
			if want == nil || want.Code != c.ErrorCode {
				t.Fatalf("%s: unknown kind %s/%d", c.Comment, c.Error, c.ErrorCode)
			}
			var out any
			var err error
			switch c.Op {
			case "unseal":
				out, err = kc.Unseal(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
			case "decrypt":
				out, err = kc.Decrypt(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
			case "unwrap":
				out, err = kc.UnwrapKey(c.Envelope.env(t), unhex(t, c.ContextHex))
			case "derive":
				out, err = kc.Derive(unhex(t, c.InfoHex), c.Length)
			case "envelope_from_metadata":
				out, err = EnvelopeFromMetadata(c.Metadata)
			default:
				t.Fatalf("%s: unknown op %q", c.Comment, c.Op)
			}
			var e *Error
			if !errors.Is(err, want) || !errors.As(err, &e) || e.Code != c.ErrorCode {
				t.Errorf("%s (%s): got %v, %v; want %s", c.Comment, c.Op, out, err, c.Error)
			}
		}
	})
	t.Run("wrong identity", func(t *testing.T) {
		other, err := GenerateAgeRoot()
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		saved, _ := base64.StdEncoding.DecodeString(v.Keychain.SavedAgeBase64)
		if _, err := Load(saved, other); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("got %v, want ErrAuthentication", err)
		}
	})
	t.Run("passphrase", func(t *testing.T) {
		sp := v.SavedPassphrase
		root, err := NewPassphraseRoot(sp.Passphrase, sp.WorkFactor)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		saved, _ := base64.StdEncoding.DecodeString(sp.SavedAgeBase64)
		pkc, err := Load(saved, root)
		if err != nil {
			t.Fatal(err)
		}
		defer pkc.Close()
		for _, c := range sp.Unseal {
			pt, err := pkc.Unseal(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
			if err != nil || !bytes.Equal(pt, unhex(t, c.PlaintextHex)) {
				t.Errorf("%s: got %x, %v", c.Comment, pt, err)
			}
		}
		wrong, err := NewPassphraseRoot(sp.Passphrase+"x", sp.WorkFactor)
		if err != nil {
			t.Fatal(err)
		}
		defer wrong.Close()
		if _, err := Load(saved, wrong); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("wrong passphrase: got %v, want ErrAuthentication", err)
		}
	})
}

type tinkVectors struct {
	Keysets []struct {
		Name         string    `json:"name"`
		KeysetJSON   string    `json:"keyset_json"`
		PrimaryKeyID uint32    `json:"primary_key_id"`
		AEAD         []vecAEAD `json:"aead"`
		Envelope     []vecAEAD `json:"envelope"`
		MustFail     []vecAEAD `json:"aead_must_fail"`
	} `json:"keysets"`
	Unsupported []struct {
		Name       string `json:"name"`
		KeysetJSON string `json:"keyset_json"`
		Reason     string `json:"reason"`
	} `json:"unsupported"`
}

func TestVectorsTink(t *testing.T) {
	var v tinkVectors
	readJSON(t, "tink.json", &v)
	if len(v.Keysets) == 0 || len(v.Unsupported) == 0 {
		t.Fatal("no tink vectors")
	}
	for _, ks := range v.Keysets {
		t.Run(ks.Name, func(t *testing.T) {
			kc, err := ImportTinkCleartext([]byte(ks.KeysetJSON))
			if err != nil {
				t.Fatal(err)
			}
			defer kc.Close()
			p, err := kc.Primary()
			if err != nil || p.KeyID != ks.PrimaryKeyID {
				t.Errorf("primary %+v, %v; want key ID %d", p, err, ks.PrimaryKeyID)
			}
			for _, c := range ks.AEAD {
				pt, err := kc.Unseal(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
				if err != nil || !bytes.Equal(pt, unhex(t, c.PlaintextHex)) {
					t.Errorf("aead %s: got %x, %v", c.Comment, pt, err)
				}
			}
			for _, c := range ks.Envelope {
				pt, err := kc.Decrypt(unhex(t, c.CiphertextHex), unhex(t, c.AADHex))
				if err != nil || !bytes.Equal(pt, unhex(t, c.PlaintextHex)) {
					t.Errorf("envelope %s: got %x, %v", c.Comment, pt, err)
				}
			}
			for _, c := range ks.MustFail {
				if pt, err := kc.Unseal(unhex(t, c.CiphertextHex), unhex(t, c.AADHex)); !errors.Is(err, ErrKeyDisabled) {
					t.Errorf("must fail %s: got %x, %v; want ErrKeyDisabled", c.Comment, pt, err)
				}
			}
			// Export and re-import: the same ciphertexts still open.
			exported, err := kc.InsecureExportTinkCleartext()
			if err != nil {
				t.Fatal(err)
			}
			kc2, err := ImportTinkCleartext(exported)
			if err != nil {
				t.Fatal(err)
			}
			defer kc2.Close()
			for _, c := range ks.AEAD {
				if pt, err := kc2.Unseal(unhex(t, c.CiphertextHex), unhex(t, c.AADHex)); err != nil || !bytes.Equal(pt, unhex(t, c.PlaintextHex)) {
					t.Errorf("re-imported %s: got %x, %v", c.Comment, pt, err)
				}
			}
		})
	}
	for _, u := range v.Unsupported {
		if kc, err := ImportTinkCleartext([]byte(u.KeysetJSON)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("unsupported %s (%s): got %v, %v", u.Name, u.Reason, kc, err)
		}
	}
	if _, err := ImportTinkCleartext([]byte("not json")); !errors.Is(err, ErrFormat) {
		t.Errorf("garbage keyset: got %v, want ErrFormat", err)
	}
}

func TestVectorsWycheproof(t *testing.T) {
	var gcm struct {
		TestGroups []struct {
			IVSize, KeySize, TagSize int
			Tests                    []struct {
				TcID                       int `json:"tcId"`
				Key, IV, AAD, Msg, CT, Tag string
				Result                     string
			}
		}
	}
	readJSON(t, "wycheproof/aes_gcm_test.json", &gcm)
	n := 0
	for _, g := range gcm.TestGroups {
		for _, c := range g.Tests {
			n++
			key, iv, aad, msg := unhex(t, c.Key), unhex(t, c.IV), unhex(t, c.AAD), unhex(t, c.Msg)
			sealed := append(unhex(t, c.CT), unhex(t, c.Tag)...)
			inFormat := g.KeySize == 256 && g.IVSize == 96 && g.TagSize == 128
			pt, derr := hazmatGCM(true, key, iv, aad, sealed)
			switch {
			case c.Result != "valid" && c.Result != "invalid":
				t.Fatalf("tc %d: unexpected result %q", c.TcID, c.Result)
			case !inFormat || c.Result == "invalid":
				if derr == nil {
					t.Errorf("tc %d (key %d, iv %d, %s): decrypt accepted", c.TcID, g.KeySize, g.IVSize, c.Result)
				}
			default:
				if derr != nil || !bytes.Equal(pt, msg) {
					t.Errorf("tc %d: decrypt got %x, %v", c.TcID, pt, derr)
				}
				ct, err := hazmatGCM(false, key, iv, aad, msg)
				if err != nil || !bytes.Equal(ct, sealed) {
					t.Errorf("tc %d: encrypt got %x, %v", c.TcID, ct, err)
				}
			}
		}
	}
	var hk struct {
		TestGroups []struct {
			Tests []struct {
				TcID                 int `json:"tcId"`
				IKM, Salt, Info, OKM string
				Size                 int
				Result               string
			}
		}
	}
	readJSON(t, "wycheproof/hkdf_sha256_test.json", &hk)
	for _, g := range hk.TestGroups {
		for _, c := range g.Tests {
			n++
			okm, err := hazmatHKDF(unhex(t, c.Salt), unhex(t, c.IKM), unhex(t, c.Info), c.Size)
			switch c.Result {
			case "valid":
				if err != nil || !bytes.Equal(okm, unhex(t, c.OKM)) {
					t.Errorf("hkdf tc %d: got %x, %v", c.TcID, okm, err)
				}
			case "invalid":
				if err == nil {
					t.Errorf("hkdf tc %d: invalid case accepted", c.TcID)
				}
			default:
				t.Fatalf("hkdf tc %d: unexpected result %q", c.TcID, c.Result)
			}
		}
	}
	if n < 300 {
		t.Fatalf("only %d Wycheproof cases", n)
	}
}
