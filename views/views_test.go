package views

import (
	"context"
	"strings"
	"testing"

	"github.com/a-h/templ"

	"github.com/pushcert/pushcert/internal/auth"
)

func renderString(t *testing.T, c templ.Component) string {
	t.Helper()
	var b strings.Builder
	if err := c.Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestStatusPageStates renders every state for every kind of visitor: each
// has its own words (not only a color) and a next step, and only
// administrators get the controls.
func TestStatusPageStates(t *testing.T) {
	admin := &auth.User{Email: "a@example.com", Role: auth.RoleAdmin}
	viewer := &auth.User{Email: "v@example.com", Role: auth.RoleViewer}
	cert := &CertificateView{Topic: "com.apple.mgmt.External.x", APSPName: "APSP:x", Serial: "01", Expiry: "2027-11-22 05:00 UTC", ExpiryRelative: "in 23 days"}
	states := []State{StateNotSetUp, StateWaiting, StateActive, StateExpiresSoon, StateExpired}
	users := []struct {
		name      string
		user      *auth.User
		wantAdmin bool
	}{
		{"admin", admin, true},
		{"viewer", viewer, false},
		{"no role", &auth.User{Email: "n@example.com"}, false},
	}
	labels := map[string]State{}
	for _, st := range states {
		label := stateLabel(st)
		if other, dup := labels[label]; dup {
			t.Errorf("got label %q for %s and %s, want one each", label, st, other)
		}
		labels[label] = st
		for _, u := range users {
			t.Run(string(st)+" "+u.name, func(t *testing.T) {
				v := StatusView{State: st, Pending: &PendingView{Created: "2027-10-01 10:00 UTC", CreatedBy: "a@example.com"}}
				if st != StateNotSetUp {
					v.Certificate = cert
				}
				page := renderString(t, StatusPage(Shell{Title: "Status", User: u.user, Path: "/"}, v))
				if !strings.Contains(page, ">"+templ.EscapeString(label)+"<") {
					t.Errorf("got no state text %q, want it", label)
				}
				if !strings.Contains(page, "Next step:") {
					t.Errorf("got no next step, want one")
				}
				for _, id := range []string{`data-testid="generate-csr"`, `data-testid="upload-form"`, `data-testid="download-csr"`} {
					if got := strings.Contains(page, id); got != u.wantAdmin {
						t.Errorf("%s: got %v, want %v", id, got, u.wantAdmin)
					}
				}
			})
		}
	}
}

func TestLayoutSignedOut(t *testing.T) {
	page := renderString(t, ErrorPage(Shell{Title: "Sign in required"}, ErrorView{Status: 401, Title: "Sign in required", Message: "m"}))
	for _, want := range []string{`data-testid="signin"`, `href="/login"`} {
		if !strings.Contains(page, want) {
			t.Errorf("got no %s, want it", want)
		}
	}
	for _, bad := range []string{`aria-label="Main"`, `data-testid="signout"`, `data-testid="dev-banner"`} {
		if strings.Contains(page, bad) {
			t.Errorf("got %s signed out, want none", bad)
		}
	}
}
