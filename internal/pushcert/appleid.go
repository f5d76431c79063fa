package pushcert

// This file holds the Apple ID rule, the same for the form and the API.

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// appleID returns the new Apple ID ("" to keep the stored one), or why it
// is refused. One is required on the first upload if none is stored.
func (s *Service) appleID(cur State, raw string, upload bool) (string, *ValidationError) {
	raw = strings.TrimSpace(raw)
	if raw == "" && !(upload && cur.AppleID == "") {
		return "", nil
	}
	id, ok := parseAppleID(raw)
	if !ok {
		return "", &ValidationError{
			Field:   "appleIdentifier",
			Code:    CodeInvalidAppleID,
			Message: "enter the Apple ID (an email address) that created the certificate at Apple's portal",
		}
	}
	return id, nil
}

// parseAppleID accepts a bare email address: no display name, no angle
// brackets or comments, a domain with a dot, within RFC 5321's lengths.
func parseAppleID(s string) (string, bool) {
	if s == "" || len(s) > 254 || !utf8.ValidString(s) {
		return "", false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "", false
		}
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", false
	}
	at := strings.LastIndexByte(s, '@')
	local, domain := s[:at], s[at+1:]
	if local == "" || len(local) > 64 || len(domain) > 253 ||
		!strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") ||
		strings.HasSuffix(domain, ".") || strings.HasPrefix(domain, "[") {
		return "", false
	}
	return s, true
}
