package pushcert_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
)

// The tests in this file each guard one rule of Service.Update where it
// lives, so that breaking the rule on purpose fails a test of this package
// (docs/testing.md lists the mutations they were checked against).

// outcome is what an upload must do: be refused with code, or (code "")
// become active with the key whose public half is key.
type outcome struct {
	code string
	key  crypto.PublicKey
}

// upload runs u and checks the outcome. After a refusal the active
// certificate and its key are the ones before; after an acceptance the
// uploaded certificate is active with the expected key.
func (e *env) upload(t *testing.T, u pushcert.Update, want outcome) {
	t.Helper()
	before, beforeKey := e.state(t), e.activeKey(t)
	_, err := e.svc.Update(context.Background(), u)
	after, afterKey := e.state(t), e.activeKey(t)
	if want.code != "" {
		var ve *pushcert.ValidationError
		if !errors.As(err, &ve) || ve.Code != want.code {
			t.Fatalf("got %v, want a refusal with code %s", err, want.code)
		}
		if !reflect.DeepEqual(after.Certificate, before.Certificate) || !bytes.Equal(afterKey, beforeKey) {
			t.Fatalf("got the active certificate or key changed by a refused upload, want both unchanged")
		}
		return
	}
	if err != nil {
		t.Fatalf("got %v, want the certificate accepted", err)
	}
	c, err := pushcert.ParseCertificate(u.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	if after.Certificate == nil || after.Certificate.SerialNumber != pushcert.Describe(c).SerialNumber {
		t.Fatalf("got active certificate %+v, want the uploaded one", after.Certificate)
	}
	if !publicOf(t, afterKey).(interface{ Equal(crypto.PublicKey) bool }).Equal(want.key) {
		t.Fatalf("got an active key that is not the one the certificate was issued for")
	}
}

// TestKeyMatch: a certificate becomes active only with the private key it
// was issued for, a pending key's or the active one's; any other is
// refused and the active certificate and key stay.
func TestKeyMatch(t *testing.T) {
	tests := []struct {
		name   string
		active bool
		// prepare returns the upload and its outcome; e.db may be wrapped
		// by the service it builds.
		prepare func(t *testing.T, e *env) (pushcert.Update, outcome)
	}{
		{
			name: "certificate for a pending key",
			prepare: func(t *testing.T, e *env) (pushcert.Update, outcome) {
				der := e.issue(t, e.csr(t).CSRDER, applesim.Request{})
				return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der}, outcome{key: parseCert(t, der).PublicKey}
			},
		},
		{
			name:   "renewal for a pending key",
			active: true,
			prepare: func(t *testing.T, e *env) (pushcert.Update, outcome) {
				der := e.issue(t, e.csr(t).CSRDER, applesim.Request{Topic: e.activeTopic(t), NotAfter: e.clock.Now().AddDate(1, 1, 0)})
				return pushcert.Update{Actor: admin, Certificate: der}, outcome{key: parseCert(t, der).PublicKey}
			},
		},
		{
			name:   "renewal for the active key",
			active: true,
			prepare: func(t *testing.T, e *env) (pushcert.Update, outcome) {
				pub := publicOf(t, e.activeKey(t))
				der := issueForKey(t, e.ca, e.clock.Now(), pub, applesim.Request{Topic: e.activeTopic(t), NotAfter: e.clock.Now().AddDate(1, 1, 0)})
				return pushcert.Update{Actor: admin, Certificate: der}, outcome{key: pub}
			},
		},
		{
			name: "first certificate for a key pushcert did not make",
			prepare: func(t *testing.T, e *env) (pushcert.Update, outcome) {
				e.csr(t)
				der := issueForKey(t, e.ca, e.clock.Now(), &otherKey(t).PublicKey, applesim.Request{})
				return pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der}, outcome{code: pushcert.CodeKeyMismatch}
			},
		},
		{
			// Without the key check the store would keep the active key
			// under a certificate for another key: a pair that cannot push.
			name:   "renewal for a key pushcert did not make",
			active: true,
			prepare: func(t *testing.T, e *env) (pushcert.Update, outcome) {
				e.csr(t)
				der := issueForKey(t, e.ca, e.clock.Now(), &otherKey(t).PublicKey, applesim.Request{Topic: e.activeTopic(t), NotAfter: e.clock.Now().AddDate(1, 1, 0)})
				return pushcert.Update{Actor: admin, Certificate: der}, outcome{code: pushcert.CodeKeyMismatch}
			},
		},
		{
			// A stored public-key hash only finds candidates: the key
			// itself must match, here with a pending row whose hash says
			// it does and whose key does not.
			name:   "pending key whose stored hash matches and key does not",
			active: true,
			prepare: func(t *testing.T, e *env) (pushcert.Update, outcome) {
				e.csr(t)
				wrong, err := x509.MarshalPKCS8PrivateKey(otherKey(t))
				if err != nil {
					t.Fatal(err)
				}
				pub := publicOf(t, mustNewKey(t))
				hash, err := pushcert.PublicKeyHash(pub)
				if err != nil {
					t.Fatal(err)
				}
				e.svc = pushcert.NewService(lyingHashStore{DB: e.db, hash: hash, keyDER: wrong}, testConfig(t, e.clock.Now))
				der := issueForKey(t, e.ca, e.clock.Now(), pub, applesim.Request{Topic: e.activeTopic(t), NotAfter: e.clock.Now().AddDate(1, 1, 0)})
				return pushcert.Update{Actor: admin, Certificate: der}, outcome{code: pushcert.CodeKeyMismatch}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if tt.active {
				e.activate(t, "")
				e.clock.Advance(300 * day)
			}
			u, want := tt.prepare(t, e)
			e.upload(t, u, want)
		})
	}
}

