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
	DeliveredAt          time.Time // zero until the first delivery
	LastAttemptAt        time.Time
	LastError            string // "" when the last attempt succeeded
	Failures             int    // failed attempts since the last success
	NextAttemptAt        time.Time
	LeaseUntil           time.Time
	Redeliver            bool      // "Deliver now" was asked and has not succeeded yet
	OutOfSyncSince       time.Time // zero while the target is in sync
	Alerted              bool      // the out-of-sync episode was alerted
}

// Result is the outcome of one claimed delivery.
type Result struct {
	Target      string
	Serial      string // the certificate that was sent
	Fingerprint string
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
	// fingerprint until leaseUntil, creating its record if needed. It
	// reports false, changing nothing, unless the target needs it (it has
	// another certificate, or a redelivery was asked), is due at now and
	// is not leased by anyone. A claim for a certificate the target lacks
	// starts its out-of-sync episode if none is running.
	ClaimDelivery(ctx context.Context, target, fingerprint string, now, leaseUntil time.Time) (Record, bool, error)
	// FinishDelivery records a claimed delivery's outcome, with its event.
	FinishDelivery(ctx context.Context, r Result) error
	// MarkOutOfSyncAlerted records, once per episode, that target's
	// out-of-sync episode that began at since was alerted, with the event
	// that raises the alert. It reports false, changing nothing, when the
	// episode was alerted already or has ended.
	MarkOutOfSyncAlerted(ctx context.Context, target string, since time.Time, e pushcert.Event) (bool, error)
	// RequestDelivery asks for every named target to be sent the active
	// certificate again at once, and stores the event.
	RequestDelivery(ctx context.Context, targets []string, e pushcert.Event) error
	// RecordEvent stores an audit event that goes with no other change.
	RecordEvent(ctx context.Context, e pushcert.Event) error
}
