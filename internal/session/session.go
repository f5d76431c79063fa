// Package session keeps the console's signed-in sessions. Each lives as a
// row in pushcert's database, found by the SHA-256 of a random token that
// only the user's cookie carries, so that signing out, expiry, the idle
// timeout and an admin's revocation end it on every replica. A Manager
// answers lookups from a short in-process cache and writes a session's
// last-seen time at most once per interval. The package knows nothing of
// HTTP or cookies.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// Key is the SHA-256 of a session's token: what the database and the
// caches know a session by, so that neither holds a usable credential.
type Key [sha256.Size]byte

// KeyOf returns the key of token.
func KeyOf(token string) Key {
	return sha256.Sum256([]byte(token))
}

// newToken returns a random session token: 32 bytes, URL-safe base64.
func newToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Session is one signed-in session as stored.
type Session struct {
	Key Key
	// Handle names the session on the sessions page and in its revoke
	// form. It is random and not a credential: knowing it lets an admin
	// end the session, nothing more.
	Handle string
	// User is who signed in: Subject, Name, Email, Role and SignedInAt
	// (the provider's auth_time, which the console's export asks for).
	User      auth.User
	CreatedAt time.Time
	// LastSeen is when the session was last used, written at most once
	// per Manager's touch interval, so it may lag by that much.
	LastSeen  time.Time
	ExpiresAt time.Time
	// Client and Address describe where the session was started: the
	// browser's User-Agent (clipped) and its network address.
	Client  string
	Address string
}

// Store keeps sessions; *store.DB implements it over SQLite and
// PostgreSQL. Every method is safe to run from many replicas at once.
type Store interface {
	// CreateSession stores s, first deleting sessions that ended
	// (expired before now, or last seen before idleBefore) and the
	// user's oldest sessions beyond keepPerUser-1.
	CreateSession(ctx context.Context, s Session, now, idleBefore time.Time, keepPerUser int) error
	// Session returns the session with key, ended or not; an error
	// wrapping pushcert.ErrNotFound when there is none.
	Session(ctx context.Context, key Key) (Session, error)
	// TouchSession moves the session's last-seen time forward to at.
	TouchSession(ctx context.Context, key Key, at time.Time) error
	// DeleteSession deletes the session with key, if any.
	DeleteSession(ctx context.Context, key Key) error
	// ActiveSessions lists the sessions that expire after now and were
	// last seen after idleBefore, most recently seen first.
	ActiveSessions(ctx context.Context, now, idleBefore time.Time) ([]Session, error)
	// RevokeSession deletes the session named handle and stores the
	// audit event made from it by event, in one transaction; an error
	// wrapping pushcert.ErrNotFound when there is no such session.
	RevokeSession(ctx context.Context, handle string, event func(Session) pushcert.Event) (Session, error)
}

// Client limits: how much of a User-Agent is kept.
const maxClient = 200

// clientText makes a User-Agent fit for storing and showing: valid UTF-8
// without control characters (PostgreSQL refuses invalid text and NUL),
// clipped to maxClient bytes.
func clientText(ua string) string {
	ua = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(ua, ""))
	if len(ua) <= maxClient {
		return ua
	}
	cut := maxClient
	for cut > 0 && !utf8.RuneStart(ua[cut]) {
		cut--
	}
	return ua[:cut] + "…"
}
