package devidp_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

// redirectURI is where the tests' client wants its codes: nothing listens
// there, the tests read the redirect instead of following it.
const redirectURI = "http://127.0.0.1:9/auth/callback"

// noFollow is a client that returns redirects instead of following them.
var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// client is pushcert's side of the flow: go-oidc's discovery and verifier
// and x/oauth2's client, as web.Authenticator uses them.
type client struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newClient(t *testing.T, p *devidp.Provider, now func() time.Time) client {
	t.Helper()
	op, err := oidc.NewProvider(t.Context(), p.Issuer())
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return client{
		oauth: oauth2.Config{
			ClientID: devidp.ClientID, ClientSecret: p.ClientSecret(), Endpoint: op.Endpoint(),
			RedirectURL: redirectURI, Scopes: []string{"openid", "email", "profile", "groups"},
		},
		verifier: op.Verifier(&oidc.Config{ClientID: devidp.ClientID, Now: now}),
	}
}

// signIn starts a sign-in as user and returns the code the provider sends
// back, after checking the state came back unchanged.
func (c client) signIn(t *testing.T, user, nonce, verifier string) string {
	t.Helper()
	u, err := url.Parse(c.oauth.AuthCodeURL("state-1", oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("demo_user", user)
	u.RawQuery = q.Encode()
	loc := redirectFrom(t, u.String())
	if !strings.HasPrefix(loc.String(), redirectURI+"?") || loc.Query().Get("state") != "state-1" || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: got redirect %q, want %s with a code and state-1", loc, redirectURI)
	}
	return loc.Query().Get("code")
}

// redirectFrom GETs u and returns where the provider redirects to.
func redirectFrom(t *testing.T, u string) *url.URL {
	t.Helper()
	resp, err := noFollow.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("GET %s: got %d (%v), want 302", u, resp.StatusCode, err)
	}
	return loc
}

// TestCodeFlow: pushcert's client signs in with PKCE, state and nonce, and
// go-oidc verifies the ID token: issuer, audience, signature from the key
// set, expiry by the provider's clock. The claims name the chosen user, the
// nonce, and auth_time is when the user was chosen, not when the code was
// redeemed.
func TestCodeFlow(t *testing.T) {
	clk := testclock.New(t)
	p := start(t, t.TempDir(), clk.Now)
	c := newClient(t, p, clk.Now)
	verifier := oauth2.GenerateVerifier()
	chosen := clk.Now()
	code := c.signIn(t, "admin", "nonce-1", verifier)
	clk.Advance(30 * time.Second)
	tok, err := c.oauth.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := c.verifier.Verify(t.Context(), raw)
	if err != nil {
		t.Fatalf("go-oidc refused the ID token: %v", err)
	}
	var got map[string]any
	if err := idt.Claims(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"iss": p.Issuer(), "sub": "dev-admin", "aud": "[" + devidp.ClientID + "]", "azp": devidp.ClientID,
		"nonce": "nonce-1", "email": "admin@example.com", "email_verified": "true",
		"name": "Test Admin", "preferred_username": "admin", "groups": "[admins]",
		"auth_time": fmt.Sprint(chosen.Unix()), "iat": fmt.Sprint(clk.Now().Unix()),
		"exp": fmt.Sprint(clk.Now().Add(10 * time.Minute).Unix()),
	}
	for k, w := range want {
		if g := fmt.Sprint(number(got[k])); g != w {
			t.Errorf("%s: got %s, want %s", k, g, w)
		}
	}
}

// number prints JSON numbers as integers.
func number(v any) any {
	if f, ok := v.(float64); ok {
		return int64(f)
	}
	return v
}

