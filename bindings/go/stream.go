package keystrata

// This file holds the //export of the random-access callback; a file with
// //export may only declare, not define, C functions in its preamble.

/*
#include <stdlib.h>
#include "keystrata.h"
extern int keystrataGoStreamReadAt(void *user_data, uint64_t offset, uint8_t *buf, size_t len, size_t *out_n);
*/
import "C"

import (
	"errors"
	"io"
	"math"
	"runtime"
	"runtime/cgo"
	"strconv"
	"sync"
	"unsafe"
)

// StreamFormat is a streaming format: Tink's AES-GCM-HKDF streaming AEAD
// with one ciphertext segment size, byte for byte, so Tink reads keystrata's
// streams and keystrata reads Tink's (docs/STREAMING.md).
type StreamFormat uint32

const (
	// StreamAES256GCMHKDF4KB is Tink's AES256_GCM_HKDF_4KB: 4096-byte
	// ciphertext segments.
	StreamAES256GCMHKDF4KB StreamFormat = C.KS_STREAM_AES256_GCM_HKDF_4KB
	// StreamAES256GCMHKDF1MB is Tink's AES256_GCM_HKDF_1MB: 1 MiB ciphertext
	// segments, the better choice for anything but small records.
	StreamAES256GCMHKDF1MB StreamFormat = C.KS_STREAM_AES256_GCM_HKDF_1MB
)

// String is the format's name, the same in every language
// ("aes256-gcm-hkdf-4kb", "aes256-gcm-hkdf-1mb"), read from the C library
// (ks_stream_format_name), or "StreamFormat(N)".
func (f StreamFormat) String() string {
	if f <= math.MaxInt32 {
		if n := C.ks_stream_format_name(C.int(f)); n != nil {
			return C.GoString(n)
		}
	}
	return "StreamFormat(" + strconv.FormatUint(uint64(f), 10) + ")"
}

// RotateStreaming makes a new streaming key of format the streaming
// primary, which NewEncryptingWriter uses from now on. Older streaming keys
// stay enabled, so their streams keep decrypting. A bound keychain writes
// its store first. Errors: ErrInvalidInput (unknown format), ErrUnavailable
// (closed).
func (kc *Keychain) RotateStreaming(format StreamFormat) (KeyInfo, error) {
	return kc.streamKey(true, format)
}

// AddStreamKey adds an enabled streaming key of format that is not primary:
// the first phase of a two-phase rotation (roll the keychain out to every
// reader, then Promote it). Errors: as RotateStreaming.
func (kc *Keychain) AddStreamKey(format StreamFormat) (KeyInfo, error) {
	return kc.streamKey(false, format)
}

func (kc *Keychain) streamKey(primary bool, format StreamFormat) (KeyInfo, error) {
	p, err := kc.acquire()
	if err != nil {
		return KeyInfo{}, err
	}
	defer kc.release()
	var info C.ks_key_info
	var cerr *C.ks_error
	var st C.enum_ks_status
	if primary {
		st = C.ks_keychain_rotate_streaming(p, C.uint32_t(format), &info, &cerr)
	} else {
		st = C.ks_keychain_add_stream_key(p, C.uint32_t(format), &info, &cerr)
	}
	if err := cErr(st, cerr); err != nil {
		return KeyInfo{}, err
	}
	return keyInfoFromC(&info), nil
}

// streamChunk is how much plaintext or ciphertext one C call is given, so
// that memory stays O(segment) whatever a Write or the source hands over.
const streamChunk = 64 << 10

// encryptingWriter is the io.WriteCloser of NewEncryptingWriter.
type encryptingWriter struct {
	mu  sync.Mutex
	ptr *C.ks_stream_encryptor
	w   io.Writer
	buf []byte // ciphertext of one call, before it goes to w
	err error  // once set, every call returns it
}

// NewEncryptingWriter returns a writer that encrypts what is written to it
// into w as one stream under the keychain's streaming primary, bound to
// aad (the same aad is needed to decrypt). Close writes the last segment:
// without it the stream does not decrypt (it reads as truncated). Close
// does not close w. Memory stays O(segment) for any size.
//
// The writer holds its own segment key: it keeps working after the
// keychain is closed. It is safe for concurrent use, but a stream is one
// sequence of bytes: write it from one goroutine. After an error (from w,
// or the stream's) every call returns it; Write after Close returns an
// error wrapping ErrUnavailable. Errors of the constructor: ErrUnknownKey
// (no streaming key: RotateStreaming first), ErrUnavailable (closed).
func (kc *Keychain) NewEncryptingWriter(w io.Writer, aad []byte) (io.WriteCloser, error) {
	if w == nil {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "the writer is nil")
	}
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	ap, al := cbytes(aad)
	var out *C.ks_stream_encryptor
	var cerr *C.ks_error
	st := C.ks_stream_encryptor_new(p, ap, al, &out, &cerr)
	runtime.KeepAlive(aad)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	ew := &encryptingWriter{ptr: out, w: w}
	runtime.SetFinalizer(ew, (*encryptingWriter).free)
	return ew, nil
}

