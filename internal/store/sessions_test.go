package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/session"
)

func TestSessionStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"round trip", testSessionRoundTrip},
		{"touch moves forward only", testSessionTouch},
		{"delete", testSessionDelete},
		{"active: live ones, last seen first", testSessionActive},
		{"create prunes ended sessions and bounds each user's", testSessionPrune},
		{"revoke records one event", testSessionRevoke},
		{"revoke of an ended session", testSessionRevokeGone},
	}
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
			}
		})
	}
}

// newSession is a session of u created at at, lasting an hour.
func newSession(u auth.User, token string, at time.Time) session.Session {
	return session.Session{Key: session.KeyOf(token), Handle: "handle-" + token, User: u,
		CreatedAt: at, LastSeen: at, ExpiresAt: at.Add(time.Hour), Client: "Firefox/140.0 on " + token, Address: "192.0.2.7"}
}

func create(t *testing.T, db *DB, s session.Session, now, idleBefore time.Time, keep int) {
	t.Helper()
	if err := db.CreateSession(t.Context(), s, now, idleBefore, keep); err != nil {
		t.Fatal(err)
	}
}

// handles are the handles of the active sessions at now, in the order
// listed.
func handles(t *testing.T, db *DB, now, idleBefore time.Time) []string {
	t.Helper()
	list, err := db.ActiveSessions(t.Context(), now, idleBefore)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, s := range list {
		out = append(out, s.Handle)
	}
	return out
}

