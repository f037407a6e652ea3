// Command relay is Go's part of the cross-language story (run by make demo):
// it loads the keychain C generated, rotates it, decrypts what Python
// sealed and encrypted, and derives the origin key C and Python derive too.
//
//	go run ./relay DIR
package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	keystrata "github.com/keystrata/keystrata/bindings/go"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: relay DIR")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "relay (Go):", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	id, err := os.ReadFile(filepath.Join(dir, "identity.txt"))
	if err != nil {
		return err
	}
	root, err := keystrata.NewAgeRoot([]string{string(id)}, nil)
	if err != nil {
		return err
	}
	defer root.Close()
	path := filepath.Join(dir, "keychain.age")
	kc, err := keystrata.LoadFile(path, root)
	if err != nil {
		return err
	}
	defer kc.Close()
	p, err := kc.Rotate()
	if err != nil {
		return err
	}
	if err := kc.SaveFile(path, root); err != nil {
		return err
	}
	fmt.Printf("3. [Go]     rotated: new primary key %d v%d, saved\n", p.KeyID, p.Version)

	sealed, err := os.ReadFile(filepath.Join(dir, "secret.sealed"))
	if err != nil {
		return err
	}
	secret, err := kc.Unseal(sealed, []byte("service=billing"))
	if err != nil {
		return fmt.Errorf("unseal Python's secret: %w", err)
	}
	blob, err := os.ReadFile(filepath.Join(dir, "report.enc"))
	if err != nil {
		return err
	}
	doc, err := kc.Decrypt(blob, []byte("doc=q3-report"))
	if err != nil {
		return fmt.Errorf("decrypt Python's document: %w", err)
	}
	first := doc
	if i := bytes.IndexByte(doc, '\n'); i >= 0 {
		first = doc[:i]
	}
	fmt.Printf("   [Go]     after rotation, unsealed Python's secret (%d bytes) and decrypted its document: %q…\n", len(secret), first)

	key, err := kc.DeriveOriginKey("https://app.example", "web-1", 0)
	if err != nil {
		return err
	}
	h := hex.EncodeToString(key)
	fmt.Printf("4. [Go]     derived the origin key for (https://app.example, web-1, 0): %s\n", h)
	return os.WriteFile(filepath.Join(dir, "origin.go.hex"), []byte(h+"\n"), 0o644)
}
