// Package apns proves that the active push certificate works with Apple's
// push service (APNs). A Checker connects to APNs over HTTP/2 with the
// certificate and its key as the TLS client certificate, sends one MDM push
// to a device token no device has, and tells from the answer whether Apple
// accepted the certificate, refused it, or could not be reached. A Monitor
// runs that check after every activation, on demand and on an interval,
// once across replicas; it keeps the last result in the store, records each
// change of outcome in the history and raises the alerts, once per episode.
//
// A check never changes the certificate: whatever Apple answers, only the
// check's own row and the history record it.
package apns

import (
	"context"
	"errors"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// Outcome is what a check found.
type Outcome string

// Outcomes of a check.
const (
	// OutcomeNone: no check has been made yet.
	OutcomeNone Outcome = ""
	// OutcomeAccepted: Apple accepted the certificate (it answered the test
	// push as it answers a push to a device it does not know).
	OutcomeAccepted Outcome = "accepted"
	// OutcomeRejected: Apple refused the certificate (a 403 reason, a TLS
	// alert, a handshake cut off), or it cannot be used with its key.
	OutcomeRejected Outcome = "rejected"
	// OutcomeUnreachable: Apple could not be asked (DNS, firewall, proxy,
	// timeout, Apple's service in trouble); this says nothing about the
	// certificate.
	OutcomeUnreachable Outcome = "unreachable"
)

// Outcomes lists the outcomes of a check, for metrics and filters.
func Outcomes() []Outcome {
	return []Outcome{OutcomeAccepted, OutcomeRejected, OutcomeUnreachable}
}

// Label names the outcome for people: "Accepted", "Rejected",
// "Unreachable", or "Not checked yet".
func (o Outcome) Label() string {
	switch o {
	case OutcomeAccepted:
		return "Accepted"
	case OutcomeRejected:
		return "Rejected"
	case OutcomeUnreachable:
		return "Unreachable"
	case OutcomeNone:
		return "Not checked yet"
	default:
		return string(o)
	}
}

// ErrNoCertificate means there is no active certificate to check yet.
var ErrNoCertificate = errors.New("there is no active certificate to check yet")

// System is the actor of the checks pushcert makes by itself.
var System = auth.User{Subject: "pushcert", Name: "pushcert"}

// Result is the outcome of one check. It never holds key material.
type Result struct {
	At      time.Time // when the check finished
	Outcome Outcome
	// Message says what Apple answered and what to do about it, in words
	// a person can act on.
	Message string
	// The certificate checked.
	Serial      string
	Fingerprint string
	// Topic is the certificate's topic (its subject UID), the apns-topic
	// the push was sent with; "" when the certificate has none (NoTopic).
	Topic   string
	NoTopic bool
	// Server is the host and port asked, "api.push.apple.com:443".
	Server string
	// HTTPStatus and Reason are Apple's answer (400 and "BadDeviceToken");
	// without an HTTP answer HTTPStatus is 0 and Reason names the TLS
	// alert Apple sent ("tls: expired certificate"), if it sent one.
	HTTPStatus int
	Reason     string
	// By is who asked for the check; the zero User or System when pushcert
	// checked by itself.
	By auth.User
}

// Record is what the store keeps about the checks, shared by every
// replica.
type Record struct {
	// Last is the newest check's result; its Outcome is OutcomeNone before
	// the first check.
	Last Result
	// LeaseUntil is when a replica's claim of the periodic check runs out.
	LeaseUntil time.Time
	// Since is when the current episode began: the first check of the run
	// of checks with Last's outcome (for a rejection, of Last's
	// certificate). Alerted reports that the episode was alerted.
	Since   time.Time
	Alerted bool
}

// Finished is a check for the store to record.
type Finished struct {
	Result Result
	// Event goes into the history when Result's outcome or certificate
	// differs from the last recorded check's, and whenever Always is set
	// (a check a person asked for).
	Event  pushcert.Event
	Always bool
	// Lease is the end of the lease ClaimAPNSCheck gave this replica for
	// the check, which recording it releases; zero when the check was not
	// claimed. It is the claim's token: a lease claimed after this one ran
	// out ends later, so another replica's lease is never released.
	Lease time.Time
}

// Store is what a Monitor needs from the database, shared by every
// replica. *store.DB implements it.
type Store interface {
	// State returns the push-certificate resource.
	State(ctx context.Context) (pushcert.State, error)
	// ActivePair returns the active certificate and its key (PKCS#8 DER),
	// read together, or pushcert.ErrNotFound when there is none.
	ActivePair(ctx context.Context) (pushcert.Certificate, []byte, error)
	// APNSCheck returns the record of the checks; its Last.Outcome is
	// OutcomeNone before the first check.
	APNSCheck(ctx context.Context) (Record, error)
	// ClaimAPNSCheck leases the check of the certificate with fingerprint
	// until leaseUntil. It reports false, changing nothing, unless the
	// check is due at now and is not leased by anyone: it is due when the
	// last check was of another certificate (or there was none), or was
	// made at or before checkedBefore (zero: never by age alone). Of
	// several replicas claiming at once, one gets it.
	ClaimAPNSCheck(ctx context.Context, fingerprint string, now, leaseUntil, checkedBefore time.Time) (bool, error)
	// RecordAPNSCheck records a check as the last one, with its event (see
	// Finished), and reports whether its outcome or certificate differs
	// from the last recorded check's. It releases f.Lease if that is still
	// the lease. A result for the active certificate is never replaced by
	// one for another certificate; otherwise a check that finished before
	// the recorded one does not replace it. A check that does not replace
	// the last one changes nothing but the lease and its Always event. A
	// new outcome, or a rejection of another certificate, begins a new
	// episode.
	RecordAPNSCheck(ctx context.Context, f Finished) (bool, error)
	// MarkAPNSAlerted records, once per episode, that the episode of
	// outcome that began at since was alerted, with the event that raises
	// the alert. It reports false, changing nothing, when that episode was
	// alerted already or has ended, or when the last check is not of the
	// active certificate.
	MarkAPNSAlerted(ctx context.Context, outcome Outcome, since time.Time, e pushcert.Event) (bool, error)
}

// eventKind is the history's kind of a check with outcome o.
func eventKind(o Outcome) pushcert.EventKind {
	switch o {
	case OutcomeAccepted:
		return pushcert.EventAPNSAccepted
	case OutcomeRejected:
		return pushcert.EventAPNSRejected
	default:
		return pushcert.EventAPNSUnreachable
	}
}
