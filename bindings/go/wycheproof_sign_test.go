package keystrata

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// Wycheproof's signature vectors (tests/vectors/wycheproof/, README there)
// through VerifySignature: every case of ECDSA P-256 and secp256k1 with
// SHA-256 (DER and P1363) and Ed25519. A valid case verifies; an invalid
// one fails with ErrAuthentication (or ErrInvalidInput for a public key
// keystrata refuses).
func TestWycheproofSignatures(t *testing.T) {
	files := []struct {
		name           string
		alg            Algorithm
		valid, invalid int
	}{
		{"ecdsa_secp256r1_sha256_test.json", AlgorithmECDSAP256, 174, 310},
		{"ecdsa_secp256r1_sha256_p1363_test.json", AlgorithmECDSAP256, 173, 89},
		{"ecdsa_secp256k1_sha256_test.json", AlgorithmECDSASecp256k1, 168, 308},
		{"ecdsa_secp256k1_sha256_p1363_test.json", AlgorithmECDSASecp256k1, 167, 85},
		{"ed25519_test.json", AlgorithmEd25519, 88, 63},
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "tests", "vectors", "wycheproof", f.name))
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				NumberOfTests int `json:"numberOfTests"`
				TestGroups    []struct {
					PublicKey struct {
						Pk           string `json:"pk"`
						Uncompressed string `json:"uncompressed"`
					} `json:"publicKey"`
					Tests []struct {
						TcID   int    `json:"tcId"`
						Msg    string `json:"msg"`
						Sig    string `json:"sig"`
						Result string `json:"result"`
					} `json:"tests"`
				} `json:"testGroups"`
			}
			if err := json.Unmarshal(raw, &doc); err != nil {
				t.Fatal(err)
			}
			unhex := func(s string) []byte {
				b, err := hex.DecodeString(s)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			valid, invalid, total := 0, 0, 0
			for _, g := range doc.TestGroups {
				pk := unhex(g.PublicKey.Uncompressed)
				if f.alg == AlgorithmEd25519 {
					pk = unhex(g.PublicKey.Pk)
				}
				for _, c := range g.Tests {
					total++
					err := VerifySignature(f.alg, pk, unhex(c.Msg), unhex(c.Sig))
					switch c.Result {
					case "valid":
						if err != nil {
							t.Errorf("#%d valid: %v", c.TcID, err)
						}
						valid++
					case "invalid":
						if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrInvalidInput) {
							t.Errorf("#%d invalid: %v", c.TcID, err)
						}
						invalid++
					}
				}
			}
			if total != doc.NumberOfTests || valid != f.valid || invalid != f.invalid {
				t.Fatalf("%d cases (%d valid, %d invalid), want %d (%d, %d)", total, valid, invalid, doc.NumberOfTests, f.valid, f.invalid)
			}
		})
	}
}