func (ew *encryptingWriter) free() {
	if ew.ptr != nil {
		C.ks_stream_encryptor_free(ew.ptr)
		ew.ptr = nil
	}
}

// fail records err as the writer's final state and releases the C handle.
func (ew *encryptingWriter) fail(err error) error {
	ew.err = err
	ew.free()
	runtime.SetFinalizer(ew, nil)
	return err
}

// call runs one caller-sized C call into ew.buf, growing it once if the
// call says so (a buffer too small consumes nothing), and returns the
// output.
func (ew *encryptingWriter) call(f func(out *C.uint8_t, cap C.size_t, n *C.size_t, e **C.ks_error) C.enum_ks_status) ([]byte, error) {
	for {
		var n C.size_t
		var cerr *C.ks_error
		op, oc := cout(ew.buf[:0])
		st := f(op, oc, &n, &cerr)
		runtime.KeepAlive(ew)
		if st == C.KS_ERR_BUFFER_TOO_SMALL && int(n) > cap(ew.buf) {
			cErr(st, cerr)
			ew.buf = make([]byte, 0, int(n))
			continue
		}
		if err := cErr(st, cerr); err != nil {
			return nil, err
		}
		return ew.buf[:int(n)], nil
	}
}

// Write encrypts p and writes the ciphertext of every segment it completes
// to w. It returns len(p) or an error.
func (ew *encryptingWriter) Write(p []byte) (int, error) {
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if ew.err != nil {
		return 0, ew.err
	}
	for off := 0; off < len(p); {
		chunk := p[off:min(len(p), off+streamChunk)]
		ct, err := ew.call(func(out *C.uint8_t, cap C.size_t, n *C.size_t, e **C.ks_error) C.enum_ks_status {
			ip, il := cbytes(chunk)
			st := C.ks_stream_encrypt_update(ew.ptr, ip, il, out, cap, n, e)
			runtime.KeepAlive(chunk)
			return st
		})
		if err != nil {
			return off, ew.fail(err)
		}
		if len(ct) > 0 {
			if _, err := ew.w.Write(ct); err != nil {
				return off, ew.fail(err)
			}
		}
		off += len(chunk)
	}
	return len(p), nil
}

// Close writes the last segment to w and releases the stream. Calling it
// again returns nil (or the error that ended the stream).
func (ew *encryptingWriter) Close() error {
	ew.mu.Lock()
	defer ew.mu.Unlock()
	if ew.err != nil {
		if errors.Is(ew.err, errWriterClosed) {
			return nil
		}
		return ew.err
	}
	ct, err := ew.call(func(out *C.uint8_t, cap C.size_t, n *C.size_t, e **C.ks_error) C.enum_ks_status {
		return C.ks_stream_encrypt_finish(ew.ptr, out, cap, n, e)
	})
	if err != nil {
		return ew.fail(err)
	}
	if _, err := ew.w.Write(ct); err != nil {
		return ew.fail(err)
	}
	ew.fail(errWriterClosed)
	return nil
}

// errWriterClosed is what Write returns after Close.
var errWriterClosed = errClosed("stream writer")

// decryptingReader is the io.Reader of NewDecryptingReader.
type decryptingReader struct {
	mu  sync.Mutex
	ptr *C.ks_stream_decryptor
	r   io.Reader
	in  []byte // ciphertext read from r
	out []byte // plaintext decrypted and not yet returned: out[pos:]
	pos int
	err error // once set (io.EOF at the end), returned after out is drained
}

// NewDecryptingReader returns a reader of the plaintext of the stream read
// from r, made under one of the keychain's enabled streaming keys with aad
// (each is tried on the first segment, primary first, as Tink does). It
// returns a segment's plaintext only after its tag checked. A stream cut
// short (even at a segment boundary), reordered or tampered segments, the
// wrong key or aad give an error wrapping ErrAuthentication; bytes that are
// not a stream, ErrFormat. After such an error every Read returns it. An
// error from r is returned as it is, and a later Read retries r. Memory
// stays O(segment). The reader holds its own keys: it keeps working after
// the keychain is closed. Errors of the constructor: ErrUnknownKey (no
// enabled streaming key), ErrUnavailable (closed).
func (kc *Keychain) NewDecryptingReader(r io.Reader, aad []byte) (io.Reader, error) {
	if r == nil {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "the reader is nil")
	}
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	ap, al := cbytes(aad)
	var out *C.ks_stream_decryptor
	var cerr *C.ks_error
	st := C.ks_stream_decryptor_new(p, ap, al, &out, &cerr)
	runtime.KeepAlive(aad)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	dr := &decryptingReader{ptr: out, r: r, in: make([]byte, streamChunk)}
	runtime.SetFinalizer(dr, (*decryptingReader).free)
	return dr, nil
}

