package devidp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

const (
	// codeLifetime is how long an authorization code can be redeemed: long
	// enough for a browser to follow one redirect, short enough that a code
	// left in a log or history is of no use.
	codeLifetime = 2 * time.Minute
	// maxCodes bounds the codes waiting to be redeemed, so a loop of
	// abandoned sign-ins cannot grow the provider without end.
	maxCodes = 10000
)

// authRequest is a checked authorization request.
type authRequest struct {
	redirectURI string
	state       string
	nonce       string
	challenge   string // the PKCE S256 code challenge
	scopes      []string
}

// authError is a refused authorization request. With redirect set, the
// refusal goes back to the client as OAuth's error and error_description
// parameters; without it (unknown client, unusable redirect URI) the
// provider must not redirect, and shows the message itself.
type authError struct {
	redirect bool
	code     string
	message  string
}

func (e *authError) Error() string { return e.code + ": " + e.message }

// parseAuthRequest checks an authorization request: the client, a loopback
// redirect URI, the code flow, the openid scope and a PKCE S256 challenge.
// PKCE is required, not just allowed: pushcert always sends it, and a
// sign-in without it should fail in the tests rather than pass unnoticed.
func parseAuthRequest(q url.Values) (authRequest, *authError) {
	if q.Get("client_id") != ClientID {
		return authRequest{}, &authError{code: "invalid_client", message: "unknown client_id: the development provider knows only " + ClientID}
	}
	ar := authRequest{
		redirectURI: q.Get("redirect_uri"),
		state:       q.Get("state"),
		nonce:       q.Get("nonce"),
		challenge:   q.Get("code_challenge"),
		scopes:      strings.Fields(q.Get("scope")),
	}
	if !loopbackRedirect(ar.redirectURI) {
		return authRequest{}, &authError{code: "invalid_request", message: "redirect_uri must be an http or https address on loopback"}
	}
	switch {
	case q.Get("response_type") != "code":
		return ar, &authError{redirect: true, code: "unsupported_response_type", message: "only the authorization code flow (response_type=code) is supported"}
	case !slices.Contains(ar.scopes, "openid"):
		return ar, &authError{redirect: true, code: "invalid_scope", message: "the openid scope is required"}
	case q.Get("code_challenge_method") != "S256" || !validChallenge(ar.challenge):
		return ar, &authError{redirect: true, code: "invalid_request", message: "PKCE is required: send code_challenge with code_challenge_method=S256"}
	case slices.Contains(strings.Fields(q.Get("prompt")), "none"):
		return ar, &authError{redirect: true, code: "login_required", message: "a demo user must be chosen on the provider's page"}
	}
	return ar, nil
}

// loopbackRedirect reports whether s is an address a code may be sent to:
// the development provider hands codes only to a client on this machine.
func loopbackRedirect(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") &&
		isLoopbackHost(u.Hostname()) && u.User == nil && u.Fragment == "" && !strings.Contains(s, "#")
}

// validChallenge reports whether c looks like an S256 challenge: the
// unpadded base64url form of a SHA-256 sum.
func validChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == 32
}

// authorize handles GET /oidc/authorize. Without demo_user it shows the
// chooser; with it, the chosen user is signed in and the browser goes back
// to the client with a code and the client's state.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ar, aerr := parseAuthRequest(q)
	if aerr != nil {
		p.refuseAuthorization(w, r, ar, aerr)
		return
	}
	key := q.Get("demo_user")
	if key == "" {
		p.chooser(w, r)
		return
	}
	u, ok := p.user(key)
	if !ok {
		http.Error(w, "unknown demo user", http.StatusBadRequest)
		return
	}
	now := p.now()
	code, err := p.codes.issue(now, pendingCode{
		redirectURI: ar.redirectURI,
		challenge:   ar.challenge,
		signIn:      signIn{user: u, scopes: ar.scopes, nonce: ar.nonce, authTime: now},
	})
	if err != nil {
		p.refuseAuthorization(w, r, ar, &authError{redirect: true, code: "temporarily_unavailable", message: err.Error()})
		return
	}
	http.Redirect(w, r, withParams(ar.redirectURI, url.Values{"code": {code}, "state": {ar.state}}), http.StatusFound)
}

// refuseAuthorization answers a refused authorization request, at the
// client's redirect URI when it may.
func (p *Provider) refuseAuthorization(w http.ResponseWriter, r *http.Request, ar authRequest, e *authError) {
	if !e.redirect {
		http.Error(w, e.message, http.StatusBadRequest)
		return
	}
	v := url.Values{"error": {e.code}, "error_description": {e.message}}
	if ar.state != "" {
		v.Set("state", ar.state)
	}
	http.Redirect(w, r, withParams(ar.redirectURI, v), http.StatusFound)
}

// withParams is the URI u with params added to its query.
func withParams(u string, params url.Values) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := parsed.Query()
	for k, vs := range params {
		if len(vs) > 0 && vs[0] != "" {
			q.Set(k, vs[0])
		}
	}
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// pendingCode is what an authorization code stands for until the client
// redeems it.
type pendingCode struct {
	redirectURI string
	challenge   string
	signIn      signIn
	expires     time.Time
}

// codeStore holds the authorization codes not yet redeemed.
type codeStore struct {
	mu    sync.Mutex
	codes map[string]pendingCode
}

func newCodeStore() *codeStore { return &codeStore{codes: make(map[string]pendingCode)} }

// issue stores c under a new random code, valid for codeLifetime from now.
func (s *codeStore) issue(now time.Time, c pendingCode) (string, error) {
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	code := base64.RawURLEncoding.EncodeToString(raw[:])
	c.expires = now.Add(codeLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, old := range s.codes {
		if !now.Before(old.expires) {
			delete(s.codes, k)
		}
	}
	if len(s.codes) >= maxCodes {
		return "", errors.New("too many sign-ins waiting for their code to be redeemed; try again in a few minutes")
	}
	s.codes[code] = c
	return code, nil
}

// redeem takes code out of the store: whether the redemption then succeeds
// or not, the code is never accepted again. It reports false for a code
// that is unknown, used or expired.
func (s *codeStore) redeem(now time.Time, code string) (pendingCode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.codes[code]
	delete(s.codes, code)
	return c, ok && now.Before(c.expires)
}
