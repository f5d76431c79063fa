// Package pushcert holds the rules of the Apple MDM push certificate's
// lifecycle: key and CSR generation, vendor signing, certificate parsing and
// validation, and the Service that applies them over a Store. It has no HTTP.
package pushcert

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
)

// Sentinel errors returned by the Service and the Store.
var (
	// ErrNotFound means the thing asked for does not exist (no certificate
	// yet, no pending CSR).
	ErrNotFound = errors.New("not found")
	// ErrNoCSR means no certificate signing request is waiting for its
	// certificate. It is an ErrNotFound.
	ErrNoCSR = fmt.Errorf("no certificate signing request is waiting for a certificate: %w", ErrNotFound)
	// ErrConflict means a write without a Precondition raced another: the
	// certificate changed between the read the write was decided on and
	// the write. Nothing was written.
	ErrConflict = errors.New("the certificate was changed by someone else; reload and try again")
	// ErrPreconditionFailed means a write's Precondition did not hold: the
	// certificate is no longer at a version the write was based on, either
	// when the write began or when it was stored. Nothing was written.
	ErrPreconditionFailed = errors.New("the certificate changed since the version this change was based on; nothing was changed")
	// ErrExists means a first certificate was asked for while one is
	// active. Nothing was written.
	ErrExists = errors.New("a push certificate is already active; renew it instead of creating one")
)

// Precondition is what a write requires of the version it applies to: the
// version a page showed, or an API request's If-Match (a list of
// versions, or * for "the resource exists"). The zero Precondition
// requires nothing.
type Precondition struct {
	Versions []int64 // the versions the write may apply to
	Any      bool    // the resource exists (State.Exists), whatever its version
}

// AtVersion is the Precondition of a write based on version v.
func AtVersion(v int64) Precondition {
	return Precondition{Versions: []int64{v}}
}

// IsZero reports whether p requires nothing.
func (p Precondition) IsZero() bool {
	return !p.Any && len(p.Versions) == 0
}

// holds reports whether p is met by st.
func (p Precondition) holds(st State) bool {
	if p.IsZero() || p.Any && st.Exists() {
		return true
	}
	return slices.Contains(p.Versions, st.Version)
}

// Codes of validation errors, stable for API clients.
const (
	CodeInvalidCertificate = "invalidCertificate"
	CodeNotMDMCertificate  = "notMdmCertificate"
	CodeExpired            = "certificateExpired"
	CodeNotYetValid        = "certificateNotYetValid"
	CodeKeyMismatch        = "keyMismatch"
	CodeTopicMismatch      = "topicMismatch"
	CodeUntrustedIssuer    = "untrustedIssuer"
	CodeOlderCertificate   = "olderCertificate"
	CodeInvalidAppleID     = "invalidAppleIdentifier"
	CodeTooLarge           = "requestTooLarge"
	CodeNothingToUpdate    = "nothingToUpdate"
	CodeNoCertificate      = "noCertificate"
)

