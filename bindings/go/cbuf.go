package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"runtime"
	"sync"
	"unsafe"
)

// How this package calls the C library: every ks_ function is called
// directly, with &cerr as its trailing ks_error ** argument. An error
// object belongs to the call, not to an OS thread, so it does not matter
// that a goroutine may run on another thread by the time Go reads it; cErr
// copies it into an *Error and frees it.

// cbytes passes b to C for the duration of one call: (nil, 0) when empty.
func cbytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

// cstringBytes passes the bytes of s (no NUL added) to C as a
// (pointer, length) input for the duration of one call: (nil, 0) when
// empty. C only reads them, and Go strings are immutable.
func cstringBytes(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// emptyOut is where a caller-sized call with no room points: a non-NULL
// out with capacity 0 (NULL would ask for the length only). C never writes
// to it.
var emptyOut byte

// cout passes b's spare capacity (b[len(b):cap(b)]) to a caller-sized call
// for its duration: a pointer that is never NULL, and the capacity.
func cout(b []byte) (*C.uint8_t, C.size_t) {
	spare := b[len(b):cap(b)]
	if len(spare) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&emptyOut)), 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(spare))), C.size_t(len(spare))
}

// takeBuffer copies a library-allocated buffer into Go memory and frees
// (wipes) the C buffer at once. An empty result is a non-nil empty slice.
func takeBuffer(out *C.ks_buffer) []byte {
	n := int(out.len)
	b := make([]byte, n)
	if n > 0 {
		copy(b, unsafe.Slice((*byte)(unsafe.Pointer(out.data)), n))
	}
	C.ks_buffer_free(out)
	return b
}

// cErr turns a call's status and error object into an error (nil for
// KS_OK), copying the object's message and freeing the object.
func cErr(st C.enum_ks_status, e *C.ks_error) error {
	msg := ""
	if e != nil {
		msg = C.GoString(C.ks_error_message(e))
		C.ks_error_free(e)
	}
	if st == C.KS_OK {
		return nil
	}
	return newError(int(st), msg)
}

// callOut holds the out-parameters of one call in memory a pool reuses:
// the address of a local passed to C would escape to the heap on every
// call, and the caller-sized calls are meant to allocate nothing.
type callOut struct {
	n      C.size_t
	err    *C.ks_error
	env    C.ks_envelope
	signer C.ks_signature_info // the key that signed (ks_keychain_sign)
	info   C.ks_key_info       // the key that verified, or a key looked up
}

var callOuts = sync.Pool{New: func() any { return new(callOut) }}

// error is cErr for the call that just wrote co, leaving co clean for the
// next one.
func (co *callOut) error(st C.enum_ks_status) error {
	e := co.err
	co.err = nil
	return cErr(st, e)
}

// cStrings holds NUL-terminated copies of Go strings in Go memory, pinned
// so that C may read them (and an array of pointers to them) during a call.
type cStrings struct {
	pin  runtime.Pinner
	bufs [][]byte
}

// add copies s and returns a C pointer to the copy ("" gives an empty
// string, not NULL).
func (c *cStrings) add(s string) *C.char {
	b := make([]byte, len(s)+1)
	copy(b, s)
	c.pin.Pin(&b[0])
	c.bufs = append(c.bufs, b)
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// opt is add, but NULL for "".
func (c *cStrings) opt(s string) *C.char {
	if s == "" {
		return nil
	}
	return c.add(s)
}

// array copies every string of ss and returns a pointer to an array of
// their C pointers (nil when ss is empty), valid until done.
func (c *cStrings) array(ss []string) **C.char {
	if len(ss) == 0 {
		return nil
	}
	arr := make([]*C.char, len(ss))
	for i, s := range ss {
		arr[i] = c.add(s)
	}
	return &arr[0]
}

// done wipes the copies (some hold secrets: identities, PINs) and unpins
// them. Call it once the C call returned.
func (c *cStrings) done() {
	for _, b := range c.bufs {
		clear(b)
	}
	c.pin.Unpin()
}

// Version is the version of the linked keystrata C library, e.g. "0.1.0".
func Version() string { return C.GoString(C.ks_version()) }
