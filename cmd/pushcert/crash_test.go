package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// crashRounds is how many times each database's server is killed.
const crashRounds = 8

// crashAPI is the resource's path in the JSON API.
const crashAPI = "/v1.0/deviceManagement/applePushNotificationCertificate"

// crashAppleID is the Apple ID every upload of the crash test names.
const crashAppleID = "admin@example.com"

// TestCrashSafety runs the real pushcert binary in -dev mode, drives CSR
// generations and certificate uploads through the API, and kills the
// process with SIGKILL at random moments. After every restart, the API and
// the database opened directly must agree, the active certificate must match
// its key, the audit history must account for every activation, and no
// upload the server acknowledged may be missing.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the pushcert binary; skipped with -short")
	}
	bin := buildPushcert(t)
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		runCrashRounds(t, bin, dir, "sqlite:"+filepath.Join(dir, "pushcert.db"), false)
	})
	t.Run("postgres", func(t *testing.T) {
		runCrashRounds(t, bin, t.TempDir(), crashPostgresURL(t), true)
	})
}

// buildPushcert builds this package's binary once for all subtests.
func buildPushcert(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pushcert")
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "build", buildTags, "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// crashPostgresURL returns a URL for a schema of the test's own in the test
// PostgreSQL, dropped at cleanup. Without a reachable server the test skips,
// except in CI, where it fails.
func crashPostgresURL(t *testing.T) string {
	t.Helper()
	base := os.Getenv("PUSHCERT_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("postgres unreachable: %v; CI must run the PostgreSQL crash test", err)
		}
		t.Skipf("postgres unreachable: %v", err)
	}
	var b [8]byte
	for i := range b {
		b[i] = byte(rand.IntN(256))
	}
	schema := "crash_" + hex.EncodeToString(b[:])
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse postgres url: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// crashHistory is what the test knows from the outside: every certificate
// it sent, in order, and which of them the server acknowledged.
type crashHistory struct {
	sent        []string          // serials of every PATCH sent, in order
	acked       map[string]int64  // serial → version answered with 200
	lastAcked   string            // the last serial answered with 200
	keyOf       map[string]string // serial → public-key hash of its certificate
	csrs        []string          // public-key hashes of every CSR answered with 200
	lastVersion int64             // highest version seen so far, from the API or the store
	activations map[string]bool   // serials seen as activated (acknowledged or found in the history)
}

// runCrashRounds starts, drives and kills pushcert crashRounds times on the
// same data, checking everything after each restart. setDBURL passes dbURL
// to pushcert; without it, -dev uses its default SQLite file, which dbURL
// must name.
func runCrashRounds(t *testing.T, bin, dataDir, dbURL string, setDBURL bool) {
	h := &crashHistory{acked: map[string]int64{}, keyOf: map[string]string{}, activations: map[string]bool{}}
	var prevOutput string
	for round := range crashRounds {
		srv := startCrashServer(t, bin, dataDir, dbURL, setDBURL)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("round %d: %s\n--- output of this run ---\n%s\n--- output of the killed run ---\n%s",
				round, fmt.Sprintf(format, args...), tail(srv.out.String()), tail(prevOutput))
		}
		token, err := srv.token(t.Context())
		if err != nil {
			fail("token: %v", err)
		}
		ent := verifyCrashState(t, fail, srv, token, dataDir, dbURL, h)

		ca, err := loadDevCA(dataDir)
		if err != nil {
			fail("dev CA: %v", err)
		}
		d := &crashDriver{srv: srv, token: token, ca: ca, topic: applesim.NewTopic(), h: h}
		if ent != nil && ent.Certificate != nil {
			cert, err := parseCertPEM(*ent.Certificate)
			if err != nil {
				fail("active certificate: %v", err)
			}
			d.topic, d.active = *ent.TopicIdentifier, cert.PublicKey
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			d.run(ctx)
		}()
		delay := time.Duration(50+rand.IntN(751)) * time.Millisecond
		time.Sleep(delay)
		d.killed.Store(true)
		srv.kill()
		cancel()
		<-done
		if !srv.diedOfKill() {
			fail("the server exited before it was killed: %v", srv.waitErr)
		}
		if d.failure != "" {
			fail("%s", d.failure)
		}
		t.Logf("round %d: killed after %v; %d uploads acknowledged so far, %d sent", round, delay, len(h.acked), len(h.sent))
		prevOutput = srv.out.String()
	}
	// The last kill is checked too.
	srv := startCrashServer(t, bin, dataDir, dbURL, setDBURL)
	token, err := srv.token(t.Context())
	if err != nil {
		t.Fatalf("token: %v\n%s", err, tail(srv.out.String()))
	}
	verifyCrashState(t, func(format string, args ...any) {
		t.Helper()
		t.Fatalf("after the last kill: %s\n--- output ---\n%s\n--- output of the killed run ---\n%s",
			fmt.Sprintf(format, args...), tail(srv.out.String()), tail(prevOutput))
	}, srv, token, dataDir, dbURL, h)
	srv.kill()
	if len(h.acked) == 0 {
		t.Errorf("uploads acknowledged over %d rounds: got 0, want some", crashRounds)
	}
	unanswered, applied := 0, 0
	for _, s := range h.sent {
		if _, ok := h.acked[s]; !ok {
			unanswered++
			if h.activations[s] {
				applied++
			}
		}
	}
	t.Logf("%d activations, final version %d; %d uploads were cut off by a kill, %d of them had been applied",
		len(h.activations), h.lastVersion, unanswered, applied)
}

