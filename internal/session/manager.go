package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/guid"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// CacheFor is how long a replica answers from a session row it read
// before reading it again. It is how long an ended session (signed out,
// revoked, or ended by another replica) may still work on a replica that
// used it just before: the replica that ended it forgets it at once.
const CacheFor = 5 * time.Second

// ErrEnded means the session asked for has ended already: signed out,
// expired, idle or revoked.
var ErrEnded = errors.New("session ended")

// Limits of the Manager.
const (
	// touchEvery is how often a session's last-seen time is written at
	// most; a shorter idle timeout writes it more often (see
	// Manager.touchEvery), so an active user is never taken for idle.
	touchEvery = time.Minute
	// cacheSize bounds the cache; an evicted session is simply read again.
	cacheSize = 1024
	// keepPerUser bounds the sessions one person keeps: a new sign-in
	// beyond it ends their oldest one.
	keepPerUser = 20
)

// Config is how long sessions last.
type Config struct {
	// Lifetime is how long a session lasts from sign-in, whatever its use.
	Lifetime time.Duration
	// IdleTimeout ends a session unused that long; zero means never.
	IdleTimeout time.Duration
	// Now is the clock of expiry, idleness and the cache; nil means
	// time.Now.
	Now func() time.Time
}

// Manager starts, finds and ends sessions in a Store. It is safe for
// concurrent use.
type Manager struct {
	log      *slog.Logger
	st       Store
	lifetime time.Duration
	idle     time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[Key]*cached
}

// cached is a session as read from the store at read.
type cached struct {
	s    Session
	read time.Time
}

// NewManager returns a Manager of the sessions in st.
func NewManager(log *slog.Logger, st Store, cfg Config) *Manager {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{log: log, st: st, lifetime: cfg.Lifetime, idle: cfg.IdleTimeout, now: cfg.Now,
		cache: make(map[Key]*cached)}
}

// Lifetime is how long a session lasts from sign-in.
func (m *Manager) Lifetime() time.Duration { return m.lifetime }

// IdleTimeout is how long an unused session lasts; zero means no limit.
func (m *Manager) IdleTimeout() time.Duration { return m.idle }

// touchEvery is how often a session's last-seen time is written at most:
// a minute, or a quarter of the idle timeout when that is shorter.
func (m *Manager) touchEvery() time.Duration {
	if m.idle > 0 {
		return min(touchEvery, m.idle/4)
	}
	return touchEvery
}

// live reports whether s is neither expired nor idle at now.
func (m *Manager) live(s Session, now time.Time) bool {
	if !now.Before(s.ExpiresAt) {
		return false
	}
	return m.idle <= 0 || now.Before(s.LastSeen.Add(m.idle))
}

// idleBefore is the last-seen time before which a session is idle at now;
// the zero time when there is no idle timeout.
func (m *Manager) idleBefore(now time.Time) time.Time {
	if m.idle <= 0 {
		return time.Time{}
	}
	return now.Add(-m.idle)
}

// Start stores a new session for u, started from client at address, and
// returns its token: the only copy, for the cookie. The role and sign-in
// time are kept as they are now; the export role never is, as sessions
// never carry it.
func (m *Manager) Start(ctx context.Context, u auth.User, client, address string) (string, error) {
	now := m.now()
	token := newToken()
	u.CanExport = false
	s := Session{
		Key: KeyOf(token), Handle: guid.New(), User: u,
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(m.lifetime),
		Client: clientText(client), Address: clientText(address),
	}
	if err := m.st.CreateSession(ctx, s, now, m.idleBefore(now), keepPerUser); err != nil {
		return "", fmt.Errorf("start session: %w", err)
	}
	return token, nil
}

