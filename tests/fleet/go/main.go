// The fleet test's worker in Go (tests/fleet/README.md has the interface,
// shared with worker.c and worker.py).
//
//	fleet-go run LOCATION IDENTITY_FILE NAME SEED SECONDS MAX_OPS ROTATE_PERMILLE MAX_PER_KEY BLOCK
//	fleet-go check LOCATION IDENTITY_FILE RECORDS_FILE
//
// It stops at SECONDS, at MAX_OPS, or as soon as the file named by the
// environment variable KS_FLEET_STOP_FILE exists (checked every 16 ops);
// KS_FLEET_RATE, if set, caps its operations per second.
//
// Every output line goes out whole with one write to the unbuffered
// os.Stdout, so a worker killed at any moment leaves only complete lines
// (and at most one cut short, without its newline).
package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	ks "github.com/keystrata/keystrata/bindings/go"
)

var kindNames = map[int]string{
	1: "InvalidInput", 2: "Authentication", 3: "UnknownKey", 4: "KeyDisabled",
	5: "KeyDestroyed", 6: "Policy", 7: "Unsupported", 8: "Backend", 9: "Unavailable",
	10: "Format", 11: "Io", 12: "Internal",
}

func kind(err error) string {
	var e *ks.Error
	if errors.As(err, &e) {
		if n, ok := kindNames[e.Code]; ok {
			return n
		}
		return fmt.Sprintf("Code%d", e.Code)
	}
	return "NotKeystrata"
}

var outMu sync.Mutex

func emit(line string) {
	outMu.Lock()
	defer outMu.Unlock()
	os.Stdout.WriteString(line)
}

func rootFrom(path string) (*ks.Root, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ks.NewAgeRoot([]string{string(text)}, nil)
}

func run(a []string) int {
	location, identity, name := a[0], a[1], a[2]
	seed, _ := strconv.ParseInt(a[3], 10, 64)
	seconds, _ := strconv.ParseFloat(a[4], 64)
	maxOps, _ := strconv.Atoi(a[5])
	permille, _ := strconv.Atoi(a[6])
	maxPerKey, _ := strconv.ParseUint(a[7], 10, 64)
	block, _ := strconv.ParseUint(a[8], 10, 64)
	rng := rand.New(rand.NewSource(seed))
	root, err := rootFrom(identity)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-go: identity:", err)
		return 2
	}
	kc, err := ks.Open(location, root, &ks.Policy{MaxEncryptionsPerKey: maxPerKey, UsageBlock: block})
	if err != nil {
		emit(fmt.Sprintf("X %s open\n", kind(err)))
		fmt.Fprintf(os.Stderr, "fleet-go %s: open: %v\n", name, err)
		return 3
	}
	kc.Subscribe(func(e ks.Event) {
		if e.Kind == ks.EventKeyRotated && e.Purpose == ks.PurposeEncrypt {
			how := "manual"
			if e.Automatic {
				how = "auto"
			}
			emit(fmt.Sprintf("R %d %d %s\n", e.KeyID, e.KeyVersion, how))
		}
	})
	emit("READY\n")
	end := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	stopFile := os.Getenv("KS_FLEET_STOP_FILE")
	rate, _ := strconv.ParseFloat(os.Getenv("KS_FLEET_RATE"), 64)
	next := time.Now()
	ops, errs := 0, 0
	for i := 0; i < maxOps && time.Now().Before(end); i++ {
		if stopFile != "" && i%16 == 0 {
			if _, err := os.Stat(stopFile); err == nil {
				break // the harness ends the run
			}
		}
		if rate > 0 { // pacing: at most `rate` operations a second
			t := time.Now()
			if t.Before(next) {
				time.Sleep(next.Sub(t))
			} else {
				next = t
			}
			next = next.Add(time.Duration(float64(time.Second) / rate))
		}
		if rng.Intn(1000) < permille {
			if _, err := kc.Rotate(); err != nil {
				fmt.Fprintf(os.Stderr, "fleet-go %s: rotate: %s: %v\n", name, kind(err), err)
				emit(fmt.Sprintf("X %s rotate\n", kind(err)))
				errs++
			}
		}
		pt := []byte(fmt.Sprintf("fleet/%s/%d", name, i))
		aad := []byte(fmt.Sprintf("aad/%s/%d", name, i))
		var line string
		which := rng.Intn(3)
		op := []string{"seal", "encrypt", "wrap"}[which]
		switch which {
		case 0:
			ct, e := kc.Seal(pt, aad)
			err = e
			if err == nil {
				line = fmt.Sprintf("S %d %x %x %x\n", binary.BigEndian.Uint32(ct[1:5]), aad, pt, ct)
			}
		case 1:
			ct, e := kc.Encrypt(pt, aad)
			err = e
			if err == nil {
				line = fmt.Sprintf("E %d %x %x %x\n", binary.BigEndian.Uint32(ct[5:9]), aad, pt, ct)
			}
		default:
			dek := make([]byte, 32)
			copy(dek, pt)
			env, e := kc.WrapKey(dek, aad)
			err = e
			if err == nil {
				line = fmt.Sprintf("W %s %d %x %x %x\n", env.KeyID, env.KeyVersion, aad, dek, env.Ciphertext)
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "fleet-go %s: %s: %s: %v\n", name, op, kind(err), err)
			line = fmt.Sprintf("X %s %s\n", kind(err), op)
			errs++
			if errs > 1000 {
				emit(line)
				return 4
			}
		} else {
			ops++
		}
		emit(line)
	}
	emit(fmt.Sprintf("DONE %d %d\n", ops, errs))
	kc.Close()
	return 0
}

