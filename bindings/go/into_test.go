package keystrata

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealToAppendsAndReusesCapacity(t *testing.T) {
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	for _, n := range []int{0, 1, 64, 5000} {
		pt := bytes.Repeat([]byte{0xab}, n)
		buf := make([]byte, 3, 3+n+SealOverhead)
		copy(buf, "hdr")
		ct, err := kc.SealTo(buf, pt, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != 3+n+SealOverhead || &ct[0] != &buf[0] || string(ct[:3]) != "hdr" {
			t.Fatalf("n=%d: SealTo did not append in place", n)
		}
		back, err := kc.Unseal(ct[3:], []byte("aad"))
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("n=%d: unseal: %v", n, err)
		}
		got, err := kc.UnsealTo([]byte("x"), ct[3:], []byte("aad"))
		if err != nil || !bytes.Equal(got, append([]byte("x"), pt...)) {
			t.Fatalf("n=%d: UnsealTo: %v", n, err)
		}
		if _, err := kc.UnsealTo(nil, ct[3:], []byte("aaD")); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("n=%d: wrong aad: %v", n, err)
		}
	}
	room, pt := make([]byte, 0, 64+SealOverhead), make([]byte, 64)
	if allocs := testing.AllocsPerRun(100, func() {
		if _, err := kc.SealTo(room, pt, nil); err != nil {
			t.Fatal(err)
		}
	}); allocs != 0 {
		t.Fatalf("SealTo with room allocated %v times", allocs)
	}
}

func TestEncryptToAndDecryptTo(t *testing.T) {
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	for _, n := range []int{0, 1, 100, 70000} {
		pt := bytes.Repeat([]byte{0x5a}, n)
		blob, err := kc.EncryptTo(nil, pt, []byte("doc"))
		if err != nil || len(blob) != n+EncryptOverhead {
			t.Fatalf("n=%d: EncryptTo: %v", n, err)
		}
		back, err := kc.DecryptTo(make([]byte, 0, n), blob, []byte("doc"))
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("n=%d: DecryptTo: %v", n, err)
		}
		blob[len(blob)-1] ^= 1
		if _, err := kc.DecryptTo(nil, blob, []byte("doc")); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("n=%d: tampered: %v", n, err)
		}
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, {0, 0, 0, 200, 1, 2}} {
		if _, err := kc.DecryptTo(nil, bad, nil); !errors.Is(err, ErrFormat) {
			t.Fatalf("framing %x: %v", bad, err)
		}
		if _, err := kc.UnsealTo(nil, bad, nil); !errors.Is(err, ErrFormat) {
			t.Fatalf("sealed %x: %v", bad, err)
		}
	}
}

func TestSealToRefusesOverlap(t *testing.T) {
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	buf := make([]byte, 64, 64+SealOverhead+64)
	if _, err := kc.SealTo(buf[:0], buf[:64], nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("overlapping dst: %v", err)
	}
	if _, err := kc.SealTo(buf[64:64], buf[:64], nil); err != nil {
		t.Fatalf("adjacent dst: %v", err)
	}
}

func TestSealToAfterClose(t *testing.T) {
	kc, err := Generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	kc.Close()
	if _, err := kc.SealTo(nil, []byte("x"), nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after close: %v", err)
	}
}
