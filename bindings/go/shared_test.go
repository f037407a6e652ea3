package keystrata

// Shared keychains (issue 12): one keychain file used by several handles
// and processes at once, through the public API only.
//
// Go cannot fork, so the other processes are this test binary run again
// as a helper (see init below). Every handle or process records what it
// made (ciphertexts with aad and plaintext, and each encryption rotation
// its events reported); afterwards a fresh handle loaded from the file must
// decrypt every ciphertext, hold every key rotated to, hold exactly
// 1 + rotations encryption keys, record at least as much usage per key as
// there are ciphertexts under it, and, with a small policy, carry no key
// with more ciphertexts than the policy's maximum (a usage count owned
// twice shows as such an excess).

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

const (
	sharedMax   = 40
	sharedBlock = 4
	// The helper process's settings, as JSON (see sharedHelperArgs).
	sharedHelperEnv = "KEYSTRATA_GO_SHARED_HELPER"
)

// sharedRecord is one thing a handle made, or one rotation (Kind "R").
type sharedRecord struct {
	Kind       string `json:"kind"` // S seal, E encrypt, W wrap, R rotation
	KeyID      uint32 `json:"key_id"`
	KeyVersion int    `json:"key_version,omitempty"`
	Automatic  bool   `json:"automatic,omitempty"`
	AAD        string `json:"aad,omitempty"`
	Plaintext  string `json:"plaintext,omitempty"`
	Ciphertext string `json:"ciphertext,omitempty"`
}

// sharedActor records one handle's (or process's) work.
type sharedActor struct {
	name    string
	mu      sync.Mutex
	records []sharedRecord
	seq     int
	out     *os.File // when set, every record is also written here as a line
}

func (a *sharedActor) add(r sharedRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.records = append(a.records, r)
	if a.out != nil {
		b, _ := json.Marshal(r)
		a.out.Write(append(b, '\n'))
	}
}

func (a *sharedActor) listen(kc *Keychain) error {
	_, err := kc.Subscribe(func(e Event) {
		if e.Kind == EventKeyRotated && e.Purpose == PurposeEncrypt {
			a.add(sharedRecord{Kind: "R", KeyID: e.KeyID, KeyVersion: int(e.KeyVersion), Automatic: e.Automatic})
		}
	})
	return err
}

// op seals, encrypts or wraps (by which % 3), records it and returns the
// ciphertext's key_id.
func (a *sharedActor) op(kc *Keychain, which int) (uint32, error) {
	a.mu.Lock()
	seq := a.seq
	a.seq++
	a.mu.Unlock()
	pt := []byte(fmt.Sprintf("%s/%d", a.name, seq))
	aad := []byte(fmt.Sprintf("aad:%s:%d", a.name, seq))
	r := sharedRecord{AAD: hex.EncodeToString(aad), Plaintext: hex.EncodeToString(pt)}
	switch which % 3 {
	case 0:
		ct, err := kc.Seal(pt, aad)
		if err != nil {
			return 0, fmt.Errorf("seal: %w", err)
		}
		r.Kind, r.KeyID, r.Ciphertext = "S", binary.BigEndian.Uint32(ct[1:5]), hex.EncodeToString(ct)
	case 1:
		ct, err := kc.Encrypt(pt, aad)
		if err != nil {
			return 0, fmt.Errorf("encrypt: %w", err)
		}
		r.Kind, r.KeyID, r.Ciphertext = "E", binary.BigEndian.Uint32(ct[5:9]), hex.EncodeToString(ct)
	default:
		dek := make([]byte, 32)
		copy(dek, pt)
		env, err := kc.WrapKey(dek, aad)
		if err != nil {
			return 0, fmt.Errorf("wrap: %w", err)
		}
		id := binary.BigEndian.Uint32(env.Ciphertext[1:5])
		if env.KeyID != strconv.FormatUint(uint64(id), 10) {
			return 0, fmt.Errorf("envelope key_id %s, ciphertext prefix %d", env.KeyID, id)
		}
		r.Kind, r.KeyID, r.KeyVersion = "W", id, env.KeyVersion
		r.Plaintext, r.Ciphertext = hex.EncodeToString(dek), hex.EncodeToString(env.Ciphertext)
	}
	a.add(r)
	return r.KeyID, nil
}