// ValidationError is a refusal a person can act on. Its message is safe to
// show on a page or in an API response.
type ValidationError struct {
	Field   string // "certificate" or "appleIdentifier"
	Code    string // one of the Code constants
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

// UploadStatus is the result of the last upload attempt.
type UploadStatus string

// Upload statuses as shown in the resource's certificateUploadStatus.
const (
	UploadNone      UploadStatus = "notUploaded"
	UploadSucceeded UploadStatus = "succeeded"
	UploadFailed    UploadStatus = "failed"
)

// Certificate is the parsed, public part of a push certificate.
type Certificate struct {
	Topic        string // subject UID, com.apple.mgmt.External.<uuid>
	CommonName   string // APSP:<uuid>
	SerialNumber string // uppercase hex
	Issuer       string // issuer common name
	Fingerprint  string // SHA-256 of the DER, uppercase hex
	NotBefore    time.Time
	NotAfter     time.Time
	PEM          string
}

// State is the push-certificate resource of an installation.
type State struct {
	ID                  string // installation GUID, stable for its life
	Version             int64  // bumped on every write; the ETag
	AppleID             string
	Certificate         *Certificate // nil until the first successful upload
	UploadStatus        UploadStatus
	UploadFailureReason string
	LastModified        time.Time // last successful change; zero if none
	LastModifiedBy      auth.User
}

// Exists reports whether the resource has anything to show: a
// certificate, or at least an upload whose failure can be read. Before
// that, the API answers 404 and If-Match: * does not hold.
func (st State) Exists() bool {
	return st.Certificate != nil || st.UploadStatus != UploadNone
}

// PendingKey is a key pair made for a CSR that was handed to an admin and
// whose certificate has not been uploaded yet.
type PendingKey struct {
	ID            string
	CreatedAt     time.Time
	CreatedBy     auth.User
	KeyDER        []byte // PKCS#8 private key; only in memory, encrypted at rest
	CSRDER        []byte
	Request       string // what the admin takes to Apple (vendor-signed request or PEM CSR)
	VendorSigned  bool
	PublicKeyHash string // SHA-256 of the SubjectPublicKeyInfo DER, hex
}

// EventKind names what an audit event records.
type EventKind string

// Audit event kinds.
const (
	EventCSRGenerated    EventKind = "csr_generated"
	EventUploadSucceeded EventKind = "upload_succeeded"
	EventUploadFailed    EventKind = "upload_failed"
	EventAppleIDChanged  EventKind = "apple_id_changed"
	EventKeysRotated     EventKind = "keys_rotated"
	// Delivery (package delivery) and export records: the certificate
	// reached a target, a delivery failed (once per new reason), an admin
	// asked for a delivery, a target stayed out of sync too long (this one
	// raises an alert), and the private key was exported (so does this).
	EventDelivered         EventKind = "delivered"
	EventDeliveryFailed    EventKind = "delivery_failed"
	EventDeliveryRequested EventKind = "delivery_requested"
	EventDeliveryOutOfSync EventKind = "delivery_out_of_sync"
	EventKeyExported       EventKind = "key_exported"
	// Connection checks with Apple's push service (package apns): a check
	// whose outcome differs from the last one (or that a person asked
	// for), by outcome; and the two that raise an alert, once per
	// episode: Apple refuses the certificate, and Apple's service stayed
	// out of reach longer than allowed.
	EventAPNSAccepted         EventKind = "apns_accepted"
	EventAPNSRejected         EventKind = "apns_rejected"
	EventAPNSUnreachable      EventKind = "apns_unreachable"
	EventAPNSAlertRejected    EventKind = "apns_alert_rejected"
	EventAPNSAlertUnreachable EventKind = "apns_alert_unreachable"
	// EventSessionRevoked records an admin ending someone's console
	// session (package session).
	EventSessionRevoked EventKind = "session_revoked"
)

// Event is one entry of the audit history.
type Event struct {
	ID       int64
	At       time.Time
	Kind     EventKind
	Actor    auth.User // Subject, Name and Email are kept; Role is not
	Serial   string
	Topic    string
	NotAfter time.Time // zero when not about a certificate
	Detail   string    // failure reason, "topic changed from X", ...
	// FileName is the name of the file a refused upload came in, as the
	// browser sent it; empty for other events and API uploads.
	FileName string
}

// Activation is a validated certificate ready to become the active one.
type Activation struct {
	ExpectVersion int64 // the State.Version the decision was made on
	AppleID       string
	Certificate   Certificate
	// PendingID names the pending key the certificate was issued for; it is
	// consumed and becomes the active key. Empty when the certificate matches
	// the active key, which then stays.
	PendingID string
	At        time.Time
	Event     Event
}

// Store persists an installation's certificate state. Every write is
// atomic: it happens whole or not at all. Writes that take an expected
// version return ErrConflict, and change nothing, when it is stale.
type Store interface {
	// State returns the current resource. A new installation has a State
	// with its ID, Version 1, UploadNone and no certificate.
	State(ctx context.Context) (State, error)
	// ActiveKey returns the PKCS#8 DER of the active certificate's private
	// key, or ErrNotFound when there is no active certificate.
	ActiveKey(ctx context.Context) ([]byte, error)
	// AddPendingKey stores a new pending key (encrypted) and its audit event.
	AddPendingKey(ctx context.Context, k PendingKey, e Event) error
	// LatestPendingKey returns the newest unconsumed pending key created at
	// or after since, without its private key (KeyDER is nil), or
	// ErrNotFound when there is none. It decrypts nothing.
	LatestPendingKey(ctx context.Context, since time.Time) (PendingKey, error)
	// Status returns what State and LatestPendingKey return, read in one
	// statement (so from one snapshot); the key is nil when there is none.
	Status(ctx context.Context, since time.Time) (State, *PendingKey, error)
	// PendingKeysByHash returns the unconsumed pending keys created at or
	// after since whose PublicKeyHash is hash, newest first, with KeyDER
	// decrypted; only those keys are decrypted. It is empty when none
	// matches.
	PendingKeysByHash(ctx context.Context, hash string, since time.Time) ([]PendingKey, error)
	// Activate makes a validated certificate active in one transaction: the
	// previous active certificate and its key move to history, the pending
	// key (if any) is consumed and becomes the active key, the upload status
	// becomes succeeded, the version is bumped and the event is stored.
	Activate(ctx context.Context, a Activation) (State, error)
	// RecordUploadFailure sets the upload status to failed with reason,
	// bumps the version and stores the event; nothing else changes.
	RecordUploadFailure(ctx context.Context, expectVersion int64, reason string, e Event) (State, error)
	// SetAppleID changes only the Apple ID, bumps the version and stores the event.
	SetAppleID(ctx context.Context, expectVersion int64, appleID string, e Event) (State, error)
	// Events returns up to limit audit events, newest first.
	Events(ctx context.Context, limit int) ([]Event, error)
	// PrunePendingKeys deletes pending keys created before the cutoff,
	// consumed or not, and returns how many went.
	PrunePendingKeys(ctx context.Context, before time.Time) (int, error)
	// RotateKeys re-encrypts every stored private key under the current
	// key-encryption key, stores the event and returns how many were
	// re-encrypted.
	RotateKeys(ctx context.Context, e Event) (int, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}
