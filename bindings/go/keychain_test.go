package keystrata

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newKC(t *testing.T, p *Policy) *Keychain {
	t.Helper()
	kc, err := Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kc.Close() })
	return kc
}

func TestRoundTrips(t *testing.T) {
	kc := newKC(t, nil)
	for _, size := range []int{0, 1, 64, 1000, 1 << 20} {
		pt := bytes.Repeat([]byte{0xa5}, size)
		aad := []byte("aad")
		ct, err := kc.Seal(pt, aad)
		if err != nil || len(ct) != size+33 || ct[0] != 0x01 {
			t.Fatalf("seal %d: len %d, %v", size, len(ct), err)
		}
		got, err := kc.Unseal(ct, aad)
		if err != nil || !bytes.Equal(got, pt) || got == nil {
			t.Fatalf("unseal %d: %v", size, err)
		}
		blob, err := kc.Encrypt(pt, nil)
		if err != nil || len(blob) != size+99 {
			t.Fatalf("encrypt %d: len %d, %v", size, len(blob), err)
		}
		got, err = kc.Decrypt(blob, nil)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("decrypt %d: %v", size, err)
		}
	}
	env, err := kc.WrapKey(bytes.Repeat([]byte{0x42}, 32), []byte("ctx"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := kc.Primary()
	if env.Provider != "keystrata" || env.KeyVersion != int(p.Version) || env.KeyID != strconv.FormatUint(uint64(p.KeyID), 10) {
		t.Fatalf("envelope %+v, primary %+v", env, p)
	}
	meta, err := env.ToMetadata()
	if err != nil || len(meta) != 4 {
		t.Fatalf("metadata %v, %v", meta, err)
	}
	env2, err := EnvelopeFromMetadata(meta)
	if err != nil {
		t.Fatal(err)
	}
	dek, err := kc.UnwrapKey(env2, []byte("ctx"))
	if err != nil || !bytes.Equal(dek, bytes.Repeat([]byte{0x42}, 32)) {
		t.Fatalf("unwrap: %x, %v", dek, err)
	}
	if _, err := kc.UnwrapKey(env2, []byte("other")); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("wrong context: %v", err)
	}
}

func TestTampering(t *testing.T) {
	kc := newKC(t, nil)
	ct, _ := kc.Seal([]byte("secret"), []byte("a"))
	blob, _ := kc.Encrypt([]byte("document"), []byte("a"))
	for name, in := range map[string][]byte{"seal": ct, "encrypt": blob} {
		open := kc.Unseal
		if name == "encrypt" {
			open = kc.Decrypt
		}
		for i := 5; i < len(in); i++ { // every byte after the key prefix
			bad := bytes.Clone(in)
			bad[i] ^= 0x80
			if _, err := open(bad, []byte("a")); err == nil {
				t.Fatalf("%s: flipping byte %d accepted", name, i)
			}
		}
		if _, err := open(in, []byte("b")); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s wrong aad: %v", name, err)
		}
		if _, err := open(in[:len(in)-1], []byte("a")); !errors.Is(err, ErrAuthentication) {
			t.Errorf("%s truncated: %v", name, err)
		}
	}
}

