package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/session"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// buildReplicaBinary builds the pushcert command into a temporary folder, with
// -race when the tests have it (the build then reuses their compiled
// packages, and the replicas are checked for races too).
func buildReplicaBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the go command is not on PATH: %v", err)
		}
		t.Skipf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "pushcert")
	args := []string{"build", buildTags, "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	out, err := exec.CommandContext(t.Context(), goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// replica is a pushcert process.
type replica struct {
	name   string
	base   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// newReplica prepares a pushcert process with only the given environment;
// it stops with SIGTERM when the test ends and must exit cleanly.
func newReplica(t *testing.T, bin, name string, env map[string]string) *replica {
	t.Helper()
	r := &replica{name: name, base: env["PUSHCERT_BASE_URL"], out: &syncBuffer{}, exited: make(chan error, 1)}
	r.cmd = exec.Command(bin)
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), testNowEnv(t)}
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	return r
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", r.name, err)
	}
	go func() { r.exited <- r.cmd.Wait() }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-r.exited:
			if err != nil {
				t.Errorf("%s exited with %v after SIGTERM, want a clean exit\n%s", r.name, err, r.out.String())
			}
		case <-time.After(30 * time.Second):
			_ = r.cmd.Process.Kill()
			t.Errorf("%s did not stop within 30 s of SIGTERM", r.name)
		}
	})
}

// waitReady waits for /readyz to answer 200.
func (r *replica) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-r.exited:
			r.exited <- err
			t.Fatalf("%s stopped at startup: %v\n%s", r.name, err, r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within 60 s\n%s", r.name, r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hookRecorder is an alert webhook that records each alert it receives.
type hookRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	alerts []string // "event/threshold_days/serial"
}

func newHookRecorder(t *testing.T) *hookRecorder {
	t.Helper()
	h := &hookRecorder{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a struct {
			Event         string `json:"event"`
			ThresholdDays int    `json:"threshold_days"`
			Serial        string `json:"serial"`
			Text          string `json:"text"`
		}
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.Text == "" {
			t.Errorf("webhook: got an alert without text (%v)", err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.alerts = append(h.alerts, fmt.Sprintf("%s/%d/%s", a.Event, a.ThresholdDays, a.Serial))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookRecorder) got() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.alerts)
}

// signIn signs the demo admin in at base through the real flow and
// returns the session cookie.
func signIn(t *testing.T, base string) *http.Cookie {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var login []*http.Cookie
	next := base + "/login"
	for range 5 {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, next, nil)
		for _, ck := range login {
			req.AddCookie(ck)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("sign in: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			if ck.Name == "pushcert_session" && ck.Value != "" {
				return ck
			}
			if ck.Name == "pushcert_login" {
				login = append(login, ck)
			}
		}
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("sign in: got %d at %s without a redirect", resp.StatusCode, next)
		}
		if strings.HasSuffix(loc.Path, "/oidc/authorize") {
			q := loc.Query()
			q.Set("demo_user", "admin")
			loc.RawQuery = q.Encode()
		}
		next = loc.String()
	}
	t.Fatal("sign in: no session cookie after 5 redirects")
	return nil
}

