package session_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/session"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/testclock"
)

var (
	ada = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}
	vic = auth.User{Subject: "sub-vic", Name: "Vic Viewer", Email: "vic@example.com", Role: auth.RoleViewer}
)

// TestManager runs the Manager's tests on SQLite and PostgreSQL, each
// with the real store.
func TestManager(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, dbURL string)
	}{
		{"start and look up", testStartLookup},
		{"ended on another replica: refused within CacheFor", testEndedElsewhere},
		{"last seen written at most once a minute", testTouchThrottled},
		{"idle timeout", testIdle},
		{"short idle timeout keeps an active user", testShortIdle},
		{"lifetime ends an active session", testLifetime},
		{"revoke", testRevoke},
		{"concurrent uses write last seen once", testConcurrentTouch},
	}
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, b.URL(t)) })
			}
		})
	}
}

// replica is one pushcert's view of the sessions: its own store and
// Manager over the shared database, on the test's clock.
type replica struct {
	st *store.DB
	m  *session.Manager
}

func newReplica(t *testing.T, dbURL string, clk *testclock.Clock, idle time.Duration) replica {
	t.Helper()
	kr, err := store.NewKeyring(strings.Repeat("session-kek-", 4))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), dbURL, kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	m := session.NewManager(slog.New(slog.DiscardHandler), st, session.Config{Lifetime: 8 * time.Hour, IdleTimeout: idle, Now: clk.Now})
	return replica{st: st, m: m}
}

func newClock(t *testing.T) *testclock.Clock {
	return testclock.At(testclock.Start(t).Truncate(time.Second))
}

