package keystrata

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"testing"
)

// Benchmarks (go test -run '^$' -bench .): keystrata through cgo beside Go's
// own crypto/aes + crypto/cipher GCM on the same sizes.

func benchGo(b *testing.B, size int) {
	key := make([]byte, 32)
	rand.Read(key)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	pt := make([]byte, size)
	nonce := make([]byte, 12)
	out := make([]byte, 0, size+16)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rand.Read(nonce) // keystrata draws a random nonce per message too
		out = gcm.Seal(out[:0], nonce, pt, nil)
	}
}

func BenchmarkSeal64(b *testing.B) {
	kc, _ := Generate(nil)
	defer kc.Close()
	pt := make([]byte, 64)
	b.SetBytes(64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := kc.Seal(pt, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoAESGCMSeal64(b *testing.B) { benchGo(b, 64) }

func BenchmarkEncrypt1MiB(b *testing.B) {
	kc, _ := Generate(nil)
	defer kc.Close()
	pt := make([]byte, 1<<20)
	b.SetBytes(1 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := kc.Encrypt(pt, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGoAESGCMEncrypt1MiB(b *testing.B) { benchGo(b, 1<<20) }

func BenchmarkWrapKey32(b *testing.B) {
	kc, err := Generate(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	dek := make([]byte, 32)
	ctx := []byte("bucket/object")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := kc.WrapKey(dek, ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnwrapKey32(b *testing.B) {
	kc, err := Generate(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	ctx := []byte("bucket/object")
	env, err := kc.WrapKey(make([]byte, 32), ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := kc.UnwrapKey(env, ctx); err != nil {
			b.Fatal(err)
		}
	}
}