func readRecords(t *testing.T, path string) []sharedRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []sharedRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r sharedRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	return out
}

type sharedVerdict struct {
	ciphertexts, rotations, automatic, keys int
	perKey                                  map[uint32]int
}

// verifyShared checks every record against a fresh handle loaded from path.
func verifyShared(t *testing.T, path string, root *Root, records []sharedRecord, max int) sharedVerdict {
	t.Helper()
	fresh, err := LoadFile(path, root)
	if err != nil {
		t.Fatalf("fresh load: %v", err)
	}
	defer fresh.Close()
	keys, err := fresh.Keys()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uint32]KeyInfo{}
	enc, der := 0, 0
	for _, k := range keys {
		byID[k.KeyID] = k
		switch k.Purpose {
		case PurposeEncrypt:
			enc++
		case PurposeDerive:
			der++
		}
	}
	v := sharedVerdict{keys: len(keys), perKey: map[uint32]int{}}
	lost := 0
	for _, r := range records {
		if r.Kind == "R" {
			v.rotations++
			if r.Automatic {
				v.automatic++
			}
			if _, ok := byID[r.KeyID]; !ok {
				t.Errorf("rotation to key %d: not in the file", r.KeyID)
			}
			continue
		}
		aad, _ := hex.DecodeString(r.AAD)
		want, _ := hex.DecodeString(r.Plaintext)
		ct, _ := hex.DecodeString(r.Ciphertext)
		var got []byte
		switch r.Kind {
		case "S":
			got, err = fresh.Unseal(ct, aad)
		case "E":
			got, err = fresh.Decrypt(ct, aad)
		default:
			got, err = fresh.UnwrapKey(&KeyEnvelope{
				KeyID: strconv.FormatUint(uint64(r.KeyID), 10), KeyVersion: r.KeyVersion,
				Provider: "keystrata", Ciphertext: ct,
			}, aad)
		}
		v.ciphertexts++
		v.perKey[r.KeyID]++
		if err != nil || string(got) != string(want) {
			lost++
			if lost <= 5 {
				t.Errorf("LOST: %s ciphertext under key %d: %v", r.Kind, r.KeyID, err)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d ciphertexts lost", lost, v.ciphertexts)
	}
	if enc != 1+v.rotations || der != 1 {
		t.Errorf("%d encryption keys and %d derivation keys in the file; %d rotations reported", enc, der, v.rotations)
	}
	for id, n := range v.perKey {
		k, ok := byID[id]
		if !ok {
			t.Errorf("key %d of %d ciphertexts is not in the file", id, n)
			continue
		}
		if k.Usage < uint64(n) {
			t.Errorf("key %d records usage %d < %d ciphertexts", id, k.Usage, n)
		}
		if max > 0 && n > max {
			t.Errorf("key %d (v%d) has %d ciphertexts, over the limit of %d: a usage count was owned twice",
				id, k.Version, n, max)
		}
	}
	t.Logf("%d ciphertexts, %d keys, %d rotations (%d automatic)", v.ciphertexts, v.keys, v.rotations, v.automatic)
	return v
}

func sharedRoot(t *testing.T) (*Root, string) {
	t.Helper()
	root, err := GenerateAgeRoot()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	ids, err := root.InsecureAgeIdentities()
	if err != nil {
		t.Fatal(err)
	}
	return root, ids[0]
}

func TestSharedTwoHandlesOneRotates(t *testing.T) {
	root, _ := sharedRoot(t)
	path := filepath.Join(t.TempDir(), "keychain.age")
	pol := Policy{MaxEncryptionsPerKey: 1 << 32, UsageBlock: 4}
	h1, err := Open(path, root, &pol)
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	h2, err := Open(path, root, &pol)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	a1, a2 := &sharedActor{name: "h1"}, &sharedActor{name: "h2"}
	if err := a1.listen(h1); err != nil {
		t.Fatal(err)
	}
	if err := a2.listen(h2); err != nil {
		t.Fatal(err)
	}
	op := 0
	for r := 0; r < 12; r++ {
		if _, err := h1.Rotate(); err != nil {
			t.Fatal(err)
		}
		// h2 has not reloaded: its new usage blocks must not overwrite
		// the rotation.
		for i := 0; i < 10; i++ {
			if _, err := a2.op(h2, op); err != nil {
				t.Fatal(err)
			}
			op++
		}
		if _, err := a1.op(h1, op); err != nil {
			t.Fatal(err)
		}
		op++
	}
	// h2 uses h1's newest primary: polled with a deadline.
	newest, _ := h1.Primary()
	deadline := time.Now().Add(60 * time.Second)
	for {
		id, err := a2.op(h2, op)
		op++
		if err != nil {
			t.Fatal(err)
		}
		if id == newest.KeyID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h2 still encrypts under key %d, not h1's primary %d", id, newest.KeyID)
		}
	}
	// Both rotate and encrypt from goroutines at once.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, h := range []*Keychain{h1, h2} {
		a, every := []*sharedActor{a1, a2}[i], []int{15, 20}[i]
		wg.Add(1)
		go func(h *Keychain) {
			defer wg.Done()
			for j := 0; j < 120; j++ {
				if j%every == every-1 {
					if _, err := h.Rotate(); err != nil {
						errs <- err
						return
					}
				}
				if _, err := a.op(h, j); err != nil {
					errs <- err
					return
				}
			}
		}(h)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	h1.Close()
	h2.Close()
	v := verifyShared(t, path, root, append(a1.records, a2.records...), 0)
	if v.rotations != 12+120/15+120/20 || v.automatic != 0 {
		t.Errorf("%d rotations (%d automatic), want %d manual", v.rotations, v.automatic, 12+120/15+120/20)
	}
}

