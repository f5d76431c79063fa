package web

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/store"
)

// openTestStore opens a SQLite store in the test's folder for the
// sessions, closed when the test ends.
func openTestStore(t *testing.T) *store.DB {
	t.Helper()
	kr, err := store.NewKeyring(strings.Repeat("session-kek-", 4))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "pushcert.db"), kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// signIn starts a session for u the way the callback does and returns its
// cookie.
func signIn(t *testing.T, a *Authenticator, u auth.User) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := a.startSession(w, httptest.NewRequest(http.MethodGet, "/", nil), u); err != nil {
		t.Fatal(err)
	}
	for _, ck := range w.Result().Cookies() {
		if ck.Name == sessionCookie {
			return ck
		}
	}
	t.Fatal("no session cookie")
	return nil
}

// userOfCookie is the user a request with ck is signed in as.
func userOfCookie(t *testing.T, a *Authenticator, ck *http.Cookie) (auth.User, bool) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(ck)
	u, _, ok, err := a.sessionUser(r)
	if err != nil {
		t.Fatal(err)
	}
	return u, ok
}

// TestSessionCookie: the cookie holds only the session's random token,
// signed and encrypted; a cookie that is not genuine names no session and
// is never remembered; a session works until its expiry and not at it.
func TestSessionCookie(t *testing.T) {
	const secret = "cache-test-session-secret-0123456789"
	a, _, clk := newTestAuthenticator(t, secret)
	other, _, _ := newTestAuthenticator(t, "another-session-secret-0123456789abc")
	t0 := clk.Now()
	vic := auth.User{Subject: "dev-viewer", Name: "Vic Viewer", Email: "viewer@example.com", Role: auth.RoleViewer}
	ck := signIn(t, a, vic)

	decoded, err := a.cookies.New(cookieRequest(ck), sessionCookie)
	token, _ := decoded.Values[tokenValue].(string)
	if err != nil || len(decoded.Values) != 1 || len(token) != 43 {
		t.Fatalf("cookie holds %d values (%v), want only a 43-character token", len(decoded.Values), err)
	}
	if strings.Contains(ck.Value, token) || strings.Contains(ck.Value, "viewer") {
		t.Error("the cookie shows its token or user; want it encrypted")
	}
	for i := range 2 {
		if u, ok := userOfCookie(t, a, ck); !ok || u != vic {
			t.Fatalf("use %d: got %+v, %v, want %+v", i+1, u, ok, vic)
		}
	}
	if n := len(a.sessions.keys.entries); n != 1 {
		t.Fatalf("after a genuine cookie: got %d remembered, want 1", n)
	}

	tampered := []byte(ck.Value)
	tampered[len(tampered)/2] ^= 1
	// A cookie of the old kind, which held the user itself: genuine, but
	// it names no session.
	old := sessions.NewSession(a.cookies, sessionCookie)
	old.Values["sub"], old.Values["role"], old.Values["exp"] = "dev-admin", string(auth.RoleAdmin), t0.Add(time.Hour).Unix()
	w := httptest.NewRecorder()
	if err := old.Save(httptest.NewRequest(http.MethodGet, "/", nil), w); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]*http.Cookie{
		"tampered":                       {Name: sessionCookie, Value: string(tampered)},
		"from another secret":            signIn(t, other, vic),
		"garbage":                        {Name: sessionCookie, Value: "not-a-session"},
		"holding a user, not a session":  w.Result().Cookies()[0],
		"the token itself, not a cookie": {Name: sessionCookie, Value: token},
	} {
		if u, ok := userOfCookie(t, a, bad); ok {
			t.Errorf("%s: got %+v, want no user", name, u)
		}
	}
	if n := len(a.sessions.keys.entries); n != 1 {
		t.Errorf("after refused cookies: got %d remembered, want 1", n)
	}

	// The session lasts its hour, to the instant, cached or not.
	clk.Set(t0.Add(time.Hour - time.Nanosecond))
	if _, ok := userOfCookie(t, a, ck); !ok {
		t.Errorf("a nanosecond before the expiry: got no user, want one")
	}
	clk.Set(t0.Add(time.Hour))
	if u, ok := userOfCookie(t, a, ck); ok {
		t.Errorf("at the expiry: got %+v, want no user though it was cached", u)
	}
}

func cookieRequest(ck *http.Cookie) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(ck)
	return r
}
