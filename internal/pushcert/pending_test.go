package pushcert_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// countingStore records which pending-key reads the service makes.
type countingStore struct {
	*store.DB
	latest, byHash int
	hashes         []string
}

func (s *countingStore) LatestPendingKey(ctx context.Context, since time.Time) (pushcert.PendingKey, error) {
	s.latest++
	return s.DB.LatestPendingKey(ctx, since)
}

func (s *countingStore) PendingKeysByHash(ctx context.Context, hash string, since time.Time) ([]pushcert.PendingKey, error) {
	s.byHash++
	s.hashes = append(s.hashes, hash)
	return s.DB.PendingKeysByHash(ctx, hash, since)
}

// TestPendingKeyReads checks that the status page's LatestCSR and an
// upload's key match read only the pending key they need: a pending key
// that cannot be decrypted (stored under another key-encryption secret)
// stops neither, and a certificate for any CSR of the lifetime still
// matches its own key.
func TestPendingKeyReads(t *testing.T) {
	ctx := context.Background()
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "p.db")
	openWith := func(secret string) *store.DB {
		t.Helper()
		kr, err := store.NewKeyring(secret)
		if err != nil {
			t.Fatalf("NewKeyring: %v", err)
		}
		db, err := store.Open(ctx, dbURL, kr)
		if err != nil {
			t.Fatalf("store.Open: %v", err)
		}
		return db
	}
	clk := testclock.New(t)

	// A pending key this store cannot read, stored first.
	other := openWith("another key-encryption secret, long enough")
	keyDER, csrDER, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatalf("parse csr: %v", err)
	}
	hash, err := pushcert.PublicKeyHash(csr.PublicKey)
	if err != nil {
		t.Fatalf("PublicKeyHash: %v", err)
	}
	unreadable := pushcert.PendingKey{ID: "unreadable", CreatedAt: clk.Now(), CreatedBy: admin, KeyDER: keyDER,
		CSRDER: csrDER, Request: pushcert.CSRPEM(csrDER), PublicKeyHash: hash}
	if err := other.AddPendingKey(ctx, unreadable, pushcert.Event{At: clk.Now(), Kind: pushcert.EventCSRGenerated, Actor: admin}); err != nil {
		t.Fatalf("AddPendingKey: %v", err)
	}
	_ = other.Close()

	db := openWith("test key-encryption secret, long enough")
	t.Cleanup(func() { _ = db.Close() })
	st := &countingStore{DB: db}
	svc := pushcert.NewService(st, testConfig(t, clk.Now))
	e := &env{svc: svc, db: db, clock: clk, ca: mustCA(t, appleCA)}

	var csrs []pushcert.PendingKey
	for range 3 {
		clk.Advance(time.Minute)
		csrs = append(csrs, e.csr(t))
	}
	latest, err := svc.LatestCSR(ctx)
	if err != nil || latest.ID != csrs[2].ID || latest.KeyDER != nil || latest.Request != csrs[2].Request {
		t.Errorf("LatestCSR: got %s (key %d bytes, err %v), want %s without its key", latest.ID, len(latest.KeyDER), err, csrs[2].ID)
	}
	if st.latest != 1 {
		t.Errorf("LatestCSR: got %d LatestPendingKey reads, want 1", st.latest)
	}

	// A certificate for the first of the three CSRs: only its key is read.
	der := e.issue(t, csrs[0].CSRDER, applesim.Request{})
	got, err := svc.Update(ctx, pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: applesim.PEM(der)})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got.Certificate == nil || !bytes.Equal(parseCert(t, der).Raw, mustDecodePEM(t, got.Certificate.PEM)) {
		t.Errorf("got active certificate %+v, want the uploaded one", got.Certificate)
	}
	if st.byHash != 1 || st.hashes[0] != csrs[0].PublicKeyHash {
		t.Errorf("got %d lookups by hash %q, want 1 for %s", st.byHash, st.hashes, csrs[0].PublicKeyHash)
	}
	active, err := db.ActiveKey(ctx)
	if err != nil {
		t.Fatalf("ActiveKey: %v", err)
	}
	if pub := publicOf(t, active); !parseCert(t, der).PublicKey.(*rsa.PublicKey).Equal(pub) {
		t.Errorf("got an active key that is not the certificate's")
	}

	// A certificate for the unreadable key is an error the store reports,
	// not a match and not a refusal recorded against the active certificate.
	before := e.state(t)
	der = e.issue(t, unreadable.CSRDER, applesim.Request{Topic: got.Certificate.Topic, NotAfter: clk.Now().AddDate(2, 0, 0)})
	_, err = svc.Update(ctx, pushcert.Update{Actor: admin, Certificate: der})
	var ve *pushcert.ValidationError
	if err == nil || errors.As(err, &ve) || !errors.Is(err, store.ErrSecretMismatch) {
		t.Errorf("upload for the unreadable key: got %v, want ErrSecretMismatch", err)
	}
	if after := e.state(t); after.Version != before.Version || after.Certificate.SerialNumber != before.Certificate.SerialNumber {
		t.Errorf("after the failed upload: got version %d serial %s, want %d %s unchanged",
			after.Version, after.Certificate.SerialNumber, before.Version, before.Certificate.SerialNumber)
	}
}

func mustDecodePEM(t testing.TB, s string) []byte {
	t.Helper()
	c, err := pushcert.ParseCertificate([]byte(s))
	if err != nil {
		t.Fatalf("parse active certificate: %v", err)
	}
	return c.Raw
}
