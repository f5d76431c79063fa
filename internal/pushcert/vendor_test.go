package pushcert_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"howett.net/plist"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

func TestNewVendor(t *testing.T) {
	now := testclock.Start(t)
	valid := newVendorIdentity(t, now.Add(-day), now.AddDate(1, 0, 0))
	expired := newVendorIdentity(t, now.AddDate(-2, 0, 0), now.AddDate(0, 0, -3))
	future := newVendorIdentity(t, now.Add(7*day), now.AddDate(1, 0, 0))
	auths, err := vendorAuthorities()
	if err != nil {
		t.Fatalf("vendor authorities: %v", err)
	}
	wrongKeyDER, err := x509.MarshalPKCS8PrivateKey(auths[1].key)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("ec key: %v", err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	pkcs1 := pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(otherKey(t)))

	tests := []struct {
		name                      string
		certPEM, keyPEM, chainPEM []byte
		wantErr                   string // "" for success
		wantChain                 []*x509.Certificate
	}{
		{"certificate, key and chain", valid.certPEM, valid.keyPEM, valid.chainPEM, "", []*x509.Certificate{valid.inter, valid.root}},
		{"no chain", valid.certPEM, valid.keyPEM, nil, "", nil},
		{"chain inside the certificate file", append(bytes.Clone(valid.certPEM), valid.chainPEM...), valid.keyPEM, nil, "", []*x509.Certificate{valid.inter, valid.root}},
		{"chain in both files kept once", append(bytes.Clone(valid.certPEM), valid.chainPEM...), valid.keyPEM, valid.chainPEM, "", []*x509.Certificate{valid.inter, valid.root}},
		{"PKCS#1 key", valid.certPEM, pkcs1, valid.chainPEM, "", []*x509.Certificate{valid.inter, valid.root}},
		{"key file with the certificate first", valid.certPEM, append(bytes.Clone(valid.certPEM), valid.keyPEM...), nil, "", nil},
		{"key of another certificate", valid.certPEM, pemBlock("PRIVATE KEY", wrongKeyDER), valid.chainPEM, "vendor key does not match the vendor certificate", nil},
		{"expired certificate", expired.certPEM, expired.keyPEM, expired.chainPEM, "vendor certificate expired on " + expired.cert.NotAfter.UTC().Format(time.DateOnly), nil},
		{"certificate not yet valid", future.certPEM, future.keyPEM, future.chainPEM, "vendor certificate is not valid until " + future.cert.NotBefore.UTC().Format(time.DateOnly), nil},
		{"certificate file without PEM", []byte("not a certificate"), valid.keyPEM, nil, "vendor certificate: no CERTIFICATE block in the PEM", nil},
		{"damaged certificate PEM", bytes.Replace(valid.certPEM, []byte("\n"), []byte("\n%%"), 2), valid.keyPEM, nil, "vendor certificate: the PEM cannot be read", nil},
		{"key file holding the certificate only", valid.certPEM, valid.certPEM, nil, "vendor key: no PRIVATE KEY block in the PEM", nil},
		{"encrypted key", valid.certPEM, pemBlock("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x00}), nil, "vendor key: the key is encrypted", nil},
		{"EC key", valid.certPEM, pemBlock("PRIVATE KEY", ecDER), nil, "vendor key: the key is not RSA", nil},
		{"damaged key", valid.certPEM, pemBlock("PRIVATE KEY", []byte("0123456789abcdef0123456789")), nil, "vendor key: the private key cannot be read", nil},
		{"private key in the chain file", valid.certPEM, valid.keyPEM, valid.keyPEM, "vendor certificate chain: PEM block 1 is a private key, not a CERTIFICATE", nil},
		{"chain file without PEM", valid.certPEM, valid.keyPEM, []byte("chain"), "vendor certificate chain: no CERTIFICATE block in the PEM", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := pushcert.NewVendor(tt.certPEM, tt.keyPEM, tt.chainPEM, now)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one starting %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("got a multi-line error %q, want one line", err)
				}
				if v != nil {
					t.Errorf("got a vendor, want none")
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if !v.Certificate().Equal(valid.cert) {
				t.Errorf("got vendor certificate %q, want %q", v.Certificate().Subject, valid.cert.Subject)
			}
			if !v.NotAfter().Equal(valid.cert.NotAfter) {
				t.Errorf("got NotAfter %v, want %v", v.NotAfter(), valid.cert.NotAfter)
			}
			_, csrDER, err := pushcert.NewKeyAndCSR(testOrg)
			if err != nil {
				t.Fatalf("NewKeyAndCSR: %v", err)
			}
			req, err := v.Sign(csrDER)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			_, chain, _, err := pushcert.ParseVendorRequest(req)
			if err != nil {
				t.Fatalf("ParseVendorRequest: %v", err)
			}
			want := append([]*x509.Certificate{valid.cert}, tt.wantChain...)
			if len(chain) != len(want) {
				t.Fatalf("got chain of %d, want %d", len(chain), len(want))
			}
			for i := range want {
				if !chain[i].Equal(want[i]) {
					t.Errorf("got chain[%d] %q, want %q", i, chain[i].Subject, want[i].Subject)
				}
			}
		})
	}
}

// TestNewVendorNeedsTime: the validity is checked against the caller's
// clock, never a wall clock read behind its back.
func TestNewVendorNeedsTime(t *testing.T) {
	now := testclock.Start(t)
	id := newVendorIdentity(t, now.Add(-day), now.AddDate(1, 0, 0))
	if _, err := pushcert.NewVendor(id.certPEM, id.keyPEM, id.chainPEM, time.Time{}); err == nil || !strings.Contains(err.Error(), "no time given") {
		t.Errorf("got %v for the zero time, want the refusal that names the missing time", err)
	}
}

func TestVendorSign(t *testing.T) {
	now := testclock.Start(t)
	id := newVendorIdentity(t, now.Add(-day), now.AddDate(1, 0, 0))
	v, err := pushcert.NewVendor(id.certPEM, id.keyPEM, id.chainPEM, now)
	if err != nil {
		t.Fatalf("NewVendor: %v", err)
	}
	_, csrDER, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	req, err := v.Sign(csrDER)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}

	// Read the request the way Apple's portal does, without the package's help.
	doc, err := base64.StdEncoding.DecodeString(req)
	if err != nil {
		t.Fatalf("request is not base64: %v", err)
	}
	if !bytes.HasPrefix(doc, []byte("<?xml")) {
		t.Errorf("got a plist starting %q, want an XML plist", doc[:min(len(doc), 10)])
	}
	var dict map[string]string
	if _, err := plist.Unmarshal(doc, &dict); err != nil {
		t.Fatalf("plist: %v", err)
	}
	if len(dict) != 3 {
		t.Errorf("got keys %v, want exactly PushCertRequestCSR, PushCertCertificateChain, PushCertSignature", dict)
	}
	gotCSR, err := base64.StdEncoding.DecodeString(dict["PushCertRequestCSR"])
	if err != nil || !bytes.Equal(gotCSR, csrDER) {
		t.Errorf("got PushCertRequestCSR that is not base64 of the CSR (err %v)", err)
	}
	wantChain := string(id.certPEM) + string(id.chainPEM)
	if got := dict["PushCertCertificateChain"]; got != wantChain {
		t.Errorf("got chain\n%s\nwant\n%s", got, wantChain)
	}
	sig, err := base64.StdEncoding.DecodeString(dict["PushCertSignature"])
	if err != nil {
		t.Fatalf("signature is not base64: %v", err)
	}
	digest := sha256.Sum256(csrDER)
	if err := rsa.VerifyPKCS1v15(id.cert.PublicKey.(*rsa.PublicKey), crypto.SHA256, digest[:], sig); err != nil {
		t.Errorf("got signature that does not verify with the vendor certificate: %v", err)
	}

	// And through ParseVendorRequest.
	gotCSR, chain, gotSig, err := pushcert.ParseVendorRequest(req)
	if err != nil {
		t.Fatalf("ParseVendorRequest: %v", err)
	}
	if !bytes.Equal(gotCSR, csrDER) || !bytes.Equal(gotSig, sig) {
		t.Errorf("got csr/signature that differ from the signed ones")
	}
	if len(chain) != 3 || !chain[0].Equal(id.cert) || !chain[1].Equal(id.inter) || !chain[2].Equal(id.root) {
		t.Errorf("got chain of %d, want vendor, intermediate, root", len(chain))
	}
}

