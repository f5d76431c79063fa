package webhook_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// The connection check's alerts, from a real Monitor checking a fake APNs
// through the checker and the store's alert record to a receiver: Apple
// refusing the certificate is alerted at once, Apple out of reach only
// once it has been for an hour, each once per episode however often the
// checks run and the checker looks.
func TestAlertRaisedByAPNSCheck(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	c := e.checker(t, e.st, rc)
	ca, err := alertCA()
	if err != nil {
		t.Fatal(err)
	}
	fake := apnstest.Start(t, ca.Cert, e.clock.Now)
	checker, err := apns.NewChecker(apns.CheckerConfig{URL: fake.URL(), RootCAs: fake.RootCAs(), Now: e.clock.Now, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const interval, retry, after = 24 * time.Hour, 10 * time.Minute, time.Hour
	m := apns.New(slog.New(slog.DiscardHandler), e.st, checker,
		apns.Config{Interval: interval, Retry: retry, UnreachableAlertAfter: after, Now: e.clock.Now})
	cert := e.upload(t, "", e.t0.Add(200*24*time.Hour))

	steps := []struct {
		name       string
		advance    time.Duration
		status     int
		reason     string
		wantAlerts string
	}{
		{"accepted", 0, 0, "", "[]"},
		{"refused", interval, http.StatusForbidden, "BadCertificate", "[apns_rejected/0]"},
		{"still refused", interval, http.StatusForbidden, "BadCertificate", "[apns_rejected/0]"},
		{"accepted again", interval, 0, "", "[apns_rejected/0]"},
		{"out of reach", interval, http.StatusServiceUnavailable, "ServiceUnavailable", "[apns_rejected/0]"},
		{"out of reach, not for long", after - retry, http.StatusServiceUnavailable, "ServiceUnavailable", "[apns_rejected/0]"},
		{"out of reach for an hour", retry, http.StatusServiceUnavailable, "ServiceUnavailable", "[apns_rejected/0 apns_unreachable/0]"},
		{"out of reach longer", retry, http.StatusServiceUnavailable, "ServiceUnavailable", "[apns_rejected/0 apns_unreachable/0]"},
	}
	for _, s := range steps {
		e.clock.Advance(s.advance)
		fake.Answer(s.status, s.reason)
		if _, err := m.Pass(t.Context()); err != nil {
			t.Fatal(err)
		}
		check(t, c)
		check(t, c)
		if got := fmt.Sprint(rc.alerts()); got != s.wantAlerts {
			t.Fatalf("%s: got alerts %s, want %s", s.name, got, s.wantAlerts)
		}
	}
	rc.mu.Lock()
	rejected, unreachable := rc.got[0], rc.got[1]
	rc.mu.Unlock()
	if rejected.Serial != cert.SerialNumber || rejected.Topic != cert.Topic || rejected.Actor != "" ||
		!strings.Contains(rejected.Text, "The connection check failed for the MDM push certificate (topic "+cert.Topic) ||
		!strings.Contains(rejected.Text, "403 BadCertificate") || !strings.Contains(rejected.Text, "https://pushcert.example.com") {
		t.Errorf("refusal alert: got %+v, want the certificate, Apple's reason and pushcert's URL", rejected)
	}
	if !strings.Contains(unreachable.Text, "pushcert cannot reach Apple's push service") ||
		!strings.Contains(unreachable.Text, "503 ServiceUnavailable") || !strings.Contains(unreachable.Reason, "out of reach since") {
		t.Errorf("unreachable alert: got %+v, want Apple's answer and since when", unreachable)
	}
}
