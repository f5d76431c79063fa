package web_test

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/session"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/testclock"
	"github.com/pushcert/pushcert/web/webtest"
)

// sessionCookie returns the session cookie c holds for app.
func sessionCookie(t *testing.T, c *http.Client, app *webtest.App) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(app.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "pushcert_session" {
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// withCookie sends method path to app with only ck, as someone who copied
// the cookie would, and returns the status, the Location and the body.
// POSTs come from the app's own origin.
func withCookie(t *testing.T, app *webtest.App, ck *http.Cookie, method, path string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, app.URL+path, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Origin", app.URL)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if ck != nil {
		req.AddCookie(ck)
	}
	resp, err := app.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

// wantSignedIn and wantRefused check that ck opens the status page on app,
// or that app refuses it: GET / sends to sign in and POST /csr changes
// nothing (the request the attack session made after sign-out).
func wantSignedIn(t *testing.T, app *webtest.App, ck *http.Cookie, what string) {
	t.Helper()
	if code, _, body := withCookie(t, app, ck, http.MethodGet, "/"); code != http.StatusOK || !strings.Contains(body, `data-testid="user-role"`) {
		t.Errorf("%s: GET / got %d, want 200 signed in", what, code)
	}
}

func wantRefused(t *testing.T, app *webtest.App, ck *http.Cookie, what string) {
	t.Helper()
	if code, loc, _ := withCookie(t, app, ck, http.MethodGet, "/"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("%s: GET / got %d %q, want 303 to sign in", what, code, loc)
	}
	if code, _, body := withCookie(t, app, ck, http.MethodPost, "/csr"); code != http.StatusUnauthorized || !strings.Contains(body, "Your session has ended") {
		t.Errorf("%s: POST /csr got %d, want 401", what, code)
	}
	if _, err := app.Service.LatestCSR(context.Background()); !errors.Is(err, pushcert.ErrNoCSR) {
		t.Errorf("%s: got a CSR (%v), want none generated", what, err)
	}
}

// replicas are two apps over one database, on one clock, as two pushcert
// servers behind one address.
func replicas(t *testing.T, dbURL string, opts webtest.Options) (a, b *webtest.App) {
	t.Helper()
	opts.DatabaseURL = dbURL
	if opts.Clock == nil {
		opts.Clock = testclock.New(t)
	}
	return webtest.New(t, opts), webtest.New(t, opts)
}

func signOut(t *testing.T, app *webtest.App, c *http.Client) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/logout", nil)
	req.Header.Set("Origin", app.URL)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out: got %d, want 303", resp.StatusCode)
	}
}

// TestSignOutEndsTheSessionOnEveryReplica: a cookie copied before sign-out
// is refused after it, on the replica that signed out at once and on the
// other within session.CacheFor, on SQLite and PostgreSQL.
func TestSignOutEndsTheSessionOnEveryReplica(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) {
			a, b := replicas(t, be.URL(t), webtest.Options{})
			admin := a.LoginAs(t, "admin")
			copied := sessionCookie(t, admin, a)
			wantSignedIn(t, a, copied, "before sign-out, on A")
			wantSignedIn(t, b, copied, "before sign-out, on B")
			other := a.LoginAs(t, "admin")
			unseen := sessionCookie(t, other, a) // never used on B

			signOut(t, a, admin)
			signOut(t, a, other)
			wantRefused(t, a, copied, "after sign-out, on A")
			wantRefused(t, b, unseen, "after sign-out, a session B never saw")
			// B used the copied session a moment ago: it may answer from
			// memory for session.CacheFor, and no longer.
			a.Clock.Advance(session.CacheFor)
			wantRefused(t, b, copied, "session.CacheFor after sign-out, on B")
		})
	}
}

// TestSessionIdleAndLifetime: a session ends when unused for the idle
// timeout, and at the end of its lifetime however much it is used.
func TestSessionIdleAndLifetime(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) {
			a, b := replicas(t, be.URL(t), webtest.Options{SessionLifetime: 2 * time.Hour, IdleTimeout: 30 * time.Minute})
			clk := a.Clock
			idle := sessionCookie(t, a.LoginAs(t, "viewer"), a)
			busy := sessionCookie(t, a.LoginAs(t, "admin"), a)
			t0 := clk.Now()
			// Used every 25 minutes, alternately on A and on B.
			for i, at := range []time.Duration{25, 50, 75, 100} {
				clk.Set(t0.Add(at * time.Minute))
				wantSignedIn(t, []*webtest.App{a, b}[i%2], busy, "in use")
			}
			clk.Set(t0.Add(30*time.Minute - time.Second))
			if i, _, _ := withCookie(t, b, idle, http.MethodGet, "/"); i != http.StatusOK {
				t.Fatalf("unused for a second less than the idle timeout: got %d, want 200", i)
			}
			clk.Set(t0.Add(60 * time.Minute))
			wantRefused(t, a, idle, "unused for the idle timeout, on A")
			wantRefused(t, b, idle, "unused for the idle timeout, on B")
			clk.Set(t0.Add(2*time.Hour - time.Second))
			wantSignedIn(t, a, busy, "a second before its lifetime ends")
			clk.Set(t0.Add(2 * time.Hour))
			wantRefused(t, a, busy, "at the end of its lifetime, in use all along")
		})
	}
}

