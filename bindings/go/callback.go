package keystrata

// This file holds the //export for event callbacks; a file with //export
// may only declare, not define, C functions in its preamble.

/*
#include "keystrata.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// keystrataGoEvent is the ks_event_callback of every subscription
// (events.go); userData points to C memory holding a cgo.Handle.
//
//export keystrataGoEvent
func keystrataGoEvent(ev *C.ks_event, userData unsafe.Pointer) {
	fn, ok := lookupHandle(cgo.Handle(*(*C.uintptr_t)(userData)))
	if !ok {
		return // unsubscribed while the event was in flight
	}
	e := eventFromC(ev) // copy: *ev is valid only during this call
	defer func() { _ = recover() }()
	fn(e)
}

// The callbacks of a custom root (custom_root.go): userdata points to C
// memory holding a cgo.Handle of the CustomKeyManager. They only turn C
// arguments into slices; custom_root.go does the rest.

//export keystrataGoWrapKey
func keystrataGoWrapKey(userdata unsafe.Pointer, key *C.uint8_t, keyLen C.size_t, context *C.uint8_t,
	contextLen C.size_t, out *C.uint8_t, capacity C.size_t, outLen *C.size_t, keyID *C.char, keyIDCap C.size_t,
	keyVersion *C.uint32_t, cerr **C.ks_error) C.int {
	return customWrapKey(userdata, cSlice(key, keyLen), cSlice(context, contextLen), cSlice(out, capacity), outLen,
		cSlice((*C.uint8_t)(unsafe.Pointer(keyID)), keyIDCap), keyVersion, cerr)
}

//export keystrataGoUnwrapKey
func keystrataGoUnwrapKey(userdata unsafe.Pointer, env *C.ks_envelope, context *C.uint8_t, contextLen C.size_t,
	out *C.uint8_t, capacity C.size_t, outLen *C.size_t, cerr **C.ks_error) C.int {
	return customUnwrapKey(userdata, env, cSlice(context, contextLen), cSlice(out, capacity), outLen, cerr)
}

//export keystrataGoActiveKeyVersion
func keystrataGoActiveKeyVersion(userdata unsafe.Pointer, out *C.uint32_t, cerr **C.ks_error) C.int {
	return customActiveKeyVersion(userdata, out, cerr)
}

//export keystrataGoHealthCheck
func keystrataGoHealthCheck(userdata unsafe.Pointer, cerr **C.ks_error) C.int {
	return customHealthCheck(userdata, cerr)
}

//export keystrataGoFreeUserdata
func keystrataGoFreeUserdata(userdata unsafe.Pointer) {
	customFreeUserdata(userdata)
}
