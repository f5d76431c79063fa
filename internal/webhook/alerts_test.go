package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/testclock"
	"github.com/pushcert/pushcert/internal/webhook"
)

// The tests in this file follow alerts from the service's writes through
// the checker and the store's alert record to a receiver, over a real
// Notifier.

// alertEnv is a real store and service with a test clock, and a CA that
// plays Apple.
type alertEnv struct {
	dbURL string
	keys  *store.Keyring
	st    *store.DB
	svc   *pushcert.Service
	t0    time.Time        // when the test starts: testclock.Start
	clock *testclock.Clock // every part of the test agrees on it
	ca    *applesim.CA
	logs  *syncBuffer
}

var alertCA = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA(applesim.AppleCAName, testclock.Now) })

func newAlertEnv(t *testing.T, dbURL string) *alertEnv {
	t.Helper()
	ca, err := alertCA()
	if err != nil {
		t.Fatal(err)
	}
	keys, err := store.NewKeyring(strings.Repeat("alert-kek-", 4))
	if err != nil {
		t.Fatal(err)
	}
	t0 := testclock.Start(t)
	e := &alertEnv{dbURL: dbURL, keys: keys, t0: t0, clock: testclock.At(t0), ca: ca, logs: &syncBuffer{}}
	e.st = e.open(t)
	e.svc = pushcert.NewService(e.st, pushcert.Config{Organization: "Alert Test Org", Now: e.clock.Now, TrustRoots: ca.Pool()})
	return e
}

