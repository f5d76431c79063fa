package delivery_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/target"
	"github.com/pushcert/pushcert/internal/testclock"
)

var admin = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}

var testCA = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA(applesim.AppleCAName, testclock.Now) })

// env is a store with a service over it, on one clock the test moves.
type env struct {
	dbURL string
	keys  *store.Keyring
	st    *store.DB
	svc   *pushcert.Service
	clock *testclock.Clock
	topic string
}

// backends runs f against SQLite and PostgreSQL.
func backends(t *testing.T, f func(t *testing.T, dbURL string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, storetest.SQLiteURL(t)) })
	t.Run("postgres", func(t *testing.T) { f(t, storetest.PostgresURL(t)) })
}

func newEnv(t *testing.T, dbURL string) *env {
	t.Helper()
	keys, err := store.NewKeyring(strings.Repeat("delivery-kek-", 3))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dbURL: dbURL, keys: keys, clock: testclock.At(testclock.Start(t)), topic: applesim.NewTopic()}
	e.st = e.open(t)
	ca, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	// pushcert trusts no CA by its name: the test CA is trusted explicitly.
	e.svc = pushcert.NewService(e.st, pushcert.Config{Organization: "Delivery Test Org", Now: e.clock.Now, TrustRoots: ca.Pool()})
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
	ca, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	pk, err := e.svc.GenerateCSR(t.Context(), admin)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	der, err := ca.IssueForCSR(pk.CSRDER, applesim.Request{Topic: e.topic, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, AppleID: "it@example.com", Certificate: applesim.PEM(der)})
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return *st.Certificate
}

// deliverer returns a Deliverer over st of targets, on the env's clock.
func (e *env) deliverer(st delivery.Store, cfg delivery.Config, targets ...delivery.Target) *delivery.Deliverer {
	cfg.Now = e.clock.Now
	return delivery.New(slog.New(slog.DiscardHandler), st, targets, cfg)
}

// events returns the audit events of kind, oldest first.
func (e *env) events(t *testing.T, kind pushcert.EventKind) []pushcert.Event {
	t.Helper()
	all, err := e.st.Events(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []pushcert.Event
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Kind == kind {
			out = append(out, all[i])
		}
	}
	return out
}

// mdmServer answers as NanoMDM does, or with the status the test sets, and
// counts the certificates it accepted by serial.
type mdmServer struct {
	srv    *httptest.Server
	mu     sync.Mutex
	status int // 0 means accept
	got    map[string]int
	tries  int
	// gate, when set, holds each request until it is closed; arrived
	// hears of each request as it arrives.
	gate    chan struct{}
	arrived chan struct{}
}

func newMDMServer(t *testing.T) *mdmServer {
	t.Helper()
	m := &mdmServer{got: map[string]int{}}
	m.srv = httptest.NewServer(http.HandlerFunc(m.serve))
	t.Cleanup(m.srv.Close)
	return m
}

func (m *mdmServer) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m.mu.Lock()
	gate, arrived := m.gate, m.arrived
	m.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tries++
	if m.status != 0 {
		w.WriteHeader(m.status)
		fmt.Fprint(w, `{"error":"refused by the test"}`)
		return
	}
	b, _ := pem.Decode(body)
	if b == nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	m.got[strings.ToUpper(c.SerialNumber.Text(16))]++
	fmt.Fprintf(w, `{"topic":%q}`, pushcert.Describe(c).Topic)
}

func (m *mdmServer) setStatus(code int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.status = code
}

func (m *mdmServer) counts() (got map[string]int, tries int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	got = map[string]int{}
	for k, v := range m.got {
		got[k] = v
	}
	return got, m.tries
}

// target is a NanoMDM target named name delivering to m.
func (m *mdmServer) target(t *testing.T, name string) delivery.Target {
	t.Helper()
	tg, err := target.NewNanoMDM(target.Options{Name: name, URL: m.srv.URL, APIKey: "test-api-key"})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

// reconcile runs one pass and fails the test on an error.
func reconcile(t *testing.T, d *delivery.Deliverer) time.Time {
	t.Helper()
	next, err := d.Reconcile(t.Context())
	if err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	return next
}

// status returns the status of the target named name.
func status(t *testing.T, d *delivery.Deliverer, name string) delivery.TargetStatus {
	t.Helper()
	all, _, err := d.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %s", name)
	return delivery.TargetStatus{}
}

// hold makes the server hold each request until the returned release is
// called; each request is announced on the returned channel.
func (m *mdmServer) hold() (arrived <-chan struct{}, release func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gate, m.arrived = make(chan struct{}), make(chan struct{}, 16)
	gate := m.gate
	var once sync.Once
	return m.arrived, func() { once.Do(func() { close(gate) }) }
}
