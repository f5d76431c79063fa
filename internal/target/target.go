package target

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// The kinds of target.
const (
	KindNanoMDM  = "nanomdm"
	KindNanoHUB  = "nanohub"
	KindMicroMDM = "micromdm"
	KindFolder   = "folder"
)

// Pair is what a target receives: the active certificate and its private key.
type Pair struct {
	Certificate pushcert.Certificate // .PEM holds the certificate; the other fields describe it
	KeyDER      []byte               // the private key as PKCS#8 DER (RSA, or ECDSA)
}

// Check reports an error unless the certificate parses and its public key
// is the key's public key. The error's text is safe to show: it never
// quotes the key.
func (p Pair) Check() error {
	_, _, err := p.parse()
	return err
}

// parse returns the pair's certificate and key after checking that they
// belong together.
func (p Pair) parse() (*x509.Certificate, crypto.Signer, error) {
	cert, err := leaf(p.Certificate.PEM)
	if err != nil {
		return nil, nil, err
	}
	if len(p.KeyDER) == 0 {
		return nil, nil, errors.New("the pair has no private key")
	}
	k, err := x509.ParsePKCS8PrivateKey(p.KeyDER)
	if err != nil {
		return nil, nil, errors.New("the private key is not readable PKCS#8")
	}
	var key crypto.Signer
	switch k := k.(type) {
	case *rsa.PrivateKey:
		key = k
	case *ecdsa.PrivateKey:
		key = k
	default:
		return nil, nil, fmt.Errorf("the private key is a %T: pushcert delivers RSA and ECDSA keys only", k)
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return nil, nil, errors.New("the certificate's public key does not match the private key")
	}
	return cert, key, nil
}

// leaf returns the first certificate of a PEM bundle.
func leaf(bundle string) (*x509.Certificate, error) {
	rest := []byte(bundle)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("the pair has no PEM certificate")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, errors.New("the pair's certificate is damaged and cannot be read")
		}
		return c, nil
	}
}

// certPEM is the certificate alone, as one PEM block.
func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// The encodings of a private key in a PEM file.
const (
	// FormatPKCS1 is the traditional encoding: "RSA PRIVATE KEY" (PKCS#1)
	// for RSA, "EC PRIVATE KEY" (SEC 1) for ECDSA.
	FormatPKCS1 = "pkcs1"
	// FormatPKCS8 is "PRIVATE KEY" (PKCS#8), for any kind of key.
	FormatPKCS8 = "pkcs8"
)

// keyPEM encodes key as one PEM block in format. keyDER is the same key as
// PKCS#8, used as it is for FormatPKCS8.
func keyPEM(key crypto.Signer, keyDER []byte, format string) ([]byte, error) {
	if format == FormatPKCS8 {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, errors.New("the ECDSA key cannot be written as SEC 1")
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	return nil, fmt.Errorf("a %T cannot be written as PKCS#1", key)
}

// Target is one configured place the pair goes. Targets are safe for
// concurrent use.
type Target interface {
	// Name is the operator's name for the target: unique, [a-z0-9-], up
	// to 40 characters.
	Name() string
	// Kind is KindNanoMDM, KindNanoHUB, KindMicroMDM or KindFolder.
	Kind() string
	// Describe says where the pair goes, safe to show to every viewer: a
	// URL without user or query, or a folder's path. It never holds a
	// secret.
	Describe() string
	// Deliver checks p and puts it in place. Its failures are *Error.
	Deliver(ctx context.Context, p Pair) error
}

// Error is a failed delivery in words a person can act on.
type Error struct {
	// Message says what went wrong and, where it can, what to do. It never
	// holds a secret or key material, so it may be shown to every viewer.
	Message string
	// Err is the underlying error, for logs. It holds no secret either.
	Err error
}

// Error returns the message alone; log Err for the detail.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// fail returns an *Error with the given message and cause.
func fail(err error, format string, args ...any) *Error {
	return &Error{Message: fmt.Sprintf(format, args...), Err: err}
}

// checkPair is the start of every Deliver: a pair that does not hold
// together goes nowhere.
func checkPair(p Pair) (*x509.Certificate, crypto.Signer, error) {
	cert, key, err := p.parse()
	if err != nil {
		return nil, nil, fail(err, "the pair cannot be delivered: %v", err)
	}
	return cert, key, nil
}
