package devidp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/pushcert/pushcert/views"
)

// issuerPath is where the provider lives on its server: the issuer is
// http://ADDR/oidc, and every endpoint is under it.
const issuerPath = "/oidc"

// routes are the provider's endpoints: discovery, the key set, the
// authorization endpoint with its demo-user chooser, the token endpoint
// (with a shortcut for scripts), and an end-session endpoint, as company
// providers publish one. pushcert reads no userinfo, so there is none.
func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+issuerPath+"/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET "+issuerPath+"/.well-known/jwks.json", p.jwks)
	mux.HandleFunc("GET "+issuerPath+"/authorize", p.authorize)
	mux.HandleFunc("POST "+issuerPath+"/token", p.tokenEndpoint)
	mux.HandleFunc(issuerPath+"/logout", p.logout)
	return mux
}

// discovery handles GET /oidc/.well-known/openid-configuration.
func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	doc := map[string]any{
		"issuer":                                p.issuer,
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"jwks_uri":                              p.issuer + "/.well-known/jwks.json",
		"end_session_endpoint":                  p.issuer + "/logout",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "email", "profile", "groups"},
		"claims_supported": []string{"iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "auth_time",
			"email", "email_verified", "name", "preferred_username", "groups"},
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// jwks handles GET /oidc/.well-known/jwks.json: the public signing key.
func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(p.keys.jwks)
}

// logout ends the provider-side session (there is none to end: every
// sign-in chooses its user afresh) and returns the browser to a loopback
// post_logout_redirect_uri, the only kind a development provider should
// send anyone to.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	target, err := url.Parse(r.URL.Query().Get("post_logout_redirect_uri"))
	if err != nil || target.Scheme != "http" || !isLoopbackHost(target.Hostname()) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Signed out of the development identity provider.\n")
		return
	}
	http.Redirect(w, r, target.String(), http.StatusFound)
}

// chooser shows the demo users; each choice continues the authorization
// request with that user signed in.
func (p *Provider) chooser(w http.ResponseWriter, r *http.Request) {
	choices := make([]views.DevLoginChoice, 0, len(p.users))
	for _, u := range p.users {
		q := r.URL.Query()
		q.Set("demo_user", u.Key)
		choices = append(choices, views.DevLoginChoice{
			Key: u.Key, Label: u.Label, Email: u.Email, Groups: u.Groups,
			URL: r.URL.Path + "?" + q.Encode(),
		})
	}
	var buf bytes.Buffer
	if err := views.DevLoginPage(choices).Render(r.Context(), &buf); err != nil {
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// Choosing is one click on a link: no other site may frame the page
	// and have that click made for it.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Frame-Options", "DENY")
	_, _ = w.Write(buf.Bytes())
}
