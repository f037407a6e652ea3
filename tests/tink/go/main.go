// Command tinkgo runs tink-go's streaming AEAD (AES-GCM-HKDF) both ways with
// keystrata: the Go peer beside tests/tink/streaming.py (Tink Python), with
// the same commands, the same files and the same kind of report.
//
//	go run . gen DIR      # tink-go keysets and streams for keystrata to read
//	go run . check DIR    # tink-go reads the streams keystrata wrote
//
// gen writes DIR/keyset-{4kb,1mb}.json (tink-go cleartext JSON keysets from
// the AES256_GCM_HKDF_4KB and _1MB templates) and DIR/tink-{4kb,1mb}-N.ct:
// tink-go's encryption of plaintext(N) with aad "aad-N", for the sizes in
// sizes. keystrata's test (core/tests/stream.rs) imports the keysets,
// decrypts those, and writes DIR/ks-{4kb,1mb}-N.ct (its own streams of
// plaintext(N), same aad) and DIR/ks-keyset-{4kb,1mb}.json (its export of the
// keys). check decrypts each ks stream with tink-go under the original keyset
// and under keystrata's export and compares, and requires tink-go to reject
// each stream under a wrong aad, with a byte flipped (mid-stream and in the
// last tag), one byte short, and with its last segment dropped. Last line:
// `tink-go-streaming: N passed, M failed`; the exit status is 1 on any
// failure, 2 on a usage or I/O error.
//
// plaintext(N) is the bytes (7*i + 3) % 251 for i in [0, N).
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	tinkpb "github.com/tink-crypto/tink-go/v2/proto/tink_go_proto"
	"github.com/tink-crypto/tink-go/v2/streamingaead"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// format is one of the two streaming key templates: its file-name tag, its
// ciphertext segment size and its tink-go template.
type format struct {
	name     string
	segment  int
	template func() *tinkpb.KeyTemplate
	sizes    []int
}

// The sizes are streaming.py's: the segment boundaries of each format
// (first plaintext segment S-56, then S-16 bytes) and some way past them.
var formats = []format{
	{"4kb", 4096, streamingaead.AES256GCMHKDF4KBKeyTemplate,
		[]int{0, 1, 4040, 4041, 4079, 4080, 4081, 8160, 8161, 50_000}},
	{"1mb", 1 << 20, streamingaead.AES256GCMHKDF1MBKeyTemplate,
		[]int{0, 1, 1_048_519, 1_048_520, 1_048_521, 3_000_000}},
}

const headerLen = 40 // 0x28 ‖ salt (32) ‖ nonce prefix (7)

func plaintext(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte((7*i + 3) % 251)
	}
	return p
}

func aad(n int) []byte { return fmt.Appendf(nil, "aad-%d", n) }

func readKeyset(path string) (tink.StreamingAEAD, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(f))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p, err := streamingaead.New(h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func encrypt(p tink.StreamingAEAD, pt, aad []byte) ([]byte, error) {
	var out bytes.Buffer
	w, err := p.NewEncryptingWriter(&out, aad)
	if err != nil {
		return nil, err
	}
	for len(pt) > 0 { // in the pieces streaming.py and stream.rs write
		c := pt[:min(len(pt), 70_001)]
		if _, err := w.Write(c); err != nil {
			return nil, err
		}
		pt = pt[len(c):]
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func decrypt(p tink.StreamingAEAD, ct, aad []byte) ([]byte, error) {
	r, err := p.NewDecryptingReader(bytes.NewReader(ct), aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func gen(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	streams := 0
	for _, f := range formats {
		h, err := keyset.NewHandle(f.template())
		if err != nil {
			return err
		}
		var js bytes.Buffer
		if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&js)); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "keyset-"+f.name+".json"), js.Bytes(), 0o600); err != nil {
			return err
		}
		p, err := streamingaead.New(h)
		if err != nil {
			return err
		}
		for _, n := range f.sizes {
			ct, err := encrypt(p, plaintext(n), aad(n))
			if err != nil {
				return fmt.Errorf("%s %d: encrypt: %w", f.name, n, err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("tink-%s-%d.ct", f.name, n)), ct, 0o644); err != nil {
				return err
			}
			streams++
		}
	}
	fmt.Printf("tink-go-streaming: gen wrote %d streams\n", streams)
	return nil
}

// spoiled is a valid stream made invalid, and how.
type spoiled struct {
	what string
	ct   []byte
}

// tampered returns the ways of spoiling a valid stream ct (segment size
// seg), each of which tink-go must reject.
func tampered(ct []byte, seg int) []spoiled {
	flip := func(i int) []byte {
		b := bytes.Clone(ct)
		b[i] ^= 0x01
		return b
	}
	// The last segment starts at the last multiple of seg below len(ct); a
	// one-segment stream keeps only its header.
	last := (len(ct) - 1) / seg * seg
	if last == 0 {
		last = headerLen
	}
	return []spoiled{
		{"a byte flipped mid-stream", flip(len(ct) / 2)},
		{"the last tag byte flipped", flip(len(ct) - 1)},
		{"one byte short", ct[:len(ct)-1]},
		{"the last segment dropped", ct[:last]},
	}
}

// tally counts checks and prints each failure.
type tally struct{ passed, failed int }

func (t *tally) expect(ok bool, format string, args ...any) {
	if ok {
		t.passed++
		return
	}
	t.failed++
	fmt.Printf("FAIL "+format+"\n", args...)
}

func check(dir string) (tally, error) {
	var t tally
	for _, f := range formats {
		theirs, err := readKeyset(filepath.Join(dir, "keyset-"+f.name+".json"))
		if err != nil {
			return t, err
		}
		export, err := readKeyset(filepath.Join(dir, "ks-keyset-"+f.name+".json"))
		if err != nil {
			return t, err
		}
		for _, n := range f.sizes {
			ct, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("ks-%s-%d.ct", f.name, n)))
			if err != nil {
				return t, err
			}
			want := plaintext(n)
			for _, k := range []struct {
				label string
				p     tink.StreamingAEAD
			}{{"tink-go keyset", theirs}, {"keystrata export", export}} {
				got, err := decrypt(k.p, ct, aad(n))
				if err == nil && !bytes.Equal(got, want) {
					err = fmt.Errorf("plaintext differs (%d bytes, want %d)", len(got), n)
				}
				t.expect(err == nil, "%s %d (%s): %v", f.name, n, k.label, err)
			}
			_, err = decrypt(theirs, ct, []byte("other"))
			t.expect(err != nil, "%s %d: tink-go accepted a wrong aad", f.name, n)
			for _, bad := range tampered(ct, f.segment) {
				_, err := decrypt(theirs, bad.ct, aad(n))
				t.expect(err != nil, "%s %d: tink-go accepted the stream with %s", f.name, n, bad.what)
			}
		}
	}
	return t, nil
}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "gen" && os.Args[1] != "check") {
		fmt.Fprintln(os.Stderr, "usage: go run . gen DIR | check DIR   (see the doc comment in main.go)")
		os.Exit(2)
	}
	dir := os.Args[2]
	if os.Args[1] == "gen" {
		if err := gen(dir); err != nil {
			fmt.Fprintln(os.Stderr, "tink-go-streaming: gen:", err)
			os.Exit(2)
		}
		return
	}
	t, err := check(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tink-go-streaming: check:", err)
		os.Exit(2)
	}
	fmt.Printf("tink-go-streaming: %d passed, %d failed\n", t.passed, t.failed)
	if t.failed > 0 {
		os.Exit(1)
	}
}
