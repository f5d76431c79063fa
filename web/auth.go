package web

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/sessions"
	"golang.org/x/oauth2"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/auth"
)

// Cookie names. The login cookie holds only the short-lived values of one
// sign-in attempt; the session cookie holds who the user is.
const (
	sessionCookie = "pushcert_session"
	loginCookie   = "pushcert_login"
	loginMaxAge   = 10 * time.Minute
	// maxNextPath bounds the return path kept across sign-in.
	maxNextPath = 1024
)

// Limits of the caches of verified credentials (see verifiedCache): how
// many session cookies and how many bearer tokens each keeps, and how long
// a credential is trusted before it is verified again, whatever its own
// expiry, so that a token signed with a key the provider has withdrawn
// stops working within minutes.
const (
	verifiedCacheSize   = 1024
	verifiedCacheMaxAge = 5 * time.Minute
)

// AuthConfig is what the Authenticator needs to know about the provider and
// the organization's groups.
type AuthConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Audience is what API bearer tokens must carry in "aud"; empty means
	// the client ID.
	Audience     string
	Scopes       []string
	BaseURL      string // external URL of pushcert; the callback is BaseURL+"/auth/callback"
	GroupsClaim  string
	AdminGroups  []string
	ViewerGroups []string
	// SessionSecret signs and encrypts the cookies; every replica must
	// share it.
	SessionSecret   string
	SessionLifetime time.Duration
	// SecureCookies is false only for plain-HTTP loopback in dev mode.
	SecureCookies bool
	// Dev shows the development banner on the pages the Authenticator renders.
	Dev bool
	// Now is the clock for session and token expiry; nil means time.Now.
	Now func() time.Time
	// HTTPClient, when set, is used to reach the provider.
	HTTPClient *http.Client
}

// Authenticator signs users in with OpenID Connect, keeps them in cookie
// sessions, verifies API bearer tokens and enforces roles.
type Authenticator struct {
	log          *slog.Logger
	provider     *oidc.Provider
	oauth        oauth2.Config
	idVerifier   *oidc.IDTokenVerifier
	apiVerifier  *oidc.IDTokenVerifier
	cookies      *sessions.CookieStore
	lifetime     time.Duration
	groupsClaim  string
	adminGroups  []string
	viewerGroups []string
	endSession   string
	baseURL      string
	httpClient   *http.Client
	dev          bool
	// sessions and tokens remember the credentials that passed full
	// verification, so that each is verified once, not on every request.
	sessions *verifiedCache
	tokens   *verifiedCache
	// now is the clock for session and token expiry.
	now func() time.Time
}

// NewAuthenticator discovers the provider once and prepares sign-in and
// token verification. It fails when the provider cannot be discovered or the
// configuration is incomplete.
func NewAuthenticator(ctx context.Context, log *slog.Logger, cfg AuthConfig) (*Authenticator, error) {
	if len(cfg.AdminGroups) == 0 {
		return nil, errors.New("no admin group configured: set PUSHCERT_ADMIN_GROUPS")
	}
	if len(cfg.SessionSecret) < 32 {
		return nil, errors.New("the session secret must be at least 32 characters")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = "groups"
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.ClientID
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 8 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Whole seconds, as the cookie's MaxAge and its exp are: then the exp a
	// session carries never outlasts the cookie's own signed timestamp, and
	// checking exp (which the session cache does) is checking both.
	cfg.SessionLifetime = max(cfg.SessionLifetime.Truncate(time.Second), time.Second)
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 15 * time.Second}
	}
	ctx = oidc.ClientContext(ctx, client)
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover openid provider %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read provider metadata: %w", err)
	}
	scopes := cfg.Scopes
	if !slices.Contains(scopes, oidc.ScopeOpenID) {
		scopes = append([]string{oidc.ScopeOpenID}, scopes...)
	}
	hashKey, blockKey, err := cookieKeys(cfg.SessionSecret)
	if err != nil {
		return nil, err
	}
	cookies := sessions.NewCookieStore(hashKey, blockKey)
	cookies.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(cfg.SessionLifetime.Seconds()),
		HttpOnly: true,
		Secure:   cfg.SecureCookies,
		SameSite: http.SameSiteLaxMode,
	}
	cookies.MaxAge(int(cfg.SessionLifetime.Seconds()))
	a := &Authenticator{
		log:      log,
		provider: provider,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  strings.TrimSuffix(cfg.BaseURL, "/") + "/auth/callback",
			Scopes:       scopes,
		},
		cookies:      cookies,
		lifetime:     cfg.SessionLifetime,
		groupsClaim:  cfg.GroupsClaim,
		adminGroups:  cfg.AdminGroups,
		viewerGroups: cfg.ViewerGroups,
		endSession:   meta.EndSession,
		baseURL:      strings.TrimSuffix(cfg.BaseURL, "/"),
		httpClient:   client,
		dev:          cfg.Dev,
		sessions:     newVerifiedCache(verifiedCacheSize),
		tokens:       newVerifiedCache(verifiedCacheSize),
		now:          cfg.Now,
	}
	// The verifiers read the same clock as the caches, so a token's expiry
	// means the same to both.
	clock := func() time.Time { return a.now() }
	a.idVerifier = provider.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: clock})
	a.apiVerifier = provider.Verifier(&oidc.Config{ClientID: cfg.Audience, Now: clock})
	return a, nil
}

