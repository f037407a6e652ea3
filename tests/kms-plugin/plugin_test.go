// Package kmsplugintest drives the keystrata KMS v2 plugin (a real process:
// kms-plugin/src/bin/keystrata-kms-plugin.rs) with the upstream clients: the generated
// client of k8s.io/kms/apis/v2 over the unix socket, and kube-apiserver's
// own KMS v2 code (k8s.io/apiserver's kmsv2 gRPC service and envelope
// transformer), so the plugin is checked against what the apiserver really
// sends, validates and stores.
//
// Run by kms-plugin/tests/go.rs (`cargo test -p keystrata-kms-plugin`),
// which builds the binaries, starts the shared plugin and sets:
//
//	KMS_PLUGIN_SERVE     the serve example binary
//	KMS_PLUGIN_ADMIN     the admin example binary (rotate, disable, ...)
//	KMS_PLUGIN_ROOT      the root URI of every keychain here (age:FILE)
//	KMS_PLUGIN_KEYCHAIN  the shared plugin's keychain location; tests that
//	                     need their own keychain derive one from it (a file
//	                     in a temp dir, or another etcd key)
//	KMS_PLUGIN_SOCKET    the shared plugin's socket path
//	KMS_PLUGIN_METRICS   the shared plugin's /metrics address (host:port)
package kmsplugintest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/storage/value"
	"k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2"
	kmstypes "k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2"
	kmsapi "k8s.io/kms/apis/v2"
)

// The plugin's contract (kms-plugin/src/service.rs).
const (
	keyIDPrefix      = "keystrata-"
	formatAnnotation = "format.kms-plugin.keystrata.example.invalid"
	formatSealV1     = "seal-v1"
	sealOverhead     = 33
	maxCiphertext    = 1024
	maxPlaintext     = maxCiphertext - sealOverhead
)

var env = map[string]string{}