// Every error kind reachable from Go, checked with errors.Is.
func TestErrorKinds(t *testing.T) {
	kc := newKC(t, nil)
	ct, _ := kc.Seal([]byte("x"), nil)
	add, _ := kc.AddKey(PurposeEncrypt)
	old, _ := kc.Primary()
	kc.Promote(add.KeyID)
	ctOld := ct
	dir := t.TempDir()

	check := func(name string, err error, want *Error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
			return
		}
		var e *Error
		if !errors.As(err, &e) || e.Code != want.Code || !strings.HasPrefix(e.Error(), "keystrata: ") {
			t.Errorf("%s: bad *Error %#v", name, e)
		}
		for _, other := range []*Error{ErrInvalidInput, ErrAuthentication, ErrUnknownKey, ErrFormat} {
			if other != want && errors.Is(err, other) {
				t.Errorf("%s: also matches %v", name, other)
			}
		}
	}
	_, err := kc.Derive(nil, 0)
	check("derive length 0", err, ErrInvalidInput)
	_, err = kc.Derive(nil, 8161)
	check("derive length 8161", err, ErrInvalidInput)
	_, err = kc.Unseal(append(bytes.Clone(ct[:len(ct)-1]), ct[len(ct)-1]^1), nil)
	check("tampered", err, ErrAuthentication)
	bad := bytes.Clone(ct)
	bad[1] ^= 0x40
	_, err = kc.Unseal(bad, nil)
	check("unknown key", err, ErrUnknownKey)
	check("promote unknown", kc.Disable(12345), ErrUnknownKey)
	check("disable primary", kc.Disable(add.KeyID), ErrPolicy)
	if err := kc.Disable(old.KeyID); err != nil {
		t.Fatal(err)
	}
	_, err = kc.Unseal(ctOld, nil)
	check("disabled", err, ErrKeyDisabled)
	if err := kc.Enable(old.KeyID); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Unseal(ctOld, nil); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}
	if err := kc.Destroy(old.KeyID); err != nil {
		t.Fatal(err)
	}
	_, err = kc.Unseal(ctOld, nil)
	check("destroyed", err, ErrKeyDestroyed)
	check("enable destroyed", kc.Enable(old.KeyID), ErrPolicy)
	_, err = kc.Unseal([]byte{0x02, 0, 0, 0, 1}, nil)
	check("format", err, ErrFormat)
	_, err = ImportTinkCleartext([]byte(`{"primaryKeyId":1,"key":[{"keyData":{"typeUrl":"type.googleapis.com/google.crypto.tink.AesEaxKey","value":"","keyMaterialType":"SYMMETRIC"},"status":"ENABLED","keyId":1,"outputPrefixType":"TINK"}]}`))
	check("unsupported", err, ErrUnsupported)
	root, _ := GenerateAgeRoot()
	defer root.Close()
	_, err = LoadFile(filepath.Join(dir, "missing.age"), root)
	check("io", err, ErrIo)
	_, err = NewAgeRoot([]string{"AGE-SECRET-KEY-1NOPE"}, nil)
	check("bad identity", err, ErrInvalidInput)
	_, err = NewPassphraseRoot("", 10)
	check("empty passphrase", err, ErrInvalidInput)
	_, err = kc.AddKey(Purpose(7))
	check("bad purpose", err, ErrInvalidInput)
	p1 := Policy{MaxEncryptionsPerKey: 2, UsageBlock: 1}
	small := newKC(t, &p1)
	small.Seal(nil, nil)
	small.Seal(nil, nil)
	_, err = small.Seal(nil, nil)
	check("policy limit", err, ErrPolicy)
	kc2 := newKC(t, nil)
	kc2.Close()
	_, err = kc2.Seal(nil, nil)
	check("closed", err, ErrUnavailable)
	_, err = kc.UnwrapKey(&KeyEnvelope{KeyID: "1", KeyVersion: 1, Provider: "other", Ciphertext: []byte{1}}, nil)
	check("other provider", err, ErrInvalidInput)
	_, err = EnvelopeFromMetadata(map[string]string{MetaKMSID: "1"})
	check("metadata", err, ErrFormat)
	if _, err := Generate(&Policy{MaxEncryptionsPerKey: 0}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("invalid policy: %v", err)
	}
	// Backend and Internal cannot be provoked through a keychain under an age
	// or passphrase root; their codes are still matched by errors.Is.
	if !errors.Is(&Error{Code: 8, Msg: "x"}, ErrBackend) || !errors.Is(&Error{Code: 12}, ErrInternal) || errors.Is(&Error{Code: 8}, ErrInternal) {
		t.Error("Is by code")
	}
}

// The sentinels take their numbers from the C header and Kind() reads the
// library's status names; this pins both to the core's kinds
// (core/tests/codes.rs has the same numbers and names).
func TestSentinelsAreTheCoreKinds(t *testing.T) {
	want := []struct {
		err  *Error
		code int
		kind string
	}{
		{ErrInvalidInput, 1, "invalid input"}, {ErrAuthentication, 2, "authentication"},
		{ErrUnknownKey, 3, "unknown key"}, {ErrKeyDisabled, 4, "key disabled"},
		{ErrKeyDestroyed, 5, "key destroyed"}, {ErrPolicy, 6, "policy"},
		{ErrUnsupported, 7, "unsupported"}, {ErrBackend, 8, "backend"},
		{ErrUnavailable, 9, "unavailable"}, {ErrFormat, 10, "format"}, {ErrIo, 11, "io"},
		{ErrInternal, 12, "internal"}, {ErrNullArgument, 100, "null argument"},
		{ErrBufferTooSmall, 101, "buffer too small"},
	}
	for _, w := range want {
		if w.err.Code != w.code || w.err.Kind() != w.kind || w.err.Error() != "keystrata: "+w.kind {
			t.Errorf("code %d: got code %d, kind %q, %q", w.code, w.err.Code, w.err.Kind(), w.err.Error())
		}
	}
	if k := (&Error{Code: 13}).Kind(); k != "error 13" {
		t.Errorf("unknown code: %q", k)
	}
}