// crashDriver drives the server as admins and scripts would, until its
// context ends: one goroutine generates CSRs, another uploads certificates
// one after the other, each issued either for a fresh CSR or, as a renewal,
// for the active certificate's key. Errors after the kill are expected;
// anything else that is not a 200 is a failure.
type crashDriver struct {
	srv    *crashServer
	token  string
	ca     *applesim.CA
	topic  string           // the active topic, kept by every renewal
	active crypto.PublicKey // the active certificate's key; nil before the first upload
	h      *crashHistory
	killed atomic.Bool

	mu      sync.Mutex // guards h and failure between the two goroutines
	failure string
	cancel  context.CancelFunc
}

func (d *crashDriver) run(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(ctx)
	defer d.cancel()
	csrs := make(chan *x509.CertificateRequest, 4)
	var wg sync.WaitGroup
	wg.Go(func() { d.generate(ctx, csrs) })
	wg.Go(func() { d.upload(ctx, csrs) })
	wg.Wait()
}

// generate asks for CSRs and hands them to the uploader.
func (d *crashDriver) generate(ctx context.Context, csrs chan<- *x509.CertificateRequest) {
	for ctx.Err() == nil {
		var out struct {
			Value string `json:"value"`
		}
		code, err := d.srv.api(ctx, d.token, http.MethodPost, crashAPI+"/generateApplePushNotificationCertificateSigningRequest", nil, &out)
		if d.stop(code, err, "generate CSR") {
			return
		}
		blk, _ := pem.Decode([]byte(out.Value))
		if blk == nil {
			d.fail("generate CSR: got %q, want a PEM CSR", out.Value)
			return
		}
		req, err := x509.ParseCertificateRequest(blk.Bytes)
		if err != nil {
			d.fail("generate CSR: %v", err)
			return
		}
		hash, _ := pushcert.PublicKeyHash(req.PublicKey)
		d.mu.Lock()
		d.h.csrs = append(d.h.csrs, hash)
		d.mu.Unlock()
		select {
		case csrs <- req:
		case <-ctx.Done():
			return
		}
	}
}

// upload sends certificates one at a time.
func (d *crashDriver) upload(ctx context.Context, csrs <-chan *x509.CertificateRequest) {
	for ctx.Err() == nil {
		var pub crypto.PublicKey
		select {
		case req := <-csrs:
			// One CSR in three is left pending, as when an admin downloads
			// one and never comes back: pending keys must pile up harmlessly.
			if rand.IntN(3) > 0 {
				pub = req.PublicKey
			}
		default:
		}
		if pub == nil {
			pub = d.active
		}
		if pub == nil {
			select {
			case req := <-csrs:
				pub = req.PublicKey
			case <-ctx.Done():
				return
			}
		}
		der, err := d.ca.Issue(applesim.Request{PublicKey: pub, Topic: d.topic})
		if err != nil {
			d.fail("issue certificate: %v", err)
			return
		}
		cert, _ := x509.ParseCertificate(der)
		serial := pushcert.Describe(cert).SerialNumber
		hash, _ := pushcert.PublicKeyHash(pub)
		d.mu.Lock()
		d.h.keyOf[serial] = hash
		d.h.sent = append(d.h.sent, serial)
		d.mu.Unlock()

		body, _ := json.Marshal(map[string]string{"appleIdentifier": crashAppleID, "certificate": string(applesim.PEM(der))})
		var ent crashEntity
		code, err := d.srv.api(ctx, d.token, http.MethodPatch, crashAPI, body, &ent)
		if d.stop(code, err, "upload "+serial) {
			return
		}
		if got := strOrNil(ent.CertificateSerialNumber); got != serial {
			d.fail("upload %s: answered with serial %s", serial, got)
			return
		}
		v, err := ent.version()
		if err != nil {
			d.fail("upload %s: %v", serial, err)
			return
		}
		d.mu.Lock()
		prev := d.h.acked[d.h.lastAcked]
		d.h.acked[serial], d.h.lastAcked = v, serial
		d.h.activations[serial] = true
		d.h.lastVersion = max(d.h.lastVersion, v)
		d.mu.Unlock()
		if v <= prev {
			d.fail("upload %s: version %d after %d, want it to go up", serial, v, prev)
			return
		}
		d.active = pub
	}
}

