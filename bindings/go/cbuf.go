package keystrata

/*
#include "kgo.h"
*/
import "C"

import "unsafe"

// cbytes passes b to C for the duration of one call: (nil, 0) when empty.
func cbytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
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

// cErr turns a status and the message copied in the same C call into an
// error (nil for KS_OK), freeing the message.
func cErr(st C.ks_status, msg *C.char) error {
	m := ""
	if msg != nil {
		m = C.GoString(msg)
		C.free(unsafe.Pointer(msg))
	}
	if st == C.KS_OK {
		return nil
	}
	return newError(int(st), m)
}

// cStrings allocates a C array of C strings; free it with freeCStrings.
func cStrings(ss []string) **C.char {
	if len(ss) == 0 {
		return nil
	}
	arr := (**C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))
	s := unsafe.Slice(arr, len(ss))
	for i, v := range ss {
		s[i] = C.CString(v)
	}
	return arr
}

func freeCStrings(arr **C.char, n int) {
	if arr == nil {
		return
	}
	for _, p := range unsafe.Slice(arr, n) {
		C.free(unsafe.Pointer(p))
	}
	C.free(unsafe.Pointer(arr))
}

// Version is the version of the linked keystrata C library, e.g. "0.1.0".
func Version() string { return C.GoString(C.ks_version()) }