// The helper process (this test binary run again, from init): opens the
// keychain and works as sharedHelperArgs says, writing its records as JSON
// lines to stdout. It never returns into the test framework.
type sharedHelperArgs struct {
	Path     string `json:"path"`
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Ops      int    `json:"ops"`       // operations; 0: until stdin closes
	RotateAt int    `json:"rotate_at"` // -1: never rotate
	Policy   bool   `json:"policy"`    // open with the small policy
}

func init() {
	spec := os.Getenv(sharedHelperEnv)
	if spec == "" {
		return
	}
	os.Exit(sharedHelper(spec))
}

func sharedHelper(spec string) int {
	var a sharedHelperArgs
	if err := json.Unmarshal([]byte(spec), &a); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	root, err := NewAgeRoot([]string{a.Identity}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: root:", err)
		return 3
	}
	var pol *Policy
	if a.Policy {
		pol = &Policy{MaxEncryptionsPerKey: sharedMax, UsageBlock: sharedBlock}
	}
	kc, err := Open(a.Path, root, pol)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: open:", err)
		return 3
	}
	actor := &sharedActor{name: a.Name, out: os.Stdout}
	if err := actor.listen(kc); err != nil {
		return 3
	}
	stop := make(chan struct{})
	if a.Ops == 0 {
		go func() {
			buf := make([]byte, 64)
			for {
				if _, err := os.Stdin.Read(buf); err != nil {
					close(stop)
					return
				}
			}
		}()
	}
	end := time.Now().Add(120 * time.Second)
	for i := 0; (a.Ops == 0 && i < 200000) || i < a.Ops; i++ {
		if time.Now().After(end) {
			break
		}
		select {
		case <-stop:
			kc.Close()
			return 0
		default:
		}
		if i == a.RotateAt {
			if _, err := kc.Rotate(); err != nil {
				fmt.Fprintln(os.Stderr, "helper: rotate:", err)
				return 4
			}
		}
		which := i
		if a.Ops == 0 {
			which = i % 2                    // encrypt-only: seal and encrypt, never anything that writes
			time.Sleep(2 * time.Millisecond) // pacing only: keeps the output small
		}
		if _, err := actor.op(kc, which); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 5
		}
	}
	kc.Close()
	return 0
}

func startHelper(t *testing.T, a sharedHelperArgs, stdout *os.File) (*exec.Cmd, *os.File) {
	t.Helper()
	spec, _ := json.Marshal(a)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), sharedHelperEnv+"="+string(spec))
	cmd.Stdout = stdout
	cmd.Stderr = os.Stderr
	var stdin *os.File
	if a.Ops == 0 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = r
		stdin = w
		defer r.Close()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, stdin
}

