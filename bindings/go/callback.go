package keystrata

// This file holds the //export for event callbacks; a file with //export
// may only declare, not define, C functions in its preamble.

/*
#include "keystrata.h"
*/
import "C"

import "runtime/cgo"

//export keystrataGoEvent
func keystrataGoEvent(ev *C.ks_event, handle C.uintptr_t) {
	fn, ok := lookupHandle(cgo.Handle(handle))
	if !ok {
		return // unsubscribed while the event was in flight
	}
	e := eventFromC(ev) // copy: *ev is valid only during this call
	defer func() { _ = recover() }()
	fn(e)
}
