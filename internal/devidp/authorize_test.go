package devidp_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

// authorizeQuery is a complete authorization request as pushcert sends it.
func authorizeQuery() url.Values {
	return url.Values{
		"client_id": {devidp.ClientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid email profile groups"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())}, "code_challenge_method": {"S256"},
		"demo_user": {"admin"},
	}
}

// TestAuthorizeRefusals: an unknown client or a redirect URI off loopback
// is refused on the provider's own page (a code is never sent there); the
// other faults go back to the client as OAuth errors with its state; a
// request without PKCE S256 is one of them.
func TestAuthorizeRefusals(t *testing.T) {
	p := start(t, t.TempDir(), testclock.New(t).Now)
	tests := []struct {
		name       string
		mod        func(q url.Values)
		wantStatus int
		wantError  string // the error parameter of the redirect, for 302
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "other") }, http.StatusBadRequest, ""},
		{"redirect off loopback", func(q url.Values) { q.Set("redirect_uri", "http://evil.example/cb") }, http.StatusBadRequest, ""},
		{"redirect with a fragment", func(q url.Values) { q.Set("redirect_uri", redirectURI+"#x") }, http.StatusBadRequest, ""},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, http.StatusFound, "invalid_request"},
		{"PKCE plain", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusFound, "invalid_request"},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "id_token") }, http.StatusFound, "unsupported_response_type"},
		{"no openid scope", func(q url.Values) { q.Set("scope", "email") }, http.StatusFound, "invalid_scope"},
		{"prompt none", func(q url.Values) { q.Set("prompt", "none") }, http.StatusFound, "login_required"},
		{"unknown demo user", func(q url.Values) { q.Set("demo_user", "nobody") }, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := authorizeQuery()
			tt.mod(q)
			resp, err := noFollow.Get(p.Issuer() + "/authorize?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := resp.Location()
			var gotError, gotState, gotCode string
			if loc != nil {
				gotError, gotState, gotCode = loc.Query().Get("error"), loc.Query().Get("state"), loc.Query().Get("code")
			}
			wantState := ""
			if tt.wantError != "" {
				wantState = "s"
			}
			if resp.StatusCode != tt.wantStatus || gotError != tt.wantError || gotState != wantState || gotCode != "" {
				t.Errorf("got %d error=%q state=%q code=%q, want %d error=%q state=%q and no code",
					resp.StatusCode, gotError, gotState, gotCode, tt.wantStatus, tt.wantError, wantState)
			}
		})
	}
}

// TestDiscovery: the discovery document names the issuer and the endpoints
// under it, S256 and RS256, and the key set holds the key that signs the
// tokens.
func TestDiscovery(t *testing.T) {
	p := start(t, t.TempDir(), testclock.New(t).Now)
	var doc map[string]any
	getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &doc)
	want := map[string]string{
		"issuer":                                p.Issuer(),
		"authorization_endpoint":                p.Issuer() + "/authorize",
		"token_endpoint":                        p.Issuer() + "/token",
		"jwks_uri":                              p.Issuer() + "/.well-known/jwks.json",
		"end_session_endpoint":                  p.Issuer() + "/logout",
		"code_challenge_methods_supported":      "[S256]",
		"id_token_signing_alg_values_supported": "[RS256]",
		"token_endpoint_auth_methods_supported": "[client_secret_basic client_secret_post]",
	}
	for k, w := range want {
		if g := fmt.Sprint(doc[k]); g != w {
			t.Errorf("%s: got %s, want %s", k, g, w)
		}
	}
	var set struct {
		Keys []struct{ Kid, Kty, Alg, Use, D string }
	}
	getJSON(t, p.Issuer()+"/.well-known/jwks.json", &set)
	token, err := devidp.Token(t.Context(), http.DefaultClient, p.Issuer(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	var header struct{ Kid, Alg string }
	headerJSON(t, token, &header)
	if len(set.Keys) != 1 || set.Keys[0].Kty != "RSA" || set.Keys[0].Alg != "RS256" || set.Keys[0].Use != "sig" ||
		set.Keys[0].Kid == "" || set.Keys[0].Kid != header.Kid || header.Alg != "RS256" || set.Keys[0].D != "" {
		t.Errorf("got key set %+v and token header %+v, want one public RS256 signing key whose kid the token names", set.Keys, header)
	}
}

// TestGoOIDCVerifiesTokens: go-oidc, as pushcert's API uses it, accepts the
// dev_user shortcut's token and one made with SignClaims, and refuses one
// whose payload was changed after signing. With OmitAuthTime the token
// leaves out auth_time.
func TestGoOIDCVerifiesTokens(t *testing.T) {
	clk := testclock.New(t)
	p := start(t, t.TempDir(), clk.Now)
	verifier := newClient(t, p, clk.Now).verifier
	shortcut, err := devidp.Token(t.Context(), http.DefaultClient, p.Issuer(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := p.SignClaims(map[string]any{"iss": p.Issuer(), "aud": devidp.ClientID, "sub": "x",
		"iat": clk.Now().Unix(), "exp": clk.Now().Unix() + 60})
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"shortcut": shortcut, "SignClaims": signed} {
		if _, err := verifier.Verify(t.Context(), tok); err != nil {
			t.Errorf("%s: go-oidc refused it: %v", name, err)
		}
	}
	parts := strings.Split(shortcut, ".")
	c := claims(t, shortcut)
	c["groups"] = []string{"admins", "more"}
	b, _ := json.Marshal(c)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
	if _, err := verifier.Verify(t.Context(), forged); err == nil {
		t.Error("changed payload: go-oidc accepted it, want a refusal")
	}
	if _, ok := c["auth_time"]; !ok {
		t.Error("auth_time: got none, want the time of the token request")
	}
	p.OmitAuthTime(true)
	shortcut, err = devidp.Token(t.Context(), http.DefaultClient, p.Issuer(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := claims(t, shortcut)["auth_time"]; ok {
		t.Error("OmitAuthTime(true): got auth_time, want none")
	}
	var idt *oidc.IDToken
	if idt, err = verifier.Verify(t.Context(), shortcut); err != nil || idt.Subject != "dev-admin" {
		t.Errorf("OmitAuthTime(true): got %v, want a valid token for dev-admin", err)
	}
}

// getJSON GETs u and decodes its JSON body into v.
func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("GET %s: got %d (%v), want 200 with JSON", u, resp.StatusCode, err)
	}
}

// headerJSON decodes a token's header into v.
func headerJSON(t *testing.T, token string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
}