// stop reports whether a goroutine of the driver must end: the server is
// gone, or the answer was not a 200 (a failure).
func (d *crashDriver) stop(code int, err error, what string) bool {
	switch {
	case err != nil && d.killed.Load():
		return true
	case err != nil:
		d.fail("%s: %v (before the kill)", what, err)
		return true
	case code != http.StatusOK:
		d.fail("%s: got status %d, want 200", what, code)
		return true
	}
	return false
}

// fail records the first failure and stops the driver.
func (d *crashDriver) fail(format string, args ...any) {
	d.mu.Lock()
	if d.failure == "" {
		d.failure = fmt.Sprintf(format, args...)
	}
	d.mu.Unlock()
	d.cancel()
}

// crashEntity is the part of the API's entity the test compares.
type crashEntity struct {
	ETag                    string  `json:"@odata.etag"`
	ID                      string  `json:"id"`
	AppleIdentifier         string  `json:"appleIdentifier"`
	TopicIdentifier         *string `json:"topicIdentifier"`
	LastModifiedDateTime    *string `json:"lastModifiedDateTime"`
	ExpirationDateTime      *string `json:"expirationDateTime"`
	CertificateUploadStatus string  `json:"certificateUploadStatus"`
	CertificateSerialNumber *string `json:"certificateSerialNumber"`
	Certificate             *string `json:"certificate"`
}

func (e *crashEntity) version() (int64, error) {
	s := strings.TrimSuffix(strings.TrimPrefix(e.ETag, `W/"`), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("etag %q is not W/\"<version>\"", e.ETag)
	}
	return v, nil
}

