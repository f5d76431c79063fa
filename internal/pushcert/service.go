package pushcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/guid"
)

// DefaultPendingKeyLifetime is how long a CSR's pending key is kept when
// Config.PendingKeyLifetime is zero: a certificate Apple issues for any CSR
// downloaded in that time is accepted.
const DefaultPendingKeyLifetime = 90 * 24 * time.Hour

// DefaultExpiresSoonDays is Config.ExpiresSoonDays when zero: Apple's
// portal allows renewing well before, and 30 days leaves time for a change
// window.
const DefaultExpiresSoonDays = 30

// mdmTopicPrefix starts every MDM push topic.
const mdmTopicPrefix = "com.apple.mgmt."

// History limits: the default when none is asked for, and the most
// returned at once.
const (
	defaultHistoryLimit = 50
	maxHistoryLimit     = 1000
)

// Config is what a Service needs besides its Store.
type Config struct {
	Organization       string           // the CSR subject's organization
	Vendor             *Vendor          // nil: the plain PEM CSR is handed out
	TrustRoots         *x509.CertPool   // roots trusted besides Apple's embedded ones; nil = none
	TrustIntermediates *x509.CertPool   // intermediates known besides Apple's embedded ones; nil = none
	AllowAnyIssuer     bool             // skip the chain check: testing only
	PendingKeyLifetime time.Duration    // 0 = DefaultPendingKeyLifetime
	ExpiresSoonDays    int              // days left from which the certificate expires soon; 0 = DefaultExpiresSoonDays
	Now                func() time.Time // nil = time.Now
}

// Service applies the push certificate's rules over a Store. The HTML
// pages and the JSON API call the same methods, so every change has one
// code path. It is safe for concurrent use: writes carry the version they
// were decided on, so a concurrent change makes them fail with ErrConflict.
type Service struct {
	st       Store
	cfg      Config
	trust    trust
	now      func() time.Time
	lifetime time.Duration
}

// Update is a change to the push certificate, as sent by the upload form
// or the API: everything a write depends on, checked by the Service alone.
type Update struct {
	Actor auth.User
	// AppleID is the Apple ID that created the certificate. Empty (or
	// only spaces) keeps the stored one, for the form and the API alike;
	// the first certificate needs one.
	AppleID string
	// Certificate is the file Apple issued, as uploaded; nil changes only
	// the Apple ID. More than MaxUploadSize bytes is refused (TooLarge).
	Certificate []byte
	// AllowTopicChange accepts a certificate with another topic than the
	// active one; every enrolled device must then re-enroll.
	AllowTopicChange bool
	// If is what the write requires of the current version; checked once
	// against the state the write is decided on, and again by the store
	// under its row lock.
	If Precondition
	// FileName is the uploaded file's name, as the browser sent it, kept
	// with a refusal so people can tell which file it was; optional.
	FileName string
}

// NewService returns a Service over st.
func NewService(st Store, cfg Config) *Service {
	s := &Service{st: st, cfg: cfg, trust: newTrust(cfg), now: cfg.Now, lifetime: cfg.PendingKeyLifetime}
	if s.now == nil {
		s.now = time.Now
	}
	if s.lifetime <= 0 {
		s.lifetime = DefaultPendingKeyLifetime
	}
	if s.cfg.ExpiresSoonDays <= 0 {
		s.cfg.ExpiresSoonDays = DefaultExpiresSoonDays
	}
	return s
}

// Now returns the service's time, from Config.Now: the clock that pages
// and answers built around the service (days left, file names) read too.
func (s *Service) Now() time.Time { return s.now() }

// ExpiresSoonDays returns the days left (Certificate.DaysLeft) from which
// the certificate counts as expiring soon.
func (s *Service) ExpiresSoonDays() int { return s.cfg.ExpiresSoonDays }

// VendorSigning reports whether CSRs are signed with an MDM vendor
// certificate (Config.Vendor): only such a request is taken by Apple's
// Push Certificates Portal.
func (s *Service) VendorSigning() bool { return s.cfg.Vendor != nil }

// PendingKeyLifetimeText words PendingKeyLifetime for people: "90 days",
// "1 day", or the duration itself when under a day.
func (s *Service) PendingKeyLifetimeText() string { return lifetimeText(s.lifetime) }

// PendingKeyLifetime returns how long a downloaded CSR stays usable.
func (s *Service) PendingKeyLifetime() time.Duration { return s.lifetime }

// State returns the push-certificate resource.
func (s *Service) State(ctx context.Context) (State, error) {
	return s.st.State(ctx)
}

