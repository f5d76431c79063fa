package target

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

// testCA plays Apple for every test of the package.
var testCA = sync.OnceValues(func() (*applesim.CA, error) {
	return applesim.NewCA(applesim.AppleCAName, testclock.Now)
})

// The kinds of key a test pair can have.
const (
	rsaKey   = "rsa"
	ecdsaKey = "ecdsa"
)

// newPair issues a push certificate for topic ("" for a new one) over a
// new key of the given kind, as pushcert would hold it.
func newPair(t *testing.T, topic, kind string) Pair {
	t.Helper()
	key := newKey(t, kind)
	return pairFor(t, topic, key, key)
}

// pairFor issues a certificate for certKey's public key and pairs it with
// key; the two differ in a mismatched pair.
func pairFor(t *testing.T, topic string, certKey, key crypto.Signer) Pair {
	t.Helper()
	ca, err := testCA()
	if err != nil {
		t.Fatal(err)
	}
	der, err := ca.Issue(applesim.Request{PublicKey: certKey.Public(), Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return Pair{Certificate: pushcert.Describe(cert), KeyDER: keyDER}
}

func newKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var (
		key crypto.Signer
		err error
	)
	switch kind {
	case rsaKey:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	case ecdsaKey:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// parseStored reads a certificate and a key as a target wrote them, checks
// that they are a pair, and returns the certificate and the key's PEM
// block type.
func parseStored(t *testing.T, certPEM, keyPEM []byte) (*x509.Certificate, crypto.PublicKey, string) {
	t.Helper()
	cb, rest := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("got certificate file %q, want one CERTIFICATE block", certPEM)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	kb, rest := pem.Decode(keyPEM)
	if kb == nil || len(strings.TrimSpace(string(rest))) != 0 {
		t.Fatalf("got a key file that is not one PEM block")
	}
	var key crypto.Signer
	switch kb.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(kb.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(kb.Bytes)
	case "PRIVATE KEY":
		var k any
		k, err = x509.ParsePKCS8PrivateKey(kb.Bytes)
		key, _ = k.(crypto.Signer)
	default:
		t.Fatalf("got key block %q, want a private key", kb.Type)
	}
	if err != nil {
		t.Fatalf("parse %s: %v", kb.Type, err)
	}
	pub := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !pub.Equal(key.Public()) {
		t.Fatal("got a certificate and key that are not a pair")
	}
	return cert, key.Public(), kb.Type
}

// samePublicKey reports whether p's key has the public key pub.
func samePublicKey(t *testing.T, p Pair, pub crypto.PublicKey) bool {
	t.Helper()
	k, err := x509.ParsePKCS8PrivateKey(p.KeyDER)
	if err != nil {
		t.Fatal(err)
	}
	return k.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub)
}

// asError returns err as an *Error, failing the test if it is not one.
func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	return e
}

// wantMessage checks that err is an *Error whose Message holds want.
func wantMessage(t *testing.T, err error, want string) *Error {
	t.Helper()
	e := asError(t, err)
	if !strings.Contains(e.Message, want) {
		t.Errorf("got message %q, want it to hold %q", e.Message, want)
	}
	return e
}

// getenv is a fake environment.
func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// confirmTopic answers as NanoMDM does when it stored a pair: 200 with the
// topic of the certificate in the PEM body (MicroMDM's JSON body gets {}).
func confirmTopic(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	b, _ := pem.Decode(body)
	if b == nil {
		_, _ = w.Write([]byte(`{}`))
		return
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"topic": pushcert.Describe(c).Topic})
}
