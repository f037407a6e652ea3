package keystrata

import "strconv"

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
	ErrInvalidInput = &Error{Code: 1}
	// ErrAuthentication: a ciphertext, envelope or saved keychain failed
	// authentication (tampered, truncated, wrong aad/context, wrong root). It says nothing more.
	ErrAuthentication = &Error{Code: 2}
	// ErrUnknownKey: no key in the keychain has the key ID the input names.
	ErrUnknownKey = &Error{Code: 3}
	// ErrKeyDisabled: the key exists but is disabled.
	ErrKeyDisabled = &Error{Code: 4}
	// ErrKeyDestroyed: the key exists but its material was destroyed.
	ErrKeyDestroyed = &Error{Code: 5}
	// ErrPolicy: refused by the keychain's rules or rotation policy.
	ErrPolicy = &Error{Code: 6}
	// ErrUnsupported: well-formed input keystrata does not support.
	ErrUnsupported = &Error{Code: 7}
	// ErrBackend: a root backend reported a failure.
	ErrBackend = &Error{Code: 8}
	// ErrUnavailable: the handle cannot serve calls (closed), or a backend is unreachable.
	ErrUnavailable = &Error{Code: 9}
	// ErrFormat: bytes that should be in a keystrata or Tink format are not.
	ErrFormat = &Error{Code: 10}
	// ErrIo: reading or writing a file failed.
	ErrIo = &Error{Code: 11}
	// ErrInternal: a bug in keystrata. Please report it.
	ErrInternal = &Error{Code: 12}
	// ErrNullArgument: a required pointer was NULL at the C boundary (a bug in this package).
	ErrNullArgument = &Error{Code: 100}
	// ErrBufferTooSmall: a C output array was too small (handled inside this package).
	ErrBufferTooSmall = &Error{Code: 101}
)

var kindNames = map[int]string{
	1: "invalid input", 2: "authentication failed", 3: "unknown key", 4: "key disabled",
	5: "key destroyed", 6: "policy", 7: "unsupported", 8: "backend", 9: "unavailable",
	10: "format", 11: "i/o", 12: "internal error", 100: "null argument", 101: "buffer too small",
}

// Kind is the short name of the error's kind, e.g. "authentication failed".
func (e *Error) Kind() string {
	if n, ok := kindNames[e.Code]; ok {
		return n
	}
	return "error " + strconv.Itoa(e.Code)
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

func errClosed(what string) error { return newError(9, what+" is closed") }
