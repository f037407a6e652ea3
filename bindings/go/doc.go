// Package keystrata is in-process key management for Go: a keychain of
// AES-256 keys (one primary per purpose) that seals small secrets,
// envelope-encrypts data, wraps data keys for object stores and derives
// stable per-origin keys, and that is protected at rest by an age identity
// or a passphrase. The bytes on the wire are the same as keystrata's Rust
// core, C library and Python module, and Tink-compatible.
//
// The package is a cgo binding over keystrata's C ABI, linked statically:
// build the library once with `make lib` at the repository root, then a Go
// binary that imports this package needs nothing else at run time.
//
// # Quick start
//
//	root, _ := keystrata.GenerateAgeRoot()          // or NewAgeRoot, NewPassphraseRoot
//	kc, _ := keystrata.Generate(nil)               // nil: DefaultPolicy()
//	defer kc.Close()
//
//	ct, _ := kc.Seal([]byte("db password"), []byte("service=billing"))
//	pt, _ := kc.Unseal(ct, []byte("service=billing"))
//
//	blob, _ := kc.Encrypt(document, aad)            // fresh data key per message
//	doc, _ := kc.Decrypt(blob, aad)
//
//	env, _ := kc.WrapKey(dek, []byte("bucket/key")) // *KeyEnvelope
//	meta, _ := env.ToMetadata()                     // x-amz-meta-encryption-* entries
//	env2, _ := keystrata.EnvelopeFromMetadata(meta)
//	dek2, _ := kc.UnwrapKey(env2, []byte("bucket/key"))
//
//	k, _ := kc.DeriveOriginKey("https://app.example", "web-1", 0) // 32 bytes, HKDF-SHA256
//
//	saved, _ := kc.Save(root)                       // an age file
//	kc2, _ := keystrata.Load(saved, root)
//
// # Operations and formats
//
//   - Seal/Unseal: small secrets directly under the encryption primary, in
//     Tink's AEAD format 0x01 ‖ BE32(key_id) ‖ nonce(12) ‖ ct ‖ tag(16).
//   - Encrypt/Decrypt: envelope encryption with a fresh 32-byte data key per
//     message (Tink KmsEnvelopeAead layout).
//   - WrapKey/UnwrapKey: a data key wrapped into a KeyEnvelope {KeyID,
//     KeyVersion, Provider, Ciphertext}, bound to a context; ToMetadata and
//     EnvelopeFromMetadata convert to and from S3-style object metadata.
//   - DeriveOriginKey/Derive: HKDF-SHA256 under the derivation primary;
//     unchanged by Rotate, so derived keys stay stable across KEK rotation.
//
// docs/FORMAT.md in the repository has every byte.
//
// # Keys and lifecycle
//
// Each key has a KeyID (written on the wire), a Version (1, 2, 3 ... per
// purpose), a Purpose (PurposeEncrypt or PurposeDerive) and a KeyStatus.
// New ciphertexts use the primary; old ones find their key by KeyID.
// Rotate adds an encryption key and makes it primary; for fleets, AddKey
// then Promote. Disable, Enable and Destroy act on one key; Keys and
// Primary list them. RotateDerivation changes every derived key (for
// compromise).
//
// # Persistence and rotation policy
//
// Save/Load and SaveFile/LoadFile store a keychain under a Root; the
// result is unbound and never rotates on its own: at the Policy limit
// (MaxEncryptionsPerKey, MaxKeyAge) encryption fails with ErrPolicy until
// you Rotate and save. Open binds a keychain to a file: every change of
// state is written atomically before a ciphertext under it is returned,
// and it rotates by itself at the limit (an EventKeyRotated with Automatic
// set is emitted).
//
// ImportTinkCleartext and InsecureExportTinkCleartext convert to and from Tink
// cleartext JSON keysets of AES256_GCM keys.
//
// # KeyManager
//
// (*Keychain).KeyManager returns the method set Go object-store gateways
// use for data-key wrapping (Provider, WrapKey, UnwrapKey,
// ActiveKeyVersion, HealthCheck, Close, all taking a context.Context, with
// a map[string]string of metadata as the wrap context). See KeyManager.
//
// # Signing
//
// Keys of PurposeSign sign with an Algorithm: AlgorithmEd25519,
// AlgorithmECDSAP256 or AlgorithmECDSASecp256k1 (both with SHA-256).
// RotateSigning makes a new signing primary (AddSigningKey then Promote
// for fleets); older keys keep verifying until disabled. Every signature
// emits an EventSigned carrying the SHA-256 of what was signed.
//
//	kc.RotateSigning(keystrata.AlgorithmECDSAP256)
//	sig, _ := kc.Sign(msg)                           // DER; SignAs for raw r ‖ s
//	who, _ := kc.Verify(msg, sig.Bytes)              // the key that verified
//	pemKey, _ := kc.PublicKey(sig.KeyID, keystrata.PublicKeyPEM)
//	err := keystrata.VerifySignature(alg, rawKey, msg, sig.Bytes) // no keychain
//
// minisign: with an Ed25519 primary, SignMinisign returns the text of a
// .minisig file that `minisign -V` verifies with
// PublicKey(id, PublicKeyMinisign); VerifyMinisign checks minisign's own
// signatures (prehashed and legacy) with the key they name;
// ImportMinisignSecretKey brings a `minisign -G` key in, keeping its key
// ID; MinisignVerify checks a signature with a .pub key alone and returns
// its trusted comment.
//
//	text, _ := kc.SignMinisign(data, "file:release.tar.gz")
//	comment, err := keystrata.MinisignVerify(pubText, data, text)
//
// Trust files: TrustedKeys (ParseTrustedKeys, LoadTrustedKeys) lists
// named official (ECDSA) and community (minisign) keys, active or
// revoked; Verify says which one made a signature, and a revoked key's
// signature fails with ErrKeyDisabled naming it.
//
//	tk, _ := keystrata.LoadTrustedKeys("KEYS.txt")
//	v, err := tk.Verify(data, sigBytesOrMinisignText) // v.Name, v.Kind, v.TrustedComment
//
// Signers: a *Signer signs with a key wherever it lives, with one set of
// methods (Algorithm, PublicKey, Sign, SignDigest, HealthCheck, Close):
// NewPkcs11Signer for a key pair in a PKCS#11 token (it never leaves the
// token), (*Keychain).Signer for the keychain's signing primary. ECDSA
// signatures are DER over SHA-256(message), as crypto/ecdsa's VerifyASN1
// takes them.
//
//	s, _ := keystrata.NewPkcs11Signer(cfg, keystrata.AlgorithmECDSAP256)
//	defer s.Close()
//	sig, _ := s.Sign(msg)
//
// # Errors
//
// Every error returned by keystrata is a *Error with a stable Code, the
// same number in every language. Test kinds with errors.Is and the
// sentinels ErrInvalidInput, ErrAuthentication, ErrUnknownKey,
// ErrKeyDisabled, ErrKeyDestroyed, ErrPolicy, ErrUnsupported, ErrBackend,
// ErrUnavailable, ErrFormat, ErrIo and ErrInternal. Authentication failures
// never say which check failed. KeyManager methods given a cancelled
// context return ctx.Err() instead.
//
// # Concurrency and lifetimes
//
// Keychain, Root, KeyManager, Signer and TrustedKeys are safe for
// concurrent use. Close a Keychain, Root or Signer when done: Close wipes key material, is idempotent, and
// may run concurrently with other calls; afterwards every method returns an
// error wrapping ErrUnavailable. A finalizer releases handles that were
// never closed, as a safety net only. Secrets returned as []byte (Unseal,
// UnwrapKey, DeriveOriginKey, ...) are ordinary Go memory: clear them when
// you are done if that matters to you. A keychain's Signer keeps its
// Keychain alive; closing the Keychain makes the Signer unavailable.
//
// # Events and counters
//
// Subscribe registers a func(Event) for lifecycle events (key created,
// rotated, promoted, disabled, enabled, destroyed, derived, decrypt
// failed); Counters returns a snapshot of operation counters.
package keystrata
