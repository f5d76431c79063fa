package pushcert

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"time"
)

// MaxUploadSize is the largest certificate upload pushcert accepts, 1 MiB.
// A push certificate is about 2 KiB.
const MaxUploadSize = 1 << 20

// oidUID is the subject attribute that carries a push certificate's topic.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// The messages of ParseCertificate's refusals. None of them quotes the
// input: it may be a private key.
const (
	msgEmpty         = "the certificate is empty: choose the certificate file Apple issued (.pem)"
	msgPrivateKey    = "this is a private key, not a certificate: upload the certificate file Apple issued (.pem)"
	msgCSR           = "this is a certificate signing request: take it to Apple's Push Certificates Portal and upload the certificate Apple gives back"
	msgVendorRequest = "this is the signed request for Apple's Push Certificates Portal, not a certificate: upload it at the portal and upload the certificate Apple gives back"
	msgPKCS12        = "this is a PKCS#12 bundle (.p12 or .pfx) holding a private key: export the certificate alone as .pem and upload that"
	msgDamaged       = "the certificate in this file is damaged and cannot be read: download it again from Apple's Push Certificates Portal"
	msgUnreadable    = "this is not a certificate pushcert can read: upload the certificate file Apple issued (.pem; DER or base64 also work)"
)

// maxBundleExtras is how many certificates after the first of a PEM
// bundle are read as its chain; a chain to Apple's root has one or two.
const maxBundleExtras = 8

// ParseCertificate reads a certificate given as PEM (the first CERTIFICATE
// block; other blocks such as a private key are skipped), DER, or base64 of
// the DER (standard or URL alphabet, whitespace ignored). Its refusals are
// *ValidationError with Field "certificate" that say what the input is
// instead (empty, a private key, a CSR, a PKCS#12 bundle, unreadable) and
// never quote it.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	c, _, err := parseUpload(data)
	return c, err
}

// parseUpload is ParseCertificate that also returns the certificates after
// the first of a PEM bundle (up to maxBundleExtras; unreadable ones are
// skipped), which may complete its chain.
func parseUpload(data []byte) (*x509.Certificate, []*x509.Certificate, error) {
	return parseCertificate(data, true)
}

// parseCertificate does parseUpload's work; nested allows one level of
// base64 around PEM, the form some API clients send.
func parseCertificate(data []byte, nested bool) (*x509.Certificate, []*x509.Certificate, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, nil, certError(msgEmpty)
	}
	if bytes.Contains(trimmed, []byte("-----BEGIN")) {
		return parsePEM(trimmed)
	}
	// DER may end in bytes TrimSpace removes, so it is read untrimmed.
	if data[0] == 0x30 {
		if c, msg := classifyDER(data); msg != msgUnreadable {
			return c, nil, errorFor(msg)
		}
	}
	compact := stripSpace(trimmed)
	if !isBase64(compact) {
		return nil, nil, certError(msgUnreadable)
	}
	der, err := decodeBase64(compact)
	if err != nil || len(der) == 0 {
		return nil, nil, certError(msgUnreadable)
	}
	// The vendor-signed request holds PEM certificates (the vendor's), so
	// it is recognized before base64 of a PEM file is.
	if bytes.Contains(der, []byte("PushCertRequestCSR")) {
		return nil, nil, certError(msgVendorRequest)
	}
	if nested && bytes.Contains(der, []byte("-----BEGIN")) {
		return parseCertificate(der, false)
	}
	c, msg := classifyDER(der)
	return c, nil, errorFor(msg)
}

// parsePEM returns the first CERTIFICATE block of a PEM bundle and the
// certificates after it, or says what the bundle holds instead.
func parsePEM(data []byte) (*x509.Certificate, []*x509.Certificate, error) {
	var sawKey, sawCSR, sawPKCS12 bool
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE" || b.Type == "X509 CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, nil, certError(msgDamaged)
			}
			return c, pemChain(rest), nil
		case strings.Contains(b.Type, "PRIVATE KEY"):
			sawKey = true
		case strings.Contains(b.Type, "CERTIFICATE REQUEST"):
			sawCSR = true
		case b.Type == "PKCS12":
			sawPKCS12 = true
		}
	}
	// A block pem.Decode could not read still shows what it was meant to
	// be in its BEGIN line; only that line's fixed words are looked at.
	switch {
	case sawKey:
		return nil, nil, certError(msgPrivateKey)
	case sawPKCS12:
		return nil, nil, certError(msgPKCS12)
	case sawCSR:
		return nil, nil, certError(msgCSR)
	case bytes.Contains(data, []byte("-----BEGIN CERTIFICATE-----")):
		return nil, nil, certError(msgDamaged)
	case bytes.Contains(data, []byte("PRIVATE KEY-----")):
		return nil, nil, certError(msgPrivateKey)
	case bytes.Contains(data, []byte("CERTIFICATE REQUEST-----")):
		return nil, nil, certError(msgCSR)
	default:
		return nil, nil, certError(msgUnreadable)
	}
}

