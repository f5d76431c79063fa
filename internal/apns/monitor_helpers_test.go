package apns_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/testclock"
)

var admin = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}

// env is a real store with a service over it, a fake APNs that trusts
// the Apple stand-in, and one clock the test moves for all of them.
type env struct {
	dbURL string
	keys  *store.Keyring
	st    *store.DB
	svc   *pushcert.Service
	clock *testclock.Clock
	topic string
	apns  *apnstest.Server
}

// backends runs f against SQLite and PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, storetest.SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, storetest.PostgresURL(t)) })
}

func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	keys, err := store.NewKeyring(strings.Repeat("apns-kek-", 4))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dbURL: dbURL, keys: keys, clock: testclock.New(t), topic: applesim.NewTopic()}
	e.st = e.open(t)
	e.svc = pushcert.NewService(e.st, pushcert.Config{Organization: "APNs Test Org", Now: e.clock.Now, TrustRoots: ca(t, appleCA).Pool()})
	e.apns = apnstest.Start(t, ca(t, appleCA).Cert, e.clock.Now)
	return e
}

// open opens another handle on the env's database, as a replica would.
func (e *env) open(t *testing.T) *store.DB {
	t.Helper()
	st, err := store.Open(t.Context(), e.dbURL, e.keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// activate makes a new certificate for the env's topic active, as an
// admin's upload would, and returns it.
func (e *env) activate(t *testing.T) pushcert.Certificate {
	t.Helper()
	pk, err := e.svc.GenerateCSR(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	der, err := ca(t, appleCA).IssueForCSR(pk.CSRDER, applesim.Request{Topic: e.topic, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, AppleID: "it@example.com", Certificate: applesim.PEM(der)})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return *st.Certificate
}

// monitor returns a Monitor over st checking the env's fake APNs on the
// env's clock.
func (e *env) monitor(t *testing.T, st apns.Store, cfg apns.Config) *apns.Monitor {
	t.Helper()
	cfg.Now = e.clock.Now
	c := checker(t, e.apns, apns.CheckerConfig{Now: e.clock.Now, Timeout: 2 * time.Second})
	return apns.New(discard(), st, c, cfg)
}

// apnsEvents returns the kinds of the check's audit events, oldest first.
func (e *env) apnsEvents(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, ev := range e.events(t) {
		if strings.HasPrefix(string(ev.Kind), "apns_") {
			out = append(out, string(ev.Kind))
		}
	}
	return out
}

// events returns the audit events, oldest first.
func (e *env) events(t *testing.T) []pushcert.Event {
	t.Helper()
	all, err := e.st.Events(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]pushcert.Event, 0, len(all))
	for i := len(all) - 1; i >= 0; i-- {
		out = append(out, all[i])
	}
	return out
}

// pass runs one pass and fails the test on an error.
func pass(t *testing.T, m *apns.Monitor) time.Time {
	t.Helper()
	next, err := m.Pass(t.Context())
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	return next
}

func last(t *testing.T, m *apns.Monitor) apns.LastResult {
	t.Helper()
	l, err := m.Last(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// activeKey returns the active certificate's key (PKCS#8 DER).
func (e *env) activeKey(t *testing.T) []byte {
	t.Helper()
	_, key, err := e.st.ActivePair(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
