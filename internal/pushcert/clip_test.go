package pushcert_test

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// maxStoredText is the most a text built from a certificate may take in
// the state, the history or a message: the longest refusal message with
// a clipped name in it.
const maxStoredText = 600

// TestCertificateTextsClipped uploads certificates whose topic, issuer or
// common name is hundreds of kilobytes long, and checks that nothing
// stored about them (upload failure reason, audit events, the active
// certificate's fields) is longer than maxStoredText, and that an
// oversized topic is refused rather than stored clipped.
func TestCertificateTextsClipped(t *testing.T) {
	huge := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name      string
		topic, cn string
		issuerCN  string // "" for the trusted test CA
		wantCode  string // "" when accepted
	}{
		{"700 KB topic", "com.apple.mgmt.External." + huge(700<<10), "APSP:short", "", pushcert.CodeNotMDMCertificate},
		{"300 KB issuer name", "com.apple.mgmt.External.short", "APSP:short", huge(300 << 10), pushcert.CodeUntrustedIssuer},
		{"300 KB common name", "com.apple.mgmt.External.short", "APSP:" + huge(300<<10), "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			pk := e.csr(t)
			parent, parentKey := e.ca.Cert, e.ca.Key
			if tt.issuerCN != "" {
				parentKey = otherKey(t)
				parent = parseCert(t, mustCreate(t, &x509.Certificate{
					SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: tt.issuerCN},
					NotBefore: e.clock.Now().Add(-day), NotAfter: e.clock.Now().AddDate(1, 0, 0),
					IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
				}, nil, parentKey.Public(), parentKey))
			}
			csr, err := x509.ParseCertificateRequest(pk.CSRDER)
			if err != nil {
				t.Fatal(err)
			}
			der := mustCreate(t, &x509.Certificate{
				SerialNumber: big.NewInt(3),
				Subject: pkix.Name{CommonName: tt.cn, Country: []string{"US"},
					ExtraNames: []pkix.AttributeTypeAndValue{{Type: asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}, Value: tt.topic}}},
				NotBefore: e.clock.Now().Add(-time.Hour), NotAfter: e.clock.Now().AddDate(1, 0, 0),
				KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			}, parent, csr.PublicKey, parentKey)

			_, err = e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: der})
			if got := codeOf(err); got != tt.wantCode {
				t.Fatalf("got %q (%.200v), want code %q", got, err, tt.wantCode)
			}
			if err != nil && len(err.Error()) > maxStoredText {
				t.Errorf("got a %d-byte message, want at most %d", len(err.Error()), maxStoredText)
			}
			st := e.state(t)
			texts := map[string]string{"upload failure reason": st.UploadFailureReason}
			if c := st.Certificate; c != nil {
				texts["topic"], texts["common name"], texts["issuer"], texts["serial"] = c.Topic, c.CommonName, c.Issuer, c.SerialNumber
			}
			for _, ev := range e.events(t) {
				texts[string(ev.Kind)+" detail"], texts[string(ev.Kind)+" topic"], texts[string(ev.Kind)+" serial"] = ev.Detail, ev.Topic, ev.Serial
			}
			for name, s := range texts {
				if len(s) > maxStoredText {
					t.Errorf("got a %d-byte %s (%.40q…), want at most %d bytes", len(s), name, s, maxStoredText)
				}
			}
		})
	}
}

func mustCreate(t *testing.T, tmpl, parent *x509.Certificate, pub, key any) []byte {
	t.Helper()
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	return der
}

// codeOf is the code of a validation error, "" for nil and "error" for
// any other error.
func codeOf(err error) string {
	var ve *pushcert.ValidationError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ve):
		return ve.Code
	default:
		return "error"
	}
}
