package store

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/guid"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/testclock"
)

// testNow is the time the tests stamp rows with: testclock's instant,
// moving on as the tests run, so that rows written one after another are
// ordered as they are in production.
var testNow = testclock.Running(testclock.Now())

// Test secrets; long enough for NewKeyring.
const (
	secretA = "secret-a-0123456789abcdef"
	secretB = "secret-b-0123456789abcdef"
)

var admin = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}

// backend makes fresh databases of one kind for the shared suite.
type backend = storetest.Backend

var backends = storetest.Backends

// runSuite runs every store test against databases made by b.
func runSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"fresh state", testFreshState},
		{"pending keys", testPendingKeys},
		{"latest pending key", testLatestPendingKey},
		{"status", testStatus},
		{"pending keys by hash", testPendingKeysByHash},
		{"activate with pending key", testActivateWithPending},
		{"activate keeping active key", testActivateKeepsActiveKey},
		{"activate errors", testActivateErrors},
		{"stale version", testStaleVersion},
		{"concurrent writers", testConcurrentWriters},
		{"upload failure", testUploadFailure},
		{"apple id", testAppleID},
		{"events", testEvents},
		{"time precision", testTimePrecision},
		{"keys encrypted at rest", testKeysEncrypted},
		{"wrong keyring", testWrongKeyring},
		{"ciphertext bound to its row", testAADBinding},
		{"rotate keys", testRotateKeys},
		{"concurrent open", testConcurrentOpen},
		{"reopen", testReopen},
		{"failure injection", testFailureInjection},
		{"crash", testCrash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
	}
}

// fixture holds what is slow to make: a CA and a few RSA keys.
type fixture struct {
	ca   *applesim.CA
	keys []*rsa.PrivateKey
}

var (
	fixtureOnce sync.Once
	fixtureVal  fixture
	fixtureErr  error
)

func fixtures(tb testing.TB) fixture {
	tb.Helper()
	fixtureOnce.Do(func() {
		fixtureVal.ca, fixtureErr = applesim.NewCA(applesim.AppleCAName, testclock.Now)
		for range 4 {
			if fixtureErr != nil {
				return
			}
			var k *rsa.PrivateKey
			k, fixtureErr = rsa.GenerateKey(rand.Reader, 2048)
			fixtureVal.keys = append(fixtureVal.keys, k)
		}
	})
	if fixtureErr != nil {
		tb.Fatalf("make fixtures: %v", fixtureErr)
	}
	return fixtureVal
}

func newKeyring(tb testing.TB, current string, previous ...string) *Keyring {
	tb.Helper()
	k, err := NewKeyring(current, previous...)
	if err != nil {
		tb.Fatalf("NewKeyring: %v", err)
	}
	return k
}

// open opens the store and closes it when the test ends.
func open(tb testing.TB, dbURL string, keys *Keyring) *DB {
	tb.Helper()
	db, err := Open(context.Background(), dbURL, keys)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// issue makes a push certificate for key with topic (a new one if empty).
func issue(tb testing.TB, ca *applesim.CA, key *rsa.PrivateKey, topic string) pushcert.Certificate {
	tb.Helper()
	if topic == "" {
		topic = applesim.NewTopic()
	}
	der, err := ca.Issue(applesim.Request{PublicKey: &key.PublicKey, Topic: topic})
	if err != nil {
		tb.Fatalf("issue: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("parse issued certificate: %v", err)
	}
	fp := sha256.Sum256(der)
	return pushcert.Certificate{
		Topic:        topic,
		CommonName:   cert.Subject.CommonName,
		SerialNumber: strings.ToUpper(cert.SerialNumber.Text(16)),
		Issuer:       cert.Issuer.CommonName,
		Fingerprint:  strings.ToUpper(hex.EncodeToString(fp[:])),
		NotBefore:    cert.NotBefore.UTC(),
		NotAfter:     cert.NotAfter.UTC(),
		PEM:          string(applesim.PEM(der)),
	}
}

func keyDER(tb testing.TB, key *rsa.PrivateKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("marshal key: %v", err)
	}
	return der
}

// newPending makes a pending key, with a real CSR, for key.
func newPending(tb testing.TB, key *rsa.PrivateKey, at time.Time) pushcert.PendingKey {
	tb.Helper()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "pushcert"}}, key)
	if err != nil {
		tb.Fatalf("create csr: %v", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		tb.Fatalf("marshal public key: %v", err)
	}
	h := sha256.Sum256(spki)
	return pushcert.PendingKey{
		ID:            guid.New(),
		CreatedAt:     at,
		CreatedBy:     admin,
		KeyDER:        keyDER(tb, key),
		CSRDER:        csr,
		Request:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})),
		PublicKeyHash: hex.EncodeToString(h[:]),
	}
}