func TestVendorSignRefusesNonCSR(t *testing.T) {
	now := testclock.Start(t)
	id := newVendorIdentity(t, now.Add(-day), now.AddDate(1, 0, 0))
	v, err := pushcert.NewVendor(id.certPEM, id.keyPEM, id.chainPEM, now)
	if err != nil {
		t.Fatalf("NewVendor: %v", err)
	}
	for _, in := range [][]byte{nil, []byte("csr"), id.cert.Raw} {
		if got, err := v.Sign(in); err == nil {
			t.Errorf("got request %q for %d bytes that are no CSR, want an error", got, len(in))
		}
	}
}

func TestParseVendorRequestRefusals(t *testing.T) {
	now := testclock.Start(t)
	id := newVendorIdentity(t, now.Add(-day), now.AddDate(1, 0, 0))
	_, csrDER, err := pushcert.NewKeyAndCSR(testOrg)
	if err != nil {
		t.Fatalf("NewKeyAndCSR: %v", err)
	}
	v, err := pushcert.NewVendor(id.certPEM, id.keyPEM, id.chainPEM, now)
	if err != nil {
		t.Fatalf("NewVendor: %v", err)
	}
	good, err := v.Sign(csrDER)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	doc, err := base64.StdEncoding.DecodeString(good)
	if err != nil {
		t.Fatalf("base64: %v", err)
	}
	var fields map[string]string
	if _, err := plist.Unmarshal(doc, &fields); err != nil {
		t.Fatalf("plist: %v", err)
	}
	encode := func(change func(m map[string]string)) string {
		m := map[string]string{}
		for k, v := range fields {
			m[k] = v
		}
		change(m)
		b, err := plist.Marshal(m, plist.XMLFormat)
		if err != nil {
			t.Fatalf("plist: %v", err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	otherSig := func(m map[string]string) {
		digest := sha256.Sum256([]byte("something else"))
		sig, err := rsa.SignPKCS1v15(rand.Reader, otherKeyFor(t), crypto.SHA256, digest[:])
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		m["PushCertSignature"] = base64.StdEncoding.EncodeToString(sig)
	}
	tests := []struct {
		name    string
		value   string
		wantErr string
	}{
		{"empty", "", "vendor request is empty"},
		{"whitespace", " \n ", "vendor request is empty"},
		{"not base64", "%%%", "vendor request is not base64"},
		{"base64 of text", base64.StdEncoding.EncodeToString([]byte("hello")), "vendor request is not a property list"},
		{"too large", strings.Repeat("A", 1<<20+1), "vendor request is larger than 1 MiB"},
		{"no signature", encode(func(m map[string]string) { delete(m, "PushCertSignature") }), "vendor request lacks"},
		{"csr not base64", encode(func(m map[string]string) { m["PushCertRequestCSR"] = "!!" }), "vendor request csr is not base64"},
		{"csr not a csr", encode(func(m map[string]string) { m["PushCertRequestCSR"] = "aGVsbG8=" }), "vendor request csr:"},
		{"chain without certificate", encode(func(m map[string]string) { m["PushCertCertificateChain"] = "none" }), "vendor request chain has no certificate"},
		{"signature by another key", encode(otherSig), "vendor request signature:"},
		{"signature for another csr", encode(func(m map[string]string) {
			_, other, err := pushcert.NewKeyAndCSR("Other Org")
			if err != nil {
				t.Fatalf("NewKeyAndCSR: %v", err)
			}
			m["PushCertRequestCSR"] = base64.StdEncoding.EncodeToString(other)
		}), "vendor request signature:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			csr, chain, sig, err := pushcert.ParseVendorRequest(tt.value)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one starting %q", err, tt.wantErr)
			}
			if csr != nil || chain != nil || sig != nil {
				t.Errorf("got csr %d bytes, chain %d, signature %d bytes, want none", len(csr), len(chain), len(sig))
			}
		})
	}
}

// otherKeyFor returns an RSA key that is not the vendor's (the vendor
// identity uses the spare key).
func otherKeyFor(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	auths, err := vendorAuthorities()
	if err != nil {
		t.Fatalf("vendor authorities: %v", err)
	}
	return auths[0].key
}
