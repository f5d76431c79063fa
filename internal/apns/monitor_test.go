package apns_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// Two replicas on one PostgreSQL database, passing at the same moments,
// check each certificate once when it becomes active and once per
// interval after that.
func TestMonitorChecksOncePerIntervalAcrossReplicas(t *testing.T) {
	e := newEnv(t, storetest.PostgresURL(t))
	const interval = 24 * time.Hour
	replicas := []*apns.Monitor{
		e.monitor(t, e.open(t), apns.Config{Interval: interval}),
		e.monitor(t, e.open(t), apns.Config{Interval: interval}),
	}
	passAll := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, len(replicas))
		for i, m := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = m.Pass(t.Context())
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	passAll()
	if n := len(e.apns.Pushes()); n != 0 {
		t.Fatalf("with no certificate: %d pushes, want none", n)
	}
	first := e.activate(t)
	steps := []struct {
		name      string
		advance   time.Duration
		renew     bool
		wantCount int
	}{
		{"after the activation", 0, false, 1},
		{"again at once", 0, false, 1},
		{"a moment before the interval", interval - time.Second, false, 1},
		{"at the interval", time.Second, false, 2},
		{"a renewal", time.Hour, true, 3},
		{"an interval after the renewal", interval, false, 4},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		if s.renew {
			e.activate(t)
		}
		passAll()
		passAll()
		if n := len(e.apns.Pushes()); n != s.wantCount {
			t.Errorf("%s: %d pushes, want %d", s.name, n, s.wantCount)
		}
	}
	for i, m := range replicas {
		l := last(t, m)
		if l.Outcome != apns.OutcomeAccepted || !l.ForActive || l.Serial == first.SerialNumber || !l.TopicMatches ||
			!l.NextCheckAt.Equal(e.clock.Now().Add(interval)) {
			t.Errorf("replica %d: got %+v, want the renewed certificate accepted, next check an interval on", i, l)
		}
	}
}

// History records each change of outcome; a refusal raises its alert at
// once, a service out of reach only once it stays so for
// UnreachableAlertAfter, each once per episode.
func TestMonitorHistoryAndAlerts(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		const interval, retry, after = 24 * time.Hour, 10 * time.Minute, time.Hour
		m := e.monitor(t, e.st, apns.Config{Interval: interval, Retry: retry, UnreachableAlertAfter: after})
		e.activate(t)
		steps := []struct {
			name       string
			advance    time.Duration
			answer     int    // the fake's status; 0 is its usual BadDeviceToken
			reason     string // with it
			wantEvents string // the apns_ events added by the pass
			wantNext   time.Duration
		}{
			{"first check", 0, 0, "", "[apns_accepted]", interval},
			{"Apple refuses", interval, 403, "BadCertificate", "[apns_rejected apns_alert_rejected]", interval},
			{"Apple still refuses", interval, 403, "BadCertificate", "[]", interval},
			{"Apple accepts again", interval, 0, "", "[apns_accepted]", interval},
			{"out of reach", interval, 503, "ServiceUnavailable", "[apns_unreachable]", retry},
			{"still out of reach, not for long", retry, 503, "ServiceUnavailable", "[]", retry},
			{"out of reach for the alert's time", after - retry, 503, "ServiceUnavailable", "[apns_alert_unreachable]", retry},
			{"out of reach longer", retry, 503, "ServiceUnavailable", "[]", retry},
			{"back", retry, 0, "", "[apns_accepted]", interval},
			{"out of reach again", interval, 503, "ServiceUnavailable", "[apns_unreachable]", retry},
			{"the second episode's alert", after, 503, "ServiceUnavailable", "[apns_alert_unreachable]", retry},
		}
		seen := 0
		for _, s := range steps {
			e.clock.Advance(s.advance)
			e.apns.Answer(s.answer, s.reason)
			next := pass(t, m)
			events := e.apnsEvents(t)
			if got := fmt.Sprint(events[seen:]); got != s.wantEvents || !next.Equal(e.clock.Now().Add(s.wantNext)) {
				t.Errorf("%s: got events %s, next in %v; want %s, next in %v", s.name, got, next.Sub(e.clock.Now()), s.wantEvents, s.wantNext)
			}
			seen = len(events)
		}
		var alerts []pushcert.Event
		for _, ev := range e.events(t) {
			if ev.Kind == pushcert.EventAPNSAlertRejected || ev.Kind == pushcert.EventAPNSAlertUnreachable {
				alerts = append(alerts, ev)
			}
		}
		if len(alerts) != 3 || !strings.Contains(alerts[0].Detail, "403 BadCertificate") ||
			!strings.Contains(alerts[1].Detail, "out of reach since") || alerts[1].Actor != apns.System {
			t.Errorf("got alert events %+v, want the refusal's reason and the time out of reach", alerts)
		}
	})
}

