package keystrata

/*
#include "keystrata.h"
*/
import "C"

import (
	"runtime"
	"strings"
)

// A Root protects a keychain at rest: an age identity set (X25519) or a
// passphrase (age scrypt) in development; a key in a PKCS#11 token
// (NewPkcs11Root) or a KMIP server (NewKmipRoot) in production. Pass it to
// Save, Load, SaveFile, LoadFile and Open. A Root is safe for concurrent
// use. Close it when done: Close wipes its secrets and releases sessions
// and connections (a finalizer does it otherwise, later). Keychains opened
// with a root (Open) keep their own reference, so closing the Root does
// not affect them.
type Root struct {
	ptr  *C.ks_root
	life lifeline
}

func newRoot(p *C.ks_root) *Root {
	r := &Root{ptr: p}
	runtime.SetFinalizer(r, (*Root).finalize)
	return r
}

func (r *Root) acquire() (*C.ks_root, error) {
	if r == nil {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "root is nil")
	}
	if !r.life.acquire() {
		return nil, errClosed("root")
	}
	return r.ptr, nil
}

func (r *Root) release() {
	if r.life.release() {
		r.free()
	}
	runtime.KeepAlive(r)
}

func (r *Root) free() {
	C.ks_root_free(r.ptr)
	r.ptr = nil
}

func (r *Root) finalize() {
	if first, _ := r.life.shut(); first {
		r.free()
	}
}

// Close wipes and releases the root. It is idempotent; using the root
// afterwards returns an error wrapping ErrUnavailable.
func (r *Root) Close() error {
	if r == nil {
		return nil
	}
	first, now := r.life.shut()
	if !first {
		return nil
	}
	runtime.SetFinalizer(r, nil)
	if now {
		r.free()
	}
	return nil
}

// ActiveKeyVersion is the version of the root key new envelopes are
// wrapped under: 1 for every root but a KMIP root that names its key by
// KeyName, whose versions are the keys NAME, NAME@2, NAME@3, …
// (docs/KMIP.md, "Rotating the root key"). Such a root reports the newest
// version it has taken up and looks for a newer one once its refresh
// interval (60 s) has passed; HealthCheck looks at once.
// Errors: ErrUnavailable (closed, or the server unreachable during a
// look), and the server's refusals.
func (r *Root) ActiveKeyVersion() (uint32, error) {
	return r.version(func(p *C.ks_root, v *C.uint32_t, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_root_active_key_version(p, v, cerr)
	})
}

// version runs call, a C call that writes a key version, on the live root.
func (r *Root) version(call func(*C.ks_root, *C.uint32_t, **C.ks_error) C.enum_ks_status) (uint32, error) {
	p, err := r.acquire()
	if err != nil {
		return 0, err
	}
	defer r.release()
	var v C.uint32_t
	var cerr *C.ks_error
	if err := cErr(call(p, &v, &cerr), cerr); err != nil {
		return 0, err
	}
	return uint32(v), nil
}

func hasNUL(ss ...string) bool {
	for _, s := range ss {
		if strings.IndexByte(s, 0) >= 0 {
			return true
		}
	}
	return false
}

// NewAgeRoot creates an age root from identities (each an
// "AGE-SECRET-KEY-1..." string, or the whole text age-keygen writes,
// comments included) and recipients ("age1..."). Keychains are saved
// encrypted to the recipients and to the identities' public keys; at least
// one list must be non-empty. A root without identities can save but not
// load. Errors: ErrInvalidInput for a string that does not parse (the
// message never repeats an identity).
func NewAgeRoot(identities, recipients []string) (*Root, error) {
	if hasNUL(identities...) || hasNUL(recipients...) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "age identity or recipient contains a NUL byte")
	}
	var cs cStrings
	defer cs.done() // wipes the copies of the identities
	ids, rs := cs.array(identities), cs.array(recipients)
	var out *C.ks_root
	var cerr *C.ks_error
	st := C.ks_root_age_new(ids, C.size_t(len(identities)), rs, C.size_t(len(recipients)), &out, &cerr)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

// GenerateAgeRoot creates an age root with one fresh X25519 identity. Store
// its secret (InsecureAgeIdentities) if you need to load what it saves.
func GenerateAgeRoot() (*Root, error) {
	var out *C.ks_root
	var cerr *C.ks_error
	if err := cErr(C.ks_root_age_generate(&out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

// NewPassphraseRoot creates a passphrase root (age scrypt). workFactor is
// scrypt's log2(N) used when saving, 1..30, or 0 for the default (18, about
// one second). Errors: ErrInvalidInput for an empty or non-UTF-8 passphrase
// or a work factor out of range.
func NewPassphraseRoot(passphrase string, workFactor int) (*Root, error) {
	if workFactor < 0 || workFactor > 255 {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "work factor out of range")
	}
	p := []byte(passphrase)
	defer clear(p)
	pp, pl := cbytes(p)
	var out *C.ks_root
	var cerr *C.ks_error
	st := C.ks_root_passphrase_new(pp, pl, C.uint8_t(workFactor), &out, &cerr)
	runtime.KeepAlive(p)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

// NewRootFromURI creates a root from a URI, the forms the CLI's --root
// takes (docs/ROOTS.md): "age:FILE", "age-recipient:age1…",
// "passphrase:VAR", "passphrase:env:VAR", "passphrase:file:PATH",
// "pkcs11:…", "kmip://…". Secrets come from the files and environment
// variables it names, never from the URI. Errors: ErrInvalidInput (an
// unknown scheme, a malformed URI, a secret given inline), ErrUnsupported,
// ErrIo, and those of the root's own constructor.
func NewRootFromURI(uri string) (*Root, error) {
	if hasNUL(uri) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "the root URI contains a NUL byte")
	}
	var cs cStrings
	defer cs.done()
	cu := cs.add(uri)
	var out *C.ks_root
	var cerr *C.ks_error
	if err := cErr(C.ks_root_from_uri(cu, &out, &cerr), cerr); err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

func (r *Root) ageStrings(identity bool) ([]string, error) {
	p, err := r.acquire()
	if err != nil {
		return nil, err
	}
	defer r.release()
	var res []string
	for i := 0; ; i++ {
		var out C.ks_buffer
		var cerr *C.ks_error
		var st C.enum_ks_status
		if identity {
			st = C.ks_root_age_identity(p, C.size_t(i), &out, &cerr)
		} else {
			st = C.ks_root_age_recipient(p, C.size_t(i), &out, &cerr)
		}
		if err := cErr(st, cerr); err != nil {
			if i > 0 {
				return res, nil
			}
			return nil, err
		}
		b := takeBuffer(&out)
		res = append(res, string(b))
		clear(b)
	}
}

// AgeRecipients returns the root's age recipients ("age1..."): the public
// keys keychains are saved to. Errors: ErrInvalidInput if not an age root.
func (r *Root) AgeRecipients() ([]string, error) { return r.ageStrings(false) }

// InsecureAgeIdentities returns the root's age identities
// ("AGE-SECRET-KEY-1..."): the root's secret. Store them as such. A
// recipients-only age root returns an empty list. Errors: ErrInvalidInput if
// not an age root.
func (r *Root) InsecureAgeIdentities() ([]string, error) {
	ids, err := r.ageStrings(true)
	if err != nil {
		if _, rerr := r.ageStrings(false); rerr == nil {
			return nil, nil
		}
	}
	return ids, err
}