// GenerateCSR makes a new key pair and CSR, stores the key as a pending
// key and records EventCSRGenerated. Every call makes a new one; earlier
// pending keys within the lifetime are kept (so a certificate for any CSR
// handed out still matches) and older ones are pruned. The active
// certificate and its key are never touched. The returned PendingKey
// carries the Request to take to Apple but not the private key.
func (s *Service) GenerateCSR(ctx context.Context, actor auth.User) (PendingKey, error) {
	now := s.now()
	keyDER, csrDER, err := NewKeyAndCSR(s.cfg.Organization)
	if err != nil {
		return PendingKey{}, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return PendingKey{}, fmt.Errorf("read new csr: %w", err)
	}
	hash, err := PublicKeyHash(csr.PublicKey)
	if err != nil {
		return PendingKey{}, err
	}
	request, kind := CSRPEM(csrDER), "PEM CSR"
	if s.cfg.Vendor != nil {
		if request, err = s.cfg.Vendor.Sign(csrDER); err != nil {
			return PendingKey{}, err
		}
		kind = "vendor-signed request"
	}
	pk := PendingKey{
		ID:            guid.New(),
		CreatedAt:     now,
		CreatedBy:     actor,
		KeyDER:        keyDER,
		CSRDER:        csrDER,
		Request:       request,
		VendorSigned:  s.cfg.Vendor != nil,
		PublicKeyHash: hash,
	}
	if _, err := s.st.PrunePendingKeys(ctx, now.Add(-s.lifetime)); err != nil {
		return PendingKey{}, err
	}
	e := Event{
		At:     now,
		Kind:   EventCSRGenerated,
		Actor:  actor,
		Detail: fmt.Sprintf("%s for public key %s", kind, hash[:16]),
	}
	if err := s.st.AddPendingKey(ctx, pk, e); err != nil {
		return PendingKey{}, err
	}
	// The private key stays with the store: nothing above the service
	// needs it, and a copy in a handler is a copy that can leak.
	pk.KeyDER = nil
	return pk, nil
}

// LatestCSR returns the newest pending key (without its private key)
// created within the lifetime, or ErrNoCSR when there is none.
func (s *Service) LatestCSR(ctx context.Context) (PendingKey, error) {
	// The status page asks on every view: the store reads one row and
	// decrypts nothing, however many CSRs were handed out.
	pk, err := s.st.LatestPendingKey(ctx, s.now().Add(-s.lifetime))
	if errors.Is(err, ErrNotFound) {
		return PendingKey{}, ErrNoCSR
	}
	if err != nil {
		return PendingKey{}, err
	}
	pk.KeyDER = nil // in case a Store returned it anyway
	return pk, nil
}

// Status returns the current State and the newest pending CSR (nil if
// none), as State and LatestCSR do, read together: the status page needs
// both on every view, and one statement costs less than two. Both are read
// fresh from the store each time.
func (s *Service) Status(ctx context.Context) (State, *PendingKey, error) {
	st, pk, err := s.st.Status(ctx, s.now().Add(-s.lifetime))
	if err != nil {
		return State{}, nil, err
	}
	if pk != nil {
		pk.KeyDER = nil // in case a Store returned it anyway
	}
	return st, pk, nil
}

// Update applies a change with PATCH semantics: a certificate, an Apple
// ID, or both. A refused certificate is answered with a *ValidationError
// and changes nothing but the recorded upload status and reason. A
// Precondition that does not hold, now or when the change is stored, is
// answered with ErrPreconditionFailed; a change that raced another without
// one with ErrConflict. Neither records anything.
func (s *Service) Update(ctx context.Context, u Update) (State, error) {
	return s.write(ctx, u, nil, nil)
}

// Create applies a change with POST semantics: it returns ErrExists when
// an active certificate exists, requires a certificate, and otherwise
// behaves as Update. The Precondition is checked first, as HTTP evaluates
// If-Match before the method.
func (s *Service) Create(ctx context.Context, u Update) (State, error) {
	return s.write(ctx, u, func(cur State) error {
		if cur.Certificate != nil {
			return ErrExists
		}
		if u.Certificate == nil {
			return &ValidationError{
				Field:   "certificate",
				Code:    CodeNoCertificate,
				Message: "a certificate is required: upload the certificate file Apple issued (.pem)",
			}
		}
		return nil
	}, nil)
}