// An unreachable service is alerted only once checks have kept finding
// it out of reach for UnreachableAlertAfter, and never when that is below
// zero; a check that found it out of reach is made again every Retry
// even with the periodic check off.
func TestMonitorUnreachableAlertAfter(t *testing.T) {
	const after = 30 * time.Minute
	for _, tt := range []struct {
		name      string
		after     time.Duration
		wantAlert bool
	}{
		{"after half an hour", after, true},
		{"never", -1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, storetest.SQLiteURL(t))
			m := e.monitor(t, e.st, apns.Config{Interval: 0, UnreachableAlertAfter: tt.after})
			e.apns.Answer(http.StatusServiceUnavailable, "ServiceUnavailable")
			e.activate(t)
			steps := []struct {
				name       string
				advance    time.Duration
				wantPushes int
				wantEvents string
			}{
				{"first check", 0, 1, "[apns_unreachable]"},
				{"a moment before the retry", apns.DefaultRetry - time.Second, 1, "[apns_unreachable]"},
				{"the retry", time.Second, 2, "[apns_unreachable]"},
				{"out of reach for the alert's time", after - apns.DefaultRetry, 3, "[apns_unreachable apns_alert_unreachable]"},
				{"still out of reach", apns.DefaultRetry, 4, "[apns_unreachable apns_alert_unreachable]"},
			}
			for _, s := range steps {
				e.clock.Advance(s.advance)
				next := pass(t, m)
				want := s.wantEvents
				if !tt.wantAlert {
					want = "[apns_unreachable]"
				}
				got := fmt.Sprint(e.apnsEvents(t))
				if n := len(e.apns.Pushes()); n != s.wantPushes || got != want || next.IsZero() {
					t.Errorf("%s: got %d pushes, events %s, next %v; want %d, %s, a retry", s.name, n, got, next, s.wantPushes, want)
				}
			}
			if l := last(t, m); l.Outcome != apns.OutcomeUnreachable || !l.ForActive || !l.NextCheckAt.Equal(e.clock.Now().Add(apns.DefaultRetry)) ||
				l.Alerted != tt.wantAlert {
				t.Errorf("got %+v, want unreachable, the next check a retry on, alerted %v", l, tt.wantAlert)
			}
		})
	}
}

// One old result never raises the unreachable alert: a pass long after a
// check that found Apple out of reach, while another replica checks
// again, waits for that check, and an answer ends the episode without an
// alert.
func TestMonitorUnreachableOneOldResult(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	m := e.monitor(t, e.st, apns.Config{Interval: apns.DefaultInterval, UnreachableAlertAfter: time.Hour})
	e.apns.Answer(http.StatusServiceUnavailable, "ServiceUnavailable")
	cert := e.activate(t)
	pass(t, m)
	e.clock.Advance(3 * time.Hour) // no pass in between: the replicas were down
	now := e.clock.Now()
	if ok, err := e.st.ClaimAPNSCheck(t.Context(), cert.Fingerprint, now, now.Add(time.Minute), now.Add(-apns.DefaultRetry)); err != nil || !ok {
		t.Fatalf("another replica's claim: got %v %v, want it claimed", ok, err)
	}
	next := pass(t, m)
	if got := fmt.Sprint(e.apnsEvents(t)); got != "[apns_unreachable]" || !next.Equal(now.Add(time.Minute)) {
		t.Errorf("while another replica checks: got %s, next %v; want no alert, next when its lease ends", got, next)
	}
	e.apns.Answer(0, "")
	e.clock.Advance(time.Minute) // that replica stopped; its lease ran out
	pass(t, m)
	if got := fmt.Sprint(e.apnsEvents(t)); got != "[apns_unreachable apns_accepted]" {
		t.Errorf("got %s, want the check made again and accepted, no alert", got)
	}
}

