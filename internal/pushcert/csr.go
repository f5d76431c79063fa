package pushcert

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"unicode/utf8"
)

// keyBits is the size of the keys pushcert makes: Apple issues push
// certificates for RSA 2048 keys.
const keyBits = 2048

// maxNameLength is the X.509 upper bound for an organization or common name.
const maxNameLength = 64

// defaultOrganization names the CSR's subject when none is configured.
const defaultOrganization = "pushcert"

// NewKeyAndCSR makes a fresh RSA 2048 key and a PKCS#10 certificate signing
// request for it, signed with SHA256WithRSA, whose subject has
// O = organization and CN = "<organization> MDM Push". It returns the key
// as PKCS#8 DER and the CSR as DER.
func NewKeyAndCSR(organization string) (keyDER, csrDER []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	org := strings.TrimSpace(organization)
	if org == "" {
		org = defaultOrganization
	}
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{
			Organization: []string{truncate(org, maxNameLength)},
			CommonName:   truncate(org, maxNameLength-len(" MDM Push")) + " MDM Push",
		},
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	csrDER, err = x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create csr: %w", err)
	}
	keyDER, err = x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return keyDER, csrDER, nil
}

// PublicKeyHash returns the hex SHA-256 of pub's SubjectPublicKeyInfo DER,
// the PendingKey.PublicKeyHash a certificate's key is looked up by.
func PublicKeyHash(pub crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:]), nil
}

// CSRPEM encodes a certificate signing request's DER as PEM, the form an
// external signing service or Apple's portal takes.
func CSRPEM(csrDER []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
}

// truncate shortens s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.TrimSpace(s[:n])
}
