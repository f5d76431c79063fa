// Package delivery gets the active push certificate and its private key to
// the MDM servers that send the pushes. A Deliverer reconciles: after every
// activation, when asked ("Deliver now"), at startup and on an interval, it
// gives every configured target (package target) that has not received the
// active certificate the certificate and its key, retrying with backoff
// for as long as a target is down. Every replica runs one; a delivery is
// made only by the replica that claims it in the store, so it is made once.
//
// A delivery never touches the active certificate: a failing or slow
// target cannot delay or undo an activation, and only its own row of the
// deliveries table records how it went.
package delivery

import (
	"context"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/target"
)

// Target is one place the pair goes; *target.NanoMDM and the other
// targets of package target implement it.
type Target interface {
	Name() string
	Kind() string
	Describe() string
	Deliver(ctx context.Context, p target.Pair) error
}

// Record is what the store keeps about one target's deliveries. It never
// holds key material.
type Record struct {
	Target               string
	DeliveredSerial      string
	DeliveredFingerprint string
	DeliveredSettings    string    // the target's Settings the delivery was made with
	DeliveredAt          time.Time // zero until the first delivery
	LastAttemptAt        time.Time
	LastError            string // "" when the last attempt succeeded
	Failures             int    // failed attempts since the last success
	NextAttemptAt        time.Time
	AttemptFingerprint   string // the certificate of the last claim
	ClaimedAt            time.Time
	LeaseUntil           time.Time
	RequestedAt          time.Time // the newest "Deliver now" not yet served; zero if none
	OutOfSyncSince       time.Time // zero while the target is in sync
	Alerted              bool      // the out-of-sync episode was alerted
}

// holds reports whether the record says the target has the certificate
// with fingerprint, delivered with settings.
func (r Record) holds(fingerprint, settings string) bool {
	return r.DeliveredFingerprint == fingerprint && r.DeliveredSettings == settings
}

// Result is the outcome of one claimed delivery.
type Result struct {
	Target      string
	Serial      string // the certificate that was sent
	Fingerprint string
	Settings    string // the target's Settings it was sent with
	At          time.Time
	Error       string    // "" on success; the target's words otherwise
	NextAttempt time.Time // on failure, when to try again
	// Event, if not nil, goes into the audit history with the outcome.
	Event *pushcert.Event
}

// Store is what a Deliverer needs from the database, shared by every
// replica. *store.DB implements it.
type Store interface {
	// State returns the push-certificate resource.
	State(ctx context.Context) (pushcert.State, error)
	// ActivePair returns the active certificate and its key (PKCS#8 DER),
	// read together, or pushcert.ErrNotFound when there is none.
	ActivePair(ctx context.Context) (pushcert.Certificate, []byte, error)
	// DeliveryRecords returns the record of every target tried so far.
	DeliveryRecords(ctx context.Context) ([]Record, error)
	// ClaimDelivery leases target's delivery of the certificate with
	// fingerprint, with the target's settings, until leaseUntil, creating
	// its record if needed. It reports false, changing nothing, unless the
	// target needs it (it has another certificate or was delivered with
	// other settings, or a "Deliver now" is waiting), is due at now (its
	// backoff has passed, or the backoff was for another certificate) and
	// is not leased by anyone. A claim for a certificate the target lacks
	// starts its out-of-sync episode if none is running.
	ClaimDelivery(ctx context.Context, target, fingerprint, settings string, now, leaseUntil time.Time) (Record, bool, error)
	// ForgetDelivery records that target no longer holds the certificate
	// with fingerprint (a folder found empty), so the next pass delivers it.
	ForgetDelivery(ctx context.Context, target, fingerprint string) error
	// FinishDelivery records a claimed delivery's outcome, with its event.
	// A success serves the "Deliver now" requests made before the claim and
	// ends the out-of-sync episode if the certificate sent is still the
	// active one; a failure with a request waiting is due again at once.
	FinishDelivery(ctx context.Context, r Result) error
	// MarkOutOfSyncAlerted records, once per episode, that target's
	// out-of-sync episode that began at since was alerted, with the event
	// that raises the alert. It reports false, changing nothing, when the
	// episode was alerted already or has ended.
	MarkOutOfSyncAlerted(ctx context.Context, target string, since time.Time, e pushcert.Event) (bool, error)
	// RequestDelivery asks, at e.At, for every named target to be sent the
	// active certificate again at once, and stores the event.
	RequestDelivery(ctx context.Context, targets []string, e pushcert.Event) error
	// RecordEvent stores an audit event that goes with no other change.
	RecordEvent(ctx context.Context, e pushcert.Event) error
}