func TestLifecycleAndDerive(t *testing.T) {
	kc := newKC(t, nil)
	k1, err := kc.DeriveOriginKey("https://a.example", "web-1", 0)
	if err != nil || len(k1) != 32 {
		t.Fatal(len(k1), err)
	}
	ct, _ := kc.Seal([]byte("before"), nil)
	r, err := kc.Rotate()
	if err != nil || !r.Primary || r.Version != 2 || r.Purpose != PurposeEncrypt {
		t.Fatalf("rotate: %+v %v", r, err)
	}
	if v, _ := kc.ActiveKeyVersion(); v != 2 {
		t.Fatalf("active version %d", v)
	}
	k2, _ := kc.DeriveOriginKey("https://a.example", "web-1", 0)
	if !bytes.Equal(k1, k2) {
		t.Fatal("derived key changed on rotate")
	}
	if k3, _ := kc.DeriveOriginKey("https://a.example", "web-1", 1); bytes.Equal(k1, k3) {
		t.Fatal("epoch ignored")
	}
	if pt, err := kc.Unseal(ct, nil); err != nil || string(pt) != "before" {
		t.Fatal(err)
	}
	oldDerive, _ := kc.PrimaryOf(PurposeDerive)
	if _, err := kc.RotateDerivation(); err != nil {
		t.Fatal(err)
	}
	k4, _ := kc.DeriveOriginKey("https://a.example", "web-1", 0)
	k5, _ := kc.DeriveOriginKeyWith(oldDerive.KeyID, "https://a.example", "web-1", 0)
	if bytes.Equal(k1, k4) || !bytes.Equal(k1, k5) {
		t.Fatal("derivation rotation")
	}
	d1, _ := kc.DeriveWith(oldDerive.KeyID, []byte("info"), 64)
	if len(d1) != 64 {
		t.Fatal(len(d1))
	}
	keys, _ := kc.Keys()
	if len(keys) != 4 {
		t.Fatalf("%d keys", len(keys))
	}
	for i := 0; i < 20; i++ { // grow past the first listing buffer
		kc.AddKey(PurposeEncrypt)
	}
	if keys, _ = kc.Keys(); len(keys) != 24 || keys[0].CreatedAt.After(time.Now()) {
		t.Fatalf("%d keys", len(keys))
	}
	pol, _ := kc.Policy()
	if pol != DefaultPolicy() || pol.MaxEncryptionsPerKey != 1<<32 {
		t.Fatalf("policy %+v", pol)
	}
	pol.MaxKeyAge = 90 * time.Minute
	if err := kc.SetPolicy(pol); err != nil {
		t.Fatal(err)
	}
	if got, _ := kc.Policy(); got.MaxKeyAge != 90*time.Minute {
		t.Fatalf("policy %+v", got)
	}
	c, err := kc.Counters()
	if err != nil || c.Seal != 1 || c.UnsealOK != 1 || c.Rotations != 2 || c.Derive < 5 {
		t.Fatalf("counters %+v %v", c, err)
	}
	kc.Unseal([]byte("garbage-garbage"), nil)
	if c, _ := kc.Counters(); c.UnsealFailed != 1 || c.ErrorCount(ErrFormat) != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestSaveLoadAndRoots(t *testing.T) {
	dir := t.TempDir()
	root, err := GenerateAgeRoot()
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ids, err := root.InsecureAgeIdentities()
	if err != nil || len(ids) != 1 || !strings.HasPrefix(ids[0], "AGE-SECRET-KEY-1") {
		t.Fatalf("%v %v", len(ids), err)
	}
	rs, err := root.AgeRecipients()
	if err != nil || len(rs) != 1 || !strings.HasPrefix(rs[0], "age1") {
		t.Fatalf("%v %v", rs, err)
	}
	kc := newKC(t, nil)
	ct, _ := kc.Seal([]byte("s"), nil)
	saved, err := kc.Save(root)
	if err != nil || !bytes.HasPrefix(saved, []byte("age-encryption.org/v1")) {
		t.Fatalf("save: %v", err)
	}
	// Recipients-only root saves but cannot load; identities-only loads.
	pub, err := NewAgeRoot(nil, rs)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if ids, err := pub.InsecureAgeIdentities(); err != nil || len(ids) != 0 {
		t.Fatalf("recipients-only identities: %v %v", ids, err)
	}
	saved2, err := kc.Save(pub)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := NewAgeRoot([]string{"# a comment\n" + ids[0] + "\n"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer priv.Close()
	for _, s := range [][]byte{saved, saved2} {
		kc2, err := Load(s, priv)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := kc2.Unseal(ct, nil); err != nil || string(pt) != "s" {
			t.Fatal(err)
		}
		kc2.Close()
	}
	if _, err := Load(saved, pub); err == nil {
		t.Fatal("recipients-only root loaded")
	}
	pass, err := NewPassphraseRoot("correct horse ✓", 10)
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Close()
	if _, err := pass.AgeRecipients(); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("passphrase root recipients: %v", err)
	}
	path := filepath.Join(dir, "kc.age")
	if err := kc.SaveFile(path, pass); err != nil {
		t.Fatal(err)
	}
	kc3, err := LoadFile(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	defer kc3.Close()
	if pt, err := kc3.Unseal(ct, nil); err != nil || string(pt) != "s" {
		t.Fatal(err)
	}
	if b, _ := kc3.IsBound(); b {
		t.Fatal("LoadFile gave a bound keychain")
	}
	if err := kc.SaveFile(filepath.Join(dir, "no", "such", "dir"), pass); !errors.Is(err, ErrIo) {
		t.Fatalf("save to missing dir: %v", err)
	}
	if err := kc.SaveFile("a\x00b", pass); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("NUL path: %v", err)
	}
}

func TestOpenBoundAutoRotate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bound.age")
	root, _ := GenerateAgeRoot()
	defer root.Close()
	pol := Policy{MaxEncryptionsPerKey: 3, UsageBlock: 1}
	kc, err := Open(path, root, &pol)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var events []Event
	if _, err := kc.Subscribe(func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }); err != nil {
		t.Fatal(err)
	}
	if b, _ := kc.IsBound(); !b {
		t.Fatal("not bound")
	}
	var cts [][]byte
	for i := 0; i < 10; i++ {
		ct, err := kc.Seal([]byte{byte(i)}, nil)
		if err != nil {
			t.Fatalf("seal %d: %v", i, err)
		}
		cts = append(cts, ct)
	}
	p, _ := kc.Primary()
	if p.Version < 4 {
		t.Fatalf("no automatic rotation: primary v%d", p.Version)
	}
	mu.Lock()
	auto := 0
	for _, e := range events {
		if e.Kind == EventKeyRotated && e.Automatic {
			auto++
		}
	}
	mu.Unlock()
	if auto < 3 {
		t.Fatalf("%d automatic rotation events: %+v", auto, events)
	}
	kc.Close()
	// Everything written is still readable after reopening the file.
	kc2, err := Open(path, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer kc2.Close()
	for i, ct := range cts {
		if pt, err := kc2.Unseal(ct, nil); err != nil || pt[0] != byte(i) {
			t.Fatalf("reopened unseal %d: %v", i, err)
		}
	}
}

func TestEvents(t *testing.T) {
	kc := newKC(t, nil)
	var mu sync.Mutex
	var got []Event
	id, err := kc.Subscribe(func(e Event) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
		if e.Kind == EventKeyRotated {
			kc.Keys() // callbacks may call back into the keychain
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	panicky, _ := kc.Subscribe(func(Event) { panic("subscriber bug") })
	r, _ := kc.Rotate()
	kc.Unseal([]byte{1, 2, 3, 4, 5, 6}, nil)
	mu.Lock()
	var sawRotate, sawFail bool
	for _, e := range got {
		if e.Kind == EventKeyRotated && e.KeyID == r.KeyID && e.KeyVersion == 2 && e.Purpose == PurposeEncrypt && !e.Automatic {
			sawRotate = true
		}
		if e.Kind == EventDecryptFailed && e.Err != nil {
			sawFail = true
		}
	}
	n := len(got)
	mu.Unlock()
	if !sawRotate || !sawFail {
		t.Fatalf("events %+v", got)
	}
	if err := kc.Unsubscribe(id); err != nil {
		t.Fatal(err)
	}
	if err := kc.Unsubscribe(id); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("second unsubscribe: %v", err)
	}
	kc.Unsubscribe(panicky)
	kc.Rotate()
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatal("event after unsubscribe")
	}
	if EventKeyRotated.String() != "key rotated" {
		t.Fatal(EventKeyRotated.String())
	}
}

// The String names come from the C library, which takes them from the
// core: pinned here for every value, and for numbers it does not know.
func TestEnumNames(t *testing.T) {
	got := []string{}
	for k := EventKind(0); k <= 11; k++ {
		got = append(got, k.String())
	}
	for p := Purpose(0); p <= 5; p++ {
		got = append(got, p.String())
	}
	for s := KeyStatus(0); s <= 4; s++ {
		got = append(got, s.String())
	}
	want := []string{"EventKind(0)", "key created", "key rotated", "key promoted", "key disabled",
		"key enabled", "key destroyed", "key derived", "decrypt failed", "signed", "verify failed",
		"EventKind(11)", "none", "encrypt", "derive", "sign", "stream", "Purpose(5)",
		"KeyStatus(0)", "enabled", "disabled", "destroyed", "KeyStatus(4)"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}