func (dr *decryptingReader) free() {
	if dr.ptr != nil {
		C.ks_stream_decryptor_free(dr.ptr)
		dr.ptr = nil
	}
}

// end records the reader's final state (io.EOF or an error) and releases
// the C handle.
func (dr *decryptingReader) end(err error) {
	dr.err = err
	dr.free()
	runtime.SetFinalizer(dr, nil)
}

// decrypt runs one update with ct (or, when last, the finish) with the
// output at out, a caller-sized buffer (NULL to ask the length).
func (dr *decryptingReader) decrypt(ct []byte, last bool, op *C.uint8_t, oc C.size_t) (int, error) {
	var n C.size_t
	var cerr *C.ks_error
	var st C.enum_ks_status
	if last {
		st = C.ks_stream_decrypt_finish(dr.ptr, op, oc, &n, &cerr)
	} else {
		ip, il := cbytes(ct)
		st = C.ks_stream_decrypt_update(dr.ptr, ip, il, op, oc, &n, &cerr)
	}
	runtime.KeepAlive(ct)
	runtime.KeepAlive(dr)
	if err := cErr(st, cerr); err != nil {
		return 0, err
	}
	return int(n), nil
}

// push gives ct to the decryptor (last: the end of the stream instead).
// When no plaintext is waiting in out and the call's output (asked first)
// fits in p, it is decrypted straight into p and its length returned;
// otherwise it is appended to out, for later reads, and 0 is returned.
func (dr *decryptingReader) push(ct []byte, last bool, p []byte) (int, error) {
	if dr.pos == len(dr.out) && len(p) > 0 {
		want, err := dr.decrypt(ct, last, nil, 0)
		if err != nil {
			return 0, err
		}
		if want <= len(p) {
			op, oc := cout(p[:0:len(p)])
			n, err := dr.decrypt(ct, last, op, oc)
			runtime.KeepAlive(p)
			return n, err
		}
	}
	rest := copy(dr.out, dr.out[dr.pos:])
	clear(dr.out[rest:])
	dr.out, dr.pos = dr.out[:rest], 0
	need := rest + len(ct) + int(C.ks_stream_decryptor_buffered(dr.ptr))
	if cap(dr.out) < need {
		grown := make([]byte, rest, need)
		copy(grown, dr.out)
		clear(dr.out)
		dr.out = grown
	}
	op, oc := cout(dr.out)
	n, err := dr.decrypt(ct, last, op, oc)
	if err != nil {
		return 0, err
	}
	dr.out = dr.out[:rest+n]
	return 0, nil
}

