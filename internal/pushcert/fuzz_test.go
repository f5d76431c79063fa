package pushcert_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

func FuzzParseCertificate(f *testing.F) {
	m := newMaterial(f)
	f.Add(pemBlock("CERTIFICATE", m.certDER))
	f.Add(m.certDER)
	f.Add([]byte(base64.StdEncoding.EncodeToString(m.certDER)))
	f.Add([]byte(wrapLines(base64.RawURLEncoding.EncodeToString(m.certDER), 64)))
	f.Add([]byte(base64.StdEncoding.EncodeToString(pemBlock("CERTIFICATE", m.certDER))))
	f.Add(append(pemBlock("PRIVATE KEY", m.keyDER), pemBlock("CERTIFICATE", m.certDER)...))
	f.Add(pemBlock("PRIVATE KEY", m.keyDER))
	f.Add(m.keyDER)
	f.Add(pemBlock("CERTIFICATE REQUEST", m.csrDER))
	f.Add(m.csrDER)
	f.Add(pkcs12Bundle(f, m.certDER, m.keyDER))
	f.Add([]byte("Certificate value"))
	f.Add([]byte(""))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x03, 0x30, 0x80})
	if fixture, err := os.ReadFile("../../../shared/fixtures/apple-issued-push-2021.pem"); err == nil {
		f.Add(fixture)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := pushcert.ParseCertificate(data)
		if err != nil {
			var ve *pushcert.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got error %v (%T), want *ValidationError", err, err)
			}
			if c != nil {
				t.Fatalf("got a certificate with an error, want none")
			}
			if ve.Field != "certificate" || ve.Code != pushcert.CodeInvalidCertificate || ve.Message == "" {
				t.Fatalf("got field %q code %q message %q, want certificate, %s and a message", ve.Field, ve.Code, ve.Message, pushcert.CodeInvalidCertificate)
			}
			if len(data) >= 24 && strings.Contains(ve.Message, string(data)) {
				t.Fatalf("got message %q quoting the input, want none", ve.Message)
			}
			return
		}
		if c == nil {
			t.Fatalf("got no certificate and no error")
		}
		d := pushcert.Describe(c)
		if len(d.Fingerprint) != 64 || d.Fingerprint != strings.ToUpper(d.Fingerprint) {
			t.Fatalf("got fingerprint %q, want 64 uppercase hex digits", d.Fingerprint)
		}
		if b, _ := pem.Decode([]byte(d.PEM)); b == nil || !bytes.Equal(b.Bytes, c.Raw) {
			t.Fatalf("got PEM that does not hold the certificate")
		}
		if d.NotAfter.Location() != time.UTC {
			t.Fatalf("got NotAfter in %v, want UTC", d.NotAfter.Location())
		}
	})
}

func FuzzVendorRequest(f *testing.F) {
	now := testclock.Start(f)
	id := newVendorIdentity(f, now.Add(-day), now.AddDate(1, 0, 0))
	v, err := pushcert.NewVendor(id.certPEM, id.keyPEM, id.chainPEM, now)
	if err != nil {
		f.Fatalf("NewVendor: %v", err)
	}
	_, csrDER, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		f.Fatalf("NewKeyAndCSR: %v", err)
	}
	signed, err := v.Sign(csrDER)
	if err != nil {
		f.Fatalf("Sign: %v", err)
	}
	doc, err := base64.StdEncoding.DecodeString(signed)
	if err != nil {
		f.Fatalf("base64: %v", err)
	}
	binary, err := plist.Marshal(map[string]string{"PushCertRequestCSR": "AA==", "PushCertCertificateChain": string(id.certPEM), "PushCertSignature": "AA=="}, plist.BinaryFormat)
	if err != nil {
		f.Fatalf("plist: %v", err)
	}
	f.Add(csrDER, signed)
	f.Add(csrDER, string(doc))
	f.Add([]byte{}, "")
	f.Add([]byte("csr"), "not base64 %%")
	f.Add(id.cert.Raw, base64.StdEncoding.EncodeToString(binary))
	f.Add(csrDER[:len(csrDER)-1], base64.StdEncoding.EncodeToString([]byte("<plist><dict><key>PushCertRequestCSR</key><data>AA</data></dict></plist>")))
	f.Add(csrDER, base64.StdEncoding.EncodeToString([]byte(`{PushCertRequestCSR = "AA=="; PushCertSignature = <00>;}`)))
	f.Fuzz(func(t *testing.T, csr []byte, value string) {
		if req, err := v.Sign(csr); err == nil {
			got, chain, sig, err := pushcert.ParseVendorRequest(req)
			if err != nil {
				t.Fatalf("ParseVendorRequest of a signed request: %v", err)
			}
			if !bytes.Equal(got, csr) {
				t.Fatalf("got a CSR back that differs from the signed one")
			}
			if len(chain) != 3 || !chain[0].Equal(id.cert) {
				t.Fatalf("got chain of %d, want the vendor's 3", len(chain))
			}
			if err := chain[0].CheckSignature(x509.SHA256WithRSA, got, sig); err != nil {
				t.Fatalf("got a signature that does not verify: %v", err)
			}
		}
		got, chain, sig, err := pushcert.ParseVendorRequest(value)
		if err != nil {
			if got != nil || chain != nil || sig != nil {
				t.Fatalf("got values with error %v, want none", err)
			}
			return
		}
		// Only a request whose signature verifies gets through.
		if len(chain) == 0 || chain[0].CheckSignature(x509.SHA256WithRSA, got, sig) != nil {
			t.Fatalf("got a request accepted whose signature does not verify")
		}
		if _, err := x509.ParseCertificateRequest(got); err != nil {
			t.Fatalf("got a request accepted whose CSR does not parse: %v", err)
		}
	})
}