func testSessionRoundTrip(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	signedIn := auth.User{Subject: "sub-ada", Name: "Ada", Email: "ada@example.com", Role: auth.RoleAdmin, SignedInAt: t0.Add(-time.Minute).Truncate(time.Second)}
	noAuthTime := auth.User{Subject: "sub-vic", Role: auth.RoleViewer}
	for _, s := range []session.Session{newSession(signedIn, "a", t0), newSession(noAuthTime, "b", t0)} {
		create(t, db, s, t0, time.Time{}, 20)
		got, err := db.Session(t.Context(), s.Key)
		if err != nil || !reflect.DeepEqual(got, s) {
			t.Errorf("got %+v, %v, want %+v", got, err, s)
		}
	}
	if got, err := db.Session(t.Context(), session.KeyOf("never")); !errors.Is(err, pushcert.ErrNotFound) {
		t.Errorf("unknown key: got %+v, %v, want ErrNotFound", got, err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM sessions WHERE token_hash = 'a' OR handle = 'a'`); n != 0 {
		t.Errorf("got the token stored in %d rows, want only its hash", n)
	}
}

func testSessionTouch(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	s := newSession(admin, "a", t0)
	create(t, db, s, t0, time.Time{}, 20)
	for _, tt := range []struct {
		at, want time.Time
	}{
		{t0.Add(time.Minute), t0.Add(time.Minute)},
		{t0.Add(30 * time.Second), t0.Add(time.Minute)}, // a slower replica's older time
		{t0.Add(2 * time.Minute), t0.Add(2 * time.Minute)},
	} {
		if err := db.TouchSession(t.Context(), s.Key, tt.at); err != nil {
			t.Fatal(err)
		}
		got, err := db.Session(t.Context(), s.Key)
		if err != nil || !got.LastSeen.Equal(tt.want) {
			t.Errorf("touched at %v: got last seen %v (%v), want %v", tt.at, got.LastSeen, err, tt.want)
		}
	}
}

func testSessionDelete(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	a, other := newSession(admin, "a", t0), newSession(admin, "b", t0)
	create(t, db, a, t0, time.Time{}, 20)
	create(t, db, other, t0, time.Time{}, 20)
	for range 2 { // a second delete is no error
		if err := db.DeleteSession(t.Context(), a.Key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Session(t.Context(), a.Key); !errors.Is(err, pushcert.ErrNotFound) {
		t.Errorf("deleted session: got %v, want ErrNotFound", err)
	}
	if _, err := db.Session(t.Context(), other.Key); err != nil {
		t.Errorf("the other session: got %v, want it kept", err)
	}
}

func testSessionActive(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	old := newSession(admin, "old", t0.Add(-2*time.Hour)) // expired at t0-1h
	idle := newSession(admin, "idle", t0.Add(-40*time.Minute))
	busy := newSession(admin, "busy", t0.Add(-30*time.Minute))
	fresh := newSession(admin, "fresh", t0.Add(-time.Minute))
	for _, s := range []session.Session{old, idle, busy, fresh} {
		create(t, db, s, s.CreatedAt, time.Time{}, 20)
	}
	if err := db.TouchSession(t.Context(), busy.Key, t0.Add(-10*time.Second)); err != nil {
		t.Fatal(err)
	}
	idleBefore := t0.Add(-30 * time.Minute)
	if got, want := handles(t, db, t0, idleBefore), []string{"handle-busy", "handle-fresh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("with a 30 minute idle timeout: got %v, want %v", got, want)
	}
	if got, want := handles(t, db, t0, time.Time{}), []string{"handle-busy", "handle-fresh", "handle-idle"}; !reflect.DeepEqual(got, want) {
		t.Errorf("without an idle timeout: got %v, want %v", got, want)
	}
	// At the expiry the session has ended.
	if got, want := handles(t, db, fresh.ExpiresAt, time.Time{}), []string{}; !reflect.DeepEqual(got, want) {
		t.Errorf("at the last expiry: got %v, want %v", got, want)
	}
}

func testSessionPrune(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	vic := auth.User{Subject: "sub-vic", Email: "vic@example.com", Role: auth.RoleViewer}
	create(t, db, newSession(vic, "expired", t0.Add(-2*time.Hour)), t0.Add(-2*time.Hour), time.Time{}, 20)
	create(t, db, newSession(vic, "idle", t0.Add(-40*time.Minute)), t0.Add(-40*time.Minute), time.Time{}, 20)
	for i := range 3 {
		create(t, db, newSession(admin, fmt.Sprint("ada", i), t0.Add(time.Duration(i)*time.Second)), t0, time.Time{}, 20)
	}
	// Vic signs in again: the ended sessions go, Ada's stay.
	create(t, db, newSession(vic, "new", t0.Add(time.Minute)), t0.Add(time.Minute), t0.Add(-30*time.Minute), 20)
	if got, want := count(t, db, `SELECT COUNT(*) FROM sessions`), 4; got != want {
		t.Errorf("after vic's sign-in: got %d rows, want %d (ada's three and vic's new one)", got, want)
	}
	// Ada at her limit of three: her oldest one goes.
	create(t, db, newSession(admin, "ada3", t0.Add(3*time.Second)), t0.Add(3*time.Second), time.Time{}, 3)
	want := []string{"handle-ada1", "handle-ada2", "handle-ada3"}
	var got []string
	list, err := db.ActiveSessions(t.Context(), t0.Add(time.Minute), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		if s.User.Subject == admin.Subject {
			got = append([]string{s.Handle}, got...)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ada's sessions at her limit: got %v, want %v", got, want)
	}
}

func testSessionRevoke(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	vic := auth.User{Subject: "sub-vic", Email: "vic@example.com", Role: auth.RoleViewer}
	s := newSession(vic, "v", t0)
	create(t, db, s, t0, time.Time{}, 20)
	by := withoutRole(admin)
	got, err := db.RevokeSession(t.Context(), s.Handle, func(r session.Session) pushcert.Event {
		return pushcert.Event{At: t0, Kind: pushcert.EventSessionRevoked, Actor: by, Detail: "ended " + r.User.Label()}
	})
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("got %+v, %v, want %+v", got, err, s)
	}
	if _, err := db.Session(t.Context(), s.Key); !errors.Is(err, pushcert.ErrNotFound) {
		t.Errorf("revoked session: got %v, want ErrNotFound", err)
	}
	es := mustEvents(t, db)
	want := pushcert.Event{ID: es[0].ID, At: t0, Kind: pushcert.EventSessionRevoked, Actor: by, Detail: "ended vic@example.com"}
	if len(es) != 1 || !reflect.DeepEqual(es[0], want) {
		t.Errorf("got events %+v, want one: %+v", es, want)
	}
}

func testSessionRevokeGone(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	called := false
	_, err := db.RevokeSession(t.Context(), "no-such-handle", func(session.Session) pushcert.Event {
		called = true
		return pushcert.Event{Kind: pushcert.EventSessionRevoked}
	})
	if !errors.Is(err, pushcert.ErrNotFound) || called {
		t.Errorf("got %v (event made: %v), want ErrNotFound and no event", err, called)
	}
	if es := mustEvents(t, db); len(es) != 0 {
		t.Errorf("got %d events, want none", len(es))
	}
}