// waitHelper waits for cmd at most d; kills it after that.
func waitHelper(t *testing.T, cmd *exec.Cmd, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("helper %d: %v", cmd.Process.Pid, err)
		}
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		t.Errorf("helper %d did not finish in %v; killed", cmd.Process.Pid, d)
	}
}

func TestSharedProcessesLoseNothingAndKeepTheLimit(t *testing.T) {
	root, identity := sharedRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "keychain.age")
	pol := Policy{MaxEncryptionsPerKey: sharedMax, UsageBlock: sharedBlock}
	kc, err := Open(path, root, &pol)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	me := &sharedActor{name: "parent"}
	if err := me.listen(kc); err != nil {
		t.Fatal(err)
	}
	const procs, ops = 3, 150
	var cmds []*exec.Cmd
	var outs []string
	for c := 0; c < procs; c++ {
		out := filepath.Join(dir, fmt.Sprintf("child%d.jsonl", c))
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		cmd, _ := startHelper(t, sharedHelperArgs{
			Path: path, Identity: identity, Name: fmt.Sprintf("child%d", c),
			Ops: ops, RotateAt: 40 + 30*c, Policy: true,
		}, f)
		f.Close()
		cmds = append(cmds, cmd)
		outs = append(outs, out)
	}
	// The parent works meanwhile on its own handle.
	for i := 0; i < ops; i++ {
		if i == 100 {
			if _, err := kc.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := me.op(kc, i); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range cmds {
		waitHelper(t, cmd, 180*time.Second)
	}
	kc.Close()
	all := append([]sharedRecord(nil), me.records...)
	for _, o := range outs {
		all = append(all, readRecords(t, o)...)
	}
	v := verifyShared(t, path, root, all, sharedMax)
	if v.ciphertexts != (procs+1)*ops || v.rotations-v.automatic != procs+1 {
		t.Errorf("%d ciphertexts, %d manual rotations; want %d and %d",
			v.ciphertexts, v.rotations-v.automatic, (procs+1)*ops, procs+1)
	}
	if v.automatic < v.ciphertexts/sharedMax/2 {
		t.Errorf("only %d automatic rotations for %d ciphertexts", v.automatic, v.ciphertexts)
	}
}

func TestSharedEncryptOnlyProcessAdoptsEachNewPrimary(t *testing.T) {
	root, identity := sharedRoot(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "keychain.age")
	kc, err := Open(path, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	me := &sharedActor{name: "rotator"}
	if err := me.listen(kc); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdin := startHelper(t, sharedHelperArgs{
		Path: path, Identity: identity, Name: "encrypt-only", Ops: 0, RotateAt: -1,
	}, w)
	w.Close()
	lines := make(chan sharedRecord, 1024)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec sharedRecord
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				lines <- rec
			}
		}
		close(lines)
	}()
	var theirs []sharedRecord
	waitFor := func(id uint32, d time.Duration) bool {
		deadline := time.After(d)
		for {
			select {
			case rec, ok := <-lines:
				if !ok {
					return false
				}
				theirs = append(theirs, rec)
				if rec.KeyID == id {
					return true
				}
			case <-deadline:
				return false
			}
		}
	}
	first, _ := kc.Primary()
	if !waitFor(first.KeyID, 60*time.Second) {
		t.Fatal("the encrypt-only process produced nothing under the first primary")
	}
	var worst time.Duration
	for i := 0; i < 3; i++ {
		k, err := kc.Rotate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := me.op(kc, i); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if !waitFor(k.KeyID, 60*time.Second) {
			t.Fatalf("the encrypt-only process never adopted the new primary %d", k.KeyID)
		}
		if d := time.Since(t0); d > worst {
			worst = d
		}
	}
	stdin.Close()
	waitHelper(t, cmd, 60*time.Second)
	for rec := range lines {
		theirs = append(theirs, rec)
	}
	r.Close()
	kc.Close()
	t.Logf("adopted each new primary within %v", worst)
	v := verifyShared(t, path, root, append(me.records, theirs...), 0)
	if v.rotations != 3 || v.automatic != 0 {
		t.Errorf("%d rotations (%d automatic), want 3 manual", v.rotations, v.automatic)
	}
}
