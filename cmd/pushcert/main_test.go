package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
	"github.com/pushcert/pushcert/web/webtest"
)

// env is a fake getenv over a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// syncBuffer collects a process's output while it runs in another goroutine.
type syncBuffer = webtest.SyncBuffer

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// running is run() started in the background by launch.
type running struct {
	addr   string
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error // receives run's result
}

// launch runs run() in the background and waits for /healthz to answer.
// The caller stops it with cancel and reads run's result from done.
func launch(t *testing.T, args []string, getenv func(string) string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{out: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	now := serverClock(t)
	go func() { r.done <- runAt(ctx, args, getenv, r.out, now) }()
	for _, a := range args {
		if strings.HasPrefix(a, "-listen-addr=") {
			r.addr = strings.TrimPrefix(a, "-listen-addr=")
		}
	}
	if r.addr == "" {
		r.addr = getenv("PUSHCERT_LISTEN_ADDR")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + r.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		select {
		case err := <-r.done:
			cancel()
			t.Fatalf("run stopped early: %v\n%s", err, r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("/healthz did not answer within 30 s\n%s", r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startRun runs run() in the background until the test ends, and waits for
// /healthz to answer.
func startRun(t *testing.T, args []string, getenv func(string) string) (addr string, out *syncBuffer) {
	t.Helper()
	r := launch(t, args, getenv)
	t.Cleanup(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("run returned %v after cancel, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not stop within 30 s of cancel")
		}
	})
	return r.addr, r.out
}

func TestRunSmoke(t *testing.T) {
	// A real provider for the production configuration: the development one,
	// as a company's provider would be, on its own port.
	provider, err := devidp.Start(discard(), "127.0.0.1:0", t.TempDir(), []devidp.User{{Key: "admin", Email: "a@example.com", Groups: []string{"admins"}}}, serverClock(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = provider.Close() })
	listen := freeAddr(t)
	secret := "smoke-test-secret-0123456789abcdefgh"
	addr, out := startRun(t, nil, env(map[string]string{
		"PUSHCERT_LISTEN_ADDR":           listen,
		"PUSHCERT_BASE_URL":              "http://" + listen,
		"PUSHCERT_DATA_DIR":              t.TempDir(),
		"PUSHCERT_ORGANIZATION":          "Smoke Test Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": "kek-" + secret,
		"PUSHCERT_SESSION_SECRET":        "session-" + secret,
		"PUSHCERT_OIDC_ISSUER":           provider.Issuer(),
		"PUSHCERT_OIDC_CLIENT_ID":        devidp.ClientID,
		"PUSHCERT_OIDC_CLIENT_SECRET":    provider.ClientSecret(),
		"PUSHCERT_ADMIN_GROUPS":          "admins",
	}))
	// Signed out, the status page sends the browser to sign in, and /login
	// on to the configured provider.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2F" {
		t.Errorf("GET /: got %d %q, want 303 to /login?next=%%2F", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noFollow.Get("http://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, provider.Issuer()+"/authorize?") {
		t.Errorf("GET /login: got %d %q, want 302 to the provider at %s", resp.StatusCode, loc, provider.Issuer())
	}
	for _, s := range []string{secret, provider.ClientSecret()} {
		if strings.Contains(out.String(), s) {
			t.Errorf("log output contains a secret")
		}
	}
	if !strings.Contains(out.String(), `"msg":"pushcert listening"`) {
		t.Errorf("got log %q, want JSON lines with the listening message", out.String())
	}
	if !strings.Contains(out.String(), `"msg":"status cache on`) {
		t.Errorf("got log %q, want the status cache reported on for SQLite", out.String())
	}
}

func TestRunDev(t *testing.T) {
	dir := t.TempDir()
	listen := freeAddr(t)
	addr, out := startRun(t, []string{"-dev", "-listen-addr=" + listen, "-dev-provider-addr=" + freeAddr(t), "-data-dir=" + dir}, env(nil))
	if !strings.Contains(out.String(), "development mode") {
		t.Errorf("got output %q, want the development-mode notice", out.String())
	}
	for _, f := range []string{"pushcert.db", "dev-session-secret", "dev-key-encryption-secret", "dev-ca.pem", "dev-ca-key.pem", "dev-delivery"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("dev mode did not create %s: %v", f, err)
		}
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get("http://" + addr + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "/oidc/authorize") {
		t.Errorf("dev /login redirected to %q, want the embedded provider", loc)
	}
}

func TestDevRefusesNonLoopback(t *testing.T) {
	err := run(context.Background(), []string{"-dev", "-listen-addr=0.0.0.0:0", "-data-dir=" + t.TempDir()}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("got %v, want a refusal naming loopback", err)
	}
}

func TestConfigProblemsListedTogether(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    []string
		notWant []string
	}{
		{
			name: "nothing set",
			env:  nil,
			want: []string{"PUSHCERT_BASE_URL", "PUSHCERT_ORGANIZATION", "PUSHCERT_KEY_ENCRYPTION_SECRET", "PUSHCERT_SESSION_SECRET", "PUSHCERT_OIDC_ISSUER", "PUSHCERT_OIDC_CLIENT_ID", "PUSHCERT_ADMIN_GROUPS"},
		},
		{
			name: "bad values, secrets not echoed",
			env: map[string]string{
				"PUSHCERT_BASE_URL": "ftp://x", "PUSHCERT_KEY_ENCRYPTION_SECRET": "short-kek-value",
				"PUSHCERT_SESSION_SECRET": "short-session-value", "PUSHCERT_DATABASE_URL": "mysql://x",
				"PUSHCERT_SESSION_LIFETIME": "forever", "PUSHCERT_DEV": "maybe", "PUSHCERT_LOG_FORMAT": "xml",
				"PUSHCERT_VENDOR_CERT": "/nonexistent/vendor.pem",
			},
			want:    []string{"PUSHCERT_BASE_URL", "too short", "PUSHCERT_DATABASE_URL", "PUSHCERT_SESSION_LIFETIME", "PUSHCERT_DEV", "PUSHCERT_LOG_FORMAT", "PUSHCERT_VENDOR_CERT"},
			notWant: []string{"short-kek-value", "short-session-value"},
		},
		{
			name: "flag beats environment",
			env:  map[string]string{"PUSHCERT_BASE_URL": "ftp://x"},
			args: []string{"-base-url=https://pushcert.example.com"},
			want: []string{"PUSHCERT_ORGANIZATION"}, notWant: []string{"PUSHCERT_BASE_URL"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("pushcert", modeServe, tt.args, env(tt.env), io.Discard)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a configError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to mention %s", err, w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want no %s", err, w)
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig("pushcert", modeServe, nil, env(map[string]string{
		"PUSHCERT_BASE_URL": "https://pushcert.example.com/", "PUSHCERT_ORGANIZATION": "Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": strings.Repeat("k", 32), "PUSHCERT_SESSION_SECRET": strings.Repeat("s", 32),
		"PUSHCERT_OIDC_ISSUER": "https://login.example.com", "PUSHCERT_OIDC_CLIENT_ID": "pushcert",
		"PUSHCERT_ADMIN_GROUPS": "mdm-admins, it-leads", "PUSHCERT_DATA_DIR": "/var/lib/pushcert",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen", c.ListenAddr, ":8080"},
		{"base url", c.BaseURL, "https://pushcert.example.com"},
		{"database", c.DatabaseURL, "sqlite:/var/lib/pushcert/pushcert.db"},
		{"audience", c.OIDCAudience, "pushcert"},
		{"groups claim", c.GroupsClaim, "groups"},
		{"admin groups", strings.Join(c.AdminGroups, "|"), "mdm-admins|it-leads"},
		{"log format", c.LogFormat, "json"},
		{"lifetime", c.SessionLifetime.String(), "8h0m0s"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
}

func TestStartupRefusesBadVendor(t *testing.T) {
	dir := t.TempDir()
	ca, err := applesim.NewCA("Test Vendor", testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := applesim.NewCA("Another", testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath := filepath.Join(dir, "vendor.pem"), filepath.Join(dir, "vendor-key.pem")
	if err := os.WriteFile(certPath, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, other.KeyPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"-dev", "-listen-addr=127.0.0.1:0", "-data-dir=" + dir, "-vendor-cert=" + certPath, "-vendor-key=" + keyPath}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "vendor") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %v, want one line about the vendor key", err)
	}
}

func TestRotateKeyCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldSecret, newSecret := strings.Repeat("o", 40), strings.Repeat("n", 40)
	dbURL := "sqlite:" + filepath.Join(dir, "pushcert.db")

	// Store a pending key under the old secret.
	kr, err := store.NewKeyring(oldSecret)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbURL, kr)
	if err != nil {
		t.Fatal(err)
	}
	svc := pushcert.NewService(st, pushcert.Config{Organization: "Org"})
	pk, err := svc.GenerateCSR(ctx, auth.User{Subject: "s", Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	base := map[string]string{
		"PUSHCERT_DATABASE_URL": dbURL, "PUSHCERT_ORGANIZATION": "Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": newSecret, "PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS": oldSecret,
	}
	var out bytes.Buffer
	if err := run(ctx, []string{"rotate-key"}, env(base), &out); err != nil {
		t.Fatalf("rotate-key: %v", err)
	}
	if !strings.Contains(out.String(), "re-encrypted 1 private keys") {
		t.Errorf("got %q, want a count of 1", out.String())
	}
	// The new secret alone now reads the key; the old one alone does not.
	for _, c := range []struct {
		secret string
		ok     bool
	}{{newSecret, true}, {oldSecret, false}} {
		kr, _ := store.NewKeyring(c.secret)
		st, err := store.Open(ctx, dbURL, kr)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := st.PendingKeys(ctx, time.Time{})
		st.Close()
		if c.ok && (err != nil || len(keys) != 1 || !keyMatchesCSR(t, keys[0].KeyDER, pk.CSRDER)) {
			t.Errorf("new secret: got %d keys, %v; want the key", len(keys), err)
		}
		if !c.ok && err == nil {
			t.Error("old secret alone still reads the keys after rotation")
		}
	}
}

// keyMatchesCSR reports whether a PKCS#8 private key is the one a CSR was made for.
func keyMatchesCSR(t *testing.T, keyDER, csrDER []byte) bool {
	t.Helper()
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return false
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := key.(*rsa.PrivateKey)
	return ok && pub.PublicKey.Equal(csr.PublicKey)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestHealthcheckCommand(t *testing.T) {
	listen := freeAddr(t)
	startRun(t, []string{"-dev", "-listen-addr=" + listen, "-dev-provider-addr=" + freeAddr(t), "-data-dir=" + t.TempDir()}, env(nil))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", listen}, env(nil), &out); err != nil || strings.TrimSpace(out.String()) != "ok" {
		t.Errorf("healthcheck: got %v %q, want ok", err, out.String())
	}
	if err := run(context.Background(), []string{"healthcheck", freeAddr(t)}, env(nil), io.Discard); err == nil {
		t.Error("healthcheck of a closed port: got nil, want an error")
	}
}
