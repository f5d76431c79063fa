package pushcert_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// admin is the actor of every change the tests make.
var admin = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}

const (
	testOrg     = "Example Org"
	testAppleID = "mdm@example.com"
	day         = 24 * time.Hour
)

// RSA key generation dominates the tests' time, so the authorities are made
// once per test binary; each test still gets its own store and keys.
var (
	appleCA   = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA(applesim.AppleCAName, testclock.Now) })
	foreignCA = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA("Example Push CA", testclock.Now) })
	spareKey  = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })
)

func mustCA(t testing.TB, f func() (*applesim.CA, error)) *applesim.CA {
	t.Helper()
	ca, err := f()
	if err != nil {
		t.Fatalf("make ca: %v", err)
	}
	return ca
}

// otherKey returns an RSA key pushcert did not make.
func otherKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := spareKey()
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return k
}

// env is a service over a real SQLite store on t.TempDir().
type env struct {
	svc   *pushcert.Service
	db    *store.DB
	clock *testclock.Clock
	ca    *applesim.CA
}

func newEnv(t testing.TB, configure func(*pushcert.Config)) *env {
	t.Helper()
	ctx := context.Background()
	kr, err := store.NewKeyring("test key-encryption secret, long enough")
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p.db"), kr)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	clk := testclock.New(t)
	cfg := testConfig(t, clk.Now)
	if configure != nil {
		configure(&cfg)
	}
	return &env{svc: pushcert.NewService(db, cfg), db: db, clock: clk, ca: mustCA(t, appleCA)}
}

// testConfig is the service configuration of the tests: the test Apple CA
// is trusted explicitly, as pushcert trusts no CA by its name.
func testConfig(t testing.TB, now func() time.Time) pushcert.Config {
	t.Helper()
	return pushcert.Config{Organization: testOrg, Now: now, TrustRoots: mustCA(t, appleCA).Pool()}
}

func (e *env) state(t testing.TB) pushcert.State {
	t.Helper()
	st, err := e.svc.State(context.Background())
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return st
}

// activeKey returns the stored active key, nil when there is none.
func (e *env) activeKey(t testing.TB) []byte {
	t.Helper()
	k, err := e.db.ActiveKey(context.Background())
	if errors.Is(err, pushcert.ErrNotFound) {
		return nil
	}
	if err != nil {
		t.Fatalf("ActiveKey: %v", err)
	}
	return k
}

func (e *env) pendingCount(t testing.TB) int {
	t.Helper()
	keys, err := e.db.PendingKeys(context.Background(), time.Time{})
	if err != nil {
		t.Fatalf("PendingKeys: %v", err)
	}
	return len(keys)
}

func (e *env) events(t testing.TB) []pushcert.Event {
	t.Helper()
	ev, err := e.svc.History(context.Background(), 1000)
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	return ev
}

func (e *env) csr(t testing.TB) pushcert.PendingKey {
	t.Helper()
	pk, err := e.svc.GenerateCSR(context.Background(), admin)
	if err != nil {
		t.Fatalf("GenerateCSR: %v", err)
	}
	return pk
}

// issue has the Apple CA issue a push certificate for the CSR; zero
// validity means from an hour before the clock for a year.
func (e *env) issue(t testing.TB, csrDER []byte, req applesim.Request) []byte {
	t.Helper()
	return issueWith(t, e.ca, e.clock.Now(), csrDER, req)
}

func issueWith(t testing.TB, ca *applesim.CA, now time.Time, csrDER []byte, req applesim.Request) []byte {
	t.Helper()
	if req.NotBefore.IsZero() {
		req.NotBefore = now.Add(-time.Hour)
	}
	if req.NotAfter.IsZero() {
		req.NotAfter = req.NotBefore.AddDate(1, 0, 0)
	}
	der, err := ca.IssueForCSR(csrDER, req)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return der
}

// issueForKey issues a push certificate for a public key directly.
func issueForKey(t testing.TB, ca *applesim.CA, now time.Time, pub crypto.PublicKey, req applesim.Request) []byte {
	t.Helper()
	req.PublicKey = pub
	if req.NotBefore.IsZero() {
		req.NotBefore = now.Add(-time.Hour)
	}
	if req.NotAfter.IsZero() {
		req.NotAfter = req.NotBefore.AddDate(1, 0, 0)
	}
	der, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return der
}

// activate makes a first certificate active (topic as given, "" for a new
// one) and returns its DER.
func (e *env) activate(t testing.TB, topic string) []byte {
	t.Helper()
	pk := e.csr(t)
	der := e.issue(t, pk.CSRDER, applesim.Request{Topic: topic})
	if _, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: applesim.PEM(der)}); err != nil {
		t.Fatalf("activate first certificate: %v", err)
	}
	return der
}

