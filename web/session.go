package web

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/sessions"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/session"
)

// sessionCookie names the session: its value is the session's random
// token, signed and encrypted (the login cookie holds only the short-lived
// values of one sign-in attempt).
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

// tokenValue is the one value the session cookie holds.
const tokenValue = "token"

// sessionStore is the gorilla/sessions Store of the console's sessions.
// A session lives in pushcert's database, through a session.Manager; its
// cookie, signed and encrypted like the login cookie, holds only the
// session's random token. Saving a new session starts one for the user in
// its Values; saving one with a negative MaxAge ends it (signing out).
// The Values of a stored session never change.
type sessionStore struct {
	cookies *sessions.CookieStore
	m       *session.Manager
	// keys remembers the session key of each cookie decoded once, by the
	// SHA-256 of the cookie's text: decoding (HMAC, AES and gob) costs more
	// than the rest of a status page request.
	keys *cookieKeyCache
}

var _ sessions.Store = (*sessionStore)(nil)

// newSessionStore keeps cfg's sessions in cfg.Sessions behind cookies.
func newSessionStore(log *slog.Logger, cookies *sessions.CookieStore, cfg AuthConfig) *sessionStore {
	m := session.NewManager(log, cfg.Sessions, session.Config{Lifetime: cfg.SessionLifetime, IdleTimeout: cfg.IdleTimeout, Now: cfg.Now})
	return &sessionStore{cookies: cookies, m: m, keys: newCookieKeyCache()}
}

// Get returns the request's session, once per request.
func (st *sessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New returns the request's session, with its user in Values when the
// cookie names a live session, else a new, empty one. Its ID is the
// session's handle, never its token.
func (st *sessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	s := sessions.NewSession(st, name)
	opts := *st.cookies.Options
	s.Options, s.IsNew = &opts, true
	found, ok, err := st.lookup(r)
	if err != nil || !ok {
		return s, err
	}
	s.ID, s.IsNew = found.Handle, false
	setUser(s.Values, found.User)
	return s, nil
}

// Save starts a session for the user in s.Values when s is new, or ends
// the request's session when s.Options.MaxAge is negative, and writes the
// cookie that says so.
func (st *sessionStore) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	cookie := sessions.NewSession(st.cookies, s.Name())
	cookie.Options = s.Options
	switch {
	case s.Options.MaxAge < 0:
		if key, ok := st.cookieKey(r); ok {
			if err := st.m.End(r.Context(), key); err != nil {
				return err
			}
		}
	case s.IsNew:
		u := userOf(s.Values)
		if u.Subject == "" {
			return fmt.Errorf("start session: no user")
		}
		token, err := st.m.Start(r.Context(), u, r.UserAgent(), remoteHost(r))
		if err != nil {
			return err
		}
		cookie.Values[tokenValue] = token
	default:
		return nil
	}
	if err := cookie.Save(r, w); err != nil {
		return fmt.Errorf("save session cookie: %w", err)
	}
	return nil
}

// lookup returns the live session the request's cookie names, if any. A
// missing, tampered or foreign cookie, or one whose session ended, is no
// session; only the database failing is an error.
func (st *sessionStore) lookup(r *http.Request) (session.Session, bool, error) {
	key, ok := st.cookieKey(r)
	if !ok {
		return session.Session{}, false, nil
	}
	return st.m.Lookup(r.Context(), key)
}

// cookieKey returns the session key the request's cookie holds, if it is
// a genuine session cookie.
func (st *sessionStore) cookieKey(r *http.Request) (session.Key, bool) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return session.Key{}, false
	}
	text := credentialKey(ck.Value)
	if key, ok := st.keys.get(text); ok {
		return key, true
	}
	// Only a cookie that decodes (its MAC, encryption and timestamp
	// check) is remembered: a changed byte is another text, decoded anew.
	c, err := st.cookies.New(r, sessionCookie)
	if err != nil || c.IsNew {
		return session.Key{}, false
	}
	token, _ := c.Values[tokenValue].(string)
	if token == "" {
		// A cookie of an older pushcert, which kept the user in the
		// cookie itself: its holder signs in again.
		return session.Key{}, false
	}
	key := session.KeyOf(token)
	st.keys.add(text, key)
	return key, true
}

