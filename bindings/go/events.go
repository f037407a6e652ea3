package keystrata

/*
#include "keystrata.h"

// The Go function (callback.go) the library calls for every event: its
// address is passed to ks_keychain_subscribe as the ks_event_callback.
extern void keystrataGoEvent(ks_event *event, void *user_data);
*/
import "C"

import (
	"fmt"
	"runtime/cgo"
	"strings"
	"sync"
	"unsafe"
)

// EventKind says what happened to a keychain.
type EventKind int

const (
	EventKeyCreated    EventKind = C.KS_EVENT_KEY_CREATED    // a key was created
	EventKeyRotated    EventKind = C.KS_EVENT_KEY_ROTATED    // a new primary was created (Event.Automatic: by the policy)
	EventKeyPromoted   EventKind = C.KS_EVENT_KEY_PROMOTED   // an existing key was made primary
	EventKeyDisabled   EventKind = C.KS_EVENT_KEY_DISABLED   // a key was disabled
	EventKeyEnabled    EventKind = C.KS_EVENT_KEY_ENABLED    // a key was enabled
	EventKeyDestroyed  EventKind = C.KS_EVENT_KEY_DESTROYED  // a key's material was destroyed
	EventKeyDerived    EventKind = C.KS_EVENT_KEY_DERIVED    // a key was derived
	EventDecryptFailed EventKind = C.KS_EVENT_DECRYPT_FAILED // an unseal, decrypt or unwrap failed (Event.Err says how)
	EventSigned        EventKind = C.KS_EVENT_SIGNED         // a signature was made (KeyID, Algorithm, Digest: the audit trail)
	EventVerifyFailed  EventKind = C.KS_EVENT_VERIFY_FAILED  // a signature did not verify (Event.Err says how)
)

// String is the kind's name in words ("key rotated"), read from the C
// library (ks_event_kind_name), or "EventKind(N)" for an unknown number.
func (k EventKind) String() string {
	if n := C.ks_event_kind_name(C.int(k)); n != nil {
		return strings.ReplaceAll(C.GoString(n), "_", " ")
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one lifecycle event. It carries identifiers only, never material.
type Event struct {
	Kind       EventKind
	KeyID      uint32    // the key concerned; 0 if none or unknown
	KeyVersion uint32    // that key's version; 0 if unknown
	Purpose    Purpose   // that key's purpose; PurposeNone if unknown
	Automatic  bool      // for EventKeyRotated: the rotation policy triggered it
	Err        error     // for EventDecryptFailed and EventVerifyFailed: the error returned to the caller (a *Error); else nil
	Algorithm  Algorithm // for EventSigned: the signing algorithm; else AlgorithmNone
	// Digest is, for EventSigned and EventVerifyFailed, the SHA-256 digest
	// (32 bytes) of the message signed or verified (for SignDigest and
	// VerifyDigest, the digest given): the audit trail names what was
	// signed without holding it. nil otherwise, and for a digest argument
	// that was not 32 bytes.
	Digest []byte
}

// Live subscription handles. The library may still be delivering an event
// to a subscriber on another thread when Unsubscribe returns, so the
// callback looks its handle up here instead of trusting it blindly.
var (
	liveMu      sync.RWMutex
	liveHandles = map[cgo.Handle]struct{}{}
)

func dropHandle(h cgo.Handle) {
	liveMu.Lock()
	delete(liveHandles, h)
	liveMu.Unlock()
	h.Delete()
}

func lookupHandle(h cgo.Handle) (func(Event), bool) {
	liveMu.RLock()
	defer liveMu.RUnlock()
	if _, ok := liveHandles[h]; !ok {
		return nil, false
	}
	fn, ok := h.Value().(func(Event))
	return fn, ok
}

// Subscribe registers fn for the keychain's lifecycle events and returns
// the subscription's ID (for Unsubscribe). fn runs synchronously on the
// goroutine whose call caused the event, with no keychain lock held (it may
// call the keychain), possibly on several goroutines at once: make it safe
// for concurrent use and quick. A panic in fn is recovered and dropped.
// The subscription ends with Unsubscribe or Close; until then it keeps fn
// (and what fn refers to) alive.
func (kc *Keychain) Subscribe(fn func(Event)) (uint64, error) {
	if fn == nil {
		return 0, newError(C.KS_ERR_INVALID_INPUT, "nil event callback")
	}
	p, err := kc.acquire()
	if err != nil {
		return 0, err
	}
	defer kc.release()
	h := cgo.NewHandle(fn)
	liveMu.Lock()
	liveHandles[h] = struct{}{}
	liveMu.Unlock()
	// user_data is a pointer the library may use from any thread until
	// ks_keychain_free, so it points to C memory holding the handle (a Go
	// pointer cannot be kept by C); kc.free releases it.
	slot := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	*slot = C.uintptr_t(h)
	var id C.uint64_t
	var cerr *C.ks_error
	st := C.ks_keychain_subscribe(p, C.ks_event_callback(C.keystrataGoEvent), unsafe.Pointer(slot), &id, &cerr)
	if err := cErr(st, cerr); err != nil {
		dropHandle(h)
		C.free(unsafe.Pointer(slot))
		return 0, err
	}
	kc.subsMu.Lock()
	if kc.subs == nil {
		kc.subs = map[uint64]cgo.Handle{}
	}
	kc.subs[uint64(id)] = h
	kc.slots = append(kc.slots, unsafe.Pointer(slot))
	kc.subsMu.Unlock()
	return uint64(id), nil
}

// Unsubscribe ends a subscription. Once it returns, fn is not called again.
// Errors: ErrInvalidInput if there is no subscription with that ID.
func (kc *Keychain) Unsubscribe(id uint64) error {
	p, err := kc.acquire()
	if err != nil {
		return err
	}
	defer kc.release()
	var cerr *C.ks_error
	if err := cErr(C.ks_keychain_unsubscribe(p, C.uint64_t(id), &cerr), cerr); err != nil {
		return err
	}
	kc.subsMu.Lock()
	h, ok := kc.subs[id]
	delete(kc.subs, id)
	kc.subsMu.Unlock()
	if ok {
		dropHandle(h)
	}
	return nil
}

func eventFromC(ev *C.ks_event) Event {
	e := Event{
		Kind:       EventKind(ev.kind),
		KeyID:      uint32(ev.key_id),
		KeyVersion: uint32(ev.key_version),
		Purpose:    Purpose(ev.purpose),
		Automatic:  bool(ev.automatic),
		Algorithm:  Algorithm(ev.algorithm),
	}
	if ev.has_digest {
		e.Digest = C.GoBytes(unsafe.Pointer(&ev.digest[0]), C.int(len(ev.digest)))
	}
	if ev.error != C.KS_OK {
		e.Err = newError(int(ev.error), "")
	}
	return e
}