func csrEvent(k pushcert.PendingKey) pushcert.Event {
	return pushcert.Event{At: k.CreatedAt, Kind: pushcert.EventCSRGenerated, Actor: k.CreatedBy, Detail: "pending key " + k.ID}
}

func addPending(tb testing.TB, db *DB, key *rsa.PrivateKey, at time.Time) pushcert.PendingKey {
	tb.Helper()
	k := newPending(tb, key, at)
	if err := db.AddPendingKey(context.Background(), k, csrEvent(k)); err != nil {
		tb.Fatalf("AddPendingKey: %v", err)
	}
	return k
}

func activation(version int64, cert pushcert.Certificate, pendingID string, at time.Time) pushcert.Activation {
	return pushcert.Activation{
		ExpectVersion: version,
		AppleID:       "it@example.com",
		Certificate:   cert,
		PendingID:     pendingID,
		At:            at,
		Event: pushcert.Event{
			At: at, Kind: pushcert.EventUploadSucceeded, Actor: admin,
			Serial: cert.SerialNumber, Topic: cert.Topic, NotAfter: cert.NotAfter,
		},
	}
}

// activateNew stores a pending key for key and activates a certificate
// issued for it with topic.
func activateNew(tb testing.TB, db *DB, key *rsa.PrivateKey, topic string) (pushcert.State, pushcert.Certificate) {
	tb.Helper()
	f := fixtures(tb)
	k := addPending(tb, db, key, testNow())
	cert := issue(tb, f.ca, key, topic)
	st, err := db.Activate(context.Background(), activation(0, cert, k.ID, testNow()))
	if err != nil {
		tb.Fatalf("Activate: %v", err)
	}
	return st, cert
}

func mustState(tb testing.TB, db *DB) pushcert.State {
	tb.Helper()
	st, err := db.State(context.Background())
	if err != nil {
		tb.Fatalf("State: %v", err)
	}
	return st
}

func mustPending(tb testing.TB, db *DB, since time.Time) []pushcert.PendingKey {
	tb.Helper()
	ks, err := db.PendingKeys(context.Background(), since)
	if err != nil {
		tb.Fatalf("PendingKeys: %v", err)
	}
	return ks
}

func mustEvents(tb testing.TB, db *DB) []pushcert.Event {
	tb.Helper()
	es, err := db.Events(context.Background(), 0)
	if err != nil {
		tb.Fatalf("Events: %v", err)
	}
	return es
}

func mustActiveKey(tb testing.TB, db *DB) []byte {
	tb.Helper()
	k, err := db.ActiveKey(context.Background())
	if err != nil {
		tb.Fatalf("ActiveKey: %v", err)
	}
	return k
}

// historyRow is a row of certificate_history with its key decrypted.
type historyRow struct {
	ID         string
	ReplacedAt time.Time
	AppleID    string
	Cert       pushcert.Certificate
	KeyDER     []byte
}

// history returns the certificate history, oldest first.
func (db *DB) history(ctx context.Context) ([]historyRow, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT id, replaced_at, apple_id, topic, common_name, serial, issuer, fingerprint,
		not_before, not_after, cert_pem, key_ciphertext, key_id FROM certificate_history ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hs []historyRow
	for rows.Next() {
		var h historyRow
		var ct []byte
		var keyID string
		c := &h.Cert
		if err := rows.Scan(&h.ID, scanTime{&h.ReplacedAt}, &h.AppleID, &c.Topic, &c.CommonName, &c.SerialNumber, &c.Issuer,
			&c.Fingerprint, scanTime{&c.NotBefore}, scanTime{&c.NotAfter}, &c.PEM, &ct, &keyID); err != nil {
			return nil, err
		}
		if h.KeyDER, err = db.keys.decrypt(ct, keyID, aadHistory(h.ID)); err != nil {
			return nil, fmt.Errorf("history %s: %w", h.ID, err)
		}
		hs = append(hs, h)
	}
	return hs, rows.Err()
}

