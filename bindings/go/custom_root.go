package keystrata

/*
#include <stdlib.h>
#include "keystrata.h"

// The Go functions (callback.go) the library calls for a custom root.
extern int keystrataGoWrapKey(void *userdata, uint8_t *key, size_t key_len, uint8_t *context,
    size_t context_len, uint8_t *out, size_t cap, size_t *out_len, char *key_id, size_t key_id_cap,
    uint32_t *key_version, ks_error **err);
extern int keystrataGoUnwrapKey(void *userdata, ks_envelope *envelope, uint8_t *context,
    size_t context_len, uint8_t *out, size_t cap, size_t *out_len, ks_error **err);
extern int keystrataGoActiveKeyVersion(void *userdata, uint32_t *out, ks_error **err);
extern int keystrataGoHealthCheck(void *userdata, ks_error **err);
extern void keystrataGoFreeUserdata(void *userdata);
*/
import "C"

import (
	"errors"
	"runtime/cgo"
	"unsafe"
)

// CustomKeyManager is a key manager of your own, such as a client of your
// KMS, that NewCustomRoot turns into a Root. It is the core's KeyManager
// contract in Go words:
//
//   - Provider names it in the envelopes it makes: 1 to 64 characters of
//     [a-z0-9._-], not one of keystrata's own ("keystrata", "age",
//     "age-scrypt", "pkcs11", "kmip", "aws-kms").
//   - WrapKey wraps key (1 to 4096 bytes) bound to context and returns the
//     envelope: KeyID (at most 256 bytes, no NUL) and KeyVersion (≥ 1) of
//     the wrapping key, and the wrapped bytes (1 to 65536). Provider may be
//     left empty: the root sets it.
//   - UnwrapKey returns the key an envelope of its own holds, and must fail
//     with an error wrapping ErrAuthentication for a changed envelope or a
//     different context.
//
// It may also implement ActiveKeyVersion() (int, error) (default 1),
// HealthCheck() error (default healthy) and Close() error, called once when
// the last reference to the root goes (Root.Close, then the last keychain
// opened with it closed).
//
// The methods may run on several goroutines at once, and must not call a
// keychain opened with this root. Return a *Error (e.g. ErrUnavailable
// wrapped with your message) to choose the error kind callers see; any
// other error is reported as ErrBackend with its message, cut to 256
// characters: never put a secret in it. A panic is recovered and reported
// as ErrInternal. The key slices passed in are wiped after the call, and so
// is the slice UnwrapKey returns, once copied.
type CustomKeyManager interface {
	Provider() string
	WrapKey(key, context []byte) (*KeyEnvelope, error)
	UnwrapKey(env *KeyEnvelope, context []byte) ([]byte, error)
}

// NewCustomRoot creates a root from a key manager of your own. Keychains
// saved under it are in the wrapped form (docs/FORMAT.md §7.1): one WrapKey
// per save, one UnwrapKey per load. The library checks what km returns
// (docs/ROOTS.md, "A root of your own"); a result breaking a rule gives
// ErrBackend. Errors: ErrInvalidInput for a nil km or a bad provider name.
func NewCustomRoot(km CustomKeyManager) (*Root, error) {
	if km == nil {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "custom key manager is nil")
	}
	provider := km.Provider()
	if hasNUL(provider) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "the provider name contains a NUL byte")
	}
	h := cgo.NewHandle(km)
	// userdata is kept by the library and used from any thread until
	// free_userdata, so it points to C memory holding the handle.
	slot := (*C.uintptr_t)(C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0)))))
	*slot = C.uintptr_t(h)
	cb := C.ks_custom_root_callbacks{
		wrap_key:           C.ks_custom_wrap_key_fn(C.keystrataGoWrapKey),
		unwrap_key:         C.ks_custom_unwrap_key_fn(C.keystrataGoUnwrapKey),
		active_key_version: C.ks_custom_active_key_version_fn(C.keystrataGoActiveKeyVersion),
		health_check:       C.ks_custom_health_check_fn(C.keystrataGoHealthCheck),
		free_userdata:      C.ks_custom_free_userdata_fn(C.keystrataGoFreeUserdata),
	}
	var cs cStrings
	defer cs.done()
	cp := cs.add(provider)
	var out *C.ks_root
	var cerr *C.ks_error
	if err := cErr(C.ks_root_custom_new(cp, &cb, unsafe.Pointer(slot), &out, &cerr), cerr); err != nil {
		// On failure the library does not call free_userdata.
		h.Delete()
		C.free(unsafe.Pointer(slot))
		return nil, err
	}
	return newRoot(out), nil
}

// customKM finds the key manager a callback's userdata names.
func customKM(userdata unsafe.Pointer) CustomKeyManager {
	km, _ := cgo.Handle(*(*C.uintptr_t)(userdata)).Value().(CustomKeyManager)
	return km
}

// reportCustom writes what a custom key manager's method returned (err,
// or a recovered panic) as a status and an error object for the library.
func reportCustom(method string, err error, cerr **C.ks_error) C.int {
	code, msg := int(C.KS_ERR_BACKEND), ""
	var e *Error
	if errors.As(err, &e) && e.Code >= C.KS_ERR_INVALID_INPUT && e.Code <= C.KS_ERR_INTERNAL {
		code, msg = e.Code, e.Msg
		if msg == "" {
			msg = err.Error()
		}
	} else {
		msg = err.Error()
	}
	if cerr != nil {
		var cs cStrings
		*cerr = C.ks_error_new(C.int(code), cs.add(method+": "+truncateMessage(msg)))
		cs.done()
	}
	return C.int(code)
}

