package views

import (
	"strconv"

	"github.com/a-h/templ"
)

// State is the health of the push certificate as the status page shows it.
type State string

// The five states of the status page. Their values are stable; tests and
// stylesheets use them.
const (
	// StateNotSetUp means there is no certificate and no pending CSR.
	StateNotSetUp State = "not-set-up"
	// StateWaiting means a CSR was handed out and its certificate has not
	// been uploaded yet.
	StateWaiting State = "waiting"
	// StateActive means the certificate is valid for more than 30 days.
	StateActive State = "active"
	// StateExpiresSoon means the certificate expires within 30 days.
	StateExpiresSoon State = "expires-soon"
	// StateExpired means the certificate is past its expiry.
	StateExpired State = "expired"
)

// Done names the change a confirmation banner reports after a successful
// form submission.
type Done string

// The confirmations the status page knows.
const (
	DoneNone     Done = ""
	DoneUploaded Done = "uploaded"
	DoneAppleID  Done = "appleid"
	// DoneDelivery: "Deliver now" was asked for.
	DoneDelivery Done = "delivery"
	// DoneAPNSCheck: a connection check was made; its result is on the page.
	DoneAPNSCheck Done = "apnscheck"
	// DoneAlreadyActive: the uploaded certificate was already the active
	// one, so nothing was recorded (an Apple ID sent with it was saved).
	DoneAlreadyActive Done = "already-active"
)

// StatusView is everything the status page shows, already worked out and
// formatted by the handler.
type StatusView struct {
	State State
	Done  Done
	// AppleID is the recorded Apple ID, empty when none was given.
	AppleID             string
	Certificate         *CertificateView // nil before the first upload
	LastChange          string           // formatted time, empty when never
	LastChangeISO       string           // RFC 3339, for the <time> element
	LastChangeBy        string
	UploadStatus        string // in words: "No upload yet", "Succeeded", "Failed"
	UploadFailed        bool
	UploadFailureReason string
	// UploadFailedAt (formatted, and RFC 3339 in UploadFailedAtISO) and
	// UploadFailedBy say when and by whom the failed upload was made;
	// empty when unknown.
	UploadFailedAt    string
	UploadFailedAtISO string
	UploadFailedBy    string
	// UploadFailedFile is the refused file's name, empty when unknown
	// (an API upload).
	UploadFailedFile string
	// UploadFailureOld is true when the failure is old enough to be shown
	// as history rather than as the certificate's status.
	UploadFailureOld bool
	// UploadFailureInForm is true when the failure is the refusal the
	// upload form shows right now: Details then points there instead of
	// repeating it.
	UploadFailureInForm bool
	Pending             *PendingView // the latest pending CSR, nil if none
	// Renewing is true when a certificate is active (healthy or not) and a
	// CSR was made after the last change: a renewal is on its way, shown
	// beside the certificate's State.
	Renewing bool
	Form     UploadForm
	// ExpiresSoonDays is how many days before expiry the page turns to
	// "expires soon"; CSRLifetime, in words ("90 days"), how long a downloaded CSR's
	// certificate is accepted. Both come from the configuration.
	ExpiresSoonDays int
	CSRLifetime     string
	// VendorSigning is true when CSRs are signed with an MDM vendor
	// certificate, the only kind of request Apple's portal takes; false
	// when pushcert hands out the plain PEM CSR.
	VendorSigning bool
	// Delivery lists the configured delivery targets; nil when there are
	// none. (A pointer keeps StatusView comparable for the page cache.)
	Delivery *DeliverySection
	// ExportEnabled is true when an administrator may export the
	// certificate and its key (export is not turned off).
	ExportEnabled bool
	// Alerts is how alerts are set up and the last one sent; nil when the
	// page is built without them.
	Alerts *AlertsView
	// APNS is the last connection check against Apple's push service; nil
	// when the page is built without it.
	APNS *APNSView
}

// AlertsView is how alerts are set up, formatted for people.
type AlertsView struct {
	On          bool   // a webhook is configured
	WebhookHost string // only the host, never the URL's path or query
	Thresholds  string // "30, 14 and 7 days before expiry"; empty when none
	// LastSent is when the last alert was sent (formatted, and RFC 3339 in
	// LastSentISO), empty when none was; LastSentText what it said.
	LastSent     string
	LastSentISO  string
	LastSentText string
}

// CertificateView is the active certificate, formatted for people.
type CertificateView struct {
	Topic          string
	APSPName       string // the subject common name, APSP:<uuid>
	Serial         string
	Issuer         string
	Expiry         string // "2027-11-22 05:00 UTC"
	ExpiryISO      string // RFC 3339, for the <time> element
	ExpiryRelative string // "in 23 days", "today", "3 days ago"
	DaysLeft       int    // whole calendar days (UTC) until expiry; negative when past
	Expired        bool
}

// PendingView is the latest CSR handed out and not yet answered by a
// certificate.
type PendingView struct {
	Created      string // formatted time
	CreatedBy    string
	VendorSigned bool
}

// UploadForm is the state of the upload form: the values to show in it and,
// after a refusal, why.
type UploadForm struct {
	AppleID string // pre-filled: the current Apple ID, or what the user typed
	Version int64  // the certificate version the page was made from
	// Error is the refusal to show, empty when there is none.
	Error string
	// ErrorField names the refused input: "certificate" or "appleIdentifier".
	ErrorField string
	// ConfirmTopicChange shows the checkbox that allows replacing the
	// certificate with one for another topic.
	ConfirmTopicChange bool
}

func stateLabel(s State) string {
	switch s {
	case StateNotSetUp:
		return "Not set up"
	case StateWaiting:
		return "CSR downloaded, waiting for Apple's certificate"
	case StateActive:
		return "Active"
	case StateExpiresSoon:
		return "Expires soon"
	case StateExpired:
		return "Expired"
	default:
		return string(s)
	}
}

func doneMessage(d Done) string {
	switch d {
	case DoneUploaded:
		return "The certificate was uploaded and is now the active push certificate."
	case DoneAppleID:
		return "The Apple ID was saved."
	case DoneAlreadyActive:
		return "This certificate is already the active push certificate: it was not uploaded again, and nothing about it was recorded."
	case DoneAPNSCheck:
		return "The connection to Apple was tested: the result is under Connection to Apple."
	case DoneDelivery:
		return "Delivery started: every target is sent the active certificate again. Their status below updates as each one answers."
	default:
		return ""
	}
}

// fieldAttrs describes an input by its help text (the element with id
// help) and marks it when a refusal is about it. The refusal's text is
// then also in aria-describedby: aria-errormessage alone is announced by
// few screen readers, and axe-core counts it as valid only when the
// message is a live region or describes the field.
func fieldAttrs(f UploadForm, field, help string) templ.Attributes {
	if f.Error != "" && f.ErrorField == field {
		return templ.Attributes{
			"aria-describedby":  help + " upload-error",
			"aria-invalid":      "true",
			"aria-errormessage": "upload-error",
		}
	}
	return templ.Attributes{"aria-describedby": help}
}

func formatVersion(v int64) string { return strconv.FormatInt(v, 10) }
