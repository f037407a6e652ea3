package keystrata_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	keystrata "github.com/keystrata/keystrata/bindings/go"
)

func ExampleDecryptPortable() {
	dir, _ := os.MkdirTemp("", "ks-example")
	defer os.RemoveAll(dir)
	root, _ := keystrata.GenerateAgeRoot()
	defer root.Close()

	// A bound keychain wraps its primary with its root, once.
	kc, err := keystrata.Open(filepath.Join(dir, "keychain.age"), root, nil)
	if err != nil {
		log.Fatal(err)
	}
	blob, _ := kc.EncryptPortable([]byte("for the archive"), []byte("doc=q3"))
	kc.Close()

	// Elsewhere: the root alone decrypts; its KEK cache saves the second call.
	pt, _ := keystrata.DecryptPortable(blob, []byte("doc=q3"), root)
	keystrata.DecryptPortable(blob, []byte("doc=q3"), root)
	c, _ := root.PortableCounters()
	fmt.Printf("%q, root calls: %d\n", pt, c.RootCalls)
	// Output: "for the archive", root calls: 1
}