// verifyCrashState checks a freshly restarted server against its database
// and against what the test was told before the kill, and returns the API's
// entity (nil while nothing was ever uploaded).
func verifyCrashState(t *testing.T, fail func(string, ...any), srv *crashServer, token, dataDir, dbURL string, h *crashHistory) *crashEntity {
	t.Helper()
	ctx := t.Context()

	// The database, opened directly with the dev key-encryption secret.
	secret, err := os.ReadFile(filepath.Join(dataDir, "dev-key-encryption-secret"))
	if err != nil {
		fail("read the dev key-encryption secret: %v", err)
	}
	kr, err := store.NewKeyring(string(secret))
	if err != nil {
		fail("keyring: %v", err)
	}
	db, err := store.Open(ctx, dbURL, kr)
	if err != nil {
		fail("open the store: %v", err)
	}
	defer db.Close()
	st, err := db.State(ctx)
	if err != nil {
		fail("state: %v", err)
	}
	events, err := db.Events(ctx, 0)
	if err != nil {
		fail("events: %v", err)
	}
	pending, err := db.PendingKeys(ctx, time.Time{})
	if err != nil {
		fail("pending keys: %v", err)
	}

	// The active certificate matches the decrypted active key.
	keyDER, err := db.ActiveKey(ctx)
	switch {
	case st.Certificate == nil && !errors.Is(err, pushcert.ErrNotFound):
		fail("no active certificate, but the active key is there (err %v)", err)
	case st.Certificate != nil && err != nil:
		fail("active certificate %s without a readable key: %v", st.Certificate.SerialNumber, err)
	case st.Certificate != nil:
		if err := certMatchesKey(st.Certificate.PEM, keyDER); err != nil {
			fail("active certificate %s: %v", st.Certificate.SerialNumber, err)
		}
	}

	// The API says what the database holds.
	var ent crashEntity
	code, err := srv.api(ctx, token, http.MethodGet, crashAPI, nil, &ent)
	if err != nil {
		fail("GET entity: %v", err)
	}
	switch {
	case st.UploadStatus == pushcert.UploadNone && code != http.StatusNotFound:
		fail("GET before any upload: got %d, want 404", code)
	case st.UploadStatus == pushcert.UploadNone:
	case code != http.StatusOK:
		fail("GET entity: got %d, want 200", code)
	default:
		if diff := entityDiff(&ent, st); diff != "" {
			fail("the API's entity differs from the store's state: %s", diff)
		}
	}

	// The audit history accounts for every version and activation.
	slices.Reverse(events) // oldest first
	var succeeded []string
	counts := map[pushcert.EventKind]int{}
	for _, e := range events {
		counts[e.Kind]++
		if e.Kind == pushcert.EventUploadSucceeded {
			succeeded = append(succeeded, e.Serial)
		}
	}
	if n := counts[pushcert.EventUploadFailed]; n > 0 {
		fail("upload_failed events: got %d, want 0 (every upload sent was valid)", n)
	}
	if want := 1 + int64(len(succeeded)+counts[pushcert.EventUploadFailed]+counts[pushcert.EventAppleIDChanged]); st.Version != want {
		fail("version %d, want %d: one more than the version-changing events (%d uploads)", st.Version, want, len(succeeded))
	}
	if st.Version < h.lastVersion {
		fail("version went back: got %d, want at least %d (seen before the kill)", st.Version, h.lastVersion)
	}
	seen := map[string]bool{}
	for _, s := range succeeded {
		if seen[s] {
			fail("upload_succeeded twice for serial %s", s)
		}
		seen[s] = true
		if _, ok := h.keyOf[s]; !ok {
			fail("upload_succeeded for serial %s, which the test never sent", s)
		}
	}
	if !isSubsequence(succeeded, h.sent) {
		fail("activations %v are not in the order they were sent %v", succeeded, h.sent)
	}
	for s, v := range h.acked {
		if !seen[s] {
			fail("acknowledged upload %s (version %d) is missing from the history", s, v)
		}
	}
	for s := range seen {
		h.activations[s] = true
	}
	if len(succeeded) != len(h.activations) {
		fail("upload_succeeded events: got %d, want %d, one per distinct activation", len(succeeded), len(h.activations))
	}
	switch {
	case len(succeeded) == 0 && st.Certificate != nil:
		fail("active certificate %s without an upload_succeeded event", st.Certificate.SerialNumber)
	case len(succeeded) > 0 && st.Certificate == nil:
		fail("%d activations but no active certificate", len(succeeded))
	case len(succeeded) > 0 && st.Certificate.SerialNumber != succeeded[len(succeeded)-1]:
		fail("active serial %s, want %s, the last activated", st.Certificate.SerialNumber, succeeded[len(succeeded)-1])
	}
	// Only an upload still unanswered at the kill may have replaced the
	// last acknowledged one.
	if h.lastAcked != "" {
		i := slices.Index(h.sent, h.lastAcked)
		if !slices.Contains(h.sent[i:], st.Certificate.SerialNumber) {
			fail("active serial %s, want %s or one sent after it", st.Certificate.SerialNumber, h.lastAcked)
		}
	}

	// Every CSR is accounted for: each key made is still pending or was
	// consumed by the first activation with it (renewals reuse the active
	// key; the test never lets a pending key expire), and each CSR the
	// server answered is among them.
	made := map[string]bool{}
	for _, s := range succeeded {
		made[h.keyOf[s]] = true
	}
	if got, want := len(pending)+len(made), counts[pushcert.EventCSRGenerated]; got != want {
		fail("pending keys %d + keys activated %d = %d, want %d, one per csr_generated event", len(pending), len(made), got, want)
	}
	for _, pk := range pending {
		if err := keyMatchesRequest(pk.KeyDER, pk.CSRDER); err != nil {
			fail("pending key %s: %v", pk.ID, err)
		}
		if made[pk.PublicKeyHash] {
			fail("pending key %s is still pending but was activated", pk.ID)
		}
		made[pk.PublicKeyHash] = true
	}
	for _, k := range h.csrs {
		if !made[k] {
			fail("an acknowledged CSR (public key %s…) has neither a pending key nor an active certificate", k[:16])
		}
	}
	h.lastVersion = st.Version
	if code != http.StatusOK {
		return nil
	}
	return &ent
}