// setUser and userOf keep a user in a gorilla session's Values.
func setUser(v map[any]any, u auth.User) {
	v["sub"], v["name"], v["email"], v["role"] = u.Subject, u.Name, u.Email, string(u.Role)
	if !u.SignedInAt.IsZero() {
		v["signed_in_at"] = u.SignedInAt
	}
}

func userOf(v map[any]any) auth.User {
	var u auth.User
	u.Subject, _ = v["sub"].(string)
	u.Name, _ = v["name"].(string)
	u.Email, _ = v["email"].(string)
	role, _ := v["role"].(string)
	u.Role = auth.Role(role)
	u.SignedInAt, _ = v["signed_in_at"].(time.Time)
	return u
}

// remoteHost is the address the request came from, without the port.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// cookieKeysSize bounds the cookie-to-key cache; an evicted cookie is
// simply decoded again.
const cookieKeysSize = 1024

// cookieKeyCache maps the SHA-256 of session cookies' text to their session
// keys. The mapping of a genuine cookie never changes, so entries need no
// lifetime: whether the session is still live is asked of the Manager on
// every request. It is safe for concurrent use.
type cookieKeyCache struct {
	mu      sync.Mutex
	entries map[[sha256.Size]byte]session.Key
}

func newCookieKeyCache() *cookieKeyCache {
	return &cookieKeyCache{entries: make(map[[sha256.Size]byte]session.Key)}
}

func (c *cookieKeyCache) get(text [sha256.Size]byte) (session.Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.entries[text]
	return k, ok
}

func (c *cookieKeyCache) add(text [sha256.Size]byte, key session.Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[text]; !ok && len(c.entries) >= cookieKeysSize {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[text] = key
}

// startSession starts a fresh session for u and writes its cookie. A
// session the browser held before ends: nothing from an earlier one
// survives a sign-in.
func (a *Authenticator) startSession(w http.ResponseWriter, r *http.Request, u auth.User) error {
	if key, ok := a.sessions.cookieKey(r); ok {
		if err := a.sessions.m.End(r.Context(), key); err != nil {
			return err
		}
	}
	s := sessions.NewSession(a.sessions, sessionCookie)
	opts := *a.cookies.Options
	s.Options, s.IsNew = &opts, true
	setUser(s.Values, u)
	return s.Save(r, w)
}

// expireSession ends the request's session, on every replica, and tells
// the browser to drop its cookie.
func (a *Authenticator) expireSession(w http.ResponseWriter, r *http.Request) error {
	s := sessions.NewSession(a.sessions, sessionCookie)
	opts := *a.cookies.Options
	opts.MaxAge = -1
	s.Options = &opts
	if err := s.Save(r, w); err != nil {
		return fmt.Errorf("expire session: %w", err)
	}
	return nil
}

// sessionUser reads the signed-in user from the request's session, with
// the session's handle. A missing, tampered, expired, idle, signed-out or
// revoked session is simply no user; err is the database failing.
func (a *Authenticator) sessionUser(r *http.Request) (u auth.User, handle string, ok bool, err error) {
	s, ok, err := a.sessions.lookup(r)
	if err != nil || !ok {
		return auth.User{}, "", false, err
	}
	return s.User, s.Handle, true, nil
}

// identify returns r carrying the session's user and handle, if any; a
// database failure is taken for no user, as identify serves only error
// pages (see loadUser for the rest).
func (a *Authenticator) identify(r *http.Request) *http.Request {
	r, _ = a.identifyUser(r)
	return r
}

// identifyUser returns r carrying the session's user and handle, if any.
func (a *Authenticator) identifyUser(r *http.Request) (*http.Request, error) {
	u, handle, ok, err := a.sessionUser(r)
	if !ok {
		return r, err
	}
	return r.WithContext(auth.WithUser(session.WithCurrent(r.Context(), handle), u)), nil
}

// loadUser puts the session's user, if any, into the request context. The
// API is left alone: cookies never authenticate it, and its log lines name
// only the bearer token's user. When the sessions cannot be read, the
// request fails rather than go on as signed out.
func (a *Authenticator) loadUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isAPIPath(r.URL.Path) {
			var err error
			if r, err = a.identifyUser(r); err != nil {
				a.serverError(w, r, err)
				return
			}
			if u, ok := auth.UserFrom(r.Context()); ok {
				infoFrom(r.Context()).userID = u.Subject
			}
		}
		next.ServeHTTP(w, r)
	})
}
