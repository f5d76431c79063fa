package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
)

// maxTokenRequest bounds a token request's body.
const maxTokenRequest = 64 << 10

// tokenEndpoint handles POST /oidc/token: the authorization code grant, or,
// with ?dev_user=, the shortcut for scripts.
func (p *Provider) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("dev_user") {
		p.devToken(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the request body is not a form")
		return
	}
	if ok, basic := p.authenticateClient(r); !ok {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="development provider"`)
		}
		tokenError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong client secret")
		return
	}
	// Only the body counts: a parameter in the URL may have been logged.
	form := r.PostForm
	if form.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	// The code is spent here, before anything else about it is checked: a
	// code presented with the wrong verifier or redirect URI is gone too.
	pc, ok := p.codes.redeem(p.now(), form.Get("code"))
	switch {
	case !ok:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown, expired or already used")
		return
	case form.Get("redirect_uri") != pc.redirectURI:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	case !pkceMatches(form.Get("code_verifier"), pc.challenge):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code challenge")
		return
	}
	tok, err := p.idToken(pc.signIn)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", "the token could not be signed")
		return
	}
	// The access token is the ID token, as the dev_user shortcut's is: the
	// provider has no API of its own for an access token to open.
	writeTokens(w, map[string]any{
		"access_token": tok, "id_token": tok, "token_type": "Bearer",
		"expires_in": int(tokenLifetime.Seconds()), "scope": strings.Join(pc.signIn.scopes, " "),
	})
}

// authenticateClient checks the client's credentials, sent either in the
// Authorization header (client_secret_basic, whose parts are form-encoded)
// or in the body (client_secret_post), never both. basic reports whether
// the header was used, so a refusal can ask for it again.
func (p *Provider) authenticateClient(r *http.Request) (ok, basic bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		if r.PostForm.Has("client_secret") {
			return false, true
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return false, true
		}
		if bodyID := r.PostForm.Get("client_id"); bodyID != "" && bodyID != id {
			return false, true
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(p.clientSecret)) == 1, basic
}

// pkceMatches reports whether verifier is a well-formed PKCE code verifier
// (RFC 7636: 43 to 128 unreserved characters) whose S256 transform is
// challenge.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for _, c := range verifier {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("-._~", c)) {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// devToken issues an ID token for a demo user without a browser, for trying
// the API with curl: POST /oidc/token?dev_user=admin. Its audience is the
// client ID, pushcert's default API audience, and it counts as a sign-in
// made now.
func (p *Provider) devToken(w http.ResponseWriter, r *http.Request) {
	u, ok := p.user(r.URL.Query().Get("dev_user"))
	if !ok {
		http.Error(w, "unknown demo user: use ?dev_user=admin or ?dev_user=viewer", http.StatusBadRequest)
		return
	}
	tok, err := p.idToken(signIn{user: u, scopes: []string{"openid", "email", "profile", "groups"}, authTime: p.now()})
	if err != nil {
		http.Error(w, "token failed", http.StatusInternalServerError)
		return
	}
	writeTokens(w, map[string]any{
		"access_token": tok, "id_token": tok, "token_type": "Bearer", "expires_in": int(tokenLifetime.Seconds()),
	})
}

// writeTokens writes a successful token response, which no cache may keep.
func writeTokens(w http.ResponseWriter, body map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	_ = json.NewEncoder(w).Encode(body)
}

// tokenError writes an OAuth error response.
func tokenError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
