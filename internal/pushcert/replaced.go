package pushcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// CodeReplacedCertificate is the code of the refusal of a certificate that
// was active before and has been replaced.
const CodeReplacedCertificate = "replacedCertificate"

// Replaced is a certificate that was active before: a row of the
// certificate history, without its key.
type Replaced struct {
	Certificate
	ReplacedAt time.Time
}

// replacedFinder is a Store that can find a replaced certificate. It is
// asked only when an upload is refused, to word the refusal; a Store
// without it gets the refusal the rules gave.
type replacedFinder interface {
	// ReplacedCertificate returns the newest replaced certificate whose
	// fingerprint or serial is the given one or, failing that, whose
	// public key has the hash publicKeyHash (PublicKeyHash); ErrNotFound
	// when there is none.
	ReplacedCertificate(ctx context.Context, fingerprint, serial, publicKeyHash string) (Replaced, error)
}

// Outcome says what a write did.
type Outcome int

// The outcomes of UpdateOutcome.
const (
	// Changed: the write was stored.
	Changed Outcome = iota
	// AlreadyActive: the uploaded certificate is the active one, so it was
	// not uploaded again and nothing about it was recorded; an Apple ID
	// sent with it was still saved.
	AlreadyActive
)

// UpdateOutcome is Update that also says whether the uploaded certificate
// was already the active one (AlreadyActive), for a page that words its
// confirmation by it.
func (s *Service) UpdateOutcome(ctx context.Context, u Update) (State, Outcome, error) {
	var out Outcome
	st, err := s.write(ctx, u, nil, &out)
	return st, out, err
}

// alreadyActive reports whether d is the active certificate of cur.
func alreadyActive(cur State, d Certificate) bool {
	return cur.Certificate != nil && cur.Certificate.Fingerprint == d.Fingerprint
}

// replacedRefusal returns the refusal of c when it was active before and
// has been replaced, or ve unchanged. Only the refusals a replaced
// certificate leads to are looked up: its key is no longer pending, it is
// older than the active one, expired, or for the topic it was replaced
// from.
func (s *Service) replacedRefusal(ctx context.Context, cur State, c *x509.Certificate, d Certificate, ve *ValidationError) (*ValidationError, error) {
	switch ve.Code {
	case CodeKeyMismatch, CodeOlderCertificate, CodeExpired, CodeTopicMismatch:
	default:
		return ve, nil
	}
	f, ok := s.st.(replacedFinder)
	if !ok {
		return ve, nil
	}
	hash, _ := PublicKeyHash(c.PublicKey) // "" matches no row
	r, err := f.ReplacedCertificate(ctx, d.Fingerprint, d.SerialNumber, hash)
	if errors.Is(err, ErrNotFound) {
		return ve, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find replaced certificate: %w", err)
	}
	what := fmt.Sprintf("this is the certificate that was replaced on %s (serial %s, valid from %s to %s)",
		r.ReplacedAt.UTC().Format(time.DateOnly), r.SerialNumber, r.NotBefore.Format(time.DateOnly), r.NotAfter.Format(time.DateOnly))
	if r.Fingerprint != d.Fingerprint && r.SerialNumber != d.SerialNumber {
		what = fmt.Sprintf("this certificate is for the key of the certificate that was replaced on %s (serial %s, valid from %s to %s), which pushcert no longer uses",
			r.ReplacedAt.UTC().Format(time.DateOnly), r.SerialNumber, r.NotBefore.Format(time.DateOnly), r.NotAfter.Format(time.DateOnly))
	}
	active := "no certificate is active now"
	if a := cur.Certificate; a != nil {
		active = fmt.Sprintf("the active one (serial %s) is valid until %s", a.SerialNumber, a.NotAfter.Format(time.DateOnly))
	}
	return &ValidationError{Field: "certificate", Code: CodeReplacedCertificate,
		Message: fmt.Sprintf("%s, and %s: to renew, generate a new CSR here, choose Renew at Apple's Push Certificates Portal and upload the certificate Apple then issues", what, active)}, nil
}