// cookieKeys derives the cookie signing and encryption keys from the
// configured secret, so operators manage one value.
func cookieKeys(secret string) (hashKey, blockKey []byte, err error) {
	hashKey, err = hkdf.Key(sha256.New, []byte(secret), nil, "pushcert session cookie signing", 64)
	if err != nil {
		return nil, nil, fmt.Errorf("derive cookie keys: %w", err)
	}
	blockKey, err = hkdf.Key(sha256.New, []byte(secret), nil, "pushcert session cookie encryption", 32)
	if err != nil {
		return nil, nil, fmt.Errorf("derive cookie keys: %w", err)
	}
	return hashKey, blockKey, nil
}

// login handles GET /login: it starts the authorization code flow with PKCE,
// state and nonce, remembering them in a short-lived cookie.
func (a *Authenticator) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	s := sessions.NewSession(a.cookies, loginCookie)
	s.Options = a.loginCookieOptions(int(loginMaxAge.Seconds()))
	s.Values["state"] = state
	s.Values["nonce"] = nonce
	s.Values["verifier"] = verifier
	s.Values["next"] = localPath(r.URL.Query().Get("next"))
	if err := s.Save(r, w); err != nil {
		a.serverError(w, r, fmt.Errorf("save login cookie: %w", err))
		return
	}
	url := a.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	http.Redirect(w, r, url, http.StatusFound)
}

// loginCookieOptions are the login cookie's attributes: scoped to the
// callback's path and short-lived; maxAge -1 deletes it.
func (a *Authenticator) loginCookieOptions(maxAge int) *sessions.Options {
	return &sessions.Options{
		Path: "/auth/", MaxAge: maxAge,
		HttpOnly: true, Secure: a.cookies.Options.Secure, SameSite: http.SameSiteLaxMode,
	}
}

