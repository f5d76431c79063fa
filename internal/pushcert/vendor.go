package pushcert

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"howett.net/plist"
)

// maxVendorRequest bounds what ParseVendorRequest reads; a real request is
// a few KiB.
const maxVendorRequest = 1 << 20

// Vendor signs CSRs as an MDM vendor, in the request format Apple's Push
// Certificates Portal accepts. Its key never leaves it.
type Vendor struct {
	cert  *x509.Certificate
	key   *rsa.PrivateKey
	chain []*x509.Certificate // after cert, in the configured order
}

// vendorRequest is the plist Apple's portal takes, base64-encoded.
type vendorRequest struct {
	PushCertRequestCSR       string `plist:"PushCertRequestCSR"`
	PushCertCertificateChain string `plist:"PushCertCertificateChain"`
	PushCertSignature        string `plist:"PushCertSignature"`
}

// NewVendor loads an MDM vendor signing identity: certPEM holds the vendor
// certificate (any further certificates in it join the chain), keyPEM its
// unencrypted RSA private key (PKCS#1 or PKCS#8), chainPEM the issuing
// certificates in order (may be empty). It refuses a key that does not
// match the certificate and a certificate that is not valid at now, the
// caller's clock (there is no default: the time is always injected).
func NewVendor(certPEM, keyPEM, chainPEM []byte, now time.Time) (*Vendor, error) {
	if now.IsZero() {
		return nil, errors.New("vendor certificate: no time given to check its validity against")
	}
	certs, err := pemCertificates(certPEM)
	if err != nil {
		return nil, fmt.Errorf("vendor certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("vendor certificate: no CERTIFICATE block in the PEM")
	}
	cert := certs[0]
	chainCerts, err := pemCertificates(chainPEM)
	if err != nil {
		return nil, fmt.Errorf("vendor certificate chain: %w", err)
	}
	if len(bytes.TrimSpace(chainPEM)) > 0 && len(chainCerts) == 0 {
		return nil, errors.New("vendor certificate chain: no CERTIFICATE block in the PEM")
	}
	if now.Before(cert.NotBefore) {
		return nil, fmt.Errorf("vendor certificate is not valid until %s", cert.NotBefore.UTC().Format(time.DateOnly))
	}
	if now.After(cert.NotAfter) {
		return nil, fmt.Errorf("vendor certificate expired on %s: renew it in the Apple Developer portal", cert.NotAfter.UTC().Format(time.DateOnly))
	}
	key, err := pemRSAKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("vendor key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("vendor key does not match the vendor certificate")
	}
	v := &Vendor{cert: cert, key: key}
	seen := map[string]bool{string(cert.Raw): true}
	for _, c := range append(certs[1:], chainCerts...) {
		if seen[string(c.Raw)] {
			continue
		}
		seen[string(c.Raw)] = true
		v.chain = append(v.chain, c)
	}
	return v, nil
}

// Certificate returns the vendor certificate.
func (v *Vendor) Certificate() *x509.Certificate { return v.cert }

// NotAfter returns when the vendor certificate expires.
func (v *Vendor) NotAfter() time.Time { return v.cert.NotAfter }

// Sign wraps a CSR in the vendor-signed request Apple's portal takes: the
// base64 of an XML plist with PushCertRequestCSR (base64 of the CSR DER),
// PushCertCertificateChain (PEM: the vendor certificate, then the chain)
// and PushCertSignature (base64 of the vendor key's RSA PKCS#1 v1.5
// SHA-256 signature over the CSR DER).
func (v *Vendor) Sign(csrDER []byte) (string, error) {
	if _, err := x509.ParseCertificateRequest(csrDER); err != nil {
		return "", fmt.Errorf("sign csr: not a certificate signing request: %w", err)
	}
	digest := sha256.Sum256(csrDER)
	sig, err := rsa.SignPKCS1v15(rand.Reader, v.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("sign csr: %w", err)
	}
	var chain bytes.Buffer
	for _, c := range append([]*x509.Certificate{v.cert}, v.chain...) {
		_ = pem.Encode(&chain, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}) // writes to a bytes.Buffer do not fail
	}
	doc, err := plist.MarshalIndent(vendorRequest{
		PushCertRequestCSR:       base64.StdEncoding.EncodeToString(csrDER),
		PushCertCertificateChain: chain.String(),
		PushCertSignature:        base64.StdEncoding.EncodeToString(sig),
	}, plist.XMLFormat, "\t")
	if err != nil {
		return "", fmt.Errorf("encode vendor request: %w", err)
	}
	return base64.StdEncoding.EncodeToString(doc), nil
}