func start(t *testing.T, r replica, u auth.User) session.Key {
	t.Helper()
	token, err := r.m.Start(t.Context(), u, "Mozilla/5.0 \x00(X11)\xff", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	return session.KeyOf(token)
}

// live reports whether r finds the session with key, and fails on an error.
func live(t *testing.T, r replica, key session.Key) bool {
	t.Helper()
	_, ok, err := r.m.Lookup(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// stored is the session as the database holds it.
func stored(t *testing.T, r replica, key session.Key) session.Session {
	t.Helper()
	s, err := r.st.Session(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testStartLookup(t *testing.T, dbURL string) {
	clk := newClock(t)
	a := newReplica(t, dbURL, clk, time.Hour)
	signedIn := ada
	signedIn.SignedInAt, signedIn.CanExport = clk.Now().Add(-time.Minute), true
	key := start(t, a, signedIn)
	s, ok, err := a.m.Lookup(t.Context(), key)
	want := signedIn
	want.CanExport = false // sessions never carry the export role
	if err != nil || !ok || s.User != want || s.Handle == "" || !s.ExpiresAt.Equal(clk.Now().Add(8*time.Hour)) {
		t.Fatalf("got %+v, %v, %v; want %+v for 8 hours with a handle", s, ok, err, want)
	}
	if s.Client != "Mozilla/5.0 (X11)" || s.Address != "192.0.2.1" {
		t.Errorf("got client %q from %q, want the User-Agent without control or invalid bytes", s.Client, s.Address)
	}
	if live(t, a, session.KeyOf("a token never handed out")) {
		t.Error("unknown key: got a session, want none")
	}
}

func testEndedElsewhere(t *testing.T, dbURL string) {
	clk := newClock(t)
	a, b := newReplica(t, dbURL, clk, time.Hour), newReplica(t, dbURL, clk, time.Hour)
	signedOut, neverSeen := start(t, a, ada), start(t, a, ada)
	if !live(t, a, signedOut) || !live(t, b, signedOut) {
		t.Fatal("a fresh session: got it refused, want it live on both replicas")
	}
	if err := a.m.End(t.Context(), signedOut); err != nil {
		t.Fatal(err)
	}
	if err := a.m.End(t.Context(), neverSeen); err != nil {
		t.Fatal(err)
	}
	if live(t, a, signedOut) {
		t.Error("on the replica that ended it: got it live, want it refused at once")
	}
	if live(t, b, neverSeen) {
		t.Error("on a replica that never used it: got it live, want it refused at once")
	}
	// B read the row just before: it answers from memory for CacheFor.
	clk.Advance(session.CacheFor - time.Nanosecond)
	if !live(t, b, signedOut) {
		t.Error("within CacheFor on the other replica: got it refused, want the cached answer (this test's premise)")
	}
	clk.Advance(time.Nanosecond)
	if live(t, b, signedOut) {
		t.Errorf("CacheFor (%v) after it ended, on the other replica: got it live, want it refused", session.CacheFor)
	}
}

func testTouchThrottled(t *testing.T, dbURL string) {
	clk := newClock(t)
	a := newReplica(t, dbURL, clk, time.Hour)
	t0 := clk.Now()
	key := start(t, a, ada)
	for _, step := range []struct {
		at, want time.Duration // after t0: the use, and the last-seen time stored after it
	}{
		{10 * time.Second, 0},
		{59 * time.Second, 0},
		{time.Minute, time.Minute},
		{time.Minute + 30*time.Second, time.Minute},
		{3 * time.Minute, 3 * time.Minute},
	} {
		clk.Set(t0.Add(step.at))
		if !live(t, a, key) {
			t.Fatalf("used at +%v: got it refused", step.at)
		}
		if got := stored(t, a, key).LastSeen; !got.Equal(t0.Add(step.want)) {
			t.Errorf("used at +%v: got last seen stored at +%v, want +%v", step.at, got.Sub(t0), step.want)
		}
	}
}

func testIdle(t *testing.T, dbURL string) {
	clk := newClock(t)
	a, b := newReplica(t, dbURL, clk, time.Hour), newReplica(t, dbURL, clk, time.Hour)
	t0 := clk.Now()
	key := start(t, a, ada)
	// Used on A now and then; B, which never saw it used, reads the last
	// use from the database.
	clk.Set(t0.Add(50 * time.Minute))
	if !live(t, a, key) {
		t.Fatal("used after 50 minutes: got it refused")
	}
	clk.Set(t0.Add(50*time.Minute + time.Hour - time.Nanosecond))
	if !live(t, b, key) {
		t.Fatal("a nanosecond before an hour unused, on the other replica: got it refused")
	}
	// B's use was written (the last write was an hour before), so an
	// hour after it the session is idle everywhere.
	clk.Set(t0.Add(50*time.Minute + 2*time.Hour))
	for name, r := range map[string]replica{"A": a, "B": b} {
		if live(t, r, key) {
			t.Errorf("an hour unused, on %s: got it live, want it refused", name)
		}
	}
	active, err := a.m.Active(t.Context())
	if err != nil || len(active) != 0 {
		t.Errorf("idle session: got %d listed (%v), want none", len(active), err)
	}
}

func testShortIdle(t *testing.T, dbURL string) {
	clk := newClock(t)
	a, b := newReplica(t, dbURL, clk, time.Minute), newReplica(t, dbURL, clk, time.Minute)
	key := start(t, a, ada)
	// Used every 50 seconds on A for 10 minutes: never a minute unused,
	// so never idle on either replica, though B never sees a use.
	for i := range 12 {
		clk.Advance(50 * time.Second)
		if !live(t, a, key) || !live(t, b, key) {
			t.Fatalf("use %d, 50 seconds after the last: got it refused, want it live", i+1)
		}
	}
}

func testLifetime(t *testing.T, dbURL string) {
	clk := newClock(t)
	a := newReplica(t, dbURL, clk, time.Hour)
	t0 := clk.Now()
	key := start(t, a, ada)
	for at := 30 * time.Minute; at < 8*time.Hour; at += 30 * time.Minute {
		clk.Set(t0.Add(at))
		if !live(t, a, key) {
			t.Fatalf("in use at +%v: got it refused", at)
		}
	}
	clk.Set(t0.Add(8*time.Hour - time.Nanosecond))
	if !live(t, a, key) {
		t.Fatal("a nanosecond before its 8 hours: got it refused")
	}
	clk.Set(t0.Add(8 * time.Hour))
	if live(t, a, key) {
		t.Error("after its 8 hours, in use all along: got it live, want it refused")
	}
}

func testRevoke(t *testing.T, dbURL string) {
	clk := newClock(t)
	a, b := newReplica(t, dbURL, clk, time.Hour), newReplica(t, dbURL, clk, time.Hour)
	mine, theirs := start(t, a, ada), start(t, a, vic)
	if !live(t, b, theirs) {
		t.Fatal("vic's session on B: got it refused")
	}
	list, err := b.m.Active(t.Context())
	if err != nil || len(list) != 2 {
		t.Fatalf("got %d active sessions (%v), want 2", len(list), err)
	}
	var handle string
	for _, s := range list {
		if s.User.Subject == vic.Subject {
			handle = s.Handle
		}
	}
	// The revocation is made on B; A had not read the session yet.
	ended, err := b.m.Revoke(t.Context(), handle, ada)
	if err != nil || ended.User.Subject != vic.Subject {
		t.Fatalf("revoke: got %+v, %v, want vic's session", ended, err)
	}
	if live(t, b, theirs) || live(t, a, theirs) {
		t.Error("after the revocation: got vic's session live, want it refused on both replicas")
	}
	if !live(t, a, mine) {
		t.Error("ada's own session: got it refused, want it untouched")
	}
	if _, err := a.m.Revoke(t.Context(), handle, ada); !errors.Is(err, session.ErrEnded) {
		t.Errorf("revoking it again: got %v, want ErrEnded", err)
	}
	events, err := a.st.Events(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Kind != pushcert.EventSessionRevoked || events[0].Actor.Subject != ada.Subject ||
		!strings.Contains(events[0].Detail, "vic@example.com") {
		t.Errorf("got events %+v, want one session_revoked by ada naming vic", events)
	}
}

// countingStore is the real store, counting last-seen writes.
type countingStore struct {
	*store.DB
	touches atomic.Int64
}

func (c *countingStore) TouchSession(ctx context.Context, key session.Key, at time.Time) error {
	c.touches.Add(1)
	return c.DB.TouchSession(ctx, key, at)
}

func testConcurrentTouch(t *testing.T, dbURL string) {
	clk := newClock(t)
	r := newReplica(t, dbURL, clk, 16*time.Second) // last seen written every 4 s
	st := &countingStore{DB: r.st}
	m := session.NewManager(slog.New(slog.DiscardHandler), st, session.Config{Lifetime: time.Hour, IdleTimeout: 16 * time.Second, Now: clk.Now})
	token, err := m.Start(t.Context(), ada, "", "")
	if err != nil {
		t.Fatal(err)
	}
	key := session.KeyOf(token)
	if _, ok, err := m.Lookup(t.Context(), key); !ok || err != nil {
		t.Fatalf("first use: got %v, %v", ok, err)
	}
	// Cached and due for a write: of 50 requests at once, one writes.
	clk.Advance(4 * time.Second)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, ok, err := m.Lookup(context.Background(), key); !ok || err != nil {
				t.Errorf("concurrent use: got %v, %v, want the session", ok, err)
			}
		})
	}
	wg.Wait()
	if n := st.touches.Load(); n != 1 {
		t.Errorf("got %d last-seen writes, want 1", n)
	}
}