// callback handles GET /auth/callback: it checks state, exchanges the code
// with the PKCE verifier, verifies the ID token and its nonce, maps groups to
// a role and starts a fresh session.
func (a *Authenticator) callback(w http.ResponseWriter, r *http.Request) {
	login, err := a.cookies.New(r, loginCookie)
	state, _ := login.Values["state"].(string)
	if err != nil || state == "" {
		a.errorPage(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in link is no longer valid (it expired or was opened in another browser). Start again from the sign-in page.")
		return
	}
	// The login values are single use: clear them whatever happens next.
	// The deletion must carry the cookie's own path, or browsers keep it.
	login.Options = a.loginCookieOptions(-1)
	_ = login.Save(r, w)

	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		a.log.Info("sign-in refused by provider", "error", e)
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in refused",
			"Your identity provider did not sign you in. Try again, or ask your administrator to check that pushcert is registered with the provider.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		a.errorPage(w, r, http.StatusBadRequest, "Sign-in expired",
			"The sign-in response does not belong to this browser's sign-in attempt. Start again from the sign-in page.")
		return
	}
	verifier, _ := login.Values["verifier"].(string)
	nonce, _ := login.Values["nonce"].(string)
	next, _ := login.Values["next"].(string)

	ctx := oidc.ClientContext(r.Context(), a.httpClient)
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		a.log.Warn("sign-in code exchange refused", "err", err)
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed",
			"The identity provider did not accept this sign-in (the code may have been used already). Start again from the sign-in page.")
		return
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The identity provider returned no ID token.")
		return
	}
	idt, err := a.idVerifier.Verify(ctx, raw)
	if err != nil {
		a.log.Warn("id token rejected", "err", err)
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The identity provider's ID token could not be verified.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The ID token does not belong to this sign-in attempt.")
		return
	}
	u, err := a.userFromToken(idt)
	if err != nil {
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The ID token is missing the claims pushcert needs.")
		return
	}
	// A fresh session at every sign-in: nothing from an earlier one survives.
	s := sessions.NewSession(a.cookies, sessionCookie)
	opts := *a.cookies.Options
	s.Options = &opts
	s.Values["sub"] = u.Subject
	s.Values["name"] = u.Name
	s.Values["email"] = u.Email
	s.Values["role"] = string(u.Role)
	s.Values["exp"] = a.now().Add(a.lifetime).Unix()
	if err := s.Save(r, w); err != nil {
		a.serverError(w, r, fmt.Errorf("save session: %w", err))
		return
	}
	a.log.Info("signed in", "user_id", u.Subject, "role", string(u.Role))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout handles POST /logout: it expires the session cookie and continues
// to the provider's end-session endpoint when it publishes one.
func (a *Authenticator) logout(w http.ResponseWriter, r *http.Request) {
	s := sessions.NewSession(a.cookies, sessionCookie)
	opts := *a.cookies.Options
	opts.MaxAge = -1
	s.Options = &opts
	if err := s.Save(r, w); err != nil {
		a.serverError(w, r, fmt.Errorf("expire session: %w", err))
		return
	}
	target := "/signed-out"
	if a.endSession != "" {
		if u, err := url.Parse(a.endSession); err == nil {
			q := u.Query()
			q.Set("client_id", a.oauth.ClientID)
			q.Set("post_logout_redirect_uri", a.baseURL+"/signed-out")
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// userFromToken maps a verified token's claims to a user and role.
func (a *Authenticator) userFromToken(t *oidc.IDToken) (auth.User, error) {
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return auth.User{}, fmt.Errorf("read claims: %w", err)
	}
	if t.Subject == "" {
		return auth.User{}, errors.New("token has no subject")
	}
	u := auth.User{Subject: t.Subject}
	u.Email, _ = claims["email"].(string)
	u.Name, _ = claims["name"].(string)
	if u.Name == "" {
		u.Name, _ = claims["preferred_username"].(string)
	}
	u.Role = a.roleFor(groupsFrom(claims[a.groupsClaim]))
	return u, nil
}

// roleFor picks the most privileged role any of the groups grants.
func (a *Authenticator) roleFor(groups []string) auth.Role {
	role := auth.RoleNone
	for _, g := range groups {
		switch {
		case slices.Contains(a.adminGroups, g):
			return auth.RoleAdmin
		case slices.Contains(a.viewerGroups, g):
			role = auth.RoleViewer
		}
	}
	return role
}

// groupsFrom reads a groups claim, which providers send as a JSON array of
// strings or, less often, as one space- or comma-separated string.
func groupsFrom(v any) []string {
	switch g := v.(type) {
	case []any:
		out := make([]string, 0, len(g))
		for _, x := range g {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return strings.FieldsFunc(g, func(r rune) bool { return r == ' ' || r == ',' })
	default:
		return nil
	}
}

// sessionUser reads the signed-in user from the session cookie. A missing,
// tampered, expired or foreign cookie is simply no user. A cookie that was
// decoded and checked once is found in a cache until its exp (and for at
// most verifiedCacheMaxAge at a time), so the HMAC, AES and gob decoding
// run once per session, not on every request.
func (a *Authenticator) sessionUser(r *http.Request) (auth.User, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return auth.User{}, false
	}
	now := a.now()
	key := credentialKey(ck.Value)
	if u, ok := a.sessions.get(key, now); ok {
		return u, true
	}
	u, exp, ok := a.decodeSession(r, now)
	if !ok {
		return auth.User{}, false
	}
	// exp is in whole seconds and the session is valid while now.Unix() <=
	// exp: up to the last nanosecond of that second.
	a.sessions.add(key, u, time.Unix(exp+1, 0).Add(-time.Nanosecond), now)
	return u, true
}

// decodeSession fully verifies and decodes the session cookie: its MAC, its
// encryption, its signed timestamp, and the exp and user it carries.
func (a *Authenticator) decodeSession(r *http.Request, now time.Time) (u auth.User, exp int64, ok bool) {
	s, err := a.cookies.New(r, sessionCookie)
	if err != nil || s.IsNew {
		return auth.User{}, 0, false
	}
	// The cookie's own timestamp is checked by securecookie too; exp also
	// bounds a session whose cookie a client keeps past its MaxAge.
	exp, _ = s.Values["exp"].(int64)
	if exp == 0 || now.Unix() > exp {
		return auth.User{}, 0, false
	}
	sub, _ := s.Values["sub"].(string)
	if sub == "" {
		return auth.User{}, 0, false
	}
	u = auth.User{Subject: sub}
	u.Name, _ = s.Values["name"].(string)
	u.Email, _ = s.Values["email"].(string)
	role, _ := s.Values["role"].(string)
	u.Role = auth.Role(role)
	return u, exp, true
}

// identify returns r carrying the session's user, if any.
func (a *Authenticator) identify(r *http.Request) *http.Request {
	if u, ok := a.sessionUser(r); ok {
		return r.WithContext(auth.WithUser(r.Context(), u))
	}
	return r
}

// loadUser puts the session's user, if any, into the request context. The
// API is left alone: cookies never authenticate it, and its log lines name
// only the bearer token's user.
func (a *Authenticator) loadUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPIPath(r.URL.Path) {
			r = a.identify(r)
			if u, ok := auth.UserFrom(r.Context()); ok {
				infoFrom(r.Context()).userID = u.Subject
			}
		}
		next.ServeHTTP(w, r)
	})
}