// A person's check runs at once, waits for Apple, is recorded with who
// asked even when nothing changed, and every replica shows it.
func TestMonitorCheckNow(t *testing.T) {
	e := newEnv(t, storetest.PostgresURL(t))
	m := e.monitor(t, e.st, apns.Config{Interval: apns.DefaultInterval})
	if _, err := m.CheckNow(t.Context(), admin); !errors.Is(err, apns.ErrNoCertificate) {
		t.Fatalf("with no certificate: got %v, want ErrNoCertificate", err)
	}
	if l := last(t, m); l.Outcome != apns.OutcomeNone || l.ForActive || !l.NextCheckAt.IsZero() {
		t.Errorf("before any check: got %+v, want nothing", l)
	}
	cert := e.activate(t)
	for range 2 {
		res, err := m.CheckNow(t.Context(), admin)
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != apns.OutcomeAccepted || res.By != admin || res.Serial != cert.SerialNumber || !res.At.Equal(e.clock.Now()) {
			t.Errorf("got %+v, want accepted for %s by the admin, now", res, cert.SerialNumber)
		}
	}
	var byAdmin int
	for _, ev := range e.events(t) {
		if ev.Kind == pushcert.EventAPNSAccepted && ev.Actor.Subject == admin.Subject && ev.Serial == cert.SerialNumber {
			byAdmin++
		}
	}
	if byAdmin != 2 {
		t.Errorf("history has %d checks by the admin, want 2", byAdmin)
	}
	// The next periodic check counts from the asked-for one.
	if n := len(e.apns.Pushes()); n != 2 {
		t.Errorf("%d pushes, want 2", n)
	}
	pass(t, m)
	if n := len(e.apns.Pushes()); n != 2 {
		t.Errorf("a pass right after: %d pushes, want still 2", n)
	}
	other := e.monitor(t, e.open(t), apns.Config{Interval: apns.DefaultInterval})
	l := last(t, other)
	if l.Outcome != apns.OutcomeAccepted || !l.ForActive || !l.TopicMatches || l.By.Email != admin.Email ||
		l.ActiveSerial != cert.SerialNumber || l.ActiveTopic != e.topic || l.HTTPStatus != 400 || l.Reason != "BadDeviceToken" ||
		!l.NextCheckAt.Equal(e.clock.Now().Add(apns.DefaultInterval)) || l.Checking || !l.Since.Equal(e.clock.Now()) {
		t.Errorf("another replica: got %+v, want the admin's accepted check", l)
	}
	if !strings.Contains(l.Message, "Apple accepted the certificate") {
		t.Errorf("message %q, want Apple's acceptance", l.Message)
	}
}

// After a renewal, the last result is about the old certificate until the
// new one is checked: it says so, and the old one's refusal raises no alert.
func TestMonitorAfterRenewal(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	m := e.monitor(t, e.st, apns.Config{Interval: apns.DefaultInterval})
	old := e.activate(t)
	e.apns.Revoke(old.SerialNumber)
	if _, err := m.CheckNow(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	renewed := e.activate(t)
	l := last(t, m)
	if l.Outcome != apns.OutcomeRejected || l.ForActive || l.Serial != old.SerialNumber || l.ActiveSerial != renewed.SerialNumber ||
		!l.TopicMatches || !l.NextCheckAt.Equal(e.clock.Now()) || l.Reason != "tls: revoked certificate" {
		t.Errorf("after the renewal: got %+v, want the old certificate's refusal, the next check now", l)
	}
	pass(t, m)
	if l := last(t, m); l.Outcome != apns.OutcomeAccepted || !l.ForActive {
		t.Errorf("after a pass: got %+v, want the renewed certificate accepted", l)
	}
	if got := fmt.Sprint(e.apnsEvents(t)); got != "[apns_rejected apns_alert_rejected apns_accepted]" {
		t.Errorf("got %s, want the refusal alerted once and the renewal's acceptance", got)
	}
}

// Run checks at once after an activation when poked, and stops with its
// context.
func TestMonitorRun(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	m := e.monitor(t, e.st, apns.Config{Interval: apns.DefaultInterval})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.Run(ctx)
	}()
	cert := e.activate(t)
	m.Poke()
	deadline := time.Now().Add(10 * time.Second) // a polling deadline
	for {
		if l := last(t, m); l.ForActive && l.Serial == cert.SerialNumber {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the activation was not checked within 10s of the poke")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
