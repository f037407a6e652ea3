// Command bench runs keystrata's Go package beside crypto/aes +
// crypto/cipher GCM and golang.org/x/crypto/hkdf, interleaved (A B A B,
// several rounds), and prints one JSON line per case and implementation
// (samples in ns per call). Run by `make bench` (bench/run.py).
//
// Peers do the same work keystrata does: a seal draws its random 12-byte
// nonce (crypto/rand) and returns a freshly allocated nonce‖ct‖tag.
//
// Signing (sign_<alg>, verify_<alg>, verify_signature_<alg>; a 64-byte
// message): a keychain whose signing primary is a key of <alg> beside
// crypto/ed25519 and crypto/ecdsa (P-256, SHA-256 of the message on every
// call, ASN.1 signatures as keystrata's default). The standard library has
// no secp256k1: those cases have a keystrata row only. VerifySignature
// takes the raw public key alone, so its crypto/ecdsa peer parses the
// point on every call too (ed25519.PublicKey is the raw bytes already).
//
// Streaming (stream_encrypt, stream_decrypt; 1 GiB in 1 MiB writes or
// reads, Tink's AES256_GCM_HKDF_1MB): NewEncryptingWriter into io.Discard
// and NewDecryptingReader over the stream in memory, beside crypto/cipher
// GCM over the same 1 GiB as 1,024 one-shot messages of 1 MiB (counter
// nonce, reused output buffer; the decrypt peer opens 1,024 distinct sealed
// messages held in memory, as keystrata reads its 1 GiB stream from memory).
package main

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	keystrata "github.com/keystrata/keystrata/bindings/go"
	"golang.org/x/crypto/hkdf"
)

var (
	rounds = envInt("BENCH_ROUNDS", 7)
	sample = time.Duration(envInt("BENCH_SAMPLE_MS", 40)) * time.Millisecond
	sink   atomic.Int64
)

func envInt(k string, d int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return d
}

type imp struct {
	name string
	f    func()
}

func calibrate(f func()) int {
	n := 1
	for {
		t := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		el := time.Since(t)
		if el >= sample/4 || n >= 1<<30 {
			return max(1, int(float64(sample)/(float64(el)/float64(n))))
		}
		n *= 4
	}
}

func emit(c string, size int, name, unit string, samples []float64) {
	b, _ := json.Marshal(map[string]any{"lang": "go", "case": c, "size": size, "impl": name, "unit": unit, "samples": samples})
	fmt.Println(string(b))
}