func check(a []string) int {
	root, err := rootFrom(a[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-go check: identity:", err)
		return 2
	}
	kc, err := ks.Open(a[0], root, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "fleet-go check: open: %s: %v\n", kind(err), err)
		return 2
	}
	defer kc.Close()
	f, err := os.Open(a[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-go check:", err)
		return 2
	}
	defer f.Close()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n, failed, lineno := 0, 0, 0
	for sc.Scan() {
		lineno++
		fld := strings.Fields(sc.Text())
		if len(fld) == 0 || (fld[0] != "S" && fld[0] != "E" && fld[0] != "W") {
			continue
		}
		n++
		why := "WrongPlaintext"
		ok := false
		dec := func(i int) []byte {
			b, e := hex.DecodeString(fld[i])
			if e != nil {
				why = "Format"
			}
			return b
		}
		var got []byte
		switch {
		case fld[0] == "S" && len(fld) == 5:
			aad, want, ct := dec(2), dec(3), dec(4)
			got, err = kc.Unseal(ct, aad)
			ok = err == nil && bytes.Equal(got, want)
		case fld[0] == "E" && len(fld) == 5:
			aad, want, ct := dec(2), dec(3), dec(4)
			got, err = kc.Decrypt(ct, aad)
			ok = err == nil && bytes.Equal(got, want)
		case fld[0] == "W" && len(fld) == 6:
			ver, _ := strconv.Atoi(fld[2])
			aad, want, ct := dec(3), dec(4), dec(5)
			got, err = kc.UnwrapKey(&ks.KeyEnvelope{KeyID: fld[1], KeyVersion: ver, Provider: "keystrata", Ciphertext: ct}, aad)
			ok = err == nil && bytes.Equal(got, want)
		default:
			err = nil
			why = "Format"
		}
		if err != nil {
			why = kind(err)
		}
		if !ok {
			failed++
			if failed <= 20 {
				fmt.Fprintf(out, "BAD %d %s %s %s\n", lineno, why, fld[0], fld[1])
			}
		}
	}
	keys, err := kc.Keys()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet-go check: keys:", err)
		return 2
	}
	for _, k := range keys {
		p := 0
		if k.Primary {
			p = 1
		}
		fmt.Fprintf(out, "K %d %d %s %s %d %d\n", k.KeyID, k.Version, k.Purpose, k.Status, k.Usage, p)
	}
	fmt.Fprintf(out, "checked %d failed %d\n", n, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

func main() {
	a := os.Args[1:]
	switch {
	case len(a) == 10 && a[0] == "run":
		os.Exit(run(a[1:]))
	case len(a) == 4 && a[0] == "check":
		os.Exit(check(a[1:]))
	}
	fmt.Fprintln(os.Stderr, "usage: fleet-go run LOCATION IDENTITY NAME SEED SECONDS MAX_OPS ROTATE_PERMILLE MAX BLOCK | check LOCATION IDENTITY RECORDS")
	os.Exit(2)
}