// ParseVendorRequest reads back a request made by Vendor.Sign: it returns
// the CSR DER, the certificate chain (vendor certificate first) and the
// signature, after checking that the CSR parses and that the signature
// verifies with the vendor certificate's key.
func ParseVendorRequest(value string) (csrDER []byte, chain []*x509.Certificate, sig []byte, err error) {
	if len(value) > maxVendorRequest {
		return nil, nil, nil, errors.New("vendor request is larger than 1 MiB")
	}
	compact := stripSpace([]byte(value))
	if len(compact) == 0 {
		return nil, nil, nil, errors.New("vendor request is empty")
	}
	doc, err := decodeBase64(compact)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("vendor request is not base64: %w", err)
	}
	req, err := unmarshalVendorRequest(doc)
	if err != nil {
		return nil, nil, nil, err
	}
	if req.PushCertRequestCSR == "" || req.PushCertCertificateChain == "" || req.PushCertSignature == "" {
		return nil, nil, nil, errors.New("vendor request lacks PushCertRequestCSR, PushCertCertificateChain or PushCertSignature")
	}
	csrDER, err = decodeBase64(stripSpace([]byte(req.PushCertRequestCSR)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("vendor request csr is not base64: %w", err)
	}
	if _, err := x509.ParseCertificateRequest(csrDER); err != nil {
		return nil, nil, nil, fmt.Errorf("vendor request csr: %w", err)
	}
	sig, err = decodeBase64(stripSpace([]byte(req.PushCertSignature)))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("vendor request signature is not base64: %w", err)
	}
	chain, err = pemCertificates([]byte(req.PushCertCertificateChain))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("vendor request chain: %w", err)
	}
	if len(chain) == 0 {
		return nil, nil, nil, errors.New("vendor request chain has no certificate")
	}
	pub, ok := chain[0].PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, nil, nil, errors.New("vendor request: the vendor certificate's key is not RSA")
	}
	digest := sha256.Sum256(csrDER)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		return nil, nil, nil, fmt.Errorf("vendor request signature: %w", err)
	}
	return csrDER, chain, sig, nil
}

// unmarshalVendorRequest decodes the plist. The plist decoder re-raises
// runtime panics on some malformed input; this input comes from outside,
// so such a panic becomes an error here.
func unmarshalVendorRequest(doc []byte) (req vendorRequest, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("vendor request is not a readable property list")
		}
	}()
	if _, err := plist.Unmarshal(doc, &req); err != nil {
		return vendorRequest{}, fmt.Errorf("vendor request is not a property list: %w", err)
	}
	return req, nil
}

// pemCertificates parses every block of data as a certificate. It refuses
// blocks of another type, so a key pasted into a chain file is caught.
func pemCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", n, blockKind(b.Type))
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 && bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, errors.New("the PEM cannot be read")
	}
	return certs, nil
}

// pemRSAKey reads the first private key block of data.
func pemRSAKey(data []byte) (*rsa.PrivateKey, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PRIVATE KEY block in the PEM")
		}
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		if b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("the key is encrypted: provide it unencrypted (PKCS#1 or PKCS#8 PEM)")
		}
		// The parse errors are not wrapped: they are generic, but a key's
		// bytes must never reach a message.
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, errors.New("the private key cannot be read (want PKCS#1 or PKCS#8 RSA)")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("the key is not RSA: Apple vendor certificates use RSA keys")
		}
		return rk, nil
	}
}

// blockKind names a PEM block type for a message without echoing
// arbitrary text.
func blockKind(typ string) string {
	switch {
	case strings.Contains(typ, "PRIVATE KEY"):
		return "private key"
	case strings.Contains(typ, "CERTIFICATE REQUEST"):
		return "certificate signing request"
	default:
		return "block of another type"
	}
}
