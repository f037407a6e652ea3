// The keystrata story in Go: a keychain under an age identity, saved,
// loaded, used to seal, encrypt, wrap and derive, rotated, and still able
// to read what it wrote before. The same story as core/examples/demo.rs.
//
// This is its own module; go.mod points at ../../bindings/go with a
// replace directive. Build the static library first (`make lib` at the
// repository root), then:
//
//	cd examples/go && GOTOOLCHAIN=local go run .
package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"log"
	"os"
	"path/filepath"

	keystrata "github.com/keystrata/keystrata/bindings/go"
)

func main() {
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("keystrata-demo-go-%d", os.Getpid()))
	must(os.MkdirAll(dir, 0o700))
	idPath := filepath.Join(dir, "identity.txt")
	kcPath := filepath.Join(dir, "keychain.age")

	// 1. An age identity protects the keychain at rest.
	root := must1(keystrata.GenerateAgeRoot())
	ids := must1(root.InsecureAgeIdentities())
	rs := must1(root.AgeRecipients())
	must(os.WriteFile(idPath, []byte("# public key: "+rs[0]+"\n"+ids[0]+"\n"), 0o600))
	fmt.Printf("1. age identity written to %s\n", idPath)

	// 2. Generate a keychain and save it atomically as an age file.
	kc := must1(keystrata.Generate(nil))
	must(kc.SaveFile(kcPath, root))
	p := must1(kc.Primary())
	fmt.Printf("2. keychain generated (encryption primary %d v%d) and saved to %s\n", p.KeyID, p.Version, kcPath)
	kc.Close()
	root.Close()

	// 3. Load it back with the identity.
	idText := must1(os.ReadFile(idPath))
	root = must1(keystrata.NewAgeRoot([]string{string(idText)}, nil))
	defer root.Close()
	kc = must1(keystrata.LoadFile(kcPath, root))
	fmt.Printf("3. keychain loaded: %d keys\n", len(must1(kc.Keys())))

	// 4. Seal a small secret, envelope-encrypt a document, wrap a data key.
	secret := []byte("postgres://billing:hunter2@db/billing")
	sealed := must1(kc.Seal(secret, []byte("service=billing")))
	fmt.Printf("4. sealed a secret: %d bytes, Tink AEAD format (prefix %s)\n", len(sealed), hex.EncodeToString(sealed[:5]))
	doc := bytes.Repeat([]byte("Quarterly numbers: up and to the right."), 100)
	blob := must1(kc.Encrypt(doc, []byte("doc=q3-report")))
	fmt.Printf("5. encrypted a %d byte document with a fresh data key: %d bytes\n", len(doc), len(blob))
	dek := bytes.Repeat([]byte{0x42}, 32)
	ctx := context.Background()
	objMeta := map[string]string{"object": "bucket/reports/q3.pdf"}
	env := must1(kc.KeyManager().WrapKey(ctx, dek, objMeta))
	meta := must1(env.ToMetadata())
	fmt.Printf("6. wrapped a data key for object metadata: %d entries, key version %d\n", len(meta), env.KeyVersion)

	// 5. Derive a stable per-origin key.
	originKey := must1(kc.DeriveOriginKey("https://app.example", "web-1", 0))
	fmt.Printf("7. derived origin key: %s\n", hex.EncodeToString(originKey))

	// 6. Rotate, save, and read everything back.
	p = must1(kc.Rotate())
	must(kc.SaveFile(kcPath, root))
	fmt.Printf("8. rotated: new primary %d v%d; saved\n", p.KeyID, p.Version)
	kc.Close()
	kc = must1(keystrata.LoadFile(kcPath, root))
	defer kc.Close()
	check(bytes.Equal(must1(kc.Unseal(sealed, []byte("service=billing"))), secret))
	check(bytes.Equal(must1(kc.Decrypt(blob, []byte("doc=q3-report"))), doc))
	for k, v := range objMeta { // the object's metadata: envelope entries and its own
		meta[k] = v
	}
	env2 := must1(keystrata.EnvelopeFromMetadata(meta))
	check(bytes.Equal(must1(kc.KeyManager().UnwrapKey(ctx, env2, meta)), dek))
	check(bytes.Equal(must1(kc.DeriveOriginKey("https://app.example", "web-1", 0)), originKey))
	fmt.Println("9. after rotation: secret unsealed, document decrypted, key unwrapped, origin key unchanged")

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err := kc.Unseal(tampered, []byte("service=billing"))
	fmt.Printf("10. a tampered ciphertext is refused: %v\n", err)

	fmt.Println()
	fmt.Println("Try next:")
	fmt.Printf("  age -d -i %s %s   # the keychain is a plain age file\n", idPath, kcPath)
	fmt.Println("  go doc github.com/keystrata/keystrata/bindings/go   # the Go API (from bindings/go)")
	fmt.Println("  make test                              # every suite")
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func must1[T any](v T, err error) T {
	must(err)
	return v
}

func check(ok bool) {
	if !ok {
		log.Fatal("demo check failed")
	}
}