// truncateMessage keeps a backend's message short before it crosses to C
// (the core cuts it again, to 256 characters); it also drops NUL bytes.
func truncateMessage(s string) string {
	const max = 1024
	if len(s) > max {
		s = s[:max]
	}
	b := []byte(s)
	for i := range b {
		if b[i] == 0 {
			b[i] = ' '
		}
	}
	return string(b)
}

// cSlice is C memory of n bytes as a Go slice (nil when n is 0).
func cSlice(p *C.uint8_t, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

func customWrapKey(userdata unsafe.Pointer, key []byte, context []byte, out []byte, outLen *C.size_t,
	keyID []byte, keyVersion *C.uint32_t, cerr **C.ks_error) (status C.int) {
	defer func() {
		if recover() != nil {
			status = reportCustom("WrapKey", newError(C.KS_ERR_INTERNAL, "WrapKey panicked"), cerr)
		}
	}()
	km := customKM(userdata)
	if km == nil {
		return reportCustom("WrapKey", newError(C.KS_ERR_INTERNAL, "custom key manager is gone"), cerr)
	}
	// Go copies, so the user's code never holds C memory past the call.
	k := append([]byte(nil), key...)
	defer clear(k)
	env, err := km.WrapKey(k, append([]byte(nil), context...))
	if err != nil {
		return reportCustom("WrapKey", err, cerr)
	}
	if env == nil {
		return reportCustom("WrapKey", errors.New("returned a nil envelope and no error"), cerr)
	}
	if env.KeyVersion < 0 || int64(env.KeyVersion) > 0xffffffff {
		return reportCustom("WrapKey", errors.New("returned a key version outside 0..4294967295"), cerr)
	}
	if len(env.KeyID) >= len(keyID) || hasNUL(env.KeyID) {
		return reportCustom("WrapKey", errors.New("returned a key ID that is too long or holds a NUL"), cerr)
	}
	if len(env.Ciphertext) > len(out) {
		*outLen = C.size_t(len(env.Ciphertext))
		return C.int(C.KS_ERR_BUFFER_TOO_SMALL)
	}
	copy(out, env.Ciphertext)
	*outLen = C.size_t(len(env.Ciphertext))
	n := copy(keyID, env.KeyID)
	keyID[n] = 0
	*keyVersion = C.uint32_t(env.KeyVersion)
	return C.KS_OK
}

func customUnwrapKey(userdata unsafe.Pointer, env *C.ks_envelope, context []byte, out []byte, outLen *C.size_t,
	cerr **C.ks_error) (status C.int) {
	defer func() {
		if recover() != nil {
			status = reportCustom("UnwrapKey", newError(C.KS_ERR_INTERNAL, "UnwrapKey panicked"), cerr)
		}
	}()
	km := customKM(userdata)
	if km == nil {
		return reportCustom("UnwrapKey", newError(C.KS_ERR_INTERNAL, "custom key manager is gone"), cerr)
	}
	ge := &KeyEnvelope{
		KeyID:      C.GoString(env.key_id),
		KeyVersion: int(env.key_version),
		Provider:   C.GoString(env.provider),
		Ciphertext: C.GoBytes(unsafe.Pointer(env.ciphertext), C.int(env.ciphertext_len)),
	}
	key, err := km.UnwrapKey(ge, append([]byte(nil), context...))
	defer clear(key)
	if err != nil {
		return reportCustom("UnwrapKey", err, cerr)
	}
	if len(key) > len(out) {
		return reportCustom("UnwrapKey", errors.New("returned a key longer than 4096 bytes"), cerr)
	}
	copy(out, key)
	*outLen = C.size_t(len(key))
	return C.KS_OK
}

func customActiveKeyVersion(userdata unsafe.Pointer, out *C.uint32_t, cerr **C.ks_error) (status C.int) {
	defer func() {
		if recover() != nil {
			status = reportCustom("ActiveKeyVersion", newError(C.KS_ERR_INTERNAL, "ActiveKeyVersion panicked"), cerr)
		}
	}()
	v := 1
	if km, ok := customKM(userdata).(interface{ ActiveKeyVersion() (int, error) }); ok {
		var err error
		if v, err = km.ActiveKeyVersion(); err != nil {
			return reportCustom("ActiveKeyVersion", err, cerr)
		}
	}
	if v < 0 || int64(v) > 0xffffffff {
		return reportCustom("ActiveKeyVersion", errors.New("returned a version outside 0..4294967295"), cerr)
	}
	*out = C.uint32_t(v)
	return C.KS_OK
}

func customHealthCheck(userdata unsafe.Pointer, cerr **C.ks_error) (status C.int) {
	defer func() {
		if recover() != nil {
			status = reportCustom("HealthCheck", newError(C.KS_ERR_INTERNAL, "HealthCheck panicked"), cerr)
		}
	}()
	if km, ok := customKM(userdata).(interface{ HealthCheck() error }); ok {
		if err := km.HealthCheck(); err != nil {
			return reportCustom("HealthCheck", err, cerr)
		}
	}
	return C.KS_OK
}

func customFreeUserdata(userdata unsafe.Pointer) {
	h := cgo.Handle(*(*C.uintptr_t)(userdata))
	km, _ := h.Value().(CustomKeyManager)
	h.Delete()
	C.free(userdata)
	if c, ok := km.(interface{ Close() error }); ok {
		func() {
			defer func() { _ = recover() }()
			_ = c.Close()
		}()
	}
}
