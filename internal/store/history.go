package store

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// replacedQuery reads the certificate history, newest first, without the
// keys: finding a replaced certificate decrypts nothing.
const replacedQuery = `SELECT replaced_at, topic, common_name, serial, issuer, fingerprint,
	not_before, not_after, cert_pem FROM certificate_history ORDER BY seq DESC`

// ReplacedCertificate returns the newest replaced certificate (a row of
// the certificate history) whose fingerprint or serial is the given one
// or, when none is, whose public key has the SHA-256 hash publicKeyHash
// (as pushcert.PublicKeyHash words it); pushcert.ErrNotFound when there is
// none. Empty arguments match nothing. The history holds one row per
// replaced certificate, a few a year, so it is read whole.
func (db *DB) ReplacedCertificate(ctx context.Context, fingerprint, serial, publicKeyHash string) (pushcert.Replaced, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.rebind(replacedQuery))
	if err != nil {
		return pushcert.Replaced{}, fmt.Errorf("read certificate history: %w", err)
	}
	defer rows.Close()
	var all []pushcert.Replaced
	for rows.Next() {
		var r pushcert.Replaced
		c := &r.Certificate
		if err := rows.Scan(scanTime{&r.ReplacedAt}, &c.Topic, &c.CommonName, &c.SerialNumber, &c.Issuer, &c.Fingerprint,
			scanTime{&c.NotBefore}, scanTime{&c.NotAfter}, &c.PEM); err != nil {
			return pushcert.Replaced{}, fmt.Errorf("read certificate history: %w", err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return pushcert.Replaced{}, fmt.Errorf("read certificate history: %w", err)
	}
	for _, r := range all {
		if fingerprint != "" && strings.EqualFold(r.Fingerprint, fingerprint) ||
			serial != "" && strings.EqualFold(r.SerialNumber, serial) {
			return r, nil
		}
	}
	if publicKeyHash != "" {
		for _, r := range all {
			if h := pemKeyHash(r.PEM); h != "" && strings.EqualFold(h, publicKeyHash) {
				return r, nil
			}
		}
	}
	return pushcert.Replaced{}, pushcert.ErrNotFound
}

// pemKeyHash is the public-key hash of a stored certificate's PEM, or ""
// when it cannot be read.
func pemKeyHash(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return ""
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return ""
	}
	h, err := pushcert.PublicKeyHash(c.PublicKey)
	if err != nil {
		return ""
	}
	return h
}