// Lookup returns the live session with key, and false when there is none
// (never started, signed out, revoked, expired or idle). A session read
// within CacheFor is answered from memory. Using a session moves its
// last-seen time, written when the stored one is touchEvery old.
func (m *Manager) Lookup(ctx context.Context, key Key) (Session, bool, error) {
	now := m.now()
	s, hit, touch := m.fromCache(key, now)
	if !hit {
		var err error
		s, err = m.st.Session(ctx, key)
		if errors.Is(err, pushcert.ErrNotFound) {
			return Session{}, false, nil
		}
		if err != nil {
			return Session{}, false, fmt.Errorf("read session: %w", err)
		}
		if !m.live(s, now) {
			return Session{}, false, nil
		}
		touch = now.Sub(s.LastSeen) >= m.touchEvery()
		if touch {
			s.LastSeen = now
		}
		m.remember(s, now)
	}
	if touch {
		// A failed write only lets the session look idler than it is on
		// other replicas; the request itself goes on.
		if err := m.st.TouchSession(ctx, key, now); err != nil {
			m.log.Warn("session last-seen not written", "err", err)
		}
	}
	return s, true, nil
}

// fromCache returns the cached session with key if it was read within
// CacheFor and is live at now; touch says its last-seen time is due to be
// written, and the cache already holds the new one, so that concurrent
// requests write it once. A dead or stale entry is dropped.
func (m *Manager) fromCache(key Key, now time.Time) (s Session, hit, touch bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.cache[key]
	if !ok {
		return Session{}, false, false
	}
	if now.Before(e.read) || now.Sub(e.read) >= CacheFor || !m.live(e.s, now) {
		delete(m.cache, key)
		return Session{}, false, false
	}
	if now.Sub(e.s.LastSeen) >= m.touchEvery() {
		e.s.LastSeen, touch = now, true
	}
	return e.s, true, touch
}

// remember caches s as read at now, making room first when the cache is
// full: stale entries go, then arbitrary ones.
func (m *Manager) remember(s Session, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.cache[s.Key]; !ok && len(m.cache) >= cacheSize {
		for k, e := range m.cache {
			if now.Sub(e.read) >= CacheFor {
				delete(m.cache, k)
			}
		}
		for k := range m.cache {
			if len(m.cache) < cacheSize {
				break
			}
			delete(m.cache, k)
		}
	}
	m.cache[s.Key] = &cached{s: s, read: now}
}

// forget drops the session with key from the cache.
func (m *Manager) forget(key Key) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.cache, key)
}

// End ends the session with key, as signing out does: on this replica at
// once, on the others within CacheFor.
func (m *Manager) End(ctx context.Context, key Key) error {
	m.forget(key)
	if err := m.st.DeleteSession(ctx, key); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	return nil
}

// Active lists the live sessions, most recently seen first.
func (m *Manager) Active(ctx context.Context) ([]Session, error) {
	now := m.now()
	list, err := m.st.ActiveSessions(ctx, now, m.idleBefore(now))
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	// The store compares at the microsecond; live has the last word.
	return slices.DeleteFunc(list, func(s Session) bool { return !m.live(s, now) }), nil
}

// Revoke ends the session named handle on behalf of by, an admin, and
// records it in the audit history. It returns the session that was ended,
// or ErrEnded when it had ended already.
func (m *Manager) Revoke(ctx context.Context, handle string, by auth.User) (Session, error) {
	now := m.now()
	s, err := m.st.RevokeSession(ctx, handle, func(s Session) pushcert.Event {
		return pushcert.Event{At: now, Kind: pushcert.EventSessionRevoked, Actor: by,
			Detail: fmt.Sprintf("signed out the session of %s, started %s", s.User.Label(), s.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))}
	})
	if errors.Is(err, pushcert.ErrNotFound) {
		return Session{}, fmt.Errorf("revoke session %s: %w", handle, ErrEnded)
	}
	if err != nil {
		return Session{}, fmt.Errorf("revoke session: %w", err)
	}
	m.forget(s.Key)
	return s, nil
}

type currentKey struct{}

// WithCurrent returns a copy of ctx that carries the handle of the
// request's own session, so the sessions page can mark it.
func WithCurrent(ctx context.Context, handle string) context.Context {
	return context.WithValue(ctx, currentKey{}, handle)
}

// CurrentFrom returns the handle of the request's own session, or "".
func CurrentFrom(ctx context.Context) string {
	h, _ := ctx.Value(currentKey{}).(string)
	return h
}