func run(c string, size int, imps ...imp) {
	iters := make([]int, len(imps))
	// One call first: a one-time cost (the first ECDSA signature of a
	// process) must not set the batch size.
	for _, m := range imps {
		m.f()
	}
	for i, m := range imps {
		iters[i] = calibrate(m.f)
	}
	samples := make([][]float64, len(imps))
	for r := 0; r < rounds; r++ {
		for i, m := range imps {
			runtime.GC()
			t := time.Now()
			for k := 0; k < iters[i]; k++ {
				m.f()
			}
			samples[i] = append(samples[i], float64(time.Since(t).Nanoseconds())/float64(iters[i]))
		}
	}
	for i, m := range imps {
		emit(c, size, m.name, "ns", samples[i])
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func gcmSeal(g cipher.AEAD, pt, aad []byte) []byte {
	out := make([]byte, 12, 12+len(pt)+16)
	if _, err := rand.Read(out); err != nil {
		panic(err)
	}
	return g.Seal(out, out[:12], pt, aad)
}

func gcmOpen(g cipher.AEAD, ct, aad []byte) []byte {
	return must(g.Open(nil, ct[:12], ct[12:], aad))
}

func originInfo(origin, instance string, epoch uint64) []byte {
	info := make([]byte, 0, 19+16+len(origin)+len(instance))
	info = append(info, "keystrata/derive/v1"...)
	info = binary.BigEndian.AppendUint32(info, uint32(len(origin)))
	info = append(info, origin...)
	info = binary.BigEndian.AppendUint32(info, uint32(len(instance)))
	info = append(info, instance...)
	return binary.BigEndian.AppendUint64(info, epoch)
}

func main() {
	only := ""
	if len(os.Args) > 1 {
		only = os.Args[1]
	}
	want := func(c string) bool { return strings.HasPrefix(c, only) }
	kc := must(keystrata.Generate(nil))
	defer kc.Close()
	key := make([]byte, 32)
	rand.Read(key)
	g := must(cipher.NewGCM(must(aes.NewCipher(key))))
	aad := []byte("bench/aad")

	for _, size := range []int{64, 1024, 64 << 10, 1 << 20} {
		pt := make([]byte, size)
		var room []byte
		if want("seal") {
			room = make([]byte, 0, size+keystrata.SealOverhead)
			groom := make([]byte, 12, size+28)
			run("seal", size,
				imp{"keystrata", func() { sink.Add(int64(len(must(kc.Seal(pt, aad))))) }},
				imp{"crypto/cipher", func() { sink.Add(int64(len(gcmSeal(g, pt, aad)))) }})
			run("seal_to", size,
				imp{"keystrata", func() { sink.Add(int64(len(must(kc.SealTo(room, pt, aad))))) }},
				imp{"crypto/cipher", func() {
					rand.Read(groom[:12])
					sink.Add(int64(len(g.Seal(groom, groom[:12], pt, aad))))
				}})
		}
		if want("unseal") {
			ct, gct := must(kc.Seal(pt, aad)), gcmSeal(g, pt, aad)
			run("unseal", size,
				imp{"keystrata", func() { sink.Add(int64(len(must(kc.Unseal(ct, aad))))) }},
				imp{"crypto/cipher", func() { sink.Add(int64(len(gcmOpen(g, gct, aad)))) }})
		}
		if want("encrypt") {
			run("encrypt", size,
				imp{"keystrata", func() { sink.Add(int64(len(must(kc.Encrypt(pt, aad))))) }},
				imp{"crypto/cipher", func() { sink.Add(int64(len(gcmSeal(g, pt, aad)))) }})
			eroom := make([]byte, 0, size+keystrata.EncryptOverhead)
			groom := make([]byte, 12, size+28)
			run("encrypt_to", size,
				imp{"keystrata", func() { sink.Add(int64(len(must(kc.EncryptTo(eroom, pt, aad))))) }},
				imp{"crypto/cipher", func() {
					rand.Read(groom[:12])
					sink.Add(int64(len(g.Seal(groom, groom[:12], pt, aad))))
				}})
		}
		if want("decrypt") {
			ct, gct := must(kc.Encrypt(pt, aad)), gcmSeal(g, pt, aad)
			run("decrypt", size,
				imp{"keystrata", func() { sink.Add(int64(len(must(kc.Decrypt(ct, aad))))) }},
				imp{"crypto/cipher", func() { sink.Add(int64(len(gcmOpen(g, gct, aad)))) }})
		}
	}
	if want("derive") {
		run("derive_origin_key", 32,
			imp{"keystrata", func() { sink.Add(int64(len(must(kc.DeriveOriginKey("https://app.example", "web-1", 7))))) }},
			imp{"x/crypto/hkdf", func() {
				out := make([]byte, 32)
				must(io.ReadFull(hkdf.New(sha256.New, key, nil, originInfo("https://app.example", "web-1", 7)), out))
				sink.Add(int64(len(out)))
			}})
	}
	if want("wrap") {
		dek := make([]byte, 32)
		km := kc.KeyManager()
		run("wrap_key", 32,
			imp{"keystrata", func() { sink.Add(int64(len(must(km.WrapKey(nil, dek, nil)).Ciphertext))) }},
			imp{"crypto/cipher", func() { sink.Add(int64(len(gcmSeal(g, dek, []byte("bucket/object"))))) }})
	}
	if want("rng") {
		// Go's crypto/rand uses the kernel's vDSO getrandom (Linux >= 6.11):
		// no system call per nonce.
		n := make([]byte, 12)
		run("rng_12B", 12,
			imp{"crypto/rand", func() { rand.Read(n); sink.Add(int64(n[0])) }})
	}
	if want("stream_encrypt") || want("stream_decrypt") {
		streaming(want)
	}
	for _, alg := range []keystrata.Algorithm{keystrata.AlgorithmEd25519, keystrata.AlgorithmECDSAP256, keystrata.AlgorithmECDSASecp256k1} {
		signing(alg, want)
	}
	if want("threads") {
		threads(kc)
	}
}

// signing runs sign_<alg>, verify_<alg> and verify_signature_<alg> over a
// 64-byte message.
func signing(alg keystrata.Algorithm, want func(string) bool) {
	name := alg.String()
	signCase, verifyCase, vsCase := "sign_"+name, "verify_"+name, "verify_signature_"+name
	if !want(signCase) && !want(verifyCase) && !want(vsCase) {
		return
	}
	msg := make([]byte, 64)
	for i := range msg {
		msg[i] = byte(i)
	}
	kc := must(keystrata.Generate(nil))
	defer kc.Close()
	info := must(kc.RotateSigning(alg))
	pub := must(kc.PublicKey(info.KeyID, keystrata.PublicKeyRaw))
	sig := must(kc.Sign(msg)).Bytes

	// The standard library's peer, or none (secp256k1).
	var peerSign, peerVerify, peerVerifyRaw func()
	switch alg {
	case keystrata.AlgorithmEd25519:
		epub, epriv := must2(ed25519.GenerateKey(rand.Reader))
		esig := ed25519.Sign(epriv, msg)
		peerSign = func() { sink.Add(int64(len(ed25519.Sign(epriv, msg)))) }
		peerVerify = func() {
			if !ed25519.Verify(epub, msg, esig) {
				panic("ed25519.Verify")
			}
		}
		peerVerifyRaw = peerVerify
	case keystrata.AlgorithmECDSAP256:
		priv := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
		h := sha256.Sum256(msg)
		esig := must(ecdsa.SignASN1(rand.Reader, priv, h[:]))
		raw := must(priv.PublicKey.Bytes())
		peerSign = func() {
			h := sha256.Sum256(msg)
			sink.Add(int64(len(must(ecdsa.SignASN1(rand.Reader, priv, h[:])))))
		}
		peerVerify = func() {
			h := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(&priv.PublicKey, h[:], esig) {
				panic("ecdsa.VerifyASN1")
			}
		}
		peerVerifyRaw = func() {
			p := must(ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw))
			h := sha256.Sum256(msg)
			if !ecdsa.VerifyASN1(p, h[:], esig) {
				panic("ecdsa.VerifyASN1")
			}
		}
	}
	peer := func(name string, f func()) []imp {
		if f == nil {
			return nil
		}
		return []imp{{name, f}}
	}
	if want(signCase) {
		run(signCase, len(msg), append([]imp{{"keystrata", func() { sink.Add(int64(len(must(kc.Sign(msg)).Bytes))) }}},
			peer("crypto/"+peerPkg(alg), peerSign)...)...)
	}
	if want(verifyCase) {
		run(verifyCase, len(msg), append([]imp{{"keystrata", func() { must(kc.Verify(msg, sig)) }}},
			peer("crypto/"+peerPkg(alg), peerVerify)...)...)
	}
	if want(vsCase) {
		run(vsCase, len(msg), append([]imp{{"keystrata", func() {
			if err := keystrata.VerifySignature(alg, pub, msg, sig); err != nil {
				panic(err)
			}
		}}}, peer("crypto/"+peerPkg(alg), peerVerifyRaw)...)...)
	}
}

func peerPkg(alg keystrata.Algorithm) string {
	if alg == keystrata.AlgorithmEd25519 {
		return "ed25519"
	}
	return "ecdsa"
}

func must2[A, B any](a A, b B, err error) (A, B) {
	if err != nil {
		panic(err)
	}
	return a, b
}

// threads: Seal 64 B calls per second with 1 and 2 goroutines on one
// keychain (GOMAXPROCS is the machine's 2 cores), interleaved.
func threads(kc *keystrata.Keychain) {
	pt := make([]byte, 64)
	tput := func(n int) float64 {
		var total atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := 0
				for time.Since(start) < 2*sample {
					for j := 0; j < 64; j++ {
						must(kc.Seal(pt, nil))
					}
					k += 64
				}
				total.Add(int64(k))
			}()
		}
		wg.Wait()
		return float64(total.Load()) / time.Since(start).Seconds()
	}
	var one, two []float64
	for r := 0; r < rounds; r++ {
		one = append(one, tput(1))
		two = append(two, tput(2))
	}
	emit("seal_threads", 64, "keystrata-1", "ops/s", one)
	emit("seal_threads", 64, "keystrata-2", "ops/s", two)
}