func mustHistory(tb testing.TB, db *DB) []historyRow {
	tb.Helper()
	hs, err := db.history(context.Background())
	if err != nil {
		tb.Fatalf("history: %v", err)
	}
	return hs
}

// count returns the result of a COUNT(*) query.
func count(tb testing.TB, db *DB, query string) int {
	tb.Helper()
	var n int
	if err := db.sql.QueryRowContext(context.Background(), query).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// snapshot is everything a write may change.
type snapshot struct {
	State        pushcert.State
	ActiveKey    []byte
	Pending      []pushcert.PendingKey
	PendingRows  int
	ConsumedRows int
	Events       []pushcert.Event
	History      []historyRow
}

func takeSnapshot(tb testing.TB, db *DB) snapshot {
	tb.Helper()
	s := snapshot{
		State:        mustState(tb, db),
		Pending:      mustPending(tb, db, time.Time{}),
		PendingRows:  count(tb, db, `SELECT COUNT(*) FROM pending_keys`),
		ConsumedRows: count(tb, db, `SELECT COUNT(*) FROM pending_keys WHERE consumed_at IS NOT NULL`),
		Events:       mustEvents(tb, db),
		History:      mustHistory(tb, db),
	}
	k, err := db.ActiveKey(context.Background())
	switch {
	case errors.Is(err, pushcert.ErrNotFound):
	case err != nil:
		tb.Fatalf("ActiveKey: %v", err)
	default:
		s.ActiveKey = k
	}
	return s
}

func assertUnchanged(tb testing.TB, db *DB, before snapshot) {
	tb.Helper()
	after := takeSnapshot(tb, db)
	if !reflect.DeepEqual(after.State, before.State) {
		tb.Errorf("state: got %+v, want %+v", after.State, before.State)
	}
	if !reflect.DeepEqual(after.ActiveKey, before.ActiveKey) {
		tb.Errorf("active key changed")
	}
	if !reflect.DeepEqual(after.Pending, before.Pending) || after.PendingRows != before.PendingRows || after.ConsumedRows != before.ConsumedRows {
		tb.Errorf("pending keys: got %d listed, %d rows, %d consumed, want %d, %d, %d",
			len(after.Pending), after.PendingRows, after.ConsumedRows, len(before.Pending), before.PendingRows, before.ConsumedRows)
	}
	if !reflect.DeepEqual(after.Events, before.Events) {
		tb.Errorf("events: got %+v, want %+v", after.Events, before.Events)
	}
	if !reflect.DeepEqual(after.History, before.History) {
		tb.Errorf("history: got %d rows, want %d", len(after.History), len(before.History))
	}
	assertActiveMatchesKey(tb, db)
}

// assertActiveMatchesKey checks that the active certificate, if any, is for
// the active key.
func assertActiveMatchesKey(tb testing.TB, db *DB) {
	tb.Helper()
	st := mustState(tb, db)
	if st.Certificate == nil {
		if _, err := db.ActiveKey(context.Background()); !errors.Is(err, pushcert.ErrNotFound) {
			tb.Errorf("ActiveKey without certificate: got %v, want ErrNotFound", err)
		}
		return
	}
	if err := certMatchesKey(st.Certificate.PEM, mustActiveKey(tb, db)); err != nil {
		tb.Errorf("active certificate %s: %v", st.Certificate.SerialNumber, err)
	}
}

// certMatchesKey reports whether the PEM certificate is for the PKCS#8 key.
func certMatchesKey(certPEM string, keyDER []byte) error {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return errors.New("certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return err
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(key.(*rsa.PrivateKey).Public()) {
		return errors.New("certificate's public key does not match the key")
	}
	return nil
}

// utc is how the store returns a time.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// withoutRole is how the store returns a user.
func withoutRole(u auth.User) auth.User {
	u.Role = ""
	return u
}
