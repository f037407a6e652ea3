// kscross in Go: the cross-language harness tool (tests/cross/README.md).
//
// Same interface as core/examples/kscross.rs. A keystrata error prints the
// kind's name on stdout (message on stderr) and exits with 10 + its code;
// usage errors exit 2.
package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ks "github.com/keystrata/keystrata/bindings/go"
)

// kindName is a kind's CamelCase name, as in Rust's ErrorKind::name, made
// from the package's Kind() ("unknown key": "UnknownKey"), which reads the
// C library's status names: no table of its own.
func kindName(e *ks.Error) string {
	k := e.Kind()
	if strings.HasPrefix(k, "error ") {
		return "Code" + strconv.Itoa(e.Code)
	}
	var b strings.Builder
	for _, w := range strings.Fields(k) {
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(f string, a ...any) error { return usageError{fmt.Sprintf(f, a...)} }

func read(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read %s: %v", path, err)
	}
	return b, nil
}

func write(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return usagef("cannot write %s: %v", path, err)
	}
	return nil
}

func root(spec string) (*ks.Root, error) {
	if p, ok := strings.CutPrefix(spec, "age:"); ok {
		text, err := read(p)
		if err != nil {
			return nil, err
		}
		return ks.NewAgeRoot([]string{string(text)}, nil)
	}
	if p, ok := strings.CutPrefix(spec, "pass:"); ok {
		return ks.NewPassphraseRoot(p, 10)
	}
	return nil, usagef("bad root spec %q", spec)
}

func load(spec, path string) (*ks.Keychain, error) {
	r, err := root(spec)
	if err != nil {
		return nil, err
	}
	return ks.LoadFile(path, r)
}

type envJSON struct {
	KeyID         string `json:"key_id"`
	KeyVersion    int    `json:"key_version"`
	Provider      string `json:"provider"`
	CiphertextHex string `json:"ciphertext_hex"`
}

func envelopeJSON(e *ks.KeyEnvelope) []byte {
	b, _ := json.Marshal(envJSON{e.KeyID, e.KeyVersion, e.Provider, hex.EncodeToString(e.Ciphertext)})
	return b
}