// sessionRows are the sessions page's rows: the handle in each revoke
// form (empty for the admin's own row), whether it is the admin's own,
// and who it is.
type sessionRow struct {
	handle, who string
	current     bool
}

var (
	rowPattern    = regexp.MustCompile(`(?s)<tr data-testid="session-row"( data-current)?>(.*?)</tr>`)
	whoPattern    = regexp.MustCompile(`data-testid="session-who">([^<]*)<`)
	handlePattern = regexp.MustCompile(`action="/sessions/([^/"]+)/revoke"`)
)

func sessionRows(t *testing.T, body string) []sessionRow {
	t.Helper()
	var rows []sessionRow
	for _, m := range rowPattern.FindAllStringSubmatch(body, -1) {
		r := sessionRow{current: m[1] != ""}
		if w := whoPattern.FindStringSubmatch(m[2]); w != nil {
			r.who = w[1]
		}
		if h := handlePattern.FindStringSubmatch(m[2]); h != nil {
			r.handle = h[1]
		}
		rows = append(rows, r)
	}
	return rows
}

// TestAdminRevokesSession: an admin sees who is signed in, their own
// session marked, signs another session out, and it stops working on
// every replica; the history records it; signing it out again is 404.
func TestAdminRevokesSession(t *testing.T) {
	for _, be := range storetest.Backends {
		t.Run(be.Name, func(t *testing.T) {
			a, b := replicas(t, be.URL(t), webtest.Options{})
			admin := a.LoginAs(t, "admin")
			adminCookie := sessionCookie(t, admin, a)
			viewer := sessionCookie(t, a.LoginAs(t, "viewer"), a)
			wantSignedIn(t, b, viewer, "the viewer on B, before")

			code, _, body := withCookie(t, a, adminCookie, http.MethodGet, "/sessions")
			rows := sessionRows(t, body)
			if code != http.StatusOK || len(rows) != 2 {
				t.Fatalf("GET /sessions: got %d with %d rows, want 200 with 2", code, len(rows))
			}
			var target string
			for _, r := range rows {
				switch r.who {
				case "admin@example.com":
					if !r.current || r.handle != "" {
						t.Errorf("the admin's own row: got current %v, revoke form %q; want marked, without a form", r.current, r.handle)
					}
				case "viewer@example.com":
					if r.current || r.handle == "" {
						t.Errorf("the viewer's row: got current %v, revoke form %q; want a revoke form", r.current, r.handle)
					}
					target = r.handle
				default:
					t.Errorf("got a row for %q", r.who)
				}
			}
			if !strings.Contains(body, `href="/sessions" aria-current="page"`) {
				t.Error("the navigation has no current link to /sessions")
			}

			// Another site cannot make the admin's browser sign it out.
			req, _ := http.NewRequest(http.MethodPost, b.URL+"/sessions/"+target+"/revoke", nil)
			req.Header.Set("Origin", "https://evil.example")
			req.AddCookie(adminCookie)
			resp, err := b.Client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("cross-origin revoke: got %d, want 403", resp.StatusCode)
			}
			wantSignedIn(t, b, viewer, "the viewer after a cross-origin revoke")

			code, loc, _ := withCookie(t, b, adminCookie, http.MethodPost, "/sessions/"+target+"/revoke")
			if code != http.StatusSeeOther || loc != "/sessions?done=revoked" {
				t.Fatalf("revoke on B: got %d %q, want 303 to /sessions?done=revoked", code, loc)
			}
			wantRefused(t, b, viewer, "revoked, on B")
			a.Clock.Advance(session.CacheFor)
			wantRefused(t, a, viewer, "revoked, on A after session.CacheFor")
			wantSignedIn(t, a, adminCookie, "the admin who revoked")

			_, _, body = withCookie(t, a, adminCookie, http.MethodGet, "/sessions?done=revoked")
			if rows := sessionRows(t, body); len(rows) != 1 || !strings.Contains(body, `data-testid="confirmation"`) {
				t.Errorf("after the revocation: got %d rows, want 1 and a confirmation", len(rows))
			}
			_, _, body = withCookie(t, a, adminCookie, http.MethodGet, "/history")
			if !strings.Contains(body, `data-kind="session_revoked"`) || !strings.Contains(body, "Session signed out by an administrator") ||
				!strings.Contains(body, "the session of viewer@example.com") {
				t.Error("the history does not record the revocation by the admin of the viewer's session")
			}
			if code, _, body := withCookie(t, a, adminCookie, http.MethodPost, "/sessions/"+target+"/revoke"); code != http.StatusNotFound ||
				!strings.Contains(body, "Session already ended") {
				t.Errorf("revoking it again: got %d, want 404 saying it ended", code)
			}
		})
	}
}

