package pushcert_test

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/pushcert"
)

func TestNewKeyAndCSR(t *testing.T) {
	long := strings.Repeat("Ünïcode Org ", 10)
	tests := []struct {
		name    string
		org     string
		wantOrg string
		wantCN  string
	}{
		{"organization", "Example Org", "Example Org", "Example Org MDM Push"},
		{"surrounding spaces trimmed", "  Example Org \n", "Example Org", "Example Org MDM Push"},
		{"no organization", "", "pushcert", "pushcert MDM Push"},
		{"long organization cut to the X.509 limit", long, "Ünïcode Org Ünïcode Org Ünïcode Org Ünïcode Org Ünïcod", "Ünïcode Org Ünïcode Org Ünïcode Org Ünïcode Org MDM Push"},
		{"cut between characters", strings.Repeat("é", 40), strings.Repeat("é", 32), strings.Repeat("é", 27) + " MDM Push"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keyDER, csrDER, err := pushcert.NewKeyAndCSR(tt.org)
			if err != nil {
				t.Fatalf("NewKeyAndCSR: %v", err)
			}
			csr, err := x509.ParseCertificateRequest(csrDER)
			if err != nil {
				t.Fatalf("parse csr: %v", err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("got csr signature error %v, want none", err)
			}
			if csr.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("got signature algorithm %v, want %v", csr.SignatureAlgorithm, x509.SHA256WithRSA)
			}
			if got := strings.Join(csr.Subject.Organization, "|"); got != tt.wantOrg {
				t.Errorf("got O %q, want %q", got, tt.wantOrg)
			}
			if csr.Subject.CommonName != tt.wantCN {
				t.Errorf("got CN %q, want %q", csr.Subject.CommonName, tt.wantCN)
			}
			if len(csr.Subject.CommonName) > 64 || len(tt.wantOrg) > 64 {
				t.Errorf("got CN of %d bytes, O of %d, want at most 64", len(csr.Subject.CommonName), len(tt.wantOrg))
			}
			key, err := x509.ParsePKCS8PrivateKey(keyDER)
			if err != nil {
				t.Fatalf("parse key: %v", err)
			}
			rk, ok := key.(*rsa.PrivateKey)
			if !ok {
				t.Fatalf("got key %T, want *rsa.PrivateKey", key)
			}
			if rk.N.BitLen() != 2048 {
				t.Errorf("got %d-bit key, want 2048", rk.N.BitLen())
			}
			if !rk.PublicKey.Equal(csr.PublicKey) {
				t.Errorf("got a csr for another key, want the new key's")
			}
		})
	}
}

func TestNewKeyAndCSRFresh(t *testing.T) {
	k1, _, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	k2, _, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	if string(k1) == string(k2) {
		t.Errorf("got the same key twice, want a fresh one each call")
	}
}

func TestPublicKeyHash(t *testing.T) {
	key := otherKey(t)
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	sum := sha256.Sum256(spki)
	got, err := pushcert.PublicKeyHash(&key.PublicKey)
	if err != nil {
		t.Fatalf("PublicKeyHash: %v", err)
	}
	if want := hex.EncodeToString(sum[:]); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := pushcert.PublicKeyHash("not a key"); err == nil {
		t.Errorf("got no error for a non-key, want one")
	}
}

func TestCSRPEM(t *testing.T) {
	_, csrDER, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	b, rest := pem.Decode([]byte(pushcert.CSRPEM(csrDER)))
	if b == nil || b.Type != "CERTIFICATE REQUEST" || string(b.Bytes) != string(csrDER) || len(rest) != 0 {
		t.Errorf("got block %v, want one CERTIFICATE REQUEST holding the CSR", b)
	}
}
