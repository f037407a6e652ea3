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
