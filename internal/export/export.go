// Package export encodes the active push certificate and its private key as
// a file an admin downloads for an MDM server pushcert cannot reach: PKCS#12
// protected by a passphrase, in a compatible or a modern encryption, or
// unencrypted PEM for scripts.
//
// The package has no HTTP: a handler parses the admin's choice with
// ParseFormat, calls Encode, and serves the File it returns.
package export

import (
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"software.sslmate.com/src/go-pkcs12"
)

// Format is how the pair is encoded.
type Format string

// The formats Encode writes. The PKCS#12 ones name their algorithms, not a
// library default, so an upgrade of the encoder cannot change what a file
// of a format is.
const (
	// PKCS12Compatible is PKCS#12 with the certificate and key encrypted
	// with 3DES (PBE-SHA1-3DES) and a SHA-1 MAC: macOS Keychain and older
	// tools read it, and so does OpenSSL 3, with or without -legacy (that
	// flag is needed only for the RC2 encryption this format avoids).
	PKCS12Compatible Format = "pkcs12-compatible"
	// PKCS12Modern is PKCS#12 with the certificate and key encrypted with
	// AES-256-CBC (PBES2, PBKDF2-HMAC-SHA-256) and a SHA-256 MAC: OpenSSL 3
	// by default, OpenSSL 1.1.1, current Windows and Java.
	PKCS12Modern Format = "pkcs12-modern"
	// PEM is the certificate followed by the unencrypted private key: an
	// RSA key as PKCS#1 ("RSA PRIVATE KEY"), any other as PKCS#8
	// ("PRIVATE KEY"). It is for scripts and takes no passphrase.
	PEM Format = "pem"
)

// Content types of the files Encode returns.
const (
	ContentTypePKCS12 = "application/x-pkcs12"
	ContentTypePEM    = "application/x-pem-file"
)

// Passphrase limits for the PKCS#12 formats, in characters.
const (
	MinPassphrase = 8
	MaxPassphrase = 1024
)

// ErrKeyMismatch means the private key is not the one the certificate was
// issued for. Nothing was encoded.
var ErrKeyMismatch = errors.New("the private key does not belong to the certificate")

// Option is one format as a form offers it.
type Option struct {
	Format      Format
	Label       string // short name for a radio button or menu
	Description string // one sentence on who opens it
}

// Formats lists the formats in the order a form offers them, each with a
// label and a plain-words description. The slice is new on every call.
func Formats() []Option {
	return []Option{
		{PKCS12Compatible, "PKCS#12, compatible",
			"Opens in macOS Keychain, older tools and OpenSSL (3DES, SHA-1); protected by your passphrase."},
		{PKCS12Modern, "PKCS#12, modern",
			"Stronger encryption for OpenSSL 3 and current Windows (AES-256, SHA-256); some older tools and macOS versions cannot open it."},
		{PEM, "PEM, unencrypted",
			"Certificate and private key as plain text for scripts; the key is not protected, so keep the file secret."},
	}
}

// ParseFormat returns the Format named by s, or an error listing the valid
// names. Every error it returns is about s, so a handler may show it.
func ParseFormat(s string) (Format, error) {
	var names []string
	for _, o := range Formats() {
		if string(o.Format) == s {
			return o.Format, nil
		}
		names = append(names, string(o.Format))
	}
	return "", fmt.Errorf("unknown export format %q: choose one of %s", clip(s), strings.Join(names, ", "))
}

// File is an encoded export.
type File struct {
	Name        string // safe as a Content-Disposition filename, e.g. push-1A2B.p12
	ContentType string
	Data        []byte
}

// PassphraseError is a passphrase Encode refuses. Its message says what to
// change, is safe to show on a page or in an API response, and never
// quotes the passphrase.
type PassphraseError struct {
	Message string
}

func (e *PassphraseError) Error() string { return e.Message }

// Encode encodes the certificate (the one CERTIFICATE block of certPEM) and
// its private key (PKCS#8 DER) as f, after checking that the key is the
// certificate's.
//
// The PKCS#12 formats need a passphrase of MinPassphrase to MaxPassphrase
// characters, used exactly as given (no trimming). PEM is never encrypted,
// so it refuses a passphrase rather than hand out an unprotected key to an
// admin who expected one.
//
// A refused passphrase is a *PassphraseError, the admin's to fix. Every
// other error (an unknown format, a certificate or key that cannot be read,
// ErrKeyMismatch) is the caller's. No error contains the passphrase or key
// material.
//
// The file is named push-<serial> with the certificate's serial number in
// uppercase hex, and .p12 or .pem.
func Encode(f Format, certPEM string, keyDER []byte, passphrase string) (File, error) {
	if _, err := ParseFormat(string(f)); err != nil {
		return File{}, err
	}
	if err := checkPassphrase(f, passphrase); err != nil {
		return File{}, err
	}
	cert, err := parseCertificate(certPEM)
	if err != nil {
		return File{}, err
	}
	key, err := parseKey(keyDER, cert)
	if err != nil {
		return File{}, err
	}
	switch f {
	case PKCS12Compatible:
		return encodePKCS12(pkcs12.LegacyDES, cert, key, passphrase)
	case PKCS12Modern:
		return encodePKCS12(pkcs12.Modern2023, cert, key, passphrase)
	default:
		return encodePEM(cert, key)
	}
}