const (
	streamTotal = 1 << 30
	streamChunk = 1 << 20
)

// streaming runs stream_encrypt and stream_decrypt at 1 GiB.
func streaming(want func(string) bool) {
	kc := must(keystrata.Generate(nil))
	defer kc.Close()
	must(kc.RotateStreaming(keystrata.StreamAES256GCMHKDF1MB))
	aad := []byte("bench/stream")
	chunk := bytes.Repeat([]byte{0x5a}, streamChunk)
	key := make([]byte, 32)
	rand.Read(key)
	g := must(cipher.NewGCM(must(aes.NewCipher(key))))
	out := make([]byte, 0, streamChunk+16)
	nonce := make([]byte, 12)
	if want("stream_encrypt") {
		run("stream_encrypt", streamTotal,
			imp{"keystrata", func() {
				w := must(kc.NewEncryptingWriter(io.Discard, aad))
				for i := 0; i < streamTotal/streamChunk; i++ {
					must(w.Write(chunk))
				}
				if err := w.Close(); err != nil {
					panic(err)
				}
			}},
			imp{"crypto/cipher", func() {
				for i := 0; i < streamTotal/streamChunk; i++ {
					binary.BigEndian.PutUint64(nonce[4:], uint64(i))
					out = g.Seal(out[:0], nonce, chunk, nil)
					sink.Add(int64(out[0]))
				}
			}})
	}
	if want("stream_decrypt") {
		var buf bytes.Buffer
		buf.Grow(streamTotal + 1<<16)
		w := must(kc.NewEncryptingWriter(&buf, aad))
		for i := 0; i < streamTotal/streamChunk; i++ {
			must(w.Write(chunk))
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		stream := buf.Bytes()
		// The peer's 1 GiB: 1,024 distinct messages (one cached message
		// opened 1,024 times would read from cache, not memory).
		sealed := make([][]byte, streamTotal/streamChunk)
		for i := range sealed {
			binary.BigEndian.PutUint64(nonce[4:], uint64(i))
			sealed[i] = g.Seal(nil, nonce, chunk, nil)
		}
		pt := make([]byte, streamChunk)
		run("stream_decrypt", streamTotal,
			imp{"keystrata", func() {
				r := must(kc.NewDecryptingReader(bytes.NewReader(stream), aad))
				total := 0
				for {
					n, err := r.Read(pt)
					total += n
					if err == io.EOF {
						break
					}
					if err != nil {
						panic(err)
					}
				}
				if total != streamTotal {
					panic("the stream decrypted to another length")
				}
			}},
			imp{"crypto/cipher", func() {
				for i, m := range sealed {
					binary.BigEndian.PutUint64(nonce[4:], uint64(i))
					out = must(g.Open(out[:0], nonce, m, nil))
					sink.Add(int64(out[0]))
				}
			}})
	}
}
