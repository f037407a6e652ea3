package keystrata

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
)

// The mapping of streaming: Go readers and writers over the C calls. The
// format's rules (segments, key trial, truncation) are tested in the core
// and through C.

func streamKC(t *testing.T, format StreamFormat) *Keychain {
	t.Helper()
	kc := newKC(t, nil)
	info, err := kc.RotateStreaming(format)
	if err != nil {
		t.Fatal(err)
	}
	if info.Purpose != PurposeStream || !info.Primary || info.Status != KeyEnabled || info.StreamFormat != format {
		t.Fatalf("RotateStreaming: %+v", info)
	}
	return kc
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((7*i + 3) % 251)
	}
	return b
}

// encryptStream writes pt in pieces of chunk bytes.
func encryptStream(t *testing.T, kc *Keychain, aad, pt []byte, chunk int) []byte {
	t.Helper()
	var ct bytes.Buffer
	w, err := kc.NewEncryptingWriter(&ct, aad)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(pt); off += chunk {
		n, err := w.Write(pt[off:min(len(pt), off+chunk)])
		if err != nil || n != min(len(pt), off+chunk)-off {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return ct.Bytes()
}

func decryptStream(kc *Keychain, aad []byte, r io.Reader) ([]byte, error) {
	d, err := kc.NewDecryptingReader(r, aad)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(d)
}

func TestStreamFormatNames(t *testing.T) {
	for f, want := range map[StreamFormat]string{
		StreamAES256GCMHKDF4KB: "aes256-gcm-hkdf-4kb",
		StreamAES256GCMHKDF1MB: "aes256-gcm-hkdf-1mb",
		0:                      "StreamFormat(0)",
		0xFFFFFFFF:             "StreamFormat(4294967295)",
	} {
		if f.String() != want {
			t.Errorf("%d: %q", uint32(f), f.String())
		}
	}
	if PurposeStream.String() != "stream" {
		t.Errorf("PurposeStream: %q", PurposeStream)
	}
}

func TestStreamRoundTripsAtEveryBoundary(t *testing.T) {
	for _, f := range []struct {
		format StreamFormat
		seg    int
	}{{StreamAES256GCMHKDF4KB, 4096}, {StreamAES256GCMHKDF1MB, 1 << 20}} {
		kc := streamKC(t, f.format)
		first, full := f.seg-56, f.seg-16
		for _, n := range []int{0, 1, first - 1, first, first + 1, first + full, first + full + 1, first + 2*full + 7} {
			pt := pattern(n)
			for _, chunk := range []int{7, 4097, 1 << 20} {
				ct := encryptStream(t, kc, []byte("aad"), pt, chunk)
				segs := 1
				if n > first {
					segs += (n - first + full - 1) / full
				}
				if len(ct) != n+40+16*segs {
					t.Fatalf("format %d, %d bytes: ciphertext of %d", f.format, n, len(ct))
				}
				readers := map[string]io.Reader{
					"whole":    bytes.NewReader(ct),
					"one byte": iotest.OneByteReader(bytes.NewReader(ct)),
					"half":     iotest.HalfReader(bytes.NewReader(ct)),
					"data+EOF": iotest.DataErrReader(bytes.NewReader(ct)),
				}
				for name, r := range readers {
					if f.format == StreamAES256GCMHKDF1MB && name == "one byte" && n > 4096 {
						continue
					}
					got, err := decryptStream(kc, []byte("aad"), r)
					if err != nil || !bytes.Equal(got, pt) {
						t.Fatalf("format %d, %d bytes, chunk %d, %s reader: %v", f.format, n, chunk, name, err)
					}
				}
			}
		}
	}
}

// Reads of every size against the segments: the plaintext comes back
// whole (straight into p when a segment fits, else through the reader's
// buffer), no Read returns more than len(p) or writes past it, and a
// failing segment leaves none of its plaintext in p.
func TestStreamReadsIntoAnyBuffer(t *testing.T) {
	for _, f := range []struct {
		format StreamFormat
		seg    int
	}{{StreamAES256GCMHKDF4KB, 4096}, {StreamAES256GCMHKDF1MB, 1 << 20}} {
		kc := streamKC(t, f.format)
		first, full := f.seg-56, f.seg-16
		n := first + 3*full + 10
		pt := pattern(n)
		ct := encryptStream(t, kc, nil, pt, 1<<20)
		for _, size := range []int{100, first, full, f.seg, 2*f.seg + 3, n + 1} {
			for name, src := range map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(ct) },
				"data+EOF": func() io.Reader { return iotest.DataErrReader(bytes.NewReader(ct)) },
			} {
				r, err := kc.NewDecryptingReader(src(), nil)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, size, size+64)
				var got []byte
				for {
					k, err := r.Read(buf)
					if k > size || !bytes.Equal(buf[size:size+64], make([]byte, 64)) {
						t.Fatalf("format %d, buffer %d, %s: Read gave %d or wrote past len(p)", f.format, size, name, k)
					}
					got = append(got, buf[:k]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("format %d, buffer %d, %s: %v", f.format, size, name, err)
					}
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("format %d, buffer %d, %s: other plaintext", f.format, size, name)
				}
			}
		}
		// Segment 2 tampered, read into a buffer that holds it whole.
		bad := append([]byte{}, ct...)
		bad[2*f.seg+7] ^= 1
		r, err := kc.NewDecryptingReader(bytes.NewReader(bad), nil)
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for {
			buf := bytes.Repeat([]byte{0xEE}, 2*f.seg)
			k, err := r.Read(buf)
			total += k
			if err != nil {
				// (A call that fails returns nothing, the segments before
				// the failing one in the same piece of input included.)
				if !errors.Is(err, ErrAuthentication) || total > first+full {
					t.Fatalf("format %d: %d bytes, then %v", f.format, total, err)
				}
				for _, b := range buf {
					if b != 0 && b != 0xEE {
						t.Fatalf("format %d: plaintext of the failing segment in p", f.format)
					}
				}
				break
			}
		}
	}
}