// TestTokenRefusals: the token endpoint refuses a wrong or missing PKCE
// verifier, a code used before (also one spent on a wrong verifier), an
// expired code, another redirect URI and a wrong client secret, each with
// OAuth's error code.
func TestTokenRefusals(t *testing.T) {
	tests := []struct {
		name       string
		prepare    func(t *testing.T, f *flow) // spends or ages the code first
		form       func(f *flow) url.Values
		secret     string // "" means the right one
		wantStatus int
		wantError  string
	}{
		{"right verifier", nil, validForm, "", http.StatusOK, ""},
		{"wrong verifier", nil, func(f *flow) url.Values {
			v := validForm(f)
			v.Set("code_verifier", oauth2.GenerateVerifier())
			return v
		}, "", http.StatusBadRequest, "invalid_grant"},
		{"no verifier", nil, func(f *flow) url.Values {
			v := validForm(f)
			v.Del("code_verifier")
			return v
		}, "", http.StatusBadRequest, "invalid_grant"},
		{"code used before", func(t *testing.T, f *flow) { f.wantPost(t, validForm(f), "", http.StatusOK, "") },
			validForm, "", http.StatusBadRequest, "invalid_grant"},
		{"code spent on a wrong verifier", func(t *testing.T, f *flow) {
			v := validForm(f)
			v.Set("code_verifier", oauth2.GenerateVerifier())
			f.wantPost(t, v, "", http.StatusBadRequest, "invalid_grant")
		}, validForm, "", http.StatusBadRequest, "invalid_grant"},
		{"expired code", func(t *testing.T, f *flow) { f.clk.Advance(2*time.Minute + time.Second) },
			validForm, "", http.StatusBadRequest, "invalid_grant"},
		{"another redirect URI", nil, func(f *flow) url.Values {
			v := validForm(f)
			v.Set("redirect_uri", "http://127.0.0.1:9/elsewhere")
			return v
		}, "", http.StatusBadRequest, "invalid_grant"},
		{"wrong client secret", nil, validForm, "not-the-secret", http.StatusUnauthorized, "invalid_client"},
		{"another grant type", nil, func(f *flow) url.Values {
			v := validForm(f)
			v.Set("grant_type", "password")
			return v
		}, "", http.StatusBadRequest, "unsupported_grant_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t)
			if tt.prepare != nil {
				tt.prepare(t, f)
			}
			f.wantPost(t, tt.form(f), tt.secret, tt.wantStatus, tt.wantError)
		})
	}
}

// flow is one sign-in whose code waits at the token endpoint.
type flow struct {
	p        *devidp.Provider
	clk      *testclock.Clock
	code     string
	verifier string
}

func newFlow(t *testing.T) *flow {
	t.Helper()
	clk := testclock.New(t)
	p := start(t, t.TempDir(), clk.Now)
	f := &flow{p: p, clk: clk, verifier: oauth2.GenerateVerifier()}
	f.code = newClient(t, p, clk.Now).signIn(t, "viewer", "n", f.verifier)
	return f
}

func validForm(f *flow) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {f.code},
		"redirect_uri": {redirectURI}, "code_verifier": {f.verifier}}
}

// wantPost posts form to the token endpoint with client_secret_basic and
// checks the answer: an ID token on 200, else the OAuth error code.
func (f *flow) wantPost(t *testing.T, form url.Values, secret string, wantStatus int, wantError string) {
	t.Helper()
	if secret == "" {
		secret = f.p.ClientSecret()
	}
	req, _ := http.NewRequest(http.MethodPost, f.p.Issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(devidp.ClientID, secret)
	status, body := do(t, req)
	if status != wantStatus || body["error"] != nilIfEmpty(wantError) || (wantStatus == http.StatusOK) != (body["id_token"] != nil) {
		t.Errorf("got %d %v, want %d with error %q", status, body, wantStatus, wantError)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// do sends req and decodes the JSON answer.
func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestClientAuthentication: the client secret is accepted in the
// Authorization header or in the body, but not in both at once.
func TestClientAuthentication(t *testing.T) {
	tests := []struct {
		name        string
		basic, post bool
		wantStatus  int
	}{
		{"client_secret_basic", true, false, http.StatusOK},
		{"client_secret_post", false, true, http.StatusOK},
		{"both at once", true, true, http.StatusUnauthorized},
		{"neither", false, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFlow(t)
			form := validForm(f)
			if tt.post {
				form.Set("client_id", devidp.ClientID)
				form.Set("client_secret", f.p.ClientSecret())
			}
			req, _ := http.NewRequest(http.MethodPost, f.p.Issuer()+"/token", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.basic {
				req.SetBasicAuth(devidp.ClientID, f.p.ClientSecret())
			}
			if status, body := do(t, req); status != tt.wantStatus {
				t.Errorf("got %d %v, want %d", status, body, tt.wantStatus)
			}
		})
	}
}
