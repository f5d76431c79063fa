// Package alert tells people about the push certificate before it fails
// them: a Checker finds the alerts that are due — each expiry threshold the
// active certificate crosses, its expiry, every refused upload — records
// each one once in the store, and delivers it through a Notifier, retrying
// with backoff. Because the store records every alert under a unique key,
// an alert goes out once however many replicas run and however often they
// restart. The Checker also writes each new audit event to the log.
//
// The package has no HTTP: the webhook Notifier lives in package web.
package alert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// Kind names what an alert is about.
type Kind string

// Alert kinds, sent as the "event" field.
const (
	KindExpiring     Kind = "certificate_expiring"
	KindExpired      Kind = "certificate_expired"
	KindUploadFailed Kind = "upload_failed"
	// KindDeliveryOutOfSync: a delivery target has lacked the active
	// certificate longer than allowed (package delivery), once per episode.
	KindDeliveryOutOfSync Kind = "delivery_out_of_sync"
	// KindKeyExported: someone exported the private key.
	KindKeyExported Kind = "key_exported"
	// KindAPNSRejected: Apple's push service refused the active
	// certificate in the connection check (package apns), once per episode.
	KindAPNSRejected Kind = "apns_rejected"
	// KindAPNSUnreachable: the connection check has not reached Apple's
	// push service for longer than allowed, once per episode.
	KindAPNSUnreachable Kind = "apns_unreachable"
)