func metadataJSON(e *ks.KeyEnvelope) ([]byte, error) {
	m, err := e.ToMetadata()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func readEnvelope(path string) (*ks.KeyEnvelope, error) {
	data, err := read(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, usagef("%s: not a JSON object: %v", path, err)
	}
	if _, ok := raw["ciphertext_hex"]; ok {
		var e envJSON
		dec := json.NewDecoder(bytes.NewReader(data))
		if err := dec.Decode(&e); err != nil {
			return nil, usagef("%s: bad envelope JSON: %v", path, err)
		}
		ct, err := hex.DecodeString(e.CiphertextHex)
		if err != nil {
			return nil, usagef("%s: bad hex", path)
		}
		return &ks.KeyEnvelope{KeyID: e.KeyID, KeyVersion: e.KeyVersion, Provider: e.Provider, Ciphertext: ct}, nil
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, usagef("%s: metadata values must be strings", path)
	}
	return ks.EnvelopeFromMetadata(m)
}

// algorithm is the Algorithm named name, by the library's own names
// (Algorithm.String); a name it does not know is AlgorithmNone, which the
// library rejects with ErrInvalidInput, as the other languages do.
func algorithm(name string) ks.Algorithm {
	for a := ks.Algorithm(1); a < 64; a++ {
		if a.String() == name {
			return a
		}
	}
	return ks.AlgorithmNone
}

// sigFormat and pubFormat: the command line's format words; another word
// is 0, not a format (ErrInvalidInput).
func sigFormat(name string) ks.SignatureFormat {
	return map[string]ks.SignatureFormat{"der": ks.SignatureDER, "raw": ks.SignatureRaw}[name]
}

func pubFormat(name string) ks.PublicKeyFormat {
	return map[string]ks.PublicKeyFormat{
		"pem": ks.PublicKeyPEM, "der": ks.PublicKeyDER, "raw": ks.PublicKeyRaw, "minisign": ks.PublicKeyMinisign,
	}[name]
}

// streamFormat is the StreamFormat named name, by the library's own names
// (StreamFormat.String); another name is 0, not a format (ErrInvalidInput).
func streamFormat(name string) ks.StreamFormat {
	for f := ks.StreamFormat(1); f < 64; f++ {
		if f.String() == name {
			return f
		}
	}
	return 0
}

// How much stream-encrypt hands the writer at a time, and stream-decrypt
// asks of the reader: odd sizes, so calls straddle segment boundaries (the
// same in every language's tool).
const (
	streamWriteChunk = 10007
	streamReadChunk  = 8191
)

// streamEncrypt writes the file in through NewEncryptingWriter into out, a
// chunk at a time, and closes the writer (the last segment).
func streamEncrypt(kc *ks.Keychain, in string, aad []byte, out string) error {
	src, err := os.Open(in)
	if err != nil {
		return usagef("cannot read %s: %v", in, err)
	}
	defer src.Close()
	dst, err := os.Create(out)
	if err != nil {
		return usagef("cannot write %s: %v", out, err)
	}
	defer dst.Close()
	w, err := kc.NewEncryptingWriter(dst, aad)
	if err != nil {
		return err
	}
	buf := make([]byte, streamWriteChunk)
	for {
		n, rerr := io.ReadFull(src, buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return usagef("cannot read %s: %v", in, rerr)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := dst.Close(); err != nil {
		return usagef("cannot write %s: %v", out, err)
	}
	return nil
}

// streamDecrypt reads the stream in the file in through
// NewDecryptingReader, a chunk at a time, into out.
func streamDecrypt(kc *ks.Keychain, in string, aad []byte, out string) error {
	src, err := os.Open(in)
	if err != nil {
		return usagef("cannot read %s: %v", in, err)
	}
	defer src.Close()
	r, err := kc.NewDecryptingReader(src, aad)
	if err != nil {
		return err
	}
	dst, err := os.Create(out)
	if err != nil {
		return usagef("cannot write %s: %v", out, err)
	}
	defer dst.Close()
	buf := make([]byte, streamReadChunk)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return usagef("cannot write %s: %v", out, err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := dst.Close(); err != nil {
		return usagef("cannot write %s: %v", out, err)
	}
	return nil
}

// streamReadAt reads length bytes of plaintext at offset of the stream in
// the file in (fewer at the end) with NewDecryptingReaderAt's ReadAt.
func streamReadAt(kc *ks.Keychain, in string, aad []byte, offset int64, length int) ([]byte, error) {
	src, err := os.Open(in)
	if err != nil {
		return nil, usagef("cannot read %s: %v", in, err)
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, usagef("cannot read %s: %v", in, err)
	}
	ra, err := kc.NewDecryptingReaderAt(src, fi.Size(), aad)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	buf := make([]byte, length)
	n, err := ra.ReadAt(buf, offset)
	if err != nil && err != io.EOF {
		return nil, err
	}
	return buf[:n], nil
}

// readAll reads every file of paths, in order.
func readAll(paths ...string) ([][]byte, error) {
	out := make([][]byte, len(paths))
	for i, p := range paths {
		b, err := read(p)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

func gen(dir string, r *ks.Root) error {
	kc, err := ks.Generate(nil)
	if err != nil {
		return err
	}
	defer kc.Close()
	p, err := kc.Primary()
	if err != nil {
		return err
	}
	v1 := p.KeyID
	fixtures := func(v string, keyByte byte) error {
		pt := []byte("fixture " + v)
		s, err := kc.Seal(pt, []byte("fixture"))
		if err != nil {
			return err
		}
		if err := write(filepath.Join(dir, v+".sealed"), s); err != nil {
			return err
		}
		e, err := kc.Encrypt(pt, []byte("fixture"))
		if err != nil {
			return err
		}
		if err := write(filepath.Join(dir, v+".encrypted"), e); err != nil {
			return err
		}
		env, err := kc.WrapKey(bytes.Repeat([]byte{keyByte}, 32), []byte("fixture"))
		if err != nil {
			return err
		}
		return write(filepath.Join(dir, v+".env.json"), envelopeJSON(env))
	}
	if err := fixtures("v1", 0x11); err != nil {
		return err
	}
	if _, err := kc.Rotate(); err != nil {
		return err
	}
	if err := fixtures("v2", 0x22); err != nil {
		return err
	}
	if _, err := kc.Rotate(); err != nil {
		return err
	}
	if err := kc.Disable(v1); err != nil {
		return err
	}
	if err := write(filepath.Join(dir, "disabled_key_id"), []byte(fmt.Sprintf("%d\n", v1))); err != nil {
		return err
	}
	return kc.SaveFile(filepath.Join(dir, "keychain.age"), r)
}

func run(a []string) error {
	op := ""
	if len(a) > 0 {
		op = a[0]
	}
	n := len(a)
	switch {
	case op == "gen-age" && n == 2:
		r, err := ks.GenerateAgeRoot()
		if err != nil {
			return err
		}
		recips, err := r.AgeRecipients()
		if err != nil {
			return err
		}
		ids, err := r.InsecureAgeIdentities()
		if err != nil {
			return err
		}
		text := fmt.Sprintf("# public key: %s\n%s\n", recips[0], ids[0])
		if err := write(filepath.Join(a[1], "identity.txt"), []byte(text)); err != nil {
			return err
		}
		return gen(a[1], r)
	case op == "gen-pass" && n == 3:
		r, err := ks.NewPassphraseRoot(a[2], 10)
		if err != nil {
			return err
		}
		return gen(a[1], r)
	case (op == "seal" || op == "unseal" || op == "encrypt" || op == "decrypt") && n == 6:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		data, err := read(a[3])
		if err != nil {
			return err
		}
		f := map[string]func([]byte, []byte) ([]byte, error){
			"seal": kc.Seal, "unseal": kc.Unseal, "encrypt": kc.Encrypt, "decrypt": kc.Decrypt,
		}[op]
		out, err := f(data, []byte(a[4]))
		if err != nil {
			return err
		}
		return write(a[5], out)
	case op == "wrap" && n == 7:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		key, err := read(a[3])
		if err != nil {
			return err
		}
		env, err := kc.WrapKey(key, []byte(a[4]))
		if err != nil {
			return err
		}
		meta, err := metadataJSON(env)
		if err != nil {
			return err
		}
		if err := write(a[5], envelopeJSON(env)); err != nil {
			return err
		}
		return write(a[6], meta)
	case op == "unwrap" && n == 6:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		env, err := readEnvelope(a[3])
		if err != nil {
			return err
		}
		key, err := kc.UnwrapKey(env, []byte(a[4]))
		if err != nil {
			return err
		}
		return write(a[5], key)
	case op == "derive" && n == 7:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		epoch, err := strconv.ParseUint(a[5], 10, 64)
		if err != nil {
			return usagef("bad epoch")
		}
		key, err := kc.DeriveOriginKey(a[3], a[4], epoch)
		if err != nil {
			return err
		}
		return write(a[6], key)
	case op == "destroy" && n == 5:
		r, err := root(a[1])
		if err != nil {
			return err
		}
		kc, err := ks.LoadFile(a[2], r)
		if err != nil {
			return err
		}
		defer kc.Close()
		id, err := strconv.ParseUint(a[3], 10, 32)
		if err != nil {
			return usagef("bad key id")
		}
		if err := kc.Destroy(uint32(id)); err != nil {
			return err
		}
		return kc.SaveFile(a[4], r)
	case op == "encrypt-portable" && n == 6:
		r, err := root(a[1])
		if err != nil {
			return err
		}
		defer r.Close()
		kc, err := ks.Open(a[2], r, nil)
		if err != nil {
			return err
		}
		defer kc.Close()
		data, err := read(a[3])
		if err != nil {
			return err
		}
		out, err := kc.EncryptPortable(data, []byte(a[4]))
		if err != nil {
			return err
		}
		return write(a[5], out)
	case op == "decrypt-portable" && n == 5:
		r, err := root(a[1])
		if err != nil {
			return err
		}
		defer r.Close()
		data, err := read(a[2])
		if err != nil {
			return err
		}
		out, err := ks.DecryptPortable(data, []byte(a[3]), r)
		if err != nil {
			return err
		}
		return write(a[4], out)
	case op == "add-signing" && n == 4:
		r, err := root(a[1])
		if err != nil {
			return err
		}
		defer r.Close()
		kc, err := ks.LoadFile(a[2], r)
		if err != nil {
			return err
		}
		defer kc.Close()
		if _, err := kc.RotateSigning(algorithm(a[3])); err != nil {
			return err
		}
		return kc.SaveFile(a[2], r)
	case op == "sign" && n == 6:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		msg, err := read(a[4])
		if err != nil {
			return err
		}
		sig, err := kc.SignAs(msg, sigFormat(a[3]))
		if err != nil {
			return err
		}
		return write(a[5], sig.Bytes)
	case op == "verify" && n == 6:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		in, err := readAll(a[3], a[4])
		if err != nil {
			return err
		}
		info, err := kc.Verify(in[0], in[1])
		if err != nil {
			return err
		}
		return write(a[5], []byte(fmt.Sprintf("%d\n", info.KeyID)))
	case op == "pubkey" && n == 5:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		p, err := kc.PrimaryOf(ks.PurposeSign)
		if err != nil {
			return err
		}
		pub, err := kc.PublicKey(p.KeyID, pubFormat(a[3]))
		if err != nil {
			return err
		}
		return write(a[4], pub)
	case op == "verify-pub" && n == 6:
		in, err := readAll(a[2], a[3], a[4])
		if err != nil {
			return err
		}
		if err := ks.VerifySignature(algorithm(a[1]), in[0], in[1], in[2]); err != nil {
			return err
		}
		return write(a[5], []byte("ok\n"))
	case op == "add-stream" && n == 4:
		r, err := root(a[1])
		if err != nil {
			return err
		}
		defer r.Close()
		kc, err := ks.LoadFile(a[2], r)
		if err != nil {
			return err
		}
		defer kc.Close()
		if _, err := kc.RotateStreaming(streamFormat(a[3])); err != nil {
			return err
		}
		return kc.SaveFile(a[2], r)
	case (op == "stream-encrypt" || op == "stream-decrypt") && n == 6:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		if op == "stream-encrypt" {
			return streamEncrypt(kc, a[3], []byte(a[4]), a[5])
		}
		return streamDecrypt(kc, a[3], []byte(a[4]), a[5])
	case op == "stream-read-at" && n == 8:
		offset, err := strconv.ParseInt(a[5], 10, 64)
		if err != nil || offset < 0 {
			return usagef("bad offset")
		}
		length, err := strconv.ParseUint(a[6], 10, 31)
		if err != nil {
			return usagef("bad length")
		}
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		pt, err := streamReadAt(kc, a[3], []byte(a[4]), offset, int(length))
		if err != nil {
			return err
		}
		return write(a[7], pt)
	case op == "keys" && n == 3:
		kc, err := load(a[1], a[2])
		if err != nil {
			return err
		}
		defer kc.Close()
		keys, err := kc.Keys()
		if err != nil {
			return err
		}
		for _, k := range keys {
			p := 0
			if k.Primary {
				p = 1
			}
			fmt.Printf("%d %d %s %s %d\n", k.KeyID, k.Version, k.Purpose, k.Status, p)
		}
		return nil
	}
	return usagef("usage: see tests/cross/README.md")
}

func main() {
	a := os.Args[1:]
	err := run(a)
	if err == nil {
		return
	}
	var ke *ks.Error
	if errors.As(err, &ke) {
		name := kindName(ke)
		fmt.Println(name)
		op := ""
		if len(a) > 0 {
			op = a[0]
		}
		fmt.Fprintf(os.Stderr, "kscross-go: %s: %s: %v\n", op, name, err)
		os.Exit(10 + ke.Code)
	}
	fmt.Fprintf(os.Stderr, "kscross-go: %v\n", err)
	os.Exit(2)
}
