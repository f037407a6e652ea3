package keystrata

/*
#include "keystrata.h"
*/
import "C"

import "time"

// Pkcs11Config names a root key kept in a PKCS#11 token or HSM.
//
// Tokens are found by label, never by slot number (slot numbers change).
// Give the user PIN either as PIN or, better, as PINEnv, the name of an
// environment variable holding it; exactly one of the two must be set.
type Pkcs11Config struct {
	// Module is the path of the PKCS#11 library, e.g.
	// "/usr/lib/softhsm/libsofthsm2.so".
	Module string
	// TokenLabel is the label of the token holding the key.
	TokenLabel string
	// PIN is the user PIN (or use PINEnv).
	PIN string
	// PINEnv is the name of an environment variable holding the user PIN.
	PINEnv string
	// KeyLabel is the CKA_LABEL of the AES-256 key.
	KeyLabel string
	// CreateKey generates the key in the token (non-extractable,
	// sensitive) if none has the label.
	CreateKey bool
}

// NewPkcs11Root opens a root whose AES-256 key stays in a PKCS#11 token:
// keychains saved under it load only through the same token key; data
// keys are wrapped with AES-256-GCM inside the token (docs/PKCS11.md).
// It loads the module, finds the token and logs in before returning.
//
// Errors: ErrInvalidInput (module cannot be loaded, PIN and PINEnv both or
// neither set, PINEnv unset), ErrUnavailable (no token with the label),
// ErrBackend (login refused, e.g. a wrong PIN; the message never holds the
// PIN), ErrUnknownKey (no key with the label and CreateKey false).
func NewPkcs11Root(cfg Pkcs11Config) (*Root, error) {
	if hasNUL(cfg.Module, cfg.TokenLabel, cfg.PIN, cfg.PINEnv, cfg.KeyLabel) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "a PKCS#11 setting contains a NUL byte")
	}
	if (cfg.PIN == "") == (cfg.PINEnv == "") {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "set exactly one of PIN and PINEnv")
	}
	var cs cStrings
	defer cs.done() // wipes the copy of the PIN
	module, token, label := cs.add(cfg.Module), cs.add(cfg.TokenLabel), cs.add(cfg.KeyLabel)
	pin, pinEnv := cs.opt(cfg.PIN), cs.opt(cfg.PINEnv)
	var out *C.ks_root
	var cerr *C.ks_error
	st := C.ks_root_pkcs11_new(module, token, pin, pinEnv, label, createFlag(cfg.CreateKey), &out, &cerr)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

// KmipConfig names a root key kept in a KMIP server (PyKMIP, Cosmian KMS,
// or any server speaking binary KMIP over TLS), reached with mutual TLS.
type KmipConfig struct {
	// Host and Port of the server; Port 0 means 5696.
	Host string
	Port int
	// ServerName is the name the server's certificate must carry; empty
	// means Host.
	ServerName string
	// CAFile, CertFile and KeyFile are PEM files: the CA that signed the
	// server's certificate, and the client's certificate and private key.
	CAFile, CertFile, KeyFile string
	// KeyID (the unique identifier) or KeyName (the Name attribute) of the
	// AES-256 key; exactly one must be set.
	KeyID, KeyName string
	// Version is "1.4" (also "") or "2.0".
	Version string
	// Timeout bounds the connect and every request; 0 means 5 s.
	Timeout time.Duration
	// CreateKey creates and activates a named key if none exists.
	CreateKey bool
	// HTTPSJSON speaks JSON TTLV over HTTPS to Cosmian KMS's KMIP API
	// (/kmip/2_1) instead of binary TTLV; Port is then its HTTPS port.
	HTTPSJSON bool
}