// Alert is one message. Its JSON form is what a webhook receives: a
// human-readable Text, which Slack- and Teams-style incoming webhooks show,
// and structured fields for anything that wants to act on it.
type Alert struct {
	Text  string `json:"text"`
	Event Kind   `json:"event"`
	// At is when the alert was raised (RFC 3339).
	At          string `json:"at"`
	Topic       string `json:"topic,omitempty"`
	Serial      string `json:"serial,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	// Expiry is the certificate's NotAfter (RFC 3339).
	Expiry string `json:"expiry,omitempty"`
	// DaysLeft is the whole days until expiry when the alert is sent:
	// 0 on the last day, negative once expired. Absent for upload failures.
	DaysLeft *int `json:"days_left,omitempty"`
	// ThresholdDays is the threshold an expiring alert is for.
	ThresholdDays int    `json:"threshold_days,omitempty"`
	AppleID       string `json:"apple_id,omitempty"`
	// Reason is why an upload was refused.
	Reason string `json:"reason,omitempty"`
	// Actor is who made the refused upload.
	Actor string `json:"actor,omitempty"`
	// URL is pushcert's address, where the certificate is renewed.
	URL string `json:"url,omitempty"`
}

// Notifier delivers an alert, once per call. It returns a *PermanentError
// when trying again cannot help (the receiver refused the alert itself).
type Notifier interface {
	Notify(ctx context.Context, a Alert) error
}

// PermanentError is a delivery failure that retrying right away cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Outcome is how a recorded alert was finished.
type Outcome string

// Outcomes of a recorded alert.
const (
	// OutcomeSent: the Notifier accepted it.
	OutcomeSent Outcome = "sent"
	// OutcomeSuperseded: it was no longer true when its turn came (the
	// certificate was replaced, or a more urgent alert is due), so it was
	// dropped unsent.
	OutcomeSuperseded Outcome = "superseded"
)

// Queued is a recorded alert that is not finished yet, as claimed for
// delivery.
type Queued struct {
	Key       string
	Payload   []byte
	CreatedAt time.Time
	Attempts  int // claims so far, this one included
}

// Sent is an alert the Notifier accepted: its key, the JSON it was sent
// as, and when.
type Sent struct {
	Key     string
	Payload []byte
	At      time.Time
}

// Store is what the Checker needs from the database, shared by every
// replica. *store.DB implements it.
type Store interface {
	// State returns the push-certificate resource.
	State(ctx context.Context) (pushcert.State, error)
	// EventsAfter returns up to limit audit events whose ID is above
	// afterID, oldest first.
	EventsAfter(ctx context.Context, afterID int64, limit int) ([]pushcert.Event, error)
	// AlertCursor returns the ID of the newest audit event already looked at.
	AlertCursor(ctx context.Context) (int64, error)
	// AdvanceAlertCursor moves the cursor from from to to, and reports
	// false, changing nothing, when it no longer is at from (another
	// replica moved it first).
	AdvanceAlertCursor(ctx context.Context, from, to int64) (bool, error)
	// AddAlert records an alert under key unless one is recorded already,
	// and reports whether this call recorded it.
	AddAlert(ctx context.Context, key string, payload []byte, at time.Time) (bool, error)
	// ClaimAlerts leases up to limit unfinished alerts whose lease has run
	// out (or that never had one) until leaseUntil, oldest first. An alert
	// is claimed by one caller only, however many claim at once.
	ClaimAlerts(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Queued, error)
	// FinishAlert records a claimed alert's outcome; it is never claimed again.
	FinishAlert(ctx context.Context, key string, outcome Outcome, at time.Time) error
	// RetryAlert records a failed delivery of a claimed alert and lets it
	// be claimed again from retryAt.
	RetryAlert(ctx context.Context, key string, retryAt time.Time) error
}

// DefaultThresholds are the days before expiry at which an alert goes out,
// as PUSHCERT_ALERT_THRESHOLDS reads them: the one place they are set.
const DefaultThresholds = "30,14,7,3,1"

// DefaultInterval is how often a Checker looks at the certificate when
// nothing prompts it sooner.
const DefaultInterval = time.Hour

// keys of recorded alerts.
func expiringKey(c *pushcert.Certificate, days int) string {
	return fmt.Sprintf("expiring:%s:%d", certID(c), days)
}

func expiredKey(c *pushcert.Certificate) string { return "expired:" + certID(c) }

func uploadFailedKey(e pushcert.Event) string { return fmt.Sprintf("upload_failed:%d", e.ID) }

// eventKey is the key of an alert raised by an audit event of its own.
func eventKey(k Kind, e pushcert.Event) string { return fmt.Sprintf("%s:%d", k, e.ID) }

// certID names a certificate in an alert key: its fingerprint, which no
// other certificate shares, or its serial for records without one.
func certID(c *pushcert.Certificate) string {
	if c.Fingerprint != "" {
		return c.Fingerprint
	}
	return "serial-" + c.SerialNumber
}

// isExpiry reports whether an alert kind is about the active certificate's
// expiry, and so goes stale when the certificate is replaced.
func (k Kind) isExpiry() bool { return k == KindExpiring || k == KindExpired }

// wording of the texts.

func expiringText(a Alert, notAfter time.Time, days int) string {
	when := fmt.Sprintf("in %d days", days)
	switch days {
	case 0:
		when = "today"
	case 1:
		when = "tomorrow"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "The Apple MDM push certificate expires %s, on %s", when, notAfter.UTC().Format("2006-01-02 15:04 UTC"))
	writeCertificate(&b, a)
	b.WriteString(". Renew it at Apple's Push Certificates Portal (https://identity.apple.com)")
	writeAppleID(&b, a.AppleID)
	writeUpload(&b, a.URL)
	return b.String()
}

func expiredText(a Alert, notAfter time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The Apple MDM push certificate EXPIRED on %s", notAfter.UTC().Format("2006-01-02 15:04 UTC"))
	writeCertificate(&b, a)
	b.WriteString(". Devices no longer receive MDM commands. Renew it now at Apple's Push Certificates Portal (https://identity.apple.com)")
	writeAppleID(&b, a.AppleID)
	writeUpload(&b, a.URL)
	return b.String()
}

func uploadFailedText(a Alert) string {
	var b strings.Builder
	b.WriteString("pushcert refused a push certificate upload")
	if a.Actor != "" {
		b.WriteString(" by " + a.Actor)
	}
	if a.Serial != "" {
		b.WriteString(" (serial " + a.Serial + ")")
	}
	b.WriteString(": " + strings.TrimSuffix(a.Reason, "."))
	b.WriteString(". The active certificate is unchanged.")
	if a.URL != "" {
		b.WriteString(" " + a.URL)
	}
	return b.String()
}

func outOfSyncText(a Alert) string {
	return "An MDM server does not have the active push certificate: " + strings.TrimSuffix(a.Reason, ".") +
		". Pushes it sends may fail until it gets it; pushcert keeps trying." + urlSuffix(a.URL)
}

func keyExportedText(a Alert) string {
	var b strings.Builder
	b.WriteString("The push certificate's private key was exported")
	if a.Actor != "" {
		b.WriteString(" by " + a.Actor)
	}
	writeCertificate(&b, a)
	b.WriteString(": " + strings.TrimSuffix(a.Reason, "."))
	b.WriteString(". If nobody expected this, find out who and why.")
	return b.String() + urlSuffix(a.URL)
}

func apnsRejectedText(a Alert) string {
	var b strings.Builder
	// The reason says whether Apple refused it or pushcert could not use
	// the stored key; the opening words fit both.
	b.WriteString("The connection check failed for the MDM push certificate")
	writeCertificate(&b, a)
	b.WriteString(": " + strings.TrimSuffix(a.Reason, "."))
	b.WriteString(". MDM servers that use it cannot reach devices until it is fixed.")
	return b.String() + urlSuffix(a.URL)
}

func apnsUnreachableText(a Alert) string {
	return "pushcert cannot reach Apple's push service to check the MDM push certificate: " + strings.TrimSuffix(a.Reason, ".") +
		". The certificate may be fine, but MDM servers on the same network may not reach Apple either." + urlSuffix(a.URL)
}

func urlSuffix(url string) string {
	if url == "" {
		return ""
	}
	return " " + url
}

func writeCertificate(b *strings.Builder, a Alert) {
	if a.Topic != "" || a.Serial != "" {
		fmt.Fprintf(b, " (topic %s, serial %s)", orUnknown(a.Topic), orUnknown(a.Serial))
	}
}

func writeAppleID(b *strings.Builder, appleID string) {
	if appleID != "" {
		b.WriteString(" signed in as " + appleID)
	} else {
		b.WriteString(" with the Apple ID that created it")
	}
}

func writeUpload(b *strings.Builder, url string) {
	if url != "" {
		b.WriteString(", then upload the new certificate to pushcert at " + url + ".")
		return
	}
	b.WriteString(", then upload the new certificate to pushcert.")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// permanent reports whether err says retrying cannot help.
func permanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
