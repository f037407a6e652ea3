package keystrata_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	keystrata "github.com/keystrata/keystrata/bindings/go"
)

func Example() {
	kc, err := keystrata.Generate(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer kc.Close()

	ct, _ := kc.Seal([]byte("postgres://billing:hunter2@db"), []byte("service=billing"))
	pt, _ := kc.Unseal(ct, []byte("service=billing"))
	fmt.Printf("%d bytes sealed, unsealed %q\n", len(ct), pt)

	_, err = kc.Unseal(ct, []byte("service=other"))
	fmt.Println(errors.Is(err, keystrata.ErrAuthentication))
	// Output:
	// 62 bytes sealed, unsealed "postgres://billing:hunter2@db"
	// true
}

func ExampleKeychain_Encrypt() {
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	doc := []byte("Quarterly numbers: up and to the right.")
	blob, _ := kc.Encrypt(doc, []byte("doc=q3"))
	kc.Rotate() // old ciphertexts keep decrypting
	back, _ := kc.Decrypt(blob, []byte("doc=q3"))
	fmt.Println(len(blob)-len(doc), string(back))
	// Output: 99 Quarterly numbers: up and to the right.
}

func ExampleKeychain_WrapKey() {
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	dek := make([]byte, 32)
	env, _ := kc.WrapKey(dek, []byte("bucket/reports/q3.pdf"))
	meta, _ := env.ToMetadata() // store beside the object
	env2, _ := keystrata.EnvelopeFromMetadata(meta)
	key, _ := kc.UnwrapKey(env2, []byte("bucket/reports/q3.pdf"))
	fmt.Println(len(meta), env2.Provider, env2.KeyVersion, len(key))
	// Output: 4 keystrata 1 32
}

func ExampleKeychain_KeyManager() {
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	// Compact envelopes (61 bytes for a 32-byte key), bound to the bucket
	// entry only: a gateway passes more metadata when it unwraps.
	km := kc.KeyManager(keystrata.WithMetadataBinding(keystrata.BindOnly("bucket")))
	ctx := context.Background()
	meta := map[string]string{"bucket": "reports", "key": "q3.pdf"}
	env, _ := km.WrapKey(ctx, make([]byte, 32), meta)
	fmt.Println(len(env.Ciphertext))
	_, err := km.UnwrapKey(ctx, env, map[string]string{"bucket": "archive", "key": "q3.pdf"})
	fmt.Println(errors.Is(err, keystrata.ErrAuthentication))
	kc.Rotate()
	v, _ := km.ActiveKeyVersion(ctx)
	stored := map[string]string{"bucket": "reports", "key": "q3.pdf", "x-amz-meta-encryption-algorithm": "AES256-GCM"}
	key, _ := km.UnwrapKey(ctx, env, stored)
	fmt.Println(km.Provider(), v, len(key))
	km.Close(ctx)
	_, err = km.WrapKey(ctx, key, meta)
	fmt.Println(errors.Is(err, keystrata.ErrUnavailable))
	// Output:
	// 61
	// true
	// keystrata 2 32
	// true
}

func ExampleKeychain_DeriveOriginKey() {
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	k1, _ := kc.DeriveOriginKey("https://app.example", "web-1", 0)
	kc.Rotate() // rotating the KEK leaves derived keys alone
	k2, _ := kc.DeriveOriginKey("https://app.example", "web-1", 0)
	k3, _ := kc.DeriveOriginKey("https://app.example", "web-1", 1) // bump the epoch to rotate one
	fmt.Println(len(k1), string(k1) == string(k2), string(k1) == string(k3))
	// Output: 32 true false
}

func ExampleLoad() {
	root, _ := keystrata.NewPassphraseRoot("correct horse battery staple", 10)
	defer root.Close()
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	ct, _ := kc.Seal([]byte("hello"), nil)
	saved, _ := kc.Save(root) // an age scrypt file
	kc2, err := keystrata.Load(saved, root)
	if err != nil {
		log.Fatal(err)
	}
	defer kc2.Close()
	pt, _ := kc2.Unseal(ct, nil)
	fmt.Println(string(pt))
	// Output: hello
}

func ExampleKeychain_Subscribe() {
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	id, _ := kc.Subscribe(func(e keystrata.Event) {
		fmt.Printf("%s: version %d, purpose %s\n", e.Kind, e.KeyVersion, e.Purpose)
	})
	kc.Rotate()
	kc.Unsubscribe(id)
	kc.Rotate()
	c, _ := kc.Counters()
	fmt.Println("rotations:", c.Rotations)
	// Output:
	// key created: version 2, purpose encrypt
	// key rotated: version 2, purpose encrypt
	// rotations: 2
}

func ExampleKeychain_Sign() {
	kc, _ := keystrata.Generate(nil)
	defer kc.Close()
	key, _ := kc.RotateSigning(keystrata.AlgorithmEd25519)
	release := []byte("keystrata-1.2.3.tar.gz")
	sig, _ := kc.Sign(release)
	// Publish the public key; anyone verifies with it alone.
	pub, _ := kc.PublicKey(sig.KeyID, keystrata.PublicKeyRaw)
	err := keystrata.VerifySignature(sig.Algorithm, pub, release, sig.Bytes)
	fmt.Println(sig.Algorithm, len(sig.Bytes), sig.KeyID == key.KeyID, err == nil)

	kc.RotateSigning(keystrata.AlgorithmECDSAP256) // old signatures keep verifying
	by, _ := kc.Verify(release, sig.Bytes)
	fmt.Println(by.KeyID == key.KeyID, by.Algorithm)
	_, err = kc.Verify([]byte("keystrata-1.2.4.tar.gz"), sig.Bytes)
	fmt.Println(errors.Is(err, keystrata.ErrAuthentication))
	// Output:
	// ed25519 64 true true
	// true ed25519
	// true
}

func ExampleKeychain_Close() {
	kc, _ := keystrata.Generate(nil)
	kc.Close()
	kc.Close() // idempotent
	_, err := kc.Seal([]byte("x"), nil)
	fmt.Println(errors.Is(err, keystrata.ErrUnavailable))
	// Output: true
}
