package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
)

// TestRecentSignIn: when a sign-in counts as recent enough to export, how
// auth_time is read, and that the session keeps the sign-in's time.
func TestRecentSignIn(t *testing.T) {
	a, _, clk := newTestAuthenticator(t, "export-test-session-secret-0123456789")
	now := clk.Now()
	if a.exportSignInAge != DefaultExportSignInAge {
		t.Fatalf("got export sign-in age %v, want the default %v", a.exportSignInAge, DefaultExportSignInAge)
	}
	for _, tt := range []struct {
		name string
		at   time.Time
		want bool
	}{
		{"unknown", time.Time{}, false},
		{"just now", now, true},
		{"at the limit", now.Add(-DefaultExportSignInAge), true},
		{"a second past the limit", now.Add(-DefaultExportSignInAge - time.Second), false},
	} {
		if got := a.signedInRecently(auth.User{Subject: "s", SignedInAt: tt.at}); got != tt.want {
			t.Errorf("%s: got recent %v, want %v", tt.name, got, tt.want)
		}
	}

	for _, tt := range []struct {
		name  string
		claim any
		want  time.Time
	}{
		{"a minute ago", float64(now.Add(-time.Minute).Unix()), now.Add(-time.Minute)},
		{"ahead of our clock counts as now", float64(now.Add(time.Hour).Unix()), now},
		{"absent", nil, time.Time{}},
		{"not a number", "yesterday", time.Time{}},
		{"zero", float64(0), time.Time{}},
		{"absurdly far", float64(1e13), time.Time{}},
	} {
		if got := a.authTime(tt.claim); !got.Equal(tt.want) {
			t.Errorf("auth_time %s: got %v, want %v", tt.name, got, tt.want)
		}
	}

	// The session keeps the sign-in time to the second; a session that
	// has none (minted before it was kept) is never recent.
	signedIn := now.Add(-time.Minute)
	w := httptest.NewRecorder()
	if err := a.startSession(w, httptest.NewRequest(http.MethodGet, "/", nil), auth.User{Subject: "s", Role: auth.RoleAdmin, SignedInAt: signedIn}); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	if u, _, ok, err := a.sessionUser(r); !ok || err != nil || !u.SignedInAt.Equal(signedIn) || u.CanExport {
		t.Errorf("got %+v, %v; want the session's user signed in at %v, without the export role", u, ok, signedIn)
	}
	w = httptest.NewRecorder()
	if err := a.startSession(w, httptest.NewRequest(http.MethodGet, "/", nil), auth.User{Subject: "s", Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(w.Result().Cookies()[0])
	if u, _, ok, err := a.sessionUser(r); !ok || err != nil || a.signedInRecently(u) {
		t.Errorf("session without a sign-in time: got %+v, %v; want a user whose sign-in is not recent", u, ok)
	}
}

func TestReauthReturn(t *testing.T) {
	for _, tt := range []struct {
		next    string
		renewed bool
		want    string
	}{
		{"/export", true, "/export?signin=renewed"},
		{"/export", false, "/export?signin=old"},
		{"", true, "/export?signin=renewed"},
		{"/export?signin=renewed", false, "/export?signin=old"},
	} {
		if got := reauthReturn(tt.next, tt.renewed); got != tt.want {
			t.Errorf("reauthReturn(%q, %v): got %q, want %q", tt.next, tt.renewed, got, tt.want)
		}
	}
}