// pemChain reads the certificates of what follows a bundle's first
// certificate, up to maxBundleExtras; other blocks and unreadable
// certificates are skipped, as they cannot help build a chain.
func pemChain(rest []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for len(out) < maxBundleExtras {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return out
		}
		if b.Type != "CERTIFICATE" && b.Type != "X509 CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// classifyDER parses der as a certificate or, failing that, returns the
// message that says what it is instead.
func classifyDER(der []byte) (*x509.Certificate, string) {
	if c, err := x509.ParseCertificate(der); err == nil {
		return c, ""
	}
	if isPKCS12(der) {
		return nil, msgPKCS12
	}
	if _, err := x509.ParseCertificateRequest(der); err == nil {
		return nil, msgCSR
	}
	if isPrivateKey(der) {
		return nil, msgPrivateKey
	}
	return nil, msgUnreadable
}

func isPrivateKey(der []byte) bool {
	if _, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return true
	}
	_, err := x509.ParseECPrivateKey(der)
	return err == nil
}

// isPKCS12 reports whether der starts like a PFX: SEQUENCE { INTEGER 3,
// SEQUENCE { OID pkcs7-data or pkcs7-signedData, ... } }. It reads only the
// headers, so it also knows the BER (indefinite-length) bundles older tools
// export.
func isPKCS12(der []byte) bool {
	rest, ok := skipHeader(der, 0x30)
	if !ok || !bytes.HasPrefix(rest, []byte{0x02, 0x01, 0x03}) {
		return false
	}
	rest, ok = skipHeader(rest[3:], 0x30)
	if !ok {
		return false
	}
	pkcs7 := []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07}
	return bytes.HasPrefix(rest, pkcs7) && len(rest) > len(pkcs7) &&
		(rest[len(pkcs7)] == 0x01 || rest[len(pkcs7)] == 0x02)
}

// skipHeader skips the tag and length of a constructed element and returns
// its contents (and anything after it).
func skipHeader(b []byte, tag byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != tag {
		return nil, false
	}
	switch l := b[1]; {
	case l <= 0x80: // short form, or BER indefinite length (0x80)
		return b[2:], true
	default:
		n := int(l & 0x7f)
		if n > 4 || len(b) < 2+n {
			return nil, false
		}
		return b[2+n:], true
	}
}

func certError(msg string) *ValidationError {
	return &ValidationError{Field: "certificate", Code: CodeInvalidCertificate, Message: msg}
}

// errorFor turns a classifyDER message into ParseCertificate's error; ""
// is success.
func errorFor(msg string) error {
	if msg == "" {
		return nil
	}
	return certError(msg)
}

// stripSpace removes ASCII whitespace, which base64 pasted from a
// terminal or an email carries.
func stripSpace(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n', '\v', '\f':
		default:
			out = append(out, c)
		}
	}
	return out
}

func isBase64(b []byte) bool {
	for _, c := range b {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '+', c == '/', c == '-', c == '_', c == '=':
		default:
			return false
		}
	}
	return len(b) > 0
}

// decodeBase64 decodes standard or URL-alphabet base64, padded or not.
func decodeBase64(b []byte) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out := make([]byte, enc.DecodedLen(len(b)))
		var n int
		n, err = enc.Decode(out, b)
		if err == nil {
			return out[:n], nil
		}
	}
	return nil, errors.Join(errors.New("not base64"), err)
}

// The longest certificate-derived texts pushcert stores, logs or shows;
// longer ones are clipped (with an ellipsis) by Describe. A real topic is
// 60 characters, a name under 100, a serial (RFC 5280: 20 octets) 40.
const (
	maxTopicLen  = 255
	maxNameLen   = 200
	maxSerialLen = 64
)

// Describe returns the domain view of a parsed push certificate: topic
// (subject UID), common name, serial and SHA-256 fingerprint as uppercase
// hex, issuer common name, validity in UTC and the PEM. The texts read
// from the certificate are clipped to the lengths above, so nothing built
// from a Certificate (state, audit events, logs, messages) carries an
// oversized value from an upload.
func Describe(c *x509.Certificate) Certificate {
	sum := sha256.Sum256(c.Raw)
	return Certificate{
		Topic:        clipTo(topicOf(c), maxTopicLen),
		CommonName:   clipTo(c.Subject.CommonName, maxNameLen),
		SerialNumber: clipTo(serialHex(c.SerialNumber), maxSerialLen),
		Issuer:       clipTo(c.Issuer.CommonName, maxNameLen),
		Fingerprint:  strings.ToUpper(hex.EncodeToString(sum[:])),
		NotBefore:    c.NotBefore.UTC(),
		NotAfter:     c.NotAfter.UTC(),
		PEM:          string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})),
	}
}

// topicOf returns the subject's UID attribute, or "" when it has none.
func topicOf(c *x509.Certificate) string {
	for _, atv := range c.Subject.Names {
		if atv.Type.Equal(oidUID) {
			if s, ok := atv.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

func serialHex(n *big.Int) string {
	if n == nil {
		return ""
	}
	return strings.ToUpper(n.Text(16))
}

// DaysLeft is the one days-left rule of pushcert, for the pages and the
// alerts alike (metrics export the expiry itself, as a timestamp): the calendar days from now's date to the expiry's
// date, both in UTC, so that it agrees with the date shown next to it. It
// is 0 on the day the certificate expires (before and after that moment),
// 1 the day before, negative on the days after.
func (c Certificate) DaysLeft(now time.Time) int {
	day := func(t time.Time) time.Time {
		y, m, d := t.UTC().Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	return int(day(c.NotAfter).Sub(day(now)).Hours() / 24)
}