func TestMain(m *testing.M) {
	missing := []string{}
	for _, k := range []string{"KMS_PLUGIN_SERVE", "KMS_PLUGIN_ADMIN", "KMS_PLUGIN_ROOT",
		"KMS_PLUGIN_KEYCHAIN", "KMS_PLUGIN_SOCKET", "KMS_PLUGIN_METRICS"} {
		env[k] = os.Getenv(k)
		if env[k] == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(os.Stderr, "missing %s: run these tests through "+
			"`cargo test -p keystrata-kms-plugin --test go`, which builds and starts the plugin\n",
			strings.Join(missing, ", "))
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// ---- helpers ---------------------------------------------------------------

func dial(t *testing.T, socket string) kmsapi.KeyManagementServiceClient {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc.NewClient: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return kmsapi.NewKeyManagementServiceClient(conn)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// admin runs the admin example on keychain and returns its output.
func admin(t *testing.T, keychain string, args ...string) string {
	t.Helper()
	cmd := exec.Command(env["KMS_PLUGIN_ADMIN"],
		append([]string{"--keychain", keychain, "--root", env["KMS_PLUGIN_ROOT"]}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("admin %v: %v: %s", args, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// keyID reads key_id=N from an admin line and returns the plugin's spelling.
func keyID(t *testing.T, line string) string {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "key_id="); ok {
			return keyIDPrefix + v
		}
	}
	t.Fatalf("no key_id in %q", line)
	return ""
}

func numericKeyID(t *testing.T, pluginKeyID string) string {
	t.Helper()
	n, ok := strings.CutPrefix(pluginKeyID, keyIDPrefix)
	if !ok {
		t.Fatalf("key_id %q lacks the %q prefix", pluginKeyID, keyIDPrefix)
	}
	return n
}

// newKeychain names a keychain of the test's own, in the same kind of store
// as the shared one.
func newKeychain(t *testing.T) string {
	base := env["KMS_PLUGIN_KEYCHAIN"]
	if strings.HasPrefix(base, "etcd://") || strings.HasPrefix(base, "etcds://") {
		return fmt.Sprintf("%s-%s-%d", base, strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	}
	return filepath.Join(t.TempDir(), "keychain.age")
}

// socketPath is a fresh socket path, short enough for sun_path.
func socketPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "kmsp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "p.sock")
}

type plugin struct {
	cmd     *exec.Cmd
	socket  string
	metrics string
	stderr  *syncBuffer
	done    chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startPlugin starts the serve example and waits for its "ready" line.
func startPlugin(t *testing.T, keychain, socket string, extra ...string) *plugin {
	t.Helper()
	p, err := tryStartPlugin(keychain, socket, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func tryStartPlugin(keychain, socket string, extra ...string) (*plugin, error) {
	args := append([]string{"--keychain", keychain, "--root", env["KMS_PLUGIN_ROOT"],
		"--listen", "unix://" + socket, "--metrics-listen", "127.0.0.1:0", "--refresh-ms", "100"}, extra...)
	cmd := exec.Command(env["KMS_PLUGIN_SERVE"], args...)
	p := &plugin{cmd: cmd, socket: socket, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- line
		io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	select {
	case line := <-ready:
		if !strings.HasPrefix(line, "ready ") {
			err := <-p.done
			return p, fmt.Errorf("plugin did not start (%v): %s", err, p.stderr.String())
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "metrics="); ok {
				p.metrics = v
			}
		}
		return p, nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return p, fmt.Errorf("plugin not ready after 60 s: %s", p.stderr.String())
	}
}

// stop sends SIGTERM and requires a clean exit and the socket file gone.
func (p *plugin) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("plugin exited with %v after SIGTERM: %s", err, p.stderr.String())
		}
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("plugin still running 30 s after SIGTERM: %s", p.stderr.String())
	}
	if _, err := os.Lstat(p.socket); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket %s still there after a graceful stop (%v)", p.socket, err)
	}
}

// waitFor polls cond for at most 15 s (the plugins here refresh every 100 ms).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusOf(t *testing.T, c kmsapi.KeyManagementServiceClient) *kmsapi.StatusResponse {
	t.Helper()
	s, err := c.Status(ctx(t), &kmsapi.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return s
}

func encrypt(t *testing.T, c kmsapi.KeyManagementServiceClient, pt []byte) *kmsapi.EncryptResponse {
	t.Helper()
	r, err := c.Encrypt(ctx(t), &kmsapi.EncryptRequest{Plaintext: pt, Uid: "uid-" + t.Name()})
	if err != nil {
		t.Fatalf("Encrypt(%d bytes): %v", len(pt), err)
	}
	return r
}

func decryptReq(r *kmsapi.EncryptResponse) *kmsapi.DecryptRequest {
	return &kmsapi.DecryptRequest{Ciphertext: r.Ciphertext, Uid: "d", KeyId: r.KeyId, Annotations: r.Annotations}
}

func decrypt(t *testing.T, c kmsapi.KeyManagementServiceClient, r *kmsapi.EncryptResponse) []byte {
	t.Helper()
	d, err := c.Decrypt(ctx(t), decryptReq(r))
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	return d.Plaintext
}

func codeOf(err error) codes.Code { return status.Code(err) }

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// checkAsAPIServer runs kube-apiserver's own validation of an Encrypt reply.
func checkAsAPIServer(t *testing.T, r *kmsapi.EncryptResponse) {
	t.Helper()
	o := &kmstypes.EncryptedObject{
		KeyID:                  r.KeyId,
		EncryptedDEKSource:     r.Ciphertext,
		EncryptedData:          []byte{0},
		Annotations:            r.Annotations,
		EncryptedDEKSourceType: kmstypes.EncryptedDEKSourceType_HKDF_SHA256_XNONCE_AES_GCM_SEED,
	}
	if err := kmsv2.ValidateEncryptedObject(o); err != nil {
		t.Fatalf("kube-apiserver would refuse this reply: %v", err)
	}
	for k := range r.Annotations {
		if errs := validation.IsFullyQualifiedDomainName(field.NewPath("annotations"), k); len(errs) > 0 {
			t.Fatalf("annotation key %q: %v", k, errs)
		}
	}
}

// ---- the shared plugin -----------------------------------------------------

func TestStatusIsHealthyV2AndNamesThePrimary(t *testing.T) {
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	s := statusOf(t, c)
	if s.Version != kmsv2.KMSAPIVersionv2 {
		t.Errorf("version %q, want %q", s.Version, kmsv2.KMSAPIVersionv2)
	}
	if s.Healthz != "ok" {
		t.Errorf("healthz %q", s.Healthz)
	}
	if _, err := kmsv2.ValidateKeyID(s.KeyId); err != nil {
		t.Errorf("key_id %q: %v", s.KeyId, err)
	}
	if want := keyID(t, admin(t, env["KMS_PLUGIN_KEYCHAIN"], "primary")); s.KeyId != want {
		t.Errorf("key_id %q, the keychain's primary is %q", s.KeyId, want)
	}
}

func TestRoundTripsOfEverySizeTheAPIServerAccepts(t *testing.T) {
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	want := statusOf(t, c).KeyId
	for _, n := range []int{1, 16, 31, 32, 33, 64, 255, 256, 512, 990, maxPlaintext} {
		pt := pattern(n, byte(n))
		r := encrypt(t, c, pt)
		if len(r.Ciphertext) != n+sealOverhead || len(r.Ciphertext) > maxCiphertext {
			t.Errorf("%d bytes: ciphertext is %d bytes", n, len(r.Ciphertext))
		}
		if r.KeyId != want {
			t.Errorf("%d bytes: key_id %q, Status said %q", n, r.KeyId, want)
		}
		if got := string(r.Annotations[formatAnnotation]); got != formatSealV1 || len(r.Annotations) != 1 {
			t.Errorf("annotations %q", r.Annotations)
		}
		checkAsAPIServer(t, r)
		if got := decrypt(t, c, r); !bytes.Equal(got, pt) {
			t.Errorf("%d bytes: round trip gave %d other bytes", n, len(got))
		}
		// The request's key_id is advisory, annotations may be missing.
		d, err := c.Decrypt(ctx(t), &kmsapi.DecryptRequest{Ciphertext: r.Ciphertext, KeyId: "keystrata-1"})
		if err != nil || !bytes.Equal(d.Plaintext, pt) {
			t.Errorf("%d bytes: decrypt with another key_id and no annotations: %v", n, err)
		}
	}
	// Two encryptions of one key differ (fresh nonces).
	a, b := encrypt(t, c, pattern(32, 1)), encrypt(t, c, pattern(32, 1))
	if bytes.Equal(a.Ciphertext, b.Ciphertext) {
		t.Error("two encryptions gave the same ciphertext")
	}
}

func TestConcurrentCallsFromManyGoroutines(t *testing.T) {
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 25; i++ {
				pt := pattern(32, byte(g*31+i))
				r, err := c.Encrypt(context.Background(), &kmsapi.EncryptRequest{Plaintext: pt, Uid: "c"})
				if err != nil {
					errs <- err
					return
				}
				d, err := c.Decrypt(context.Background(), decryptReq(r))
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(d.Plaintext, pt) {
					errs <- fmt.Errorf("goroutine %d: wrong plaintext", g)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestBadRequestsAreInvalidArgument(t *testing.T) {
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	good := encrypt(t, c, pattern(32, 9))
	big := map[string][]byte{"big.example.com": make([]byte, 32*1024)}
	cases := []struct {
		name string
		call func() error
		code codes.Code
	}{
		{"empty plaintext", func() error {
			_, err := c.Encrypt(ctx(t), &kmsapi.EncryptRequest{Uid: "x"})
			return err
		}, codes.InvalidArgument},
		{"plaintext one byte over", func() error {
			_, err := c.Encrypt(ctx(t), &kmsapi.EncryptRequest{Plaintext: make([]byte, maxPlaintext+1)})
			return err
		}, codes.InvalidArgument},
		{"plaintext of 60 KiB", func() error {
			_, err := c.Encrypt(ctx(t), &kmsapi.EncryptRequest{Plaintext: make([]byte, 60*1024)})
			return err
		}, codes.InvalidArgument},
		// Above the 64 KiB message limit the transport refuses the message
		// before reading it (tonic: OutOfRange).
		{"plaintext of 1 MiB", func() error {
			_, err := c.Encrypt(ctx(t), &kmsapi.EncryptRequest{Plaintext: make([]byte, 1<<20)})
			return err
		}, codes.OutOfRange},
		{"uid of 257 bytes", func() error {
			_, err := c.Encrypt(ctx(t), &kmsapi.EncryptRequest{Plaintext: make([]byte, 32), Uid: strings.Repeat("u", 257)})
			return err
		}, codes.InvalidArgument},
		{"empty ciphertext", func() error {
			_, err := c.Decrypt(ctx(t), &kmsapi.DecryptRequest{})
			return err
		}, codes.InvalidArgument},
		{"ciphertext over 1 KiB", func() error {
			_, err := c.Decrypt(ctx(t), &kmsapi.DecryptRequest{Ciphertext: make([]byte, maxCiphertext+1)})
			return err
		}, codes.InvalidArgument},
		{"key_id over 1 KiB", func() error {
			r := decryptReq(good)
			r.KeyId = strings.Repeat("k", 1025)
			_, err := c.Decrypt(ctx(t), r)
			return err
		}, codes.InvalidArgument},
		{"annotations over 32 KiB", func() error {
			r := decryptReq(good)
			r.Annotations = big
			_, err := c.Decrypt(ctx(t), r)
			return err
		}, codes.InvalidArgument},
		{"a format this plugin does not know", func() error {
			r := decryptReq(good)
			r.Annotations = map[string][]byte{formatAnnotation: []byte("seal-v2")}
			_, err := c.Decrypt(ctx(t), r)
			return err
		}, codes.InvalidArgument},
		{"not a sealed ciphertext", func() error {
			_, err := c.Decrypt(ctx(t), &kmsapi.DecryptRequest{Ciphertext: []byte("definitely not a ciphertext, but long enough")})
			return err
		}, codes.InvalidArgument},
	}
	for _, tc := range cases {
		if got := codeOf(tc.call()); got != tc.code {
			t.Errorf("%s: code %v, want %v", tc.name, got, tc.code)
		}
	}
	if s := statusOf(t, c); s.Healthz != "ok" {
		t.Errorf("healthz after bad requests: %q", s.Healthz)
	}
}

func TestTamperedCiphertextsAreRefused(t *testing.T) {
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	r := encrypt(t, c, pattern(32, 3))
	try := func(ct []byte) error {
		req := decryptReq(r)
		req.Ciphertext = ct
		_, err := c.Decrypt(ctx(t), req)
		return err
	}
	for i := range r.Ciphertext {
		ct := bytes.Clone(r.Ciphertext)
		ct[i] ^= 0x01
		err := try(ct)
		want := codes.InvalidArgument // Format (byte 0) or Authentication
		if i >= 1 && i <= 4 {
			want = codes.NotFound // the prefix now names a key the keychain lacks
		}
		if codeOf(err) != want {
			t.Errorf("byte %d flipped: %v, want %v", i, err, want)
		}
		if i >= 5 && !strings.Contains(status.Convert(err).Message(), "Authentication") {
			t.Errorf("byte %d flipped: %q does not say Authentication", i, status.Convert(err).Message())
		}
	}
	if err := try(r.Ciphertext[:len(r.Ciphertext)-1]); codeOf(err) != codes.InvalidArgument {
		t.Errorf("cut by one byte: %v", err)
	}
	if err := try(append(bytes.Clone(r.Ciphertext), 0)); codeOf(err) != codes.InvalidArgument {
		t.Errorf("one byte longer: %v", err)
	}
	if got := decrypt(t, c, r); !bytes.Equal(got, pattern(32, 3)) {
		t.Error("the untampered ciphertext no longer decrypts")
	}
}

func TestMetricsParseAndCountRequests(t *testing.T) {
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	s := statusOf(t, c)
	encrypt(t, c, pattern(32, 5))
	resp, err := http.Get("http://" + env["KMS_PLUGIN_METRICS"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %s, %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("Prometheus's own parser refuses /metrics: %v", err)
	}
	counted := func(method, code string) float64 {
		for _, m := range families["kms_plugin_requests_total"].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["method"] == method && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
		return -1
	}
	if n := counted("Encrypt", "OK"); n < 1 {
		t.Errorf("Encrypt OK counted %v", n)
	}
	if n := counted("Status", "OK"); n < 1 {
		t.Errorf("Status OK counted %v", n)
	}
	h := families["kms_plugin_request_duration_seconds"]
	if h.GetType().String() != "HISTOGRAM" || len(h.GetMetric()) != 3 {
		t.Errorf("request duration: %v with %d series", h.GetType(), len(h.GetMetric()))
	}
	info := families["kms_plugin_key_info"].GetMetric()
	if len(info) != 1 || info[0].GetLabel()[0].GetValue() != s.KeyId {
		t.Errorf("kms_plugin_key_info %v, Status key_id %q", info, s.KeyId)
	}
	if g := families["kms_plugin_healthy"].GetMetric(); len(g) != 1 || g[0].GetGauge().GetValue() != 1 {
		t.Errorf("kms_plugin_healthy %v", g)
	}
	// The keychain's own metrics are served too.
	if _, ok := families["kms_seal_total"]; !ok {
		t.Error("no kms_seal_total from the keychain")
	}
	hz, err := http.Get("http://" + env["KMS_PLUGIN_METRICS"] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hz.Body)
	hz.Body.Close()
	if hz.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz: %s %q", hz.Status, body)
	}
}

// kube-apiserver's own KMS v2 path over the plugin: its gRPC service, its
// DEK-seed generation and validation, its envelope transformer writing and
// reading objects, and its staleness rule after a rotation.
func TestAPIServerEnvelopeTransformerAcrossARotation(t *testing.T) {
	keychain := env["KMS_PLUGIN_KEYCHAIN"]
	socket := env["KMS_PLUGIN_SOCKET"]
	c := dial(t, socket)
	svc, err := kmsv2.NewGRPCService(ctx(t), "unix://"+socket, "keystrata-test", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	newState := func() kmsv2.State {
		transformer, obj, cacheKey, err := kmsv2.GenerateTransformer(ctx(t), "uid-state", svc, true)
		if err != nil {
			t.Fatalf("GenerateTransformer: %v", err)
		}
		return kmsv2.State{
			Transformer:                           transformer,
			EncryptedObjectKeyID:                  obj.KeyID,
			EncryptedObjectEncryptedDEKSource:     obj.EncryptedDEKSource,
			EncryptedObjectAnnotations:            obj.Annotations,
			EncryptedObjectEncryptedDEKSourceType: obj.EncryptedDEKSourceType,
			UID:                                   "uid-state",
			ExpirationTimestamp:                   time.Now().Add(3 * time.Minute),
			CacheKey:                              cacheKey,
			KMSProviderName:                       "keystrata-test",
		}
	}
	var mu sync.Mutex
	state := newState()
	stateFunc := func() (kmsv2.State, error) { mu.Lock(); defer mu.Unlock(); return state, nil }
	// A fresh transformer has an empty DEK cache: reads go to the plugin.
	fresh := func() value.Transformer {
		return kmsv2.NewEnvelopeTransformer(svc, "keystrata-test", stateFunc, "apiserver-1")
	}
	if want := statusOf(t, c).KeyId; state.EncryptedObjectKeyID != want {
		t.Fatalf("the apiserver's state has key_id %q, Status says %q", state.EncryptedObjectKeyID, want)
	}
	secret := []byte(`{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}`)
	dataCtx := value.DefaultContext("/registry/secrets/default/db")
	stored, err := fresh().TransformToStorage(ctx(t), secret, dataCtx)
	if err != nil {
		t.Fatalf("TransformToStorage: %v", err)
	}
	if bytes.Contains(stored, []byte("aHVudGVyMg")) {
		t.Fatal("the stored object holds the plaintext")
	}
	got, stale, err := fresh().TransformFromStorage(ctx(t), stored, dataCtx)
	if err != nil || stale || !bytes.Equal(got, secret) {
		t.Fatalf("read back: %v, stale %v", err, stale)
	}
	// Another object path is other associated data: refused.
	if _, _, err := fresh().TransformFromStorage(ctx(t), stored, value.DefaultContext("/registry/secrets/default/other")); err == nil {
		t.Fatal("an object moved to another key decrypted")
	}

	// Rotate the keychain from another process; the plugin reports the new
	// key, the apiserver (as its Status loop does) makes a new DEK seed.
	before := state.EncryptedObjectKeyID
	rotated := keyID(t, admin(t, keychain, "rotate"))
	waitFor(t, "Status to report the new key", func() bool { return statusOf(t, c).KeyId == rotated })
	mu.Lock()
	state = newState()
	mu.Unlock()
	if state.EncryptedObjectKeyID != rotated || rotated == before {
		t.Fatalf("after rotating: state key_id %q, rotated %q, before %q", state.EncryptedObjectKeyID, rotated, before)
	}
	// The old object still reads, and is stale: the apiserver would
	// rewrite it under the new key (storage migration).
	got, stale, err = fresh().TransformFromStorage(ctx(t), stored, dataCtx)
	if err != nil || !stale || !bytes.Equal(got, secret) {
		t.Fatalf("old object after rotation: %v, stale %v (want true)", err, stale)
	}
	restored, err := fresh().TransformToStorage(ctx(t), got, dataCtx)
	if err != nil {
		t.Fatal(err)
	}
	got, stale, err = fresh().TransformFromStorage(ctx(t), restored, dataCtx)
	if err != nil || stale || !bytes.Equal(got, secret) {
		t.Fatalf("rewritten object: %v, stale %v", err, stale)
	}
}

func TestRotationInTheMiddle(t *testing.T) {
	keychain := env["KMS_PLUGIN_KEYCHAIN"]
	c := dial(t, env["KMS_PLUGIN_SOCKET"])
	before := statusOf(t, c).KeyId
	var old []*kmsapi.EncryptResponse
	for i := 0; i < 5; i++ {
		old = append(old, encrypt(t, c, pattern(32, byte(i))))
	}
	rotated := keyID(t, admin(t, keychain, "rotate"))
	if rotated == before {
		t.Fatalf("rotate kept key %q", before)
	}
	waitFor(t, "Status to report "+rotated, func() bool { return statusOf(t, c).KeyId == rotated })
	// Encrypt follows Status: never back to the old key once adopted.
	for i := 0; i < 5; i++ {
		if r := encrypt(t, c, pattern(32, 100)); r.KeyId != rotated {
			t.Fatalf("Encrypt after the rotation used %q, want %q", r.KeyId, rotated)
		}
	}
	for i, r := range old {
		if r.KeyId != before {
			t.Fatalf("old ciphertext %d was under %q, not %q", i, r.KeyId, before)
		}
		if got := decrypt(t, c, r); !bytes.Equal(got, pattern(32, byte(i))) {
			t.Errorf("old ciphertext %d decrypts to other bytes", i)
		}
	}
	// Two-phase rotation: a key added (not primary), then promoted.
	added := keyID(t, admin(t, keychain, "add"))
	admin(t, keychain, "promote", numericKeyID(t, added))
	waitFor(t, "Status to report the promoted key", func() bool { return statusOf(t, c).KeyId == added })
}

// ---- plugins of their own --------------------------------------------------

func TestDisabledDestroyedAndUnknownKeys(t *testing.T) {
	keychain := newKeychain(t)
	p := startPlugin(t, keychain, socketPath(t))
	c := dial(t, p.socket)
	first := encrypt(t, c, pattern(32, 1))
	firstID := numericKeyID(t, first.KeyId)
	second := keyID(t, admin(t, keychain, "rotate"))
	waitFor(t, "the rotation", func() bool { return statusOf(t, c).KeyId == second })
	later := encrypt(t, c, pattern(32, 2))

	// A plugin adopts other writers' changes when it encrypts (its Status
	// probe included) after its refresh interval; the apiserver polls
	// Status every minute, these loops every 20 ms.
	failsWith := func(code codes.Code, word string) func() bool {
		return func() bool {
			statusOf(t, c)
			_, err := c.Decrypt(ctx(t), decryptReq(first))
			return codeOf(err) == code && strings.Contains(status.Convert(err).Message(), word)
		}
	}
	admin(t, keychain, "disable", firstID)
	waitFor(t, "FailedPrecondition for a disabled key", failsWith(codes.FailedPrecondition, "KeyDisabled"))
	admin(t, keychain, "enable", firstID)
	waitFor(t, "the key enabled again", func() bool {
		statusOf(t, c)
		_, err := c.Decrypt(ctx(t), decryptReq(first))
		return err == nil
	})
	admin(t, keychain, "destroy", firstID)
	waitFor(t, "FailedPrecondition for a destroyed key", failsWith(codes.FailedPrecondition, "KeyDestroyed"))
	if got := decrypt(t, c, later); !bytes.Equal(got, pattern(32, 2)) {
		t.Error("the new key's ciphertext stopped decrypting")
	}
	// A key_id no keychain key has.
	unknown := bytes.Clone(later.Ciphertext)
	copy(unknown[1:5], []byte{0x7f, 0xff, 0xff, 0xf1})
	req := decryptReq(later)
	req.Ciphertext = unknown
	if _, err := c.Decrypt(ctx(t), req); codeOf(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "UnknownKey") {
		t.Errorf("unknown key: %v", err)
	}
	if s := statusOf(t, c); s.Healthz != "ok" {
		t.Errorf("healthz %q", s.Healthz)
	}
	p.stop(t)
}

func TestRestartKeepsEverythingDecryptable(t *testing.T) {
	keychain := newKeychain(t)
	socket := socketPath(t)
	p := startPlugin(t, keychain, socket)
	c := dial(t, socket)
	keyBefore := statusOf(t, c).KeyId
	var saved []*kmsapi.EncryptResponse
	for _, n := range []int{1, 32, 500, maxPlaintext} {
		saved = append(saved, encrypt(t, c, pattern(n, byte(n))))
	}
	p.stop(t)
	if _, err := c.Status(ctx(t), &kmsapi.StatusRequest{}, grpc.WaitForReady(false)); codeOf(err) != codes.Unavailable {
		t.Fatalf("Status with the plugin stopped: %v", err)
	}

	p2 := startPlugin(t, keychain, socket)
	c2 := dial(t, socket)
	if s := statusOf(t, c2); s.KeyId != keyBefore || s.Healthz != "ok" {
		t.Fatalf("after restart: %+v, before %q", s, keyBefore)
	}
	for i, r := range saved {
		if got := decrypt(t, c2, r); !bytes.Equal(got, pattern(len(r.Ciphertext)-sealOverhead, byte(len(r.Ciphertext)-sealOverhead))) {
			t.Errorf("ciphertext %d decrypts to other bytes after the restart", i)
		}
	}
	// The old client reconnects by itself.
	waitFor(t, "the first client to reconnect", func() bool {
		_, err := c.Status(ctx(t), &kmsapi.StatusRequest{})
		return err == nil
	})
	p2.stop(t)
}

func TestSocketFileRules(t *testing.T) {
	keychain := newKeychain(t)
	socket := socketPath(t)
	p := startPlugin(t, keychain, socket)
	fi, err := os.Lstat(socket)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v, mode %v", err, fi.Mode())
	}
	// A second plugin on a live socket refuses to start and leaves it.
	q, err := tryStartPlugin(keychain, socket)
	if err == nil {
		q.stop(t)
		t.Fatal("a second plugin started on a live socket")
	}
	if !strings.Contains(err.Error(), "is in use") {
		t.Errorf("refusal does not say why: %v", err)
	}
	if s := statusOf(t, dial(t, socket)); s.Healthz != "ok" {
		t.Fatalf("the first plugin stopped serving: %+v", s)
	}
	// Killed: the socket file stays behind, stale; the next start removes it.
	p.cmd.Process.Kill()
	<-p.done
	if _, err := os.Lstat(socket); err != nil {
		t.Fatalf("expected a stale socket file after SIGKILL: %v", err)
	}
	p2 := startPlugin(t, keychain, socket)
	if s := statusOf(t, dial(t, socket)); s.Healthz != "ok" {
		t.Fatalf("after replacing a stale socket: %+v", s)
	}
	p2.stop(t)
	// (stderr is complete once the process was waited for)
	if !strings.Contains(p2.stderr.String(), "removing the stale socket") {
		t.Errorf("no word about the stale socket: %s", p2.stderr.String())
	}
	// Something that is not a socket is left alone.
	if err := os.WriteFile(socket, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if q, err := tryStartPlugin(keychain, socket); err == nil {
		q.stop(t)
		t.Fatal("started over a regular file")
	} else if !strings.Contains(err.Error(), "not a unix socket") {
		t.Errorf("refusal does not say why: %v", err)
	}
	if b, _ := os.ReadFile(socket); string(b) != "keep me" {
		t.Error("the regular file was touched")
	}
	// A wider mode on request.
	os.Remove(socket)
	p3 := startPlugin(t, keychain, socket, "--socket-mode", "660")
	if fi, err := os.Lstat(socket); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("--socket-mode 660 gave %v (%v)", fi.Mode(), err)
	}
	p3.stop(t)
}

// SIGTERM while clients are busy: each call either completes or fails
// with Unavailable (never a broken reply), and whatever was encrypted
// decrypts after a restart.
func TestStopUnderLoad(t *testing.T) {
	keychain := newKeychain(t)
	socket := socketPath(t)
	p := startPlugin(t, keychain, socket)
	c := dial(t, socket)
	statusOf(t, c)
	type result struct {
		pt []byte
		r  *kmsapi.EncryptResponse
	}
	var mu sync.Mutex
	var done []result
	var bad []error
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				pt := pattern(32, byte(g*50+i))
				r, err := c.Encrypt(context.Background(), &kmsapi.EncryptRequest{Plaintext: pt}, grpc.WaitForReady(false))
				if i == 0 {
					started <- struct{}{}
				}
				mu.Lock()
				if err != nil {
					if codeOf(err) != codes.Unavailable {
						bad = append(bad, err)
					}
					mu.Unlock()
					return
				}
				done = append(done, result{pt, r})
				mu.Unlock()
			}
		}(g)
	}
	for g := 0; g < 8; g++ {
		<-started
	}
	p.stop(t)
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("calls failed with other codes than Unavailable: %v", bad)
	}
	if len(done) == 0 {
		t.Fatal("nothing was encrypted before the stop")
	}
	p2 := startPlugin(t, keychain, socket)
	c2 := dial(t, socket)
	for _, d := range done {
		if got := decrypt(t, c2, d.r); !bytes.Equal(got, d.pt) {
			t.Fatal("a ciphertext made before the stop does not decrypt")
		}
	}
	t.Logf("%d encryptions before SIGTERM, all decrypt after the restart", len(done))
	p2.stop(t)
}

func TestUsageErrorsOfTheServeExample(t *testing.T) {
	for _, args := range [][]string{
		{"--keychain", "x"},
		{"--listen", "unix:///tmp/x.sock", "--root", "age:/nonexistent", "--keychain", "x", "--bogus"},
	} {
		err := exec.Command(env["KMS_PLUGIN_SERVE"], args...).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("%v: %v, want exit 2", args, err)
		}
	}
	out, err := exec.Command(env["KMS_PLUGIN_SERVE"], "--keychain", newKeychain(t), "--root", env["KMS_PLUGIN_ROOT"],
		"--listen", "tcp://127.0.0.1:1").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "unix:///absolute/path.sock") {
		t.Errorf("tcp listen address: %v: %s", err, out)
	}
}
