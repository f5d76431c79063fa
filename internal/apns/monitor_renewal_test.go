package apns_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// readStore is the env's store with ActivePair changed, as a check that
// read the pair around a renewal sees it.
type readStore struct {
	apns.Store
	activePair func(ctx context.Context) (pushcert.Certificate, []byte, error)
}

func (s readStore) ActivePair(ctx context.Context) (pushcert.Certificate, []byte, error) {
	return s.activePair(ctx)
}

// A renewal activated while a periodic check of the old certificate runs:
// the old certificate's refusal is no alert, and the pass has the renewed
// certificate checked at once rather than an interval later.
func TestMonitorRenewalDuringCheck(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	var renewed pushcert.Certificate
	var once sync.Once
	st := readStore{Store: e.st, activePair: func(ctx context.Context) (pushcert.Certificate, []byte, error) {
		cert, key, err := e.st.ActivePair(ctx)
		once.Do(func() { renewed = e.activate(t) }) // the admin uploads the renewal now
		return cert, key, err
	}}
	m := e.monitor(t, st, apns.Config{Interval: apns.DefaultInterval})
	old := e.activate(t)
	e.apns.Revoke(old.SerialNumber)
	next := pass(t, m)
	if l := last(t, m); l.Serial != old.SerialNumber || l.Outcome != apns.OutcomeRejected || l.ForActive || l.ActiveSerial != renewed.SerialNumber {
		t.Fatalf("got %+v, want the old certificate's refusal, not for the active one", l)
	}
	if got := fmt.Sprint(e.apnsEvents(t)); got != "[apns_rejected]" || !next.Equal(e.clock.Now()) {
		t.Errorf("got %s, next in %v; want no alert and the renewal checked at once", got, next.Sub(e.clock.Now()))
	}
	pass(t, m)
	if l := last(t, m); l.Serial != renewed.SerialNumber || l.Outcome != apns.OutcomeAccepted || !l.ForActive {
		t.Errorf("after the next pass: got %+v, want the renewed certificate accepted", l)
	}
}

// A check of the old certificate that finishes after the renewal was
// activated and checked (a person asked just before the renewal) leaves
// the renewal's result the last one: no alert, the next check an interval
// after the renewal's.
func TestMonitorLateCheckOfOldCertificate(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	m := e.monitor(t, e.st, apns.Config{Interval: apns.DefaultInterval})
	old := e.activate(t)
	oldKey := e.activeKey(t)
	stale := e.monitor(t, readStore{Store: e.st, activePair: func(context.Context) (pushcert.Certificate, []byte, error) {
		return old, oldKey, nil // read before the renewal
	}}, apns.Config{Interval: apns.DefaultInterval})
	e.apns.Revoke(old.SerialNumber)
	renewed := e.activate(t)
	pass(t, m)
	checkedAt := e.clock.Now()
	e.clock.Advance(time.Second)
	res, err := stale.CheckNow(t.Context(), admin)
	if err != nil || res.Outcome != apns.OutcomeRejected || res.Serial != old.SerialNumber {
		t.Fatalf("the late check: got %+v, %v; want the old certificate rejected", res, err)
	}
	l := last(t, m)
	if l.Serial != renewed.SerialNumber || l.Outcome != apns.OutcomeAccepted || !l.ForActive || !l.At.Equal(checkedAt) {
		t.Errorf("got %+v, want the renewed certificate's acceptance kept", l)
	}
	if got := fmt.Sprint(e.apnsEvents(t)); got != "[apns_accepted apns_rejected]" {
		t.Errorf("got %s, want the late check in the history and no alert", got)
	}
	if next := pass(t, m); !next.Equal(checkedAt.Add(apns.DefaultInterval)) {
		t.Errorf("next check in %v, want an interval after the renewal's check", next.Sub(checkedAt))
	}
}

// Raising an alert calls OnAlert, so the webhook hears of it at once; an
// alert already raised does not call it again.
func TestMonitorOnAlert(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	var alerts atomic.Int32
	m := e.monitor(t, e.st, apns.Config{Interval: apns.DefaultInterval, OnAlert: func() { alerts.Add(1) }})
	cert := e.activate(t)
	pass(t, m)
	if n := alerts.Load(); n != 0 {
		t.Errorf("accepted: OnAlert called %d times, want none", n)
	}
	e.apns.Revoke(cert.SerialNumber)
	for range 2 {
		if _, err := m.CheckNow(t.Context(), admin); err != nil {
			t.Fatal(err)
		}
		pass(t, m)
	}
	if n := alerts.Load(); n != 1 {
		t.Errorf("rejected: OnAlert called %d times, want once", n)
	}
}

// A person's check that Apple answered is recorded even when the request
// ended meanwhile (the browser gave up): Apple's answer is not lost.
func TestMonitorCheckNowRecordsAfterRequestEnds(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	e.activate(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The checker reads its clock for the result's time once Apple has
	// answered; the request ends right then.
	clock := func() time.Time {
		if len(e.apns.Pushes()) > 0 {
			cancel()
		}
		return e.clock.Now()
	}
	c := checker(t, e.apns, apns.CheckerConfig{Now: clock, Timeout: 2 * time.Second})
	m := apns.New(discard(), e.st, c, apns.Config{Interval: apns.DefaultInterval, Now: e.clock.Now})
	res, err := m.CheckNow(ctx, admin)
	if err != nil || res.Outcome != apns.OutcomeAccepted || ctx.Err() == nil {
		t.Fatalf("got %+v, %v (request ended: %v); want accepted with the request ended", res, err, ctx.Err())
	}
	if l := last(t, m); l.Outcome != apns.OutcomeAccepted || l.By.Subject != admin.Subject {
		t.Errorf("got %+v, want the admin's check recorded", l)
	}
	if got := fmt.Sprint(e.apnsEvents(t)); got != "[apns_accepted]" {
		t.Errorf("got %s, want the check in the history", got)
	}
}