// checkPassphrase applies the passphrase rules of format f.
func checkPassphrase(f Format, passphrase string) error {
	if f == PEM {
		if passphrase != "" {
			return &PassphraseError{"a PEM file is not encrypted, so it takes no passphrase: leave the passphrase empty, or choose a PKCS#12 format to protect the key with it"}
		}
		return nil
	}
	n := utf8.RuneCountInString(passphrase)
	switch {
	case passphrase == "":
		return &PassphraseError{fmt.Sprintf("enter a passphrase of at least %d characters to protect the private key", MinPassphrase)}
	case !utf8.ValidString(passphrase):
		return &PassphraseError{"the passphrase is not valid text (UTF-8): type it again"}
	case n < MinPassphrase:
		return &PassphraseError{fmt.Sprintf("the passphrase must be at least %d characters", MinPassphrase)}
	case n > MaxPassphrase:
		return &PassphraseError{fmt.Sprintf("the passphrase must be at most %d characters", MaxPassphrase)}
	}
	for _, r := range passphrase {
		switch {
		case unicode.IsControl(r):
			// A NUL would end the passphrase early for tools that read it
			// as a C string, and tabs or line breaks cannot be typed into
			// most passphrase prompts.
			return &PassphraseError{"the passphrase cannot contain control characters such as tabs or line breaks"}
		case r > 0xFFFF:
			// PKCS#12 turns passphrases into BMPString (UCS-2), which has
			// no room for these.
			return &PassphraseError{"the passphrase cannot contain emoji or other characters outside the Basic Multilingual Plane: use letters, digits, punctuation and spaces"}
		}
	}
	return nil
}

// parseCertificate reads the one CERTIFICATE block of certPEM.
func parseCertificate(certPEM string) (*x509.Certificate, error) {
	block, rest := pem.Decode([]byte(certPEM))
	switch {
	case block == nil:
		return nil, errors.New("the certificate is not PEM")
	case block.Type != "CERTIFICATE":
		// The type of a block is no secret, but a misplaced key must not
		// be echoed, so only the type is named.
		return nil, fmt.Errorf("the certificate PEM holds a %s block, want CERTIFICATE", clip(block.Type))
	case strings.TrimSpace(string(rest)) != "":
		return nil, errors.New("the certificate PEM holds more than one block")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	return c, nil
}

// parseKey reads keyDER and checks that it is the private key of c.
func parseKey(keyDER []byte, c *x509.Certificate) (crypto.Signer, error) {
	// The parser's error is dropped: it describes the bytes of a key.
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return nil, errors.New("the private key is not PKCS#8 DER")
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("the private key is a %T, which cannot sign", k)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(c.PublicKey) {
		return nil, ErrKeyMismatch
	}
	return signer, nil
}

// encodePKCS12 encodes the pair with enc; the file holds the certificate
// alone, without Apple's intermediate, as pushcert stores no chain.
func encodePKCS12(enc *pkcs12.Encoder, c *x509.Certificate, key crypto.Signer, passphrase string) (File, error) {
	data, err := enc.Encode(key, c, nil, passphrase)
	if err != nil {
		// checkPassphrase admits only what PKCS#12 can encode, so this is
		// a fault of ours; the encoder's messages quote neither the
		// passphrase nor the key.
		return File{}, fmt.Errorf("encode PKCS#12: %w", err)
	}
	return File{Name: fileName(c, ".p12"), ContentType: ContentTypePKCS12, Data: data}, nil
}

// encodePEM writes the certificate, then the key: PKCS#1 for RSA, the
// form older tools and scripts expect, PKCS#8 for any other key.
func encodePEM(c *x509.Certificate, key crypto.Signer) (File, error) {
	keyBlock := &pem.Block{Type: "RSA PRIVATE KEY"}
	if rk, ok := key.(*rsa.PrivateKey); ok {
		keyBlock.Bytes = x509.MarshalPKCS1PrivateKey(rk)
	} else {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return File{}, fmt.Errorf("encode %T as PKCS#8: %w", key, err)
		}
		keyBlock = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	data = append(data, pem.EncodeToMemory(keyBlock)...)
	return File{Name: fileName(c, ".pem"), ContentType: ContentTypePEM, Data: data}, nil
}

// fileName is push-<serial><ext>. The serial is hex (with a '-' only if
// x509 was told to accept negative serials), so the name holds nothing a
// Content-Disposition header must quote or escape.
func fileName(c *x509.Certificate, ext string) string {
	return "push-" + strings.ToUpper(c.SerialNumber.Text(16)) + ext
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 40
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