// docs/FORMAT.md §13: fewer bytes than the 40-byte header are ErrFormat; a
// header with less than a tag after it, or a last segment shorter than its
// tag, is a stream cut short: ErrAuthentication, sequentially and by
// ReadAt.
func TestStreamShortStreams(t *testing.T) {
	kc := streamKC(t, StreamAES256GCMHKDF4KB)
	empty := encryptStream(t, kc, nil, nil, 1)
	ct := encryptStream(t, kc, nil, pattern(10_000), 1000)
	if len(empty) != 56 || len(ct) != 2*4096+1896 {
		t.Fatalf("lengths %d, %d", len(empty), len(ct))
	}
	cases := []struct {
		data []byte
		want error
	}{
		{empty[:0], ErrFormat}, {empty[:1], ErrFormat}, {empty[:39], ErrFormat},
		{empty[:40], ErrAuthentication}, {empty[:41], ErrAuthentication}, {empty[:55], ErrAuthentication},
		{ct[:2*4096+1], ErrAuthentication}, {ct[:2*4096+15], ErrAuthentication},
	}
	for _, c := range cases {
		if _, err := decryptStream(kc, nil, bytes.NewReader(c.data)); !errors.Is(err, c.want) {
			t.Errorf("%d bytes, sequentially: %v", len(c.data), err)
		}
		s, err := kc.NewDecryptingReaderAt(bytes.NewReader(c.data), int64(len(c.data)), nil)
		if err == nil {
			s.Close()
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%d bytes, random access: %v", len(c.data), err)
		}
	}
}

func TestStreamIoCopy10MB(t *testing.T) {
	kc := streamKC(t, StreamAES256GCMHKDF1MB)
	const size = 10 << 20
	pt := make([]byte, size)
	if _, err := rand.Read(pt); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		w, err := kc.NewEncryptingWriter(pw, []byte("backup"))
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		if _, err := io.Copy(w, bytes.NewReader(pt)); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(w.Close())
	}()
	r, err := kc.NewDecryptingReader(pr, []byte("backup"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil || n != size {
		t.Fatalf("io.Copy: %d, %v", n, err)
	}
	if want := sha256.Sum256(pt); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the plaintext differs")
	}
}

func TestStreamTinkVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(vectorDir, "stream.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		KeysetJSON string `json:"keyset_json"`
		Decrypt    []struct {
			Comment       string `json:"comment"`
			PlaintextLen  int    `json:"plaintext_len"`
			AadHex        string `json:"aad_hex"`
			CiphertextHex string `json:"ciphertext_hex"`
		} `json:"decrypt"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	kc, err := ImportTinkCleartext([]byte(doc.KeysetJSON))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	if len(doc.Decrypt) < 5 {
		t.Fatal("too few vectors")
	}
	for _, v := range doc.Decrypt {
		aad, _ := hex.DecodeString(v.AadHex)
		ct, err := hex.DecodeString(v.CiphertextHex)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []io.Reader{bytes.NewReader(ct), iotest.OneByteReader(bytes.NewReader(ct))} {
			got, err := decryptStream(kc, aad, r)
			if err != nil || !bytes.Equal(got, pattern(v.PlaintextLen)) {
				t.Fatalf("%s: %v", v.Comment, err)
			}
		}
		if _, err := decryptStream(kc, aad, bytes.NewReader(ct[:len(ct)-1])); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("%s, truncated: %v", v.Comment, err)
		}
	}
}

func TestStreamErrors(t *testing.T) {
	kc := streamKC(t, StreamAES256GCMHKDF4KB)
	other := streamKC(t, StreamAES256GCMHKDF4KB)
	pt := pattern(3 * 4096)
	ct := encryptStream(t, kc, []byte("aad"), pt, 1000)
	dec := func(kc *Keychain, ct, aad []byte) error {
		_, err := decryptStream(kc, aad, bytes.NewReader(ct))
		return err
	}
	for name, err := range map[string]error{
		"wrong aad":      dec(kc, ct, []byte("aaD")),
		"wrong key":      dec(other, ct, []byte("aad")),
		"cut at 4096":    dec(kc, ct[:4096], []byte("aad")),
		"cut at 8192":    dec(kc, ct[:8192], []byte("aad")),
		"cut at 12288":   dec(kc, ct[:12288], []byte("aad")),
		"one byte short": dec(kc, ct[:len(ct)-1], []byte("aad")),
		"tampered":       dec(kc, append(append([]byte{}, ct[:5000]...), append([]byte{ct[5000] ^ 1}, ct[5001:]...)...), []byte("aad")),
		"swapped": dec(kc, bytes.Join([][]byte{ct[:4096], ct[8192:12288], ct[4096:8192], ct[12288:]}, nil),
			[]byte("aad")),
	} {
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := dec(kc, ct[:30], []byte("aad")); !errors.Is(err, ErrFormat) {
		t.Errorf("shorter than a header: %v", err)
	}

	// No plaintext of a failing segment; the error stays.
	bad := append([]byte{}, ct...)
	bad[5000] ^= 1
	r, err := kc.NewDecryptingReader(bytes.NewReader(bad), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if !errors.Is(err, ErrAuthentication) || len(got) > 4040 || !bytes.Equal(got, pt[:len(got)]) {
		t.Fatalf("tampered: %d bytes, %v", len(got), err)
	}
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("read after the error: %v", err)
	}

	// An error of the source is returned, and a later Read goes on.
	flaky := &flakyReader{r: bytes.NewReader(ct), failAt: 5000}
	r, err = kc.NewDecryptingReader(flaky, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 999)
	sawErr := false
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err == errFlaky {
			sawErr = true
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !sawErr || !bytes.Equal(out, pt) {
		t.Fatalf("flaky source: saw error %v, %d bytes", sawErr, len(out))
	}

	// The writer: the destination's error ends the stream; Write after
	// Close is refused; Close twice is fine.
	w, err := kc.NewEncryptingWriter(failingWriter{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 5000)); !errors.Is(err, errFlaky) {
		t.Fatalf("failing writer: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, errFlaky) {
		t.Fatalf("after the writer failed: %v", err)
	}
	w, err = kc.NewEncryptingWriter(io.Discard, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Write after Close: %v", err)
	}

	// Keys and keychains.
	for _, f := range []StreamFormat{0, 3, 0xFFFFFFFF} {
		if _, err := kc.RotateStreaming(f); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("format %d: %v", f, err)
		}
		if _, err := kc.AddStreamKey(f); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("format %d: %v", f, err)
		}
	}
	plain := newKC(t, nil)
	if _, err := plain.NewEncryptingWriter(io.Discard, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no stream key: %v", err)
	}
	if _, err := plain.NewDecryptingReader(bytes.NewReader(ct), nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("no stream key: %v", err)
	}
	if _, err := kc.NewEncryptingWriter(nil, nil); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("nil writer: %v", err)
	}
	if _, err := kc.NewDecryptingReader(nil, nil); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("nil reader: %v", err)
	}

	// Streams made before the keychain closed go on; no new one starts.
	var sink bytes.Buffer
	w, err = kc.NewEncryptingWriter(&sink, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err = kc.NewDecryptingReader(bytes.NewReader(ct), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	kc.Close()
	if _, err := kc.RotateStreaming(StreamAES256GCMHKDF4KB); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed: %v", err)
	}
	if _, err := kc.NewEncryptingWriter(io.Discard, nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed: %v", err)
	}
	if _, err := kc.NewDecryptingReader(bytes.NewReader(ct), nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("closed: %v", err)
	}
	if _, err := w.Write(pt); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(r); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("reader after close: %v", err)
	}
}

func TestStreamRotationAndMixedFormats(t *testing.T) {
	kc := streamKC(t, StreamAES256GCMHKDF4KB)
	pt := pattern(20000)
	old := encryptStream(t, kc, nil, pt, 3000)
	added, err := kc.AddStreamKey(StreamAES256GCMHKDF1MB)
	if err != nil || added.Primary || added.Purpose != PurposeStream {
		t.Fatalf("AddStreamKey: %+v, %v", added, err)
	}
	if _, err := kc.Promote(added.KeyID); err != nil {
		t.Fatal(err)
	}
	newer := encryptStream(t, kc, nil, pt, 3000)
	if len(newer) != len(pt)+56 {
		t.Fatalf("a 1 MB segment: %d", len(newer))
	}
	for _, ct := range [][]byte{old, newer} {
		for _, r := range []io.Reader{bytes.NewReader(ct), iotest.HalfReader(bytes.NewReader(ct))} {
			if got, err := decryptStream(kc, nil, r); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("mixed formats: %v", err)
			}
		}
	}
}

// Many streams at once on one keychain, closed while they run (-race).
func TestStreamConcurrent(t *testing.T) {
	kc := streamKC(t, StreamAES256GCMHKDF4KB)
	pt := pattern(50000)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				var ct bytes.Buffer
				w, err := kc.NewEncryptingWriter(&ct, []byte{byte(i)})
				if err != nil {
					if !errors.Is(err, ErrUnavailable) {
						t.Error(err)
					}
					return
				}
				if _, err := w.Write(pt); err != nil {
					t.Error(err)
					return
				}
				if err := w.Close(); err != nil {
					t.Error(err)
					return
				}
				got, err := decryptStream(kc, []byte{byte(i)}, &ct)
				if errors.Is(err, ErrUnavailable) {
					return
				}
				if err != nil || !bytes.Equal(got, pt) {
					t.Error("concurrent round trip:", err)
					return
				}
			}
		}()
	}
	// One writer shared by goroutines: never a crash.
	var sink bytes.Buffer
	var sinkMu sync.Mutex
	w, err := kc.NewEncryptingWriter(writerFunc(func(p []byte) (int, error) {
		sinkMu.Lock()
		defer sinkMu.Unlock()
		return sink.Write(p)
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				w.Write(pt[:1000])
			}
			w.Close()
		}()
	}
	kc.Close() // while the streams run
	wg.Wait()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

var errFlaky = errors.New("flaky")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errFlaky }

// flakyReader fails once, at the first Read past failAt bytes.
type flakyReader struct {
	r      io.Reader
	read   int
	failAt int
	failed bool
}

func (f *flakyReader) Read(p []byte) (int, error) {
	if !f.failed && f.read >= f.failAt {
		f.failed = true
		return 0, errFlaky
	}
	n, err := f.r.Read(p)
	f.read += n
	return n, err
}

func TestStreamReaderAt(t *testing.T) {
	kc := streamKC(t, StreamAES256GCMHKDF4KB)
	n := 4040 + 3*4080 + 100
	pt := pattern(n)
	ct := encryptStream(t, kc, []byte("aad"), pt, 5000)
	s, err := kc.NewDecryptingReaderAt(bytes.NewReader(ct), int64(len(ct)), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Size() != int64(n) {
		t.Fatalf("Size %d", s.Size())
	}
	if got, err := io.ReadAll(io.NewSectionReader(s, 0, s.Size())); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("whole: %v", err)
	}
	for _, off := range []int{0, 1, 4039, 4040, 4040 + 4080 - 3, n - 1, n, n + 7} {
		for _, l := range []int{1, 17, 4089, 3 * 4096} {
			// Spare capacity beyond len(p) is never written.
			buf := make([]byte, l, l+64)
			got, err := s.ReadAt(buf, int64(off))
			want := max(0, min(l, n-off))
			if got != want || !bytes.Equal(buf[:got], pt[min(off, n):min(off, n)+want]) ||
				(want < l) != (err == io.EOF) || (want == l && err != nil) {
				t.Fatalf("ReadAt(%d, %d): %d, %v", l, off, got, err)
			}
			if spare := buf[l : l+64]; !bytes.Equal(spare, make([]byte, 64)) {
				t.Fatal("ReadAt wrote past len(p)")
			}
		}
	}
	if _, err := s.ReadAt(make([]byte, 1), -1); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("negative offset: %v", err)
	}

	// Concurrent reads (-race).
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 999)
			for off := i * 100; off < n; off += 3001 {
				got, err := s.ReadAt(buf, int64(off))
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:got], pt[off:off+got]) {
					t.Errorf("concurrent ReadAt at %d: %v", off, err)
					return
				}
			}
		}()
	}
	wg.Wait()

	// A tampered segment fails the reads that touch it, and only those.
	bad := append([]byte{}, ct...)
	bad[2*4096+7] ^= 1
	sb, err := kc.NewDecryptingReaderAt(bytes.NewReader(bad), int64(len(bad)), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sb.ReadAt(make([]byte, 10), 4040+4080+5); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("tampered segment: %v", err)
	}
	if got, err := sb.ReadAt(make([]byte, 10), 5); err != nil || got != 10 {
		t.Fatalf("an intact segment: %v", err)
	}
	sb.Close()
	if _, err := sb.ReadAt(make([]byte, 10), 5); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v", err)
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}

	// Opening: wrong aad, a cut stream, a failing source, bad arguments.
	if _, err := kc.NewDecryptingReaderAt(bytes.NewReader(ct), int64(len(ct)), []byte("aaD")); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong aad: %v", err)
	}
	if _, err := kc.NewDecryptingReaderAt(bytes.NewReader(ct), 30, []byte("aad")); !errors.Is(err, ErrFormat) {
		t.Fatalf("too short: %v", err)
	}
	if _, err := kc.NewDecryptingReaderAt(failingReaderAt{}, int64(len(ct)), []byte("aad")); !errors.Is(err, ErrIo) {
		t.Fatalf("failing source: %v", err)
	}
	if _, err := kc.NewDecryptingReaderAt(nil, 10, nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("nil source: %v", err)
	}
	cut, err := kc.NewDecryptingReaderAt(bytes.NewReader(ct[:3*4096]), 3*4096, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(io.NewSectionReader(cut, 0, cut.Size())); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("cut at a segment boundary: %v", err)
	}
	cut.Close()
	kc.Close()
	if _, err := kc.NewDecryptingReaderAt(bytes.NewReader(ct), int64(len(ct)), []byte("aad")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("closed keychain: %v", err)
	}
	// Made before the close, it goes on.
	if got, err := s.ReadAt(make([]byte, 10), 0); err != nil || got != 10 {
		t.Fatalf("after the keychain closed: %v", err)
	}
}

type failingReaderAt struct{}

func (failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, errFlaky }