// TestSessionsPageAdminsOnly: viewers get 403 for the page and the revoke
// form, and their attempt ends nobody's session; signed out, the page
// asks to sign in.
func TestSessionsPageAdminsOnly(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	adminCookie := sessionCookie(t, app.LoginAs(t, "admin"), app)
	otherAdmin := sessionCookie(t, app.LoginAs(t, "admin"), app)
	viewer := sessionCookie(t, app.LoginAs(t, "viewer"), app)
	_, _, body := withCookie(t, app, adminCookie, http.MethodGet, "/sessions")
	var handles []string
	for _, r := range sessionRows(t, body) {
		if r.handle != "" {
			handles = append(handles, r.handle)
		}
	}
	if len(handles) != 2 {
		t.Fatalf("got %d revoke forms on the admin's page, want 2 (the other admin's and the viewer's)", len(handles))
	}

	if code, _, body := withCookie(t, app, viewer, http.MethodGet, "/sessions"); code != http.StatusForbidden || !strings.Contains(body, webtest.AdminGroup) {
		t.Errorf("viewer GET /sessions: got %d, want 403 naming %s", code, webtest.AdminGroup)
	}
	if _, _, status := withCookie(t, app, viewer, http.MethodGet, "/"); strings.Contains(status, `href="/sessions"`) {
		t.Error("the viewer's navigation links to /sessions")
	}
	for _, h := range append(handles, "anything") {
		if code, _, _ := withCookie(t, app, viewer, http.MethodPost, "/sessions/"+h+"/revoke"); code != http.StatusForbidden {
			t.Errorf("viewer POST revoke: got %d, want 403", code)
		}
	}
	wantSignedIn(t, app, otherAdmin, "the other admin after the viewer's attempts")
	wantSignedIn(t, app, viewer, "the viewer after their attempts")
	if code, loc, _ := withCookie(t, app, nil, http.MethodGet, "/sessions"); code != http.StatusSeeOther || loc != "/login?next=%2Fsessions" {
		t.Errorf("signed out GET /sessions: got %d %q, want 303 to sign in", code, loc)
	}
	if code, _, _ := withCookie(t, app, nil, http.MethodPost, "/sessions/"+handles[0]+"/revoke"); code != http.StatusUnauthorized {
		t.Errorf("signed out POST revoke: got %d, want 401", code)
	}
	wantSignedIn(t, app, otherAdmin, "the other admin after a signed-out attempt")
	if es, err := app.Store.Events(context.Background(), 0); err != nil || len(es) != 0 {
		t.Errorf("got %d events (%v), want none recorded", len(es), err)
	}
}

// TestSessionsPageShowsNoSecret: the cookie holds only a random token, and
// the sessions page shows neither the cookies, nor the tokens in them,
// nor the hashes the database keeps.
func TestSessionsPageShowsNoSecret(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin := sessionCookie(t, app.LoginAs(t, "admin"), app)
	viewer := sessionCookie(t, app.LoginAs(t, "viewer"), app)
	_, _, body := withCookie(t, app, admin, http.MethodGet, "/sessions")
	if len(sessionRows(t, body)) != 2 {
		t.Fatalf("got %d rows, want 2", len(sessionRows(t, body)))
	}
	for name, ck := range map[string]*http.Cookie{"admin": admin, "viewer": viewer} {
		token := cookieToken(t, ck)
		sum := sha256.Sum256([]byte(token))
		for what, secret := range map[string]string{"cookie": ck.Value, "token": token, "token hash": hex.EncodeToString(sum[:])} {
			if strings.Contains(body, secret) {
				t.Errorf("the page shows the %s session's %s", name, what)
			}
		}
	}
}

// cookieToken decodes a session cookie with the test server's secret and
// returns the one value it holds, the session's token.
func cookieToken(t *testing.T, ck *http.Cookie) string {
	t.Helper()
	hashKey, err := hkdf.Key(sha256.New, []byte(webtest.SessionSecret), nil, "pushcert session cookie signing", 64)
	if err != nil {
		t.Fatal(err)
	}
	blockKey, err := hkdf.Key(sha256.New, []byte(webtest.SessionSecret), nil, "pushcert session cookie encryption", 32)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.AddCookie(ck)
	s, err := sessions.NewCookieStore(hashKey, blockKey).New(req, ck.Name)
	token, _ := s.Values["token"].(string)
	if err != nil || len(s.Values) != 1 || len(token) < 43 {
		t.Fatalf("the cookie holds %d values (%v), want only a random token", len(s.Values), err)
	}
	return token
}
