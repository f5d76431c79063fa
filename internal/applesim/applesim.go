// Package applesim plays Apple's side of the push-certificate flow: a
// certificate authority that issues MDM push certificates shaped like the
// ones Apple's Push Certificates Portal issues (subject UID
// com.apple.mgmt.External.<uuid>, CN APSP:<uuid>, C=US, client-auth EKU).
// pushcert -dev uses it to issue certificates for the pending CSR, and the
// tests use it to make real certificates. Production never trusts it.
package applesim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	"github.com/pushcert/pushcert/internal/guid"
)

// AppleCAName is the common name of the authority that issues real push
// certificates. A CA made with this name is still not Apple's: pushcert
// verifies the chain to Apple's roots, so tests that use it trust it
// explicitly (Pool, or its CertPEM in a trust bundle).
const AppleCAName = "Apple Application Integration 2 Certification Authority"

// DevCAName is the name of the authority pushcert -dev uses. It is not
// Apple's, so a production configuration refuses what it issues.
const DevCAName = "pushcert Development Push CA (not Apple)"

var (
	oidUID              = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}
	oidApplePushProduct = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 6, 3, 2}
)

// CA issues push certificates.
type CA struct {
	Cert *x509.Certificate
	Key  *rsa.PrivateKey
	// Now is the clock a Request's default validity is counted from.
	Now func() time.Time
}

// NewCA makes a self-signed authority with the given common name, valid
// from a day before now() for ten years. It uses a 2048-bit RSA key, as
// Apple's does. now is also the CA's Now; nil means time.Now.
func NewCA(name string, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate ca key: %w", err)
	}
	start := now()
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject: pkix.Name{
			CommonName:         name,
			OrganizationalUnit: []string{"Apple Certification Authority"},
			Organization:       []string{"Apple Inc."},
			Country:            []string{"US"},
		},
		NotBefore:             start.Add(-24 * time.Hour),
		NotAfter:              start.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, Now: now}, nil
}

// LoadCA builds a CA from a PEM certificate and PEM private key (PKCS#1 or
// PKCS#8). now is the CA's Now; nil means time.Now.
func LoadCA(certPEM, keyPEM []byte, now func() time.Time) (*CA, error) {
	if now == nil {
		now = time.Now
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil {
		return nil, fmt.Errorf("ca certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse ca certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, fmt.Errorf("ca key is not PEM")
	}
	var key *rsa.PrivateKey
	if k, err := x509.ParsePKCS1PrivateKey(kb.Bytes); err == nil {
		key = k
	} else if k8, err8 := x509.ParsePKCS8PrivateKey(kb.Bytes); err8 == nil {
		rk, ok := k8.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("ca key is not RSA")
		}
		key = rk
	} else {
		return nil, fmt.Errorf("parse ca key: %w", err8)
	}
	return &CA{Cert: cert, Key: key, Now: now}, nil
}

// CertPEM returns the CA certificate as PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a certificate pool holding only the CA certificate, for
// pushcert.Config.TrustRoots.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// NewIntermediate makes an authority with the given common name signed by
// ca, valid as long as ca, that issues push certificates as ca does.
func (ca *CA) NewIntermediate(name string) (*CA, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generate intermediate key: %w", err)
	}
	subject := ca.Cert.Subject // the issuer's organization, unit and country
	subject.CommonName, subject.Names, subject.ExtraNames = name, nil, nil
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               subject,
		NotBefore:             ca.Cert.NotBefore,
		NotAfter:              ca.Cert.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("create intermediate certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse intermediate certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, Now: ca.Now}, nil
}

// KeyPEM returns the CA key as PKCS#8 PEM.
func (ca *CA) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		panic(err) // an RSA key always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// Request describes a certificate to issue. Zero fields get defaults: a new
// random topic, valid from an hour before the CA's Now for one year.
type Request struct {
	PublicKey crypto.PublicKey
	// Topic is the full subject UID. Empty means a new
	// com.apple.mgmt.External.<uuid>; use NoTopic for a certificate with none.
	Topic     string
	NotBefore time.Time
	NotAfter  time.Time
}

// NoTopic asks Issue for a certificate without a UID attribute.
const NoTopic = "-"

// NewTopic returns a fresh com.apple.mgmt.External.<uuid> topic.
func NewTopic() string {
	return "com.apple.mgmt.External." + guid.New()
}

// Issue signs a push certificate for the request and returns its DER.
func (ca *CA) Issue(req Request) ([]byte, error) {
	if req.PublicKey == nil {
		return nil, fmt.Errorf("issue: no public key")
	}
	topic := req.Topic
	if topic == "" {
		topic = NewTopic()
	}
	notBefore, notAfter := req.NotBefore, req.NotAfter
	if notBefore.IsZero() {
		now := ca.Now
		if now == nil {
			now = time.Now
		}
		notBefore = now().Add(-time.Hour)
	}
	if notAfter.IsZero() {
		notAfter = notBefore.AddDate(1, 0, 0)
	}
	subject := pkix.Name{Country: []string{"US"}}
	if topic != NoTopic {
		uuid := topic
		if i := lastDot(topic); i >= 0 {
			uuid = topic[i+1:]
		}
		subject.CommonName = "APSP:" + uuid
		subject.ExtraNames = []pkix.AttributeTypeAndValue{{Type: oidUID, Value: topic}}
	} else {
		subject.CommonName = "APSP:" + guid.New()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		ExtraExtensions: []pkix.Extension{
			{Id: oidApplePushProduct, Value: []byte{0x05, 0x00}},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate: %w", err)
	}
	return der, nil
}

// IssueForCSR checks the CSR's signature and issues a certificate for its key.
func (ca *CA) IssueForCSR(csrDER []byte, req Request) ([]byte, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("parse csr: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr signature: %w", err)
	}
	req.PublicKey = csr.PublicKey
	return ca.Issue(req)
}

// PEM encodes a certificate's DER as PEM.
func PEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n.Add(n, big.NewInt(1))
}