// lyingHashStore answers the pending-key lookup by hash with a row that
// carries the asked hash but keyDER, as a corrupted or tampered row would.
type lyingHashStore struct {
	*store.DB
	hash   string
	keyDER []byte
}

func (s lyingHashStore) PendingKeysByHash(ctx context.Context, hash string, since time.Time) ([]pushcert.PendingKey, error) {
	pending, err := s.DB.PendingKeysByHash(ctx, hash, since)
	if err != nil || len(pending) > 0 {
		return pending, err
	}
	latest, err := s.DB.LatestPendingKey(ctx, since)
	if err != nil {
		return nil, err
	}
	latest.PublicKeyHash, latest.KeyDER = s.hash, s.keyDER
	return []pushcert.PendingKey{latest}, nil
}

// mustNewKey returns a new PKCS#8 RSA key nobody stored.
func mustNewKey(t *testing.T) []byte {
	t.Helper()
	keyDER, _, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatal(err)
	}
	return keyDER
}

// TestValidityBoundaries: a certificate is accepted from its NotBefore to
// its NotAfter and refused a minute outside either end, whatever the time
// of day the clock stands at.
func TestValidityBoundaries(t *testing.T) {
	tests := []struct {
		name      string
		notBefore time.Duration // from now
		notAfter  time.Duration // from now
		wantCode  string
	}{
		{"expired a minute ago", -365 * day, -time.Minute, pushcert.CodeExpired},
		{"expires in a minute", -365 * day, time.Minute, ""},
		{"valid in a minute", time.Minute, 365 * day, pushcert.CodeNotYetValid},
		{"valid since a minute ago", -time.Minute, 365 * day, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			now := e.clock.Now()
			der := e.issue(t, e.csr(t).CSRDER, applesim.Request{NotBefore: now.Add(tt.notBefore), NotAfter: now.Add(tt.notAfter)})
			want := outcome{code: tt.wantCode}
			if tt.wantCode == "" {
				want.key = parseCert(t, der).PublicKey
			}
			e.upload(t, pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der}, want)
		})
	}
}
