package devidp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/pushcert/pushcert/views"
)

// routes are mockoidc's own endpoints, plus the chooser in front of
// authorization, a token shortcut for scripts, and an end-session endpoint,
// as company providers publish one.
func (p *Provider) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(mockoidc.AuthorizationEndpoint, p.authorize)
	mux.HandleFunc(mockoidc.TokenEndpoint, p.tokenEndpoint)
	mux.HandleFunc(mockoidc.UserinfoEndpoint, p.m.Userinfo)
	mux.HandleFunc(mockoidc.JWKSEndpoint, p.m.JWKS)
	mux.HandleFunc(mockoidc.DiscoveryEndpoint, p.discovery)
	mux.HandleFunc(mockoidc.IssuerBase+"/logout", p.logout)
	return mux
}

// authorize shows the demo-user chooser, or signs the chosen user in and
// continues with mockoidc's authorization endpoint.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("demo_user")
	if key == "" {
		p.chooser(w, r)
		return
	}
	u, ok := p.user(key)
	if !ok {
		http.Error(w, "unknown demo user", http.StatusBadRequest)
		return
	}
	p.m.QueueUser(u)
	p.m.Authorize(w, r)
}

// tokenEndpoint is mockoidc's token endpoint, with the dev_user shortcut.
func (p *Provider) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("dev_user") {
		p.token(w, r)
		return
	}
	p.m.Token(w, r)
}

// discovery is mockoidc's discovery document plus end_session_endpoint.
func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	p.m.Discovery(rec, r)
	var doc map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		http.Error(w, "discovery failed", http.StatusInternalServerError)
		return
	}
	doc["end_session_endpoint"] = p.m.Issuer() + "/logout"
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// logout ends the provider-side session (mockoidc keeps none) and returns
// the browser to a loopback post_logout_redirect_uri, the only kind a
// development provider should send anyone to.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	target, err := url.Parse(r.URL.Query().Get("post_logout_redirect_uri"))
	if err != nil || target.Scheme != "http" || !isLoopbackHost(target.Hostname()) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Signed out of the development identity provider.\n")
		return
	}
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func (p *Provider) user(key string) (authTimeUser, bool) {
	for _, u := range p.users {
		if u.Key == key {
			return authTimeUser{omit: &p.noAuthTime, MockUser: &mockoidc.MockUser{
				Subject:           "dev-" + u.Key,
				Email:             u.Email,
				EmailVerified:     true,
				PreferredUsername: u.Label,
				Groups:            u.Groups,
			}}, true
		}
	}
	return authTimeUser{}, false
}

// authTimeUser is a demo user whose ID tokens carry auth_time, as a real
// provider's do: every token is for a sign-in that just happened (the
// demo user was chosen, or the token asked for), so it is the token's
// issue time. pushcert needs it to tell a recent sign-in from an old one.
type authTimeUser struct {
	*mockoidc.MockUser
	omit *atomic.Bool // the provider's OmitAuthTime
}

// Claims are the mock user's claims and auth_time.
func (u authTimeUser) Claims(scope []string, c *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	inner, err := u.MockUser.Claims(scope, c)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(inner)
	if err != nil {
		return nil, err
	}
	var m jwt.MapClaims
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if c.IssuedAt != nil && !u.omit.Load() {
		m["auth_time"] = c.IssuedAt.Unix()
	}
	return m, nil
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
	_, _ = w.Write(buf.Bytes())
}

// token issues an ID token for a demo user without a browser, for trying the
// API with curl: POST /oidc/token?dev_user=admin. Its audience is the client
// ID, pushcert's default API audience.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	u, ok := p.user(r.URL.Query().Get("dev_user"))
	if !ok {
		http.Error(w, "unknown demo user: use ?dev_user=admin or ?dev_user=viewer", http.StatusBadRequest)
		return
	}
	s, err := p.m.SessionStore.NewSession("openid email profile groups", "", u, "", "")
	if err != nil {
		http.Error(w, "session failed", http.StatusInternalServerError)
		return
	}
	tok, err := s.IDToken(p.m.Config(), p.m.Keypair, p.m.Now())
	if err != nil {
		http.Error(w, "token failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(p.m.AccessTTL.Seconds()),
	})
}
