package web

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pushcert/pushcert/internal/auth"
)

// sessionCookie holds who the user is and when they signed in (the login cookie holds only the
// short-lived values of one sign-in attempt).
const sessionCookie = "pushcert_session"

// newCookieStore makes the store of both cookies from the configured secret,
// with the session's attributes and lifetime.
func newCookieStore(cfg AuthConfig) (*sessions.CookieStore, error) {
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
	return cookies, nil
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

// startSession writes a fresh session cookie for u, valid for the session
// lifetime from now.
func (a *Authenticator) startSession(w http.ResponseWriter, r *http.Request, u auth.User) error {
	// A fresh session at every sign-in: nothing from an earlier one survives.
	s := sessions.NewSession(a.cookies, sessionCookie)
	opts := *a.cookies.Options
	s.Options = &opts
	s.Values["sub"] = u.Subject
	s.Values["name"] = u.Name
	s.Values["email"] = u.Email
	s.Values["role"] = string(u.Role)
	s.Values["exp"] = a.now().Add(a.lifetime).Unix()
	// When the user signed in at the provider, for the console's export,
	// which asks for a recent sign-in.
	if !u.SignedInAt.IsZero() {
		s.Values["auth_time"] = u.SignedInAt.Unix()
	}
	if err := s.Save(r, w); err != nil {
		return fmt.Errorf("save session: %w", err)
	}
	return nil
}

// expireSession writes a session cookie that tells the browser to drop it.
func (a *Authenticator) expireSession(w http.ResponseWriter, r *http.Request) error {
	s := sessions.NewSession(a.cookies, sessionCookie)
	opts := *a.cookies.Options
	opts.MaxAge = -1
	s.Options = &opts
	if err := s.Save(r, w); err != nil {
		return fmt.Errorf("expire session: %w", err)
	}
	return nil
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
	// A session from before auth_time was kept has none: its sign-in is
	// unknown, so it never counts as recent.
	if at, _ := s.Values["auth_time"].(int64); at > 0 {
		u.SignedInAt = time.Unix(at, 0)
	}
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