// Read returns plaintext; io.EOF once the whole stream was read and
// checked. A segment's plaintext goes straight into p when it fits there.
func (dr *decryptingReader) Read(p []byte) (int, error) {
	dr.mu.Lock()
	defer dr.mu.Unlock()
	for {
		if dr.pos < len(dr.out) {
			n := copy(p, dr.out[dr.pos:])
			clear(dr.out[dr.pos : dr.pos+n])
			dr.pos += n
			return n, nil
		}
		if dr.err != nil {
			return 0, dr.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		n, rerr := dr.r.Read(dr.in)
		got := 0
		if n > 0 {
			k, err := dr.push(dr.in[:n], false, p)
			if err != nil {
				dr.end(err)
				return 0, err
			}
			got = k
		}
		switch {
		case rerr == io.EOF:
			k, err := dr.push(nil, true, p[got:])
			if err != nil {
				// The plaintext before it was checked: it comes first.
				dr.end(err)
				if got > 0 {
					return got, nil
				}
				return 0, err
			}
			got += k
			dr.end(io.EOF)
		case rerr != nil:
			if got > 0 {
				return got, nil // r is asked again later
			}
			if dr.pos < len(dr.out) {
				continue // return the plaintext first; r is asked again later
			}
			return 0, rerr
		}
		if got > 0 {
			return got, nil
		}
	}
}

// StreamReaderAt reads any range of a stored stream's plaintext, decrypting
// (and checking) only the segments a read touches: an io.ReaderAt over the
// plaintext, made by NewDecryptingReaderAt. It is safe for concurrent use
// (reads are serialized inside the library). Close releases it; a
// finalizer does otherwise.
type StreamReaderAt struct {
	mu   sync.RWMutex
	ptr  *C.ks_stream_seekable
	slot *C.uintptr_t // C memory holding the cgo.Handle of the source
	h    cgo.Handle
	size int64
}

// NewDecryptingReaderAt opens the stream of size bytes in r, made under one
// of the keychain's enabled streaming keys with aad, for random access. It
// reads the header and the first segment now to find the key. Errors:
// ErrAuthentication (no key opens it, wrong aad, tampered), ErrFormat (not
// a stream's header or length), ErrUnknownKey (no enabled streaming key),
// ErrIo (r failed), ErrUnavailable (closed).
func (kc *Keychain) NewDecryptingReaderAt(r io.ReaderAt, size int64, aad []byte) (*StreamReaderAt, error) {
	if r == nil || size < 0 {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "the source is nil or its size negative")
	}
	p, err := kc.acquire()
	if err != nil {
		return nil, err
	}
	defer kc.release()
	h := cgo.NewHandle(r)
	slot := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	*slot = C.uintptr_t(h)
	ap, al := cbytes(aad)
	var out *C.ks_stream_seekable
	var cerr *C.ks_error
	st := C.ks_stream_seekable_new(p, ap, al, C.ks_stream_read_at_fn(C.keystrataGoStreamReadAt),
		unsafe.Pointer(slot), C.uint64_t(size), &out, &cerr)
	runtime.KeepAlive(aad)
	if err := cErr(st, cerr); err != nil {
		h.Delete()
		C.free(unsafe.Pointer(slot))
		return nil, err
	}
	var n C.uint64_t
	cerr = nil
	if err := cErr(C.ks_stream_seekable_plaintext_len(out, &n, &cerr), cerr); err != nil {
		C.ks_stream_seekable_free(out)
		h.Delete()
		C.free(unsafe.Pointer(slot))
		return nil, err
	}
	s := &StreamReaderAt{ptr: out, slot: slot, h: h, size: int64(n)}
	runtime.SetFinalizer(s, (*StreamReaderAt).free)
	return s, nil
}

// Size is the plaintext's length.
func (s *StreamReaderAt) Size() int64 { return s.size }

// ReadAt reads len(p) bytes of plaintext at off, or fewer with io.EOF at
// the end. A segment that does not check gives an error wrapping
// ErrAuthentication and no bytes; other ranges stay readable. An error of
// the source is ErrIo. After Close it returns an error wrapping
// ErrUnavailable.
func (s *StreamReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, newError(C.KS_ERR_INVALID_INPUT, "negative offset")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return 0, errClosed("stream reader")
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n C.size_t
	var cerr *C.ks_error
	op, oc := cout(p[:0:len(p)])
	st := C.ks_stream_seekable_read_at(s.ptr, C.uint64_t(off), op, oc, &n, &cerr)
	runtime.KeepAlive(p)
	runtime.KeepAlive(s)
	if err := cErr(st, cerr); err != nil {
		return 0, err
	}
	if int(n) < len(p) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// Close releases the reader; the source is not read again. Idempotent.
func (s *StreamReaderAt) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	runtime.SetFinalizer(s, nil)
	s.free()
	return nil
}

func (s *StreamReaderAt) free() {
	if s.ptr == nil {
		return
	}
	C.ks_stream_seekable_free(s.ptr)
	s.ptr = nil
	s.h.Delete()
	C.free(unsafe.Pointer(s.slot))
	s.slot = nil
}

// keystrataGoStreamReadAt is the ks_stream_read_at_fn of every
// StreamReaderAt; userData points to C memory holding a cgo.Handle of the
// io.ReaderAt.
//
//export keystrataGoStreamReadAt
func keystrataGoStreamReadAt(userData unsafe.Pointer, offset C.uint64_t, buf *C.uint8_t, n C.size_t, outN *C.size_t) (rc C.int) {
	defer func() {
		if recover() != nil {
			rc = 1
		}
	}()
	r, ok := cgo.Handle(*(*C.uintptr_t)(userData)).Value().(io.ReaderAt)
	if !ok || uint64(offset) > math.MaxInt64 || uint64(n) > math.MaxInt {
		return 1
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))
	got, err := r.ReadAt(b, int64(offset))
	if got < 0 || got > len(b) || (err != nil && err != io.EOF) {
		return 1
	}
	*outN = C.size_t(got)
	return 0
}