// write is Update and Create: one read of the state, the precondition
// checked once against it, the method's own rule (first, for Create; nil
// for Update), then the update rules. out, if not nil, is set to what the
// write did.
func (s *Service) write(ctx context.Context, u Update, first func(cur State) error, out *Outcome) (State, error) {
	cur, err := s.State(ctx)
	if err != nil {
		return State{}, err
	}
	if !u.If.holds(cur) {
		return State{}, ErrPreconditionFailed
	}
	if first != nil {
		if err := first(cur); err != nil {
			return State{}, err
		}
	}
	st, outcome, err := s.apply(ctx, cur, u)
	if out != nil {
		*out = outcome
	}
	return preconditioned(u, st, err)
}

// preconditioned turns the store's refusal of a stale write into
// ErrPreconditionFailed when the write had a Precondition: the version it
// was based on is gone, which is what the precondition was there to catch.
func preconditioned(u Update, st State, err error) (State, error) {
	if errors.Is(err, ErrConflict) && !u.If.IsZero() {
		return State{}, ErrPreconditionFailed
	}
	return st, err
}

// History returns up to limit audit events, newest first; limit <= 0
// means 50, and at most 1000 are returned.
func (s *Service) History(ctx context.Context, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = defaultHistoryLimit
	}
	limit = min(limit, maxHistoryLimit)
	return s.st.Events(ctx, limit)
}

// RotateKeys re-encrypts every stored private key under the current
// key-encryption key, records EventKeysRotated and returns how many keys
// were re-encrypted.
func (s *Service) RotateKeys(ctx context.Context, actor auth.User) (int, error) {
	// The detail is left to the store, which knows how many keys it
	// re-encrypted and under which key.
	return s.st.RotateKeys(ctx, Event{At: s.now(), Kind: EventKeysRotated, Actor: actor})
}

// apply runs the update rules, in order, against cur. Every write it
// makes expects cur.Version, so the store refuses it with ErrConflict if
// anything changed since cur was read.
func (s *Service) apply(ctx context.Context, cur State, u Update) (State, Outcome, error) {
	now := s.now()
	upload := u.Certificate != nil
	// Too large to be a certificate, and not read as one: refused as the
	// transports refuse a body over their bound, without recording an
	// upload (nothing that could be a certificate was sent).
	if len(u.Certificate) > MaxUploadSize {
		return State{}, Changed, TooLarge()
	}
	if upload {
		return s.upload(ctx, cur, u, now)
	}
	appleID, ve := s.appleID(cur, u.AppleID, false)
	if ve != nil {
		return State{}, Changed, ve
	}
	st, err := s.setAppleID(ctx, cur, u.Actor, appleID, now)
	return st, Changed, err
}

// TooLarge is the refusal of a certificate file over MaxUploadSize. A
// transport that stops reading a body over its own bound answers with it
// too, so there is one rule and one message.
func TooLarge() *ValidationError {
	return &ValidationError{
		Field:   "certificate",
		Code:    CodeTooLarge,
		Message: "the certificate file is larger than 1 MiB, and a push certificate is about 2 KiB: upload the .pem file Apple issued",
	}
}

// setAppleID changes only the Apple ID of an installation that has a
// certificate.
func (s *Service) setAppleID(ctx context.Context, cur State, actor auth.User, appleID string, now time.Time) (State, error) {
	if appleID == "" {
		return State{}, &ValidationError{
			Field:   "certificate",
			Code:    CodeNothingToUpdate,
			Message: "nothing to update: upload a certificate, enter an Apple ID, or both",
		}
	}
	if cur.Certificate == nil {
		return State{}, &ValidationError{
			Field:   "certificate",
			Code:    CodeNoCertificate,
			Message: "there is no push certificate yet: upload the certificate Apple issued together with the Apple ID that created it",
		}
	}
	if appleID == cur.AppleID {
		return cur, nil
	}
	return s.st.SetAppleID(ctx, cur.Version, appleID, Event{
		At:     now,
		Kind:   EventAppleIDChanged,
		Actor:  actor,
		Detail: fmt.Sprintf("from %s to %s", orNone(cur.AppleID), appleID),
	})
}