func parseCert(t testing.TB, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return c
}

// publicOf returns the public key of a PKCS#8 private key.
func publicOf(t testing.TB, keyDER []byte) crypto.PublicKey {
	t.Helper()
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		t.Fatalf("parse key: %v", err)
	}
	return k.(crypto.Signer).Public()
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// vendorIdentity is an MDM vendor certificate and key with its chain
// (intermediate, root), shaped like Apple's developer-issued ones.
type vendorIdentity struct {
	certPEM, keyPEM, chainPEM []byte
	cert, inter, root         *x509.Certificate
}

type authority struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

var vendorAuthorities = sync.OnceValues(func() ([2]authority, error) {
	var out [2]authority
	rootKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return out, err
	}
	interKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return out, err
	}
	now := testclock.Now()
	root, err := makeCert(&x509.Certificate{
		Subject:   pkix.Name{CommonName: "Test Apple Root CA", Organization: []string{"Apple Inc."}},
		NotBefore: now.Add(-day), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, &rootKey.PublicKey, rootKey)
	if err != nil {
		return out, err
	}
	inter, err := makeCert(&x509.Certificate{
		Subject:   pkix.Name{CommonName: "Test Apple Worldwide Developer Relations Certification Authority", Organization: []string{"Apple Inc."}},
		NotBefore: now.Add(-day), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return out, err
	}
	out[0] = authority{root, rootKey}
	out[1] = authority{inter, interKey}
	return out, nil
})

var serials sync.Mutex
var lastSerial int64 = 1000

func makeCert(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	serials.Lock()
	lastSerial++
	tmpl.SerialNumber = big.NewInt(lastSerial)
	serials.Unlock()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// newVendorIdentity makes a vendor certificate valid from notBefore to
// notAfter, for the shared spare key.
func newVendorIdentity(t testing.TB, notBefore, notAfter time.Time) vendorIdentity {
	t.Helper()
	auths, err := vendorAuthorities()
	if err != nil {
		t.Fatalf("make vendor authorities: %v", err)
	}
	root, inter := auths[0], auths[1]
	key := otherKey(t)
	cert, err := makeCert(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "MDM Vendor: Example Corp", Organization: []string{"Example Corp"}, Country: []string{"US"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, inter.cert, &key.PublicKey, inter.key)
	if err != nil {
		t.Fatalf("make vendor certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("marshal vendor key: %v", err)
	}
	chain := append(pemBlock("CERTIFICATE", inter.cert.Raw), pemBlock("CERTIFICATE", root.cert.Raw)...)
	return vendorIdentity{
		certPEM:  pemBlock("CERTIFICATE", cert.Raw),
		keyPEM:   pemBlock("PRIVATE KEY", keyDER),
		chainPEM: chain,
		cert:     cert,
		inter:    inter.cert,
		root:     root.cert,
	}
}

// pkcs12Bundle builds a real, unencrypted PKCS#12 (RFC 7292) PFX holding a
// certificate bag and a key bag, like `openssl pkcs12 -export -nomac
// -keypbe NONE -certpbe NONE` writes.
func pkcs12Bundle(t testing.TB, certDER, keyDER []byte) []byte {
	t.Helper()
	type contentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue // [0] EXPLICIT
	}
	type certBag struct {
		ID   asn1.ObjectIdentifier
		Data []byte `asn1:"tag:0,explicit"`
	}
	type safeBag struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue // [0] EXPLICIT
	}
	type pfx struct {
		Version  int
		AuthSafe contentInfo
	}
	var (
		oidData            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
		oidKeyBag          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
		oidCertBag         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
		oidX509Certificate = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	)
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("asn1: %v", err)
		}
		return b
	}
	// encoding/asn1 writes a RawValue as is, ignoring field tags, so the
	// explicit [0] wrappers are built by hand.
	explicit0 := func(inner []byte) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
	}
	cb := must(asn1.Marshal(certBag{ID: oidX509Certificate, Data: certDER}))
	safeContents := must(asn1.Marshal([]safeBag{
		{ID: oidCertBag, Value: explicit0(cb)},
		{ID: oidKeyBag, Value: explicit0(keyDER)},
	}))
	dataInfo := func(content []byte) contentInfo {
		return contentInfo{ContentType: oidData, Content: explicit0(must(asn1.Marshal(content)))}
	}
	authSafe := must(asn1.Marshal([]contentInfo{dataInfo(safeContents)}))
	return must(asn1.Marshal(pfx{Version: 3, AuthSafe: dataInfo(authSafe)}))
}