// viewer lets through signed-in users with at least the viewer role.
func (a *Authenticator) viewer(h http.HandlerFunc) http.Handler {
	return a.require(auth.RoleViewer, h)
}

// admin lets through signed-in admins only.
func (a *Authenticator) admin(h http.HandlerFunc) http.Handler {
	return a.require(auth.RoleAdmin, h)
}

// require sends signed-out browsers to sign in and answers 403 to users
// without the role, naming the groups that would grant it.
func (a *Authenticator) require(role auth.Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := auth.UserFrom(r.Context())
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			a.errorPage(w, r, http.StatusUnauthorized, "Signed out",
				"Your session has ended, so nothing was changed. Sign in again and repeat the action.")
			return
		}
		if !u.Role.Allows(role) {
			a.errorPage(w, r, http.StatusForbidden, "Access denied", a.forbiddenMessage(u, role))
			return
		}
		h(w, r)
	})
}

// forbiddenMessage tells the user which group membership they lack.
func (a *Authenticator) forbiddenMessage(u auth.User, want auth.Role) string {
	groups := a.adminGroups
	if want == auth.RoleViewer {
		groups = append(slices.Clone(a.viewerGroups), a.adminGroups...)
	}
	who := u.Label()
	if want == auth.RoleAdmin && u.Role == auth.RoleViewer {
		return fmt.Sprintf("%s may view the push certificate but not change it. Changing it needs membership in the group %s (claim %q) at your identity provider.",
			who, joinOr(groups), a.groupsClaim)
	}
	return fmt.Sprintf("%s is signed in but is not a member of %s (claim %q) at your identity provider. Ask your administrator to add you, then sign in again.",
		who, joinOr(groups), a.groupsClaim)
}

func joinOr(groups []string) string {
	q := make([]string, len(groups))
	for i, g := range groups {
		q[i] = "“" + g + "”"
	}
	switch len(q) {
	case 0:
		return "any pushcert group"
	case 1:
		return q[0]
	default:
		return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
	}
}

