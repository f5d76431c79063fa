package devidp_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

var demoUsers = []devidp.User{
	{Key: "admin", Label: "Test Admin", Email: "admin@example.com", Groups: []string{"admins"}},
	{Key: "viewer", Label: "Test Viewer", Email: "viewer@example.com", Groups: []string{"viewers"}},
}

// start runs a provider on a free loopback port until the test ends.
func start(t *testing.T, dataDir string, now func() time.Time) *devidp.Provider {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := devidp.Start(log, "127.0.0.1:0", dataDir, demoUsers, now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// claims decodes a token's payload without checking its signature.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("got %q, want a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStartWithoutUsers(t *testing.T) {
	_, err := devidp.Start(slog.New(slog.NewTextHandler(io.Discard, nil)), "127.0.0.1:0", t.TempDir(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "no demo users") {
		t.Errorf("got %v, want a refusal naming the missing demo users", err)
	}
}

func TestRefusesForeignHost(t *testing.T) {
	p := start(t, t.TempDir(), testclock.New(t).Now)
	req, _ := http.NewRequest(http.MethodPost, p.Issuer()+"/token?dev_user=admin", nil)
	req.Host = "rebound.example:8081"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest || strings.Contains(string(b), "access_token") {
		t.Errorf("got %d, want 421 and no token", resp.StatusCode)
	}
}

// TestToken: the dev_user shortcut issues an ID token for the demo user,
// for the client ID and from the issuer, dated by the provider's clock; an
// unknown demo user is an error naming the status.
func TestToken(t *testing.T) {
	clk := testclock.New(t)
	p := start(t, t.TempDir(), clk.Now)
	clk.Advance(36 * time.Hour)
	token, err := devidp.Token(t.Context(), http.DefaultClient, p.Issuer(), "viewer")
	if err != nil {
		t.Fatal(err)
	}
	c := claims(t, token)
	// Whole seconds, and the provider's clock is the test's plus the
	// microseconds between reading it and signing.
	now := clk.Now().Unix()
	if iat, _ := c["iat"].(float64); int64(iat) < now || int64(iat) > now+1 {
		t.Errorf("iat: got %v, want %d", c["iat"], now)
	}
	checks := []struct{ name, want string }{
		{"iss", p.Issuer()},
		{"aud", "[" + devidp.ClientID + "]"},
		{"sub", "dev-viewer"},
		{"email", "viewer@example.com"},
		{"groups", "[viewers]"},
	}
	for _, ch := range checks {
		if got := fmt.Sprint(c[ch.name]); got != ch.want {
			t.Errorf("%s: got %s, want %s", ch.name, got, ch.want)
		}
	}
	if _, err := devidp.Token(t.Context(), http.DefaultClient, p.Issuer(), "nobody"); err == nil || !strings.Contains(err.Error(), "status 400") {
		t.Errorf("unknown demo user: got %v, want an error with status 400", err)
	}
}

// TestKeepsSecretsAcrossRestarts: a provider started again on the same data
// folder has the same client secret and signing key, so a token signed
// before the restart is one it could have signed after it.
func TestKeepsSecretsAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.New(t)
	first := start(t, dir, clk.Now)
	c := map[string]any{"sub": "x", "iat": clk.Now().Unix()}
	before, err := first.SignClaims(c)
	if err != nil {
		t.Fatal(err)
	}
	secret := first.ClientSecret()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second := start(t, dir, clk.Now)
	after, err := second.SignClaims(c)
	if err != nil {
		t.Fatal(err)
	}
	if second.ClientSecret() != secret || len(secret) < 32 {
		t.Errorf("client secret: got a different one after the restart (or one shorter than 32 characters)")
	}
	// RS256 is deterministic: the same key signs the same claims the same.
	if before != after {
		t.Error("signing key: got a different one after the restart")
	}
}

func TestLogoutReturnsOnlyToLoopback(t *testing.T) {
	p := start(t, t.TempDir(), testclock.New(t).Now)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		target   string
		wantCode int
	}{
		{"http://127.0.0.1:8080/", http.StatusFound},
		{"http://localhost:8080/signed-out", http.StatusFound},
		{"https://127.0.0.1:8080/", http.StatusOK},
		{"http://evil.example/", http.StatusOK},
		{"", http.StatusOK},
	} {
		t.Run(tt.target, func(t *testing.T) {
			resp, err := noFollow.Get(p.Issuer() + "/logout?post_logout_redirect_uri=" + url.QueryEscape(tt.target))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantLoc := ""
			if tt.wantCode == http.StatusFound {
				wantLoc = tt.target
			}
			if resp.StatusCode != tt.wantCode || resp.Header.Get("Location") != wantLoc {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, resp.Header.Get("Location"), tt.wantCode, wantLoc)
			}
		})
	}
}

// TestChooser: an authorization request without a chosen user shows every
// demo user as a choice that continues the same request, on a page no
// other site may frame.
func TestChooser(t *testing.T) {
	p := start(t, t.TempDir(), testclock.New(t).Now)
	q := authorizeQuery()
	q.Del("demo_user")
	resp, err := http.Get(p.Issuer() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	h := resp.Header
	if resp.StatusCode != http.StatusOK || h.Get("Cache-Control") != "no-store" ||
		!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("chooser: got %d, Cache-Control %q, CSP %q; want 200, no-store, frame-ancestors 'none'",
			resp.StatusCode, h.Get("Cache-Control"), h.Get("Content-Security-Policy"))
	}
	for _, u := range demoUsers {
		if !strings.Contains(string(body), u.Email) || !strings.Contains(string(body), "demo_user="+u.Key) {
			t.Errorf("chooser: want %s with a demo_user=%s choice", u.Email, u.Key)
		}
	}
	if !strings.Contains(string(body), "code_challenge="+q.Get("code_challenge")) {
		t.Error("chooser: want each choice to carry the request's code_challenge")
	}
}
