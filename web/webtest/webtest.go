// Package webtest runs the whole pushcert application for tests: the real
// server from web.NewServer on an httptest.Server, the development OpenID
// provider in the same process, a real SQLite store and a CA that plays
// Apple. Tests sign in through the real flow and call the API with tokens
// the provider issues.
package webtest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
	"github.com/pushcert/pushcert/web"
)

// Groups the test provider's demo users belong to.
const (
	AdminGroup  = "pushcert-admins"
	ViewerGroup = "pushcert-viewers"
	// ExportGroup grants the export role; the demo user "mdmhost" (a
	// script on the MDM host) is its only member.
	ExportGroup = "pushcert-exporters"
)

// SessionSecret is the session secret the test server uses.
const SessionSecret = "webtest-session-secret-0123456789abcdef"

// App is a running pushcert with its provider, store and test CA.
type App struct {
	URL      string
	Server   *httptest.Server
	Provider *devidp.Provider
	Service  *pushcert.Service
	Store    *store.DB
	CA       *applesim.CA // named like Apple's CA, so its certificates pass the issuer check
	DevCA    *applesim.CA // non-nil when the app runs with the dev pages
	Logs     *SyncBuffer  // everything the server logged
	// Clock is the one clock of the app: service, sessions, tokens and CA.
	Clock *testclock.Clock
}

// Options change how New builds the app.
type Options struct {
	Dev         bool             // mount the development pages (Dev Apple)
	Vendor      *pushcert.Vendor // vendor signing
	DatabaseURL string           // default: SQLite in t.TempDir()
	Audience    string           // API audience; default the client ID
	// SessionSecret and SessionLifetime default to SessionSecret and an hour.
	SessionSecret   string
	SessionLifetime time.Duration
	// IdleTimeout ends unused sessions; zero means web's default, and a
	// negative one no limit.
	IdleTimeout time.Duration
	// MetricsToken, when set, protects /metrics.
	MetricsToken string
	// Clock, when set, is the app's clock; default a new one at
	// testclock.Start.
	Clock *testclock.Clock
	// ExportDisabled turns export off (PUSHCERT_DISABLE_EXPORT).
	ExportDisabled bool
	// ExportGroups grant the export role; nil means ExportGroup, and an
	// empty list no group.
	ExportGroups []string
	// ExportSignInAge is how recent a sign-in a console export needs;
	// default web's.
	ExportSignInAge time.Duration
}