// upload validates a certificate and the Apple ID and, only when every
// check passes, makes the certificate active with its key. The certificate
// is judged first: when both are wrong (as in the API's documented
// example), the certificate is the refusal that matters. The active
// certificate uploaded again is AlreadyActive: nothing about it is
// recorded (no history row, no event, no new version), and only an Apple
// ID sent with it is saved.
func (s *Service) upload(ctx context.Context, cur State, u Update, now time.Time) (State, Outcome, error) {
	c, extra, err := parseUpload(u.Certificate)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return s.refuseUpload(ctx, cur, u, nil, now, ve)
		}
		return State{}, Changed, err
	}
	d := Describe(c)
	if alreadyActive(cur, d) {
		appleID, ve := s.appleID(cur, u.AppleID, false)
		if ve != nil {
			return State{}, AlreadyActive, ve
		}
		if appleID == "" || appleID == cur.AppleID {
			return cur, AlreadyActive, nil
		}
		st, err := s.setAppleID(ctx, cur, u.Actor, appleID, now)
		return st, AlreadyActive, err
	}
	pendingID, err := s.check(ctx, cur, uploaded{c, extra, d}, u.AllowTopicChange, now)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			// A certificate that was active before is refused by the
			// rules for its key or dates, but the reason the admin needs
			// is that it is the old one.
			if ve, err = s.replacedRefusal(ctx, cur, c, d, ve); err != nil {
				return State{}, Changed, err
			}
			return s.refuseUpload(ctx, cur, u, &d, now, ve)
		}
		return State{}, Changed, err
	}
	appleID, ve := s.appleID(cur, u.AppleID, true)
	if ve != nil {
		return s.refuseUpload(ctx, cur, u, &d, now, ve)
	}

	var detail []string
	if cur.Certificate != nil && cur.Certificate.Topic != d.Topic {
		detail = append(detail, fmt.Sprintf("topic changed from %s (devices must re-enroll)", clip(cur.Certificate.Topic)))
	}
	newAppleID := cur.AppleID
	if appleID != "" && appleID != cur.AppleID {
		if cur.AppleID != "" {
			detail = append(detail, fmt.Sprintf("Apple ID changed from %s to %s", cur.AppleID, appleID))
		}
		newAppleID = appleID
	}
	// ExpectVersion is the version every check above was made against: if
	// anything changed since, the store refuses and the active certificate
	// and key stay as they are.
	st, err := s.st.Activate(ctx, Activation{
		ExpectVersion: cur.Version,
		AppleID:       newAppleID,
		Certificate:   d,
		PendingID:     pendingID,
		At:            now,
		Event: Event{
			At:       now,
			Kind:     EventUploadSucceeded,
			Actor:    u.Actor,
			Serial:   d.SerialNumber,
			Topic:    d.Topic,
			NotAfter: d.NotAfter,
			Detail:   strings.Join(detail, "; "),
		},
	})
	if errors.Is(err, ErrNotFound) {
		// The matched pending key went between the check and the write
		// (pruned at the end of its lifetime, or consumed by another
		// upload): nothing changed, and the admin gets the same refusal
		// as for a key that never matched.
		return s.refuseUpload(ctx, cur, u, &d, now, s.keyMismatch())
	}
	return st, Changed, err
}

// refuseUpload is refuse for upload, whose refusals change nothing.
func (s *Service) refuseUpload(ctx context.Context, cur State, u Update, d *Certificate, now time.Time, ve *ValidationError) (State, Outcome, error) {
	st, err := s.refuse(ctx, cur, u.Actor, fileName(u.FileName), d, now, ve)
	return st, Changed, err
}

// fileName is an uploaded file's name as kept with a refusal: its base
// name, in printable characters, clipped.
func fileName(name string) string {
	name = name[strings.LastIndexAny(name, `/\`)+1:]
	name = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return -1
	}, name)
	return clip(name)
}

// refuse records a refused upload (status failed, reason, audit event) and
// returns the refusal. A conflict while recording does not hide it: the
// person still needs to know why the certificate was refused.
func (s *Service) refuse(ctx context.Context, cur State, actor auth.User, file string, d *Certificate, now time.Time, ve *ValidationError) (State, error) {
	e := Event{At: now, Kind: EventUploadFailed, Actor: actor, Detail: ve.Message, FileName: file}
	if d != nil {
		e.Serial, e.Topic, e.NotAfter = d.SerialNumber, d.Topic, d.NotAfter
	}
	if _, err := s.st.RecordUploadFailure(ctx, cur.Version, ve.Message, e); err != nil && !errors.Is(err, ErrConflict) {
		return State{}, err
	}
	return State{}, ve
}

// lifetimeText says a duration in days, the unit people think of CSRs in.
func lifetimeText(d time.Duration) string {
	// The status page words the lifetime with it too (PendingKeyLifetimeText),
	// so the refusal and the page name the same span.
	if days := int(d / (24 * time.Hour)); days >= 1 {
		if days == 1 {
			return "1 day"
		}
		return fmt.Sprintf("%d days", days)
	}
	return d.String()
}

// clip shortens text read from a certificate before it goes in a message.
func clip(s string) string {
	return clipTo(s, 100)
}

// clipTo shortens s to at most n bytes plus an ellipsis, on a rune
// boundary.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncate(s, n) + "…"
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
