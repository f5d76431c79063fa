package applesim

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/testclock"
)

func TestIssueLooksLikeApples(t *testing.T) {
	ca, err := NewCA(AppleCAName, testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	topic := NewTopic()
	der, err := ca.Issue(Request{PublicKey: &key.PublicKey, Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(ca.Cert); err != nil {
		t.Errorf("signature: %v", err)
	}
	var uid string
	for _, n := range c.Subject.Names {
		if n.Type.Equal(asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}) {
			uid, _ = n.Value.(string)
		}
	}
	uuid := strings.TrimPrefix(topic, "com.apple.mgmt.External.")
	checks := []struct{ name, got, want string }{
		{"uid", uid, topic},
		{"cn", c.Subject.CommonName, "APSP:" + uuid},
		{"country", strings.Join(c.Subject.Country, ","), "US"},
		{"issuer", c.Issuer.CommonName, AppleCAName},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("got EKU %v, want client auth", c.ExtKeyUsage)
	}
	if d := c.NotAfter.Sub(c.NotBefore); d < 364*24*time.Hour || d > 367*24*time.Hour {
		t.Errorf("got validity %v, want about a year", d)
	}
	if !key.PublicKey.Equal(c.PublicKey) {
		t.Error("certificate is not for the requested key")
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	ca, err := NewCA(DevCAName, testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadCA(ca.CertPEM(), ca.KeyPEM(), testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Error("loaded CA differs from the saved one")
	}
	if _, err := LoadCA([]byte("junk"), ca.KeyPEM(), testclock.Now); err == nil {
		t.Error("junk certificate: got nil error")
	}
}

func TestIssueForCSRChecksSignature(t *testing.T) {
	ca, err := NewCA(AppleCAName, testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.IssueForCSR([]byte("not a csr"), Request{}); err == nil {
		t.Error("garbage CSR: got nil error")
	}
	if _, err := ca.Issue(Request{}); err == nil {
		t.Error("no public key: got nil error")
	}
}