// New starts the application for one test and stops it at cleanup.
func New(t testing.TB, opts Options) *App {
	t.Helper()
	ctx := context.Background()
	logs := &SyncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := opts.Clock
	if clk == nil {
		clk = testclock.New(t)
	}

	provider, err := devidp.Start(log, "127.0.0.1:0", t.TempDir(), []devidp.User{
		{Key: "admin", Label: "Test Admin", Email: "admin@example.com", Groups: []string{"staff", AdminGroup}},
		{Key: "viewer", Label: "Test Viewer", Email: "viewer@example.com", Groups: []string{ViewerGroup}},
		{Key: "outsider", Label: "Test Outsider", Email: "outsider@example.com", Groups: []string{"staff"}},
		{Key: "mdmhost", Label: "MDM host script", Email: "mdm-host@example.com", Groups: []string{ExportGroup}},
	}, clk.Now)
	if err != nil {
		t.Fatalf("start provider: %v", err)
	}
	t.Cleanup(func() { _ = provider.Close() })

	kr, err := store.NewKeyring(strings.Repeat("webtest-kek-", 4))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	dbURL := opts.DatabaseURL
	if dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(t.TempDir(), "pushcert.db")
	}
	st, err := store.Open(ctx, dbURL, kr)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })

	ca, err := applesim.NewCA(applesim.AppleCAName, clk.Now)
	if err != nil {
		t.Fatalf("test CA: %v", err)
	}
	var devCA *applesim.CA
	// pushcert trusts no CA by its name: the test CA is trusted explicitly.
	cfg := pushcert.Config{Organization: "Example Test Org", Vendor: opts.Vendor, Now: clk.Now, TrustRoots: ca.Pool()}
	if opts.Dev {
		devCA = ca
	}
	svc := pushcert.NewService(st, cfg)

	if opts.SessionSecret == "" {
		opts.SessionSecret = SessionSecret
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = web.DefaultSessionIdleTimeout
	}
	if opts.SessionLifetime == 0 {
		opts.SessionLifetime = time.Hour
	}
	if opts.ExportGroups == nil {
		opts.ExportGroups = []string{ExportGroup}
	}
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	authn, err := web.NewAuthenticator(ctx, log, web.AuthConfig{
		Issuer:          provider.Issuer(),
		ClientID:        devidp.ClientID,
		ClientSecret:    provider.ClientSecret(),
		Audience:        opts.Audience,
		Scopes:          []string{"openid", "email", "profile", "groups"},
		BaseURL:         base,
		GroupsClaim:     "groups",
		AdminGroups:     []string{AdminGroup},
		ViewerGroups:    []string{ViewerGroup},
		ExportGroups:    opts.ExportGroups,
		ExportSignInAge: opts.ExportSignInAge,
		SessionSecret:   opts.SessionSecret,
		SessionLifetime: opts.SessionLifetime,
		IdleTimeout:     max(opts.IdleTimeout, 0),
		Sessions:        st,
		Dev:             opts.Dev,
		Now:             clk.Now,
	})
	if err != nil {
		t.Fatalf("authenticator: %v", err)
	}
	// A Deliverer with no targets: it delivers nothing, and exports.
	deliv := delivery.New(log, st, nil, delivery.Config{ExportDisabled: opts.ExportDisabled, Now: clk.Now})
	srv.Config.Handler = web.NewServer(log, authn, svc, deliv, nil, web.NewOps(log, st, opts.MetricsToken), base, "Example Test Org", devCA)
	srv.Start()
	t.Cleanup(srv.Close)

	return &App{
		URL: base, Server: srv, Provider: provider, Service: svc, Store: st,
		CA: ca, DevCA: devCA, Logs: logs, Clock: clk,
	}
}

// Client returns a browser-like client with its own cookie jar that does not
// follow redirects, for asserting on them.
func (a *App) Client(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatalf("cookie jar: %v", err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// LoginAs signs user ("admin", "viewer", "outsider" or "mdmhost") in through the real
// flow — pushcert's /login, the provider's authorization endpoint, the
// callback — and returns a client holding the session cookie.
func (a *App) LoginAs(t testing.TB, user string) *http.Client {
	t.Helper()
	c := a.Client(t)
	next := a.URL + "/login"
	for range 10 {
		resp, err := c.Get(next)
		if err != nil {
			t.Fatalf("sign in as %s: %v", user, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode >= 400 || loc == "" {
			if resp.StatusCode >= 400 && user != "outsider" {
				t.Fatalf("sign in as %s: got status %d at %s", user, resp.StatusCode, next)
			}
			return c
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			t.Fatalf("sign in as %s: bad redirect %q", user, loc)
		}
		if strings.HasSuffix(u.Path, "/oidc/authorize") {
			q := u.Query()
			q.Set("demo_user", user)
			u.RawQuery = q.Encode()
		}
		next = u.String()
	}
	t.Fatalf("sign in as %s: too many redirects", user)
	return nil
}

// Token returns an ID token for user from the provider's token endpoint,
// usable as an API bearer token.
func (a *App) Token(t testing.TB, user string) string {
	t.Helper()
	token, err := devidp.Token(context.Background(), http.DefaultClient, a.Provider.Issuer(), user)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// IssueForLatestCSR plays Apple: it issues a push certificate for the newest
// pending CSR and returns it as PEM. An empty topic means a new one.
func (a *App) IssueForLatestCSR(t testing.TB, topic string) []byte {
	t.Helper()
	pk, err := a.Service.LatestCSR(context.Background())
	if err != nil {
		t.Fatalf("latest csr: %v", err)
	}
	der, err := a.CA.IssueForCSR(pk.CSRDER, applesim.Request{Topic: topic})
	if err != nil {
		t.Fatalf("issue certificate: %v", err)
	}
	return applesim.PEM(der)
}

// SyncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