// open opens another handle on the env's database, as a replica would.
func (e *alertEnv) open(t *testing.T) *store.DB {
	t.Helper()
	st, err := store.Open(t.Context(), e.dbURL, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

var alertAdmin = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}

// upload makes the env's service accept a certificate that expires at
// notAfter, as an admin renewing it would.
func (e *alertEnv) upload(t *testing.T, topic string, notAfter time.Time) pushcert.Certificate {
	t.Helper()
	pk, err := e.svc.GenerateCSR(t.Context(), alertAdmin)
	if err != nil {
		t.Fatal(err)
	}
	der, err := e.ca.IssueForCSR(pk.CSRDER, applesim.Request{Topic: topic, NotBefore: e.clock.Now().Add(-time.Hour), NotAfter: notAfter})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Update(t.Context(), pushcert.Update{Actor: alertAdmin, AppleID: "it@example.com", Certificate: applesim.PEM(der)})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return *st.Certificate
}

// refuse makes the env's service refuse an upload.
func (e *alertEnv) refuse(t *testing.T) {
	t.Helper()
	_, err := e.svc.Update(t.Context(), pushcert.Update{Actor: alertAdmin, AppleID: "it@example.com", Certificate: []byte("not a certificate")})
	if err == nil {
		t.Fatal("garbage upload accepted")
	}
}

// checker returns a checker over st delivering to rc through a real Notifier.
func (e *alertEnv) checker(t *testing.T, st alert.Store, rc *receiver) *alert.Checker {
	t.Helper()
	var n alert.Notifier
	if rc != nil {
		wh, err := webhook.New(rc.url(), nil)
		if err != nil {
			t.Fatal(err)
		}
		n = wh
	}
	log := slog.New(slog.NewJSONHandler(e.logs, nil))
	return alert.NewChecker(log, st, n, alert.Config{
		Now: e.clock.Now, Backoff: time.Millisecond, Attempts: 3, ConsoleURL: "https://pushcert.example.com",
	})
}

func check(t *testing.T, c *alert.Checker) {
	t.Helper()
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestAlertThresholds(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	c := e.checker(t, e.st, rc)
	cert := e.upload(t, "", e.t0.Add(40*24*time.Hour))

	// Walk the clock to a day past expiry in half days, checking twice at
	// every step.
	for step := time.Duration(0); step <= 41*24*time.Hour; step += 12 * time.Hour {
		e.clock.Set(e.t0.Add(step))
		check(t, c)
		check(t, c)
	}
	want := []string{
		"certificate_expiring/30", "certificate_expiring/14", "certificate_expiring/7",
		"certificate_expiring/3", "certificate_expiring/1", "certificate_expired/0",
	}
	if got := rc.alerts(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got alerts %v, want %v", got, want)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for i, a := range rc.got {
		raw := rc.raw[i]
		wantDays := float64(a.ThresholdDays)
		if a.Event == alert.KindExpired {
			wantDays = 0
		}
		checks := []struct {
			name string
			got  any
			want any
		}{
			{"topic", a.Topic, cert.Topic},
			{"serial", a.Serial, cert.SerialNumber},
			{"expiry", raw["expiry"], cert.NotAfter.UTC().Format(time.RFC3339)},
			{"days_left", raw["days_left"], wantDays},
			{"apple_id", a.AppleID, "it@example.com"},
		}
		for _, ch := range checks {
			if ch.got != ch.want {
				t.Errorf("alert %d (%s) %s: got %v, want %v", i, a.Event, ch.name, ch.got, ch.want)
			}
		}
		if !strings.Contains(a.Text, cert.Topic) || !strings.Contains(a.Text, "https://pushcert.example.com") || !strings.Contains(a.Text, "it@example.com") {
			t.Errorf("alert %d text %q: want the topic, the Apple ID and pushcert's URL", i, a.Text)
		}
	}
	if !strings.Contains(rc.got[0].Text, "expires in 30 days") || !strings.Contains(rc.got[5].Text, "EXPIRED") {
		t.Errorf("texts: got %q and %q, want \"expires in 30 days\" and EXPIRED", rc.got[0].Text, rc.got[5].Text)
	}
}

func TestAlertOnlyMostUrgentWhenFirstSeen(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	e.upload(t, "", e.t0.Add(5*24*time.Hour))
	check(t, e.checker(t, e.st, rc))
	if got := rc.alerts(); fmt.Sprint(got) != "[certificate_expiring/7]" {
		t.Errorf("got %v, want only the 7-day alert", got)
	}
}

func TestAlertNothingWithoutCertificateOrWebhook(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	check(t, e.checker(t, e.st, rc)) // no certificate yet
	e.upload(t, "", e.t0.Add(2*24*time.Hour))
	e.refuse(t)
	check(t, e.checker(t, e.st, nil)) // no webhook: only audit logging
	if rc.postCount() != 0 {
		t.Errorf("receiver got %d posts, want none", rc.postCount())
	}
	if n := strings.Count(e.logs.String(), `"msg":"audit"`); n != 3 {
		t.Errorf("logged %d audit events, want 3 (csr, upload, refused upload):\n%s", n, e.logs)
	}
}

func TestAlertUploadFailed(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	c := e.checker(t, e.st, rc)
	check(t, c) // nothing yet
	e.refuse(t)
	check(t, c)
	check(t, c)
	if got := rc.alerts(); fmt.Sprint(got) != "[upload_failed/0]" {
		t.Fatalf("got %v, want one upload_failed alert", got)
	}
	a, raw := rc.last()
	if a.Actor != alertAdmin.Email || a.Reason == "" || !strings.Contains(a.Text, a.Reason[:20]) || raw["days_left"] != nil {
		t.Errorf("got %+v, want the actor, the reason in the text and no days_left", a)
	}
	if !strings.Contains(e.logs.String(), `"kind":"upload_failed"`) {
		t.Errorf("log has no audit line for the refused upload:\n%s", e.logs)
	}
}

func TestAlertRetry(t *testing.T) {
	t.Run("a 500, then success within one check", func(t *testing.T) {
		e := newAlertEnv(t, storetest.SQLiteURL(t))
		rc := newReceiver(t)
		rc.failNext(http.StatusInternalServerError)
		e.upload(t, "", e.t0.Add(20*24*time.Hour))
		check(t, e.checker(t, e.st, rc))
		if got := rc.alerts(); rc.postCount() != 2 || fmt.Sprint(got) != "[certificate_expiring/30]" {
			t.Errorf("got %d posts delivering %v, want 2 delivering the 30-day alert", rc.postCount(), got)
		}
		assertAlertCounts(t, e.st, 1, 0)
	})
	t.Run("every attempt fails, a later check delivers", func(t *testing.T) {
		e := newAlertEnv(t, storetest.SQLiteURL(t))
		rc := newReceiver(t)
		rc.failNext(503, 503, 503)
		e.upload(t, "", e.t0.Add(20*24*time.Hour))
		c := e.checker(t, e.st, rc)
		check(t, c)
		if rc.postCount() != 3 || len(rc.alerts()) != 0 {
			t.Fatalf("got %d posts, %v delivered; want 3 attempts, none delivered", rc.postCount(), rc.alerts())
		}
		assertAlertCounts(t, e.st, 0, 1)
		check(t, c) // too soon: the alert waits for its retry time
		if rc.postCount() != 3 {
			t.Errorf("got %d posts, want no retry before the retry time", rc.postCount())
		}
		e.clock.Set(e.t0.Add(2 * time.Minute))
		check(t, c)
		if got := rc.alerts(); fmt.Sprint(got) != "[certificate_expiring/30]" {
			t.Errorf("got %v, want the 30-day alert delivered on retry", got)
		}
		assertAlertCounts(t, e.st, 1, 1)
		if logs := e.logs.String(); !strings.Contains(logs, "alert delivery failed") || !strings.Contains(logs, rc.srv.Listener.Addr().String()) ||
			strings.Contains(logs, "secret") || strings.Contains(logs, "/hooks/") {
			t.Errorf("log must report the failure naming only the host:\n%s", logs)
		}
	})
	t.Run("a refusal is not retried at once", func(t *testing.T) {
		e := newAlertEnv(t, storetest.SQLiteURL(t))
		rc := newReceiver(t)
		rc.failNext(http.StatusNotFound)
		e.upload(t, "", e.t0.Add(20*24*time.Hour))
		check(t, e.checker(t, e.st, rc))
		if rc.postCount() != 1 {
			t.Errorf("got %d posts, want 1", rc.postCount())
		}
	})
}

func TestAlertSupersededByRenewal(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	rc.failNext(503, 503, 503)
	old := e.upload(t, "", e.t0.Add(10*24*time.Hour))
	c := e.checker(t, e.st, rc)
	check(t, c) // the 14-day alert fails and waits
	e.clock.Set(e.t0.Add(time.Hour))
	e.upload(t, old.Topic, e.t0.Add(365*24*time.Hour))
	e.clock.Set(e.t0.Add(time.Hour + 2*time.Minute))
	check(t, c)
	if got := rc.alerts(); len(got) != 0 {
		t.Errorf("got %v, want the stale alert dropped after the renewal", got)
	}
	assertAlertCounts(t, e.st, 0, 1)
}

// TestAlertNoDuplicates runs three checkers, each with its own connection to
// one database as replicas would, checking concurrently while time
// passes, then another after a "restart", and checks every alert arrived
// exactly once.
func TestAlertNoDuplicates(t *testing.T) {
	for _, b := range storetest.Backends {
		t.Run(b.Name, func(t *testing.T) {
			e := newAlertEnv(t, b.URL(t))
			rc := newReceiver(t)
			replicas := []*alert.Checker{e.checker(t, e.open(t), rc), e.checker(t, e.open(t), rc), e.checker(t, e.open(t), rc)}
			e.upload(t, "", e.t0.Add(15*24*time.Hour))
			e.refuse(t)
			e.refuse(t)
			for step := time.Duration(0); step <= 16*24*time.Hour; step += 24 * time.Hour {
				e.clock.Set(e.t0.Add(step))
				var wg sync.WaitGroup
				for _, c := range replicas {
					wg.Go(func() {
						if err := c.Check(t.Context()); err != nil {
							t.Errorf("Check: %v", err)
						}
					})
				}
				wg.Wait()
			}
			// The replicas deliver in parallel, so compare in sorted order.
			want := []string{"certificate_expired/0", "certificate_expiring/1", "certificate_expiring/14", "certificate_expiring/3",
				"certificate_expiring/30", "certificate_expiring/7", "upload_failed/0", "upload_failed/0"}
			got := rc.alerts()
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if n := strings.Count(e.logs.String(), `"msg":"audit"`); n != 4 {
				t.Errorf("logged %d audit events, want each of the 4 once", n)
			}

			// A restart: new connections, a new checker, the same moment.
			e.st.Close()
			posts := rc.postCount()
			check(t, e.checker(t, e.open(t), rc))
			if rc.postCount() != posts {
				t.Errorf("after a restart: got %d more posts, want none", rc.postCount()-posts)
			}
		})
	}
}

func assertAlertCounts(t *testing.T, st *store.DB, wantSent, wantFailed int64) {
	t.Helper()
	sent, failed, err := st.AlertCounts(t.Context())
	if err != nil || sent != wantSent || failed != wantFailed {
		t.Errorf("alert counts: got %d sent, %d failed (%v); want %d and %d", sent, failed, err, wantSent, wantFailed)
	}
}

// claimNothing is a replica that raises alerts but leaves their delivery
// to another: it never claims one.
type claimNothing struct{ *store.DB }

func (claimNothing) ClaimAlerts(context.Context, time.Time, time.Time, int) ([]alert.Queued, error) {
	return nil, nil
}

// beforeClaim runs hook once, just before the first claim: between the
// pass's read of the state and its delivery.
type beforeClaim struct {
	*store.DB
	once sync.Once
	hook func()
}

func (s *beforeClaim) ClaimAlerts(ctx context.Context, now, leaseUntil time.Time, limit int) ([]alert.Queued, error) {
	s.once.Do(s.hook)
	return s.DB.ClaimAlerts(ctx, now, leaseUntil, limit)
}

// TestAlertRaisedByAnotherReplicaDuringAPass: replica B begins a pass
// before there is any certificate; meanwhile the certificate is activated
// and replica A raises its expiry alert. B claims that alert and must
// judge it against the state it finds then, and deliver it, not drop it as
// superseded because its own pass began earlier.
func TestAlertRaisedByAnotherReplicaDuringAPass(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	a := e.checker(t, claimNothing{e.open(t)}, rc)
	b := e.checker(t, &beforeClaim{DB: e.open(t), hook: func() {
		e.upload(t, "", e.t0.Add(20*24*time.Hour))
		check(t, a)
	}}, rc)

	check(t, b)

	if got := rc.alerts(); fmt.Sprint(got) != "[certificate_expiring/30]" {
		t.Fatalf("got alerts %v, want the 30-day alert A raised, delivered by B", got)
	}
}