// entityDiff compares the API's entity with the store's state; "" when equal.
func entityDiff(e *crashEntity, st pushcert.State) string {
	var d []string
	cmp := func(name, got, want string) {
		if got != want {
			d = append(d, fmt.Sprintf("%s: got %q, want %q", name, got, want))
		}
	}
	v, err := e.version()
	if err != nil {
		d = append(d, err.Error())
	}
	cmp("version", strconv.FormatInt(v, 10), strconv.FormatInt(st.Version, 10))
	cmp("id", e.ID, st.ID)
	cmp("appleIdentifier", e.AppleIdentifier, st.AppleID)
	cmp("certificateUploadStatus", e.CertificateUploadStatus, string(st.UploadStatus))
	cmp("lastModifiedDateTime", timeOrNil(e.LastModifiedDateTime), timeText(st.LastModified))
	c := st.Certificate
	if c == nil {
		c = &pushcert.Certificate{}
	}
	cmp("topicIdentifier", strOrNil(e.TopicIdentifier), orNil(c.Topic))
	cmp("certificateSerialNumber", strOrNil(e.CertificateSerialNumber), orNil(c.SerialNumber))
	cmp("certificate", strOrNil(e.Certificate), orNil(c.PEM))
	cmp("expirationDateTime", timeOrNil(e.ExpirationDateTime), timeText(c.NotAfter))
	return strings.Join(d, "; ")
}

func strOrNil(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

func orNil(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// timeOrNil normalizes an RFC 3339 time from the API for comparison.
func timeOrNil(s *string) string {
	if s == nil {
		return "null"
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return "unparsable " + *s
	}
	return timeText(t)
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "null"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// isSubsequence reports whether sub appears in seq in the same order.
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// certMatchesKey checks that a PEM certificate was issued for a PKCS#8 key.
func certMatchesKey(certPEM string, keyDER []byte) error {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return err
	}
	return publicKeyOf(keyDER, cert.PublicKey)
}

func parseCertPEM(certPEM string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(certPEM))
	if blk == nil {
		return nil, errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// keyMatchesRequest checks that a CSR was made for a PKCS#8 key.
func keyMatchesRequest(keyDER, csrDER []byte) error {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return fmt.Errorf("parse csr: %w", err)
	}
	return publicKeyOf(keyDER, csr.PublicKey)
}

func publicKeyOf(keyDER []byte, pub crypto.PublicKey) error {
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return fmt.Errorf("parse key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return errors.New("the key cannot sign")
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(pub) {
		return errors.New("the public key does not match the private key")
	}
	return nil
}

// loadDevCA reads the CA that -dev trusts from the data folder.
func loadDevCA(dataDir string) (*applesim.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dataDir, "dev-ca.pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dataDir, "dev-ca-key.pem"))
	if err != nil {
		return nil, err
	}
	return applesim.LoadCA(certPEM, keyPEM, testclock.Now)
}

// crashServer is one run of the pushcert binary.
type crashServer struct {
	cmd     *exec.Cmd
	out     *syncBuffer
	base    string // pushcert
	issuer  string // the dev provider
	client  *http.Client
	exited  chan struct{}
	waitErr error
	once    sync.Once
}

// startCrashServer starts pushcert -dev on a free loopback port (the dev
// provider on another) and waits for /healthz. It is killed at the
// test's end if still running.
func startCrashServer(t *testing.T, bin, dataDir, dbURL string, setDBURL bool) *crashServer {
	t.Helper()
	listen, provider := freeAddr(t), freeAddr(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSHCERT_") {
			env = append(env, kv)
		}
	}
	env = append(env, testNowEnv(t))
	if setDBURL {
		env = append(env, "PUSHCERT_DATABASE_URL="+dbURL)
	}
	s := &crashServer{
		out:    &syncBuffer{},
		base:   "http://" + listen,
		issuer: "http://" + provider + "/oidc",
		client: &http.Client{Timeout: 20 * time.Second},
		exited: make(chan struct{}),
	}
	cmd := exec.CommandContext(t.Context(), bin, "-dev", "-listen-addr="+listen, "-dev-provider-addr="+provider, "-data-dir="+dataDir)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = s.out, s.out
	// Its own process group, so the kill reaches anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start pushcert: %v", err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.kill)

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := s.client.Get(s.base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("pushcert exited at startup: %v\n%s", s.waitErr, tail(s.out.String()))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.kill()
			t.Fatalf("/healthz did not answer within 20 s\n%s", tail(s.out.String()))
		}
	}
}

// kill sends SIGKILL to the server's process group and waits for it.
func (s *crashServer) kill() {
	s.once.Do(func() {
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
		s.client.CloseIdleConnections()
	})
}

// diedOfKill reports whether the process ended by SIGKILL rather than on
// its own.
func (s *crashServer) diedOfKill() bool {
	ws, ok := s.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// token gets an admin bearer token from the dev provider.
func (s *crashServer) token(ctx context.Context) (string, error) {
	return devidp.Token(ctx, s.client, s.issuer, "admin")
}

// api sends an API request and decodes a 200 answer into out.
func (s *crashServer) api(ctx context.Context, token, method, path string, body []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// tail keeps the end of a process's output for a failure message.
func tail(s string) string {
	const n = 6000
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