// formTargets are the origins outside pushcert that a form submission may
// end up at: the provider's end-session endpoint after sign-out.
func (a *Authenticator) formTargets() []string {
	if a.endSession == "" {
		return nil
	}
	u, err := url.Parse(a.endSession)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}

// bearerToken reads the token of an "Authorization: Bearer <token>" header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// bearerUser verifies an API bearer token against the provider's keys,
// issuer, expiry and the configured audience, and maps it to a user.
func (a *Authenticator) bearerUser(ctx context.Context, header string) (auth.User, error) {
	token, ok := bearerToken(header)
	if !ok {
		return auth.User{}, errors.New("no bearer token")
	}
	// A token verified before is taken from the cache while it is still
	// valid: the RSA signature check and claims parsing run once per token.
	now := a.now()
	key := credentialKey(token)
	if u, ok := a.tokens.get(key, now); ok {
		return u, nil
	}
	ctx = oidc.ClientContext(ctx, a.httpClient)
	t, err := a.apiVerifier.Verify(ctx, token)
	if err != nil {
		return auth.User{}, fmt.Errorf("verify bearer token: %w", err)
	}
	u, err := a.userFromToken(t)
	if err != nil {
		return auth.User{}, err
	}
	// The verifier refuses a token once its expiry is before now, so the
	// token is valid up to and including t.Expiry.
	a.tokens.add(key, u, t.Expiry, now)
	return u, nil
}

// verifiedCache remembers credentials (session cookies or bearer tokens)
// that passed full verification, by the SHA-256 of their exact text, with
// the user each maps to. It is safe for concurrent use.
//
// Security rests on three rules: only a credential that was verified is
// added (a changed byte is another key, which misses and is verified in
// full); an entry is used only up to the credential's own expiry and never
// longer than verifiedCacheMaxAge after it was verified; and the cache
// holds at most max entries, so no number of credentials grows it further.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]verifiedEntry
}

// verifiedEntry is a verified credential's user and the last instant the
// entry may be used.
type verifiedEntry struct {
	user     auth.User
	notAfter time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[sha256.Size]byte]verifiedEntry, max)}
}

// credentialKey is what the caches key a credential by: its hash, so that
// the cache holds no usable credential.
func credentialKey(raw string) [sha256.Size]byte {
	return sha256.Sum256([]byte(raw))
}

// get returns the user of the credential with key if it was verified and
// is still valid at now. An entry past its time is dropped.
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) (auth.User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return auth.User{}, false
	}
	if now.After(e.notAfter) {
		delete(c.entries, key)
		return auth.User{}, false
	}
	return e.user, true
}

// add remembers a verified credential, valid up to and including expiry,
// for at most verifiedCacheMaxAge from now. The caller must have verified
// it. When the cache is full, entries past their time go first, then
// arbitrary ones: an evicted credential is simply verified again.
func (c *verifiedCache) add(key [sha256.Size]byte, u auth.User, expiry, now time.Time) {
	notAfter := now.Add(verifiedCacheMaxAge)
	if expiry.Before(notAfter) {
		notAfter = expiry
	}
	if now.After(notAfter) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if now.After(e.notAfter) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = verifiedEntry{user: u, notAfter: notAfter}
}

// size returns how many entries the cache holds.
func (c *verifiedCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// localPath returns p if it is a path on this site, or "" — so a crafted
// next= parameter cannot send a user elsewhere after sign-in.
func localPath(p string) string {
	// A path longer than maxNextPath is dropped rather than stored: the login
	// cookie that carries it has a size limit.
	if p == "" || len(p) > maxNextPath || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return ""
	}
	if strings.ContainsAny(p, "\r\n\t\\") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return p
}

// errorPage renders an error in the site's layout.
func (a *Authenticator) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	handlers.RenderError(w, r, a.log, a.dev, status, title, message)
}

func (a *Authenticator) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	a.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"pushcert could not complete this request. Nothing was changed. Try again; if it keeps happening, ask your administrator to check pushcert's logs.")
}

// signedOut handles GET /signed-out, where sign-out ends.
func (a *Authenticator) signedOut(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, http.StatusOK, "Signed out", "You have signed out of pushcert. Sign in again to manage the push certificate.")
}
