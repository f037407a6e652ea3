package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"strconv"
	"strings"
)

// Error is the error type of every keystrata call. Code is the stable
// number of the error kind, the same as the C library's ks_status (1-12 for
// keystrata's kinds, 100 and up for C-level problems); Msg is the library's
// human-readable message, which never contains key material or plaintext.
//
// Compare kinds with errors.Is and the sentinels (ErrAuthentication, ...):
//
//	if errors.Is(err, keystrata.ErrAuthentication) { ... }
//
// and read the details with errors.As:
//
//	var e *keystrata.Error
//	if errors.As(err, &e) { log.Print(e.Code, e.Msg) }
type Error struct {
	Code int    // the error kind's stable number (a ks_status value)
	Msg  string // what happened; may be empty
}

// Sentinels, one per error kind. errors.Is(err, ErrX) reports whether err is
// a keystrata error of kind X, whatever its message.
var (
	// ErrInvalidInput: an argument is malformed (wrong length, out of range, empty).
	ErrInvalidInput = &Error{Code: C.KS_ERR_INVALID_INPUT}
	// ErrAuthentication: a ciphertext, envelope or saved keychain failed
	// authentication (tampered, truncated, wrong aad/context, wrong root). It says nothing more.
	ErrAuthentication = &Error{Code: C.KS_ERR_AUTHENTICATION}
	// ErrUnknownKey: no key in the keychain has the key ID the input names.
	ErrUnknownKey = &Error{Code: C.KS_ERR_UNKNOWN_KEY}
	// ErrKeyDisabled: the key exists but is disabled.
	ErrKeyDisabled = &Error{Code: C.KS_ERR_KEY_DISABLED}
	// ErrKeyDestroyed: the key exists but its material was destroyed.
	ErrKeyDestroyed = &Error{Code: C.KS_ERR_KEY_DESTROYED}
	// ErrPolicy: refused by the keychain's rules or rotation policy.
	ErrPolicy = &Error{Code: C.KS_ERR_POLICY}
	// ErrUnsupported: well-formed input keystrata does not support.
	ErrUnsupported = &Error{Code: C.KS_ERR_UNSUPPORTED}
	// ErrBackend: a root backend reported a failure.
	ErrBackend = &Error{Code: C.KS_ERR_BACKEND}
	// ErrUnavailable: the handle cannot serve calls (closed), or a backend is unreachable.
	ErrUnavailable = &Error{Code: C.KS_ERR_UNAVAILABLE}
	// ErrFormat: bytes that should be in a keystrata or Tink format are not.
	ErrFormat = &Error{Code: C.KS_ERR_FORMAT}
	// ErrIo: reading or writing a file failed.
	ErrIo = &Error{Code: C.KS_ERR_IO}
	// ErrInternal: a bug in keystrata. Please report it.
	ErrInternal = &Error{Code: C.KS_ERR_INTERNAL}
	// ErrNullArgument: a required pointer was NULL at the C boundary (a bug in this package).
	ErrNullArgument = &Error{Code: C.KS_ERR_NULL_ARGUMENT}
	// ErrBufferTooSmall: a C output array was too small (handled inside this package).
	ErrBufferTooSmall = &Error{Code: C.KS_ERR_BUFFER_TOO_SMALL}
)

// Kind is the short name of the error's kind, read from the C library's
// status names (KS_ERR_UNKNOWN_KEY is "unknown key"), e.g.
// "authentication"; "error N" for a number the library does not know.
func (e *Error) Kind() string {
	name := C.GoString(C.ks_status_name(C.int(e.Code)))
	if !strings.HasPrefix(name, "KS_ERR_") || name == "KS_ERR_UNKNOWN_STATUS" {
		return "error " + strconv.Itoa(e.Code)
	}
	return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "KS_ERR_"), "_", " "))
}

// Error returns "keystrata: " and the message, or the kind's name when the
// message is empty.
func (e *Error) Error() string {
	if e.Msg == "" {
		return "keystrata: " + e.Kind()
	}
	return "keystrata: " + e.Msg
}

// Is reports whether target is a *Error with the same Code, so that
// errors.Is(err, ErrUnknownKey) matches any unknown-key error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && e != nil && t.Code == e.Code
}

func newError(code int, msg string) error { return &Error{Code: code, Msg: msg} }

func errClosed(what string) error { return newError(C.KS_ERR_UNAVAILABLE, what+" is closed") }