// TestReplicasOnPostgres runs two pushcert processes on one PostgreSQL
// database, started at the same moment, as two replicas behind one address
// would run, and checks they behave as one: migrations ran once, a session
// from one is valid on the other and ends on both at sign-out, an upload through one is seen at once
// through the other, and each alert is delivered once.
func TestReplicasOnPostgres(t *testing.T) {
	dbURL := storetest.PostgresURL(t)
	bin := buildReplicaBinary(t)
	provider := startProvider(t)
	hook := newHookRecorder(t)
	shared := map[string]string{
		"PUSHCERT_DATABASE_URL":      dbURL,
		"PUSHCERT_ALERT_WEBHOOK_URL": hook.srv.URL + "/" + hookSecret,
		"PUSHCERT_ALERT_THRESHOLDS":  "400", // a new certificate is within it
		"PUSHCERT_ALERT_INTERVAL":    "200ms",
	}
	a := newReplica(t, bin, "replica A", prodEnv(t, provider, freeAddr(t), shared))
	b := newReplica(t, bin, "replica B", prodEnv(t, provider, freeAddr(t), shared))
	a.start(t)
	b.start(t)
	a.waitReady(t)
	b.waitReady(t)

	t.Run("migrations ran once", func(t *testing.T) {
		files, err := filepath.Glob("../../internal/store/migrations/*.sql")
		if err != nil || len(files) == 0 {
			t.Fatalf("list migrations: %v", err)
		}
		db, err := sql.Open("pgx", dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var versions, installations, cursors int
		for q, p := range map[string]*int{
			`SELECT COUNT(DISTINCT version) FROM schema_migrations`: &versions,
			`SELECT COUNT(*) FROM installation`:                     &installations,
			`SELECT COUNT(*) FROM alert_cursor`:                     &cursors,
		} {
			if err := db.QueryRowContext(t.Context(), q).Scan(p); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		if versions != len(files) || installations != 1 || cursors != 1 {
			t.Errorf("got %d migrations, %d installations, %d cursors; want %d, 1, 1", versions, installations, cursors, len(files))
		}
		for _, r := range []*replica{a, b} {
			if strings.Contains(r.out.String(), `"level":"ERROR"`) {
				t.Errorf("%s logged an error:\n%s", r.name, r.out.String())
			}
		}
	})

	t.Run("a session from A is valid on B", func(t *testing.T) {
		cookie := signIn(t, a.base)
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.base+"/", nil)
		req.AddCookie(cookie)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-testid="user-role"`) {
			t.Errorf("GET / on B with A's cookie: got %d, want 200 with the signed-in page", resp.StatusCode)
		}
		resp, err = c.Get(b.base + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("GET / on B without a cookie: got %d, want 303 to sign in", resp.StatusCode)
		}
	})

	t.Run("a cookie copied before sign-out on A is refused on B", func(t *testing.T) { testSignOutOnReplicas(t, a, b) })

	token := providerToken(t, provider, "admin")
	var serial string
	t.Run("an upload through A is seen at once through B", func(t *testing.T) {
		code, body := apiCall(t, http.MethodPatch, a.base+apiPath, token, certificateForNewCSR(t, a.base, token))
		if code != http.StatusOK {
			t.Fatalf("upload through A: got %d %s, want 200", code, body)
		}
		var viaA, viaB map[string]any
		_ = json.Unmarshal(body, &viaA)
		code, body = apiCall(t, http.MethodGet, b.base+apiPath, token, nil)
		if code != http.StatusOK {
			t.Fatalf("GET through B: got %d %s, want 200", code, body)
		}
		_ = json.Unmarshal(body, &viaB)
		serial, _ = viaA["certificateSerialNumber"].(string)
		for _, k := range []string{"certificateSerialNumber", "expirationDateTime", "topicIdentifier", "lastModifiedDateTime"} {
			if viaA[k] == nil || viaA[k] != viaB[k] {
				t.Errorf("%s: A answered %v, B answers %v; want the same", k, viaA[k], viaB[k])
			}
		}
	})

	t.Run("each alert is delivered once", func(t *testing.T) {
		refused, _ := json.Marshal(map[string]string{"certificate": "not a certificate"})
		if code, body := apiCall(t, http.MethodPatch, b.base+apiPath, token, refused); code != http.StatusBadRequest {
			t.Fatalf("refused upload through B: got %d %s, want 400", code, body)
		}
		want := []string{"certificate_expiring/400/" + serial, "upload_failed/0/"}
		deadline := time.Now().Add(30 * time.Second)
		for len(hook.got()) < len(want) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		// Both replicas check every 200 ms: give each several more turns
		// to send a duplicate.
		time.Sleep(time.Second)
		got := hook.got()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("webhook got %v, want each of %v once", got, want)
		}
		audits := 0
		for _, kind := range []string{"csr_generated", "upload_succeeded", "upload_failed"} {
			audits += countAudits(a.out.String(), kind) + countAudits(b.out.String(), kind)
		}
		if audits != 3 {
			t.Errorf("replicas logged %d audit events of the CSR, the upload and the refused upload, want each once", audits)
		}
	})

	for _, r := range []*replica{a, b} {
		logs := r.out.String()
		for _, secret := range []string{"s3cr3t", "ops-test-kek", "ops-test-session", provider.ClientSecret(), token} {
			if strings.Contains(logs, secret) {
				t.Errorf("%s logged a secret", r.name)
			}
		}
	}
	if t.Failed() {
		for _, r := range []*replica{a, b} {
			t.Logf("%s log:\n%s", r.name, r.out.String())
		}
	}
}

// testSignOutOnReplicas signs in on a, uses the cookie on b, signs out on
// a, and checks that both refuse a copy of the cookie: a at once, b
// within session.CacheFor.
func testSignOutOnReplicas(t *testing.T, a, b *replica) {
	cookie := signIn(t, a.base)
	if code := getWithCookie(t, b.base+"/", cookie); code != http.StatusOK {
		t.Fatalf("GET / on B before sign-out: got %d, want 200", code)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, a.base+"/logout", nil)
	req.Header.Set("Origin", a.base)
	req.AddCookie(cookie)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /logout on A: got %d, want 303", resp.StatusCode)
	}
	if code := getWithCookie(t, a.base+"/", cookie); code != http.StatusSeeOther {
		t.Errorf("GET / on A after sign-out: got %d, want 303 to sign in", code)
	}
	// B used the session just before: it may answer from memory for
	// session.CacheFor (5 s; internal/session tests that bound on the
	// test clock). Here only the refusal itself is asserted, with a
	// polling deadline far beyond it, so a loaded machine cannot fail it.
	deadline := time.Now().Add(30 * time.Second)
	for getWithCookie(t, b.base+"/", cookie) == http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("B still accepts the cookie 30 s after sign-out on A, want refused within %v", session.CacheFor)
		}
		time.Sleep(100 * time.Millisecond)
	}
	req, _ = http.NewRequestWithContext(t.Context(), http.MethodPost, b.base+"/csr", nil)
	req.Header.Set("Origin", b.base)
	req.AddCookie(cookie)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST /csr on B after sign-out: got %d, want 401", resp.StatusCode)
	}
}

// getWithCookie answers GET url with only cookie, redirects not followed.
func getWithCookie(t *testing.T, url string, cookie *http.Cookie) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	req.AddCookie(cookie)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// countAudits counts the audit log lines of kind in a JSON log.
func countAudits(log, kind string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"msg":"audit"`) && strings.Contains(line, `"kind":"`+kind+`"`) {
			n++
		}
	}
	return n
}