// NewKmipRoot connects a root whose AES-256 key stays in a KMIP server:
// keychains saved under it load only through that key; data keys are
// wrapped by the server's AES-256-GCM Encrypt (docs/KMIP.md). A server
// that goes away gives ErrUnavailable within the timeout, and the root
// reconnects by itself when it is back.
//
// Errors: ErrInvalidInput (bad settings), ErrIo (a PEM file cannot be
// read), ErrUnavailable (cannot connect in time), ErrBackend (TLS or server
// refusal), ErrUnknownKey (no such key), ErrKeyDisabled (key not active,
// e.g. revoked), ErrKeyDestroyed.
func NewKmipRoot(cfg KmipConfig) (*Root, error) {
	if hasNUL(cfg.Host, cfg.ServerName, cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.KeyID, cfg.KeyName) {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "a KMIP setting contains a NUL byte")
	}
	if (cfg.KeyID == "") == (cfg.KeyName == "") {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "set exactly one of KeyID and KeyName")
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, newError(C.KS_ERR_INVALID_INPUT, "port out of range")
	}
	var version C.uint32_t
	switch cfg.Version {
	case "", "1.4":
		version = 14
	case "2.0":
		version = 20
	default:
		return nil, newError(C.KS_ERR_INVALID_INPUT, `Version must be "1.4" or "2.0"`)
	}
	ms, err := timeoutMillis(cfg.Timeout)
	if err != nil {
		return nil, err
	}
	flags := createFlag(cfg.CreateKey)
	if cfg.HTTPSJSON {
		flags |= C.KS_KMIP_HTTPS_JSON
	}
	var cs cStrings
	defer cs.done()
	str := cs.opt
	var out *C.ks_root
	var cerr *C.ks_error
	st := C.ks_root_kmip_new(str(cfg.Host), C.uint16_t(cfg.Port), str(cfg.ServerName), str(cfg.CAFile),
		str(cfg.CertFile), str(cfg.KeyFile), str(cfg.KeyID), str(cfg.KeyName), version, ms,
		flags, &out, &cerr)
	if err := cErr(st, cerr); err != nil {
		return nil, err
	}
	return newRoot(out), nil
}

// HealthCheck reports whether the root can serve: for a PKCS#11 root it
// opens a session and finds the key; for a KMIP root it asks the server
// for the key's state (it must be active); for an AWS KMS root it calls
// DescribeKey (the key must be enabled); age roots are always healthy.
// Errors: ErrUnavailable (closed, or device or server unreachable),
// ErrKeyDisabled, ErrKeyDestroyed, ErrUnknownKey, ErrBackend.
func (r *Root) HealthCheck() error {
	p, err := r.acquire()
	if err != nil {
		return err
	}
	defer r.release()
	var cerr *C.ks_error
	return cErr(C.ks_root_health_check(p, &cerr), cerr)
}

// RotateKey rotates the key of a KMIP root that names its key by KeyName:
// it creates and activates the key NAME@k for the next version k, wraps
// under it from now on and returns k. Keychains and envelopes made under
// older versions keep loading (keep those keys active); other roots on the
// same name take the new version up within their refresh interval, at once
// on HealthCheck (docs/KMIP.md, "Rotating the root key"). Not KMIP ReKey.
// Errors: ErrInvalidInput (not a KMIP root, or one named by KeyID, which
// has one version), ErrUnavailable (closed, or the server unreachable),
// ErrBackend (the server refused to create the key).
func (r *Root) RotateKey() (uint32, error) {
	return r.version(func(p *C.ks_root, v *C.uint32_t, cerr **C.ks_error) C.enum_ks_status {
		return C.ks_root_rotate_key(p, v, cerr)
	})
}

// timeoutMillis is a device's Timeout as the C API's milliseconds (0: the
// C API's default).
func timeoutMillis(d time.Duration) (C.uint32_t, error) {
	ms := d.Milliseconds()
	if d < 0 || ms > 3_600_000 || (d > 0 && ms == 0) {
		return 0, newError(C.KS_ERR_INVALID_INPUT, "Timeout must be between 1 ms and 1 hour (0 for the default)")
	}
	return C.uint32_t(ms), nil
}

func createFlag(create bool) C.uint32_t {
	if create {
		return C.KS_ROOT_CREATE_KEY
	}
	return 0
}
