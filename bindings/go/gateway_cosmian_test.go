package keystrata

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The S3 gateway's own Cosmian KMS key manager
// (internal/crypto/keymanager_cosmian_json.go in
// kenchrcum/s3-encryption-gateway), reproduced request for request: it
// posts a bare Encrypt to Cosmian's JSON API (/kmip/2_1) with Block Cipher
// Mode NISTKeyWrap, algorithm AES, the data key and the IV A6A6A6A6A6A6A6A6,
// and stores the response's Data as the wrapped key under the provider
// hint "cosmian-kmip". A gateway that moves to keystrata keeps reading those
// objects: a keychain bound to a KMIP root on the same server hands such
// envelopes to the server.

type gwJSONNode struct {
	Tag   string      `json:"tag"`
	Type  string      `json:"type,omitempty"`
	Value interface{} `json:"value,omitempty"`
}

type gwJSONResponse struct {
	Tag   string          `json:"tag"`
	Type  string          `json:"type,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// gwCosmian posts one request to Cosmian's JSON API as the gateway does.
func gwCosmian(t *testing.T, payload gwJSONNode) []gwJSONResponse {
	t.Helper()
	e := peerEnv(t, "KS_TEST_COSMIAN_HOST", "KS_TEST_COSMIAN_HTTPS_PORT", "KS_TEST_COSMIAN_CA",
		"KS_TEST_COSMIAN_CERT", "KS_TEST_COSMIAN_KEY")
	ca, err := os.ReadFile(e["KS_TEST_COSMIAN_CA"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(e["KS_TEST_COSMIAN_CERT"], e["KS_TEST_COSMIAN_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	defer client.CloseIdleConnections()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://" + e["KS_TEST_COSMIAN_HOST"] + ":" + e["KS_TEST_COSMIAN_HTTPS_PORT"] + "/kmip/2_1"
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var top gwJSONResponse
	if err := json.Unmarshal(raw, &top); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Cosmian %s: HTTP %d: %s", payload.Tag, resp.StatusCode, raw)
	}
	var kids []gwJSONResponse
	if err := json.Unmarshal(top.Value, &kids); err != nil {
		t.Fatalf("Cosmian %s: %s", payload.Tag, raw)
	}
	return kids
}

func gwField(t *testing.T, kids []gwJSONResponse, tag string) string {
	t.Helper()
	for _, k := range kids {
		if k.Tag == tag {
			var s string
			if err := json.Unmarshal(k.Value, &s); err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	t.Fatalf("no %s in the response", tag)
	return ""
}

func gwBytes(tag string, b []byte) gwJSONNode {
	return gwJSONNode{Tag: tag, Type: "ByteString", Value: strings.ToUpper(hex.EncodeToString(b))}
}

// gwCosmianWrap is the gateway's WrapKey followed by what its engine
// stores: the four metadata entries.
func gwCosmianWrap(t *testing.T, keyID string, dek []byte) map[string]string {
	kids := gwCosmian(t, gwJSONNode{Tag: "Encrypt", Value: []gwJSONNode{
		{Tag: "UniqueIdentifier", Type: "TextString", Value: keyID},
		{Tag: "CryptographicParameters", Value: []gwJSONNode{
			{Tag: "BlockCipherMode", Type: "Enumeration", Value: "NISTKeyWrap"},
			{Tag: "CryptographicAlgorithm", Type: "Enumeration", Value: "AES"},
		}},
		gwBytes("Data", dek),
		gwBytes("IVCounterNonce", []byte{0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6}),
	}})
	ct, err := hex.DecodeString(gwField(t, kids, "Data"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		MetaKeyVersion: "1",
		MetaKMSID:      gwField(t, kids, "UniqueIdentifier"),
		MetaProvider:   "cosmian-kmip",
		MetaWrappedKey: base64.StdEncoding.EncodeToString(ct),
	}
}

func gwCosmianKey(t *testing.T) string {
	kids := gwCosmian(t, gwJSONNode{Tag: "Create", Value: []gwJSONNode{
		{Tag: "ObjectType", Type: "Enumeration", Value: "SymmetricKey"},
		{Tag: "Attributes", Value: []gwJSONNode{
			{Tag: "CryptographicAlgorithm", Type: "Enumeration", Value: "AES"},
			{Tag: "CryptographicLength", Type: "Integer", Value: 256},
			{Tag: "CryptographicUsageMask", Type: "Integer", Value: 12},
			{Tag: "KeyFormatType", Type: "Enumeration", Value: "TransparentSymmetricKey"},
			{Tag: "ObjectType", Type: "Enumeration", Value: "SymmetricKey"},
		}},
	}})
	return gwField(t, kids, "UniqueIdentifier")
}

func TestGatewayReadsItsCosmianEnvelopesThroughAKmipRoot(t *testing.T) {
	gwKey := gwCosmianKey(t)
	cfg := kmipServerConfig(t, "COSMIAN")
	cfg.Version = "2.0" // Cosmian KMS 5.0 finds keys by name in 2.0 only
	root, err := NewKmipRoot(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	kc, err := Open(filepath.Join(t.TempDir(), "kc"), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	km := kc.KeyManager()
	for i := 0; i < 3; i++ {
		dek := make([]byte, 32)
		if _, err := rand.Read(dek); err != nil {
			t.Fatal(err)
		}
		stored := gwCosmianWrap(t, gwKey, dek)
		// The engine's own unwrap path, its size window included.
		got, err := engineDecrypt(km, stored, stored)
		if err != nil {
			t.Fatalf("an object the gateway's Cosmian key manager wrapped: %v", err)
		}
		if !bytes.Equal(got, dek) {
			t.Fatal("another key came back")
		}
	}
	// New objects get keystrata's own envelopes, and both kinds read.
	key, stored, err := engineEncrypt(t, km, gwUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stored[MetaProvider] != Provider {
		t.Fatalf("new envelopes are %q", stored[MetaProvider])
	}
	if got, err := engineDecrypt(km, stored, stored); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("keystrata's own envelope: %v", err)
	}
	// A changed byte: ErrAuthentication; a key the server lacks: ErrUnknownKey.
	bad := gwCosmianWrap(t, gwKey, make([]byte, 32))
	ct, _ := base64.StdEncoding.DecodeString(bad[MetaWrappedKey])
	ct[5] ^= 1
	bad[MetaWrappedKey] = base64.StdEncoding.EncodeToString(ct)
	if _, err := engineDecrypt(km, bad, bad); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("tampered: %v", err)
	}
	gone := gwCosmianWrap(t, gwKey, make([]byte, 32))
	gone[MetaKMSID] = "no-such-key"
	if _, err := engineDecrypt(km, gone, gone); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown key: %v", err)
	}
	// A keychain under another root does not read them: ErrInvalidInput.
	other := newKC(t, nil).KeyManager()
	if _, err := engineDecrypt(other, gwCosmianWrap(t, gwKey, make([]byte, 32)), nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("a keychain not bound to a KMIP root: %v", err)
	}
}
