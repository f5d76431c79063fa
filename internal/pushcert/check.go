package pushcert

// This file holds the certificate rules an upload must pass before it
// becomes active: topic, validity, issuer, key match and topic continuity.

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// keyMismatch is the refusal of a certificate whose key matches neither a
// pending key nor the active key.
func (s *Service) keyMismatch() *ValidationError {
	return &ValidationError{Field: "certificate", Code: CodeKeyMismatch,
		Message: fmt.Sprintf("this certificate was issued for a CSR that pushcert did not generate (or one older than %s): download a new CSR from pushcert, upload it at Apple's portal, and upload the certificate Apple returns", lifetimeText(s.lifetime))}
}

// uploaded is a parsed upload: the certificate, the other certificates of
// its PEM bundle, and its description.
type uploaded struct {
	c     *x509.Certificate
	extra []*x509.Certificate
	d     Certificate
}

// check applies the certificate rules in order. It returns the pending key
// the certificate was issued for ("" when it matches the active key), a
// *ValidationError, or a store error.
func (s *Service) check(ctx context.Context, cur State, up uploaded, allowTopicChange bool, now time.Time) (string, error) {
	c, d := up.c, up.d
	switch {
	case d.Topic == "":
		return "", &ValidationError{Field: "certificate", Code: CodeNotMDMCertificate,
			Message: "this is not an MDM push certificate: it has no topic (subject UID); create an MDM push certificate at Apple's Push Certificates Portal"}
	case len(topicOf(c)) > maxTopicLen:
		// Describe clipped it: a topic this long is no MDM topic, and a
		// clipped one must never become the active topic.
		return "", &ValidationError{Field: "certificate", Code: CodeNotMDMCertificate,
			Message: fmt.Sprintf("this is not an MDM push certificate: its topic (%q) is longer than %d characters; create an MDM push certificate at Apple's Push Certificates Portal", clip(d.Topic), maxTopicLen)}
	case !strings.HasPrefix(d.Topic, mdmTopicPrefix):
		return "", &ValidationError{Field: "certificate", Code: CodeNotMDMCertificate,
			Message: fmt.Sprintf("this is not an MDM push certificate: its topic %q does not start with %s; create an MDM push certificate at Apple's Push Certificates Portal", clip(d.Topic), mdmTopicPrefix)}
	case now.Before(d.NotBefore):
		return "", &ValidationError{Field: "certificate", Code: CodeNotYetValid,
			Message: fmt.Sprintf("this certificate is not valid until %s: check this server's clock, or upload it again then", d.NotBefore.Format("2006-01-02 15:04 UTC"))}
	case now.After(d.NotAfter):
		return "", &ValidationError{Field: "certificate", Code: CodeExpired,
			Message: fmt.Sprintf("this certificate expired on %s: renew it at Apple's Push Certificates Portal with the Apple ID that created it, and upload the new one", d.NotAfter.Format(time.DateOnly))}
	}
	if err := s.trust.verify(c, up.extra, now); err != nil {
		return "", untrustedIssuer(c, d)
	}
	pendingID, ok, err := s.matchKey(ctx, c, now)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", s.keyMismatch()
	}
	if active := cur.Certificate; active != nil {
		if active.Topic != d.Topic && !allowTopicChange {
			renew := "with the Apple ID that created it"
			if cur.AppleID != "" {
				renew = "signed in as " + cur.AppleID
			}
			return "", &ValidationError{Field: "certificate", Code: CodeTopicMismatch,
				Message: fmt.Sprintf("the topic changed from %s to %s: this happens when the certificate is created anew instead of renewed, or with another Apple ID, and every enrolled device would have to re-enroll; renew the existing certificate at Apple's Push Certificates Portal %s, or confirm the topic change if every device is to re-enroll", clip(active.Topic), clip(d.Topic), renew)}
		}
		if active.Topic == d.Topic && d.NotAfter.Before(active.NotAfter) {
			return "", &ValidationError{Field: "certificate", Code: CodeOlderCertificate,
				Message: fmt.Sprintf("this certificate expires on %s, before the active one (%s): upload the newest certificate from Apple's Push Certificates Portal", d.NotAfter.Format(time.DateOnly), active.NotAfter.Format(time.DateOnly))}
		}
	}
	return pendingID, nil
}

// matchKey finds the key c was issued for: a pending key from the
// lifetime (looked up by public-key hash, then compared) or the active key.
func (s *Service) matchKey(ctx context.Context, c *x509.Certificate, now time.Time) (pendingID string, ok bool, err error) {
	if hash, err := PublicKeyHash(c.PublicKey); err == nil {
		// Only the pending keys with the certificate's public-key hash are
		// read and decrypted. Each is still compared with the certificate's
		// key, so a stored hash alone never decides a match.
		pending, err := s.st.PendingKeysByHash(ctx, strings.ToLower(hash), now.Add(-s.lifetime))
		if err != nil {
			return "", false, err
		}
		for _, pk := range pending {
			if !strings.EqualFold(pk.PublicKeyHash, hash) {
				continue
			}
			same, err := keyMatches(pk.KeyDER, c.PublicKey)
			if err != nil {
				return "", false, fmt.Errorf("read pending key %s: %w", pk.ID, err)
			}
			if same {
				return pk.ID, true, nil
			}
		}
	}
	active, err := s.st.ActiveKey(ctx)
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	same, err := keyMatches(active, c.PublicKey)
	if err != nil {
		return "", false, fmt.Errorf("read active key: %w", err)
	}
	return "", same, nil
}

// keyMatches reports whether the PKCS#8 private key is the one behind pub.
func keyMatches(keyDER []byte, pub crypto.PublicKey) (bool, error) {
	k, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		return false, errors.New("stored key is not PKCS#8")
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return false, errors.New("stored key cannot sign")
	}
	eq, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(pub), nil
}
