package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/views"
)

// historyLimit is how many audit events the history page shows.
const historyLimit = 200

// A refused upload is status, in red, until a later upload succeeds (which
// clears it) or until uploadFailureAge has passed; after that the status
// page words it as history. failureSearchLimit is how many recent audit
// events are searched for the refusal's time and person: a refusal further
// back than that is history too.
const (
	uploadFailureAge   = 7 * 24 * time.Hour
	failureSearchLimit = 50
)

// Dashboard serves the read-only pages: the certificate's status and its
// history.
type Dashboard struct {
	log *slog.Logger
	svc *pushcert.Service
	dev bool
	now func() time.Time
	// deliv shows the delivery targets' status, mon the connection check;
	// nil shows none.
	deliv *delivery.Deliverer
	mon   *apns.Monitor
	// alerts is how alerts are set up; nil shows nothing about them.
	alerts *AlertsInfo
	// pages keeps rendered status pages (see statusPages).
	pages statusPages
}

// NewDashboard returns the dashboard pages over svc. dev shows the
// development-mode banner and navigation.
func NewDashboard(log *slog.Logger, svc *pushcert.Service, dev bool) *Dashboard {
	return &Dashboard{log: log, svc: svc, dev: dev, now: svc.Now}
}

// WithDelivery makes the status page show deliv's targets, and returns d.
func (d *Dashboard) WithDelivery(deliv *delivery.Deliverer) *Dashboard {
	d.deliv = deliv
	return d
}

// WithAPNS makes the status page show mon's last connection check, and
// returns d.
func (d *Dashboard) WithAPNS(mon *apns.Monitor) *Dashboard {
	d.mon = mon
	return d
}

// AlertsInfo is how alerts are set up, for the status page.
type AlertsInfo struct {
	// WebhookHost is the alert webhook's host, empty when alerts are off.
	// Only the host: the URL's path and query are the secret that lets
	// anyone post to the channel.
	WebhookHost string
	// Thresholds are the days before expiry an alert goes out.
	Thresholds []int
	// Sent reads the last alert sent; nil shows none.
	Sent AlertLog
}

// AlertLog reads the alerts sent; the SQLite and PostgreSQL stores
// implement it.
type AlertLog interface {
	LastSentAlert(ctx context.Context) (alert.Sent, bool, error)
}

// WithAlerts makes the status page show how alerts are set up and the
// last one sent, and returns d.
func (d *Dashboard) WithAlerts(a AlertsInfo) *Dashboard {
	d.alerts = &a
	return d
}

// Show handles GET /: the status page with the certificate's health, the
// next step, and for administrators the CSR and upload controls. The query
// done=uploaded or done=appleid, set by a successful upload's redirect,
// shows a confirmation.
func (d *Dashboard) Show(w http.ResponseWriter, r *http.Request) {
	done := parseDone(r)
	v, err := loadStatus(r, d.svc, statusSources{d.deliv, d.mon}, d.now())
	if err != nil {
		serverError(w, r, d.log, err)
		return
	}
	v.Done = done
	if v.Alerts, err = alertsView(r.Context(), d.alerts); err != nil {
		serverError(w, r, d.log, err)
		return
	}
	shell := newShell(r, d.dev, "Status")
	key := newStatusPageKey(shell, v)
	if page, ok := d.pages.get(key); ok {
		writePage(w, http.StatusOK, page)
		return
	}
	buf := getPageBuffer()
	defer putPageBuffer(buf)
	if err := views.StatusPage(shell, v).Render(r.Context(), buf); err != nil {
		serverError(w, r, d.log, fmt.Errorf("render page: %w", err))
		return
	}
	d.pages.put(key, bytes.Clone(buf.Bytes()))
	writePage(w, http.StatusOK, buf.Bytes())
}

// History handles GET /history: the audit events, newest first.
func (d *Dashboard) History(w http.ResponseWriter, r *http.Request) {
	events, err := d.svc.History(r.Context(), historyLimit)
	if err != nil {
		serverError(w, r, d.log, fmt.Errorf("read history: %w", err))
		return
	}
	v := views.HistoryView{Truncated: len(events) >= historyLimit}
	for _, e := range events {
		v.Rows = append(v.Rows, historyRow(e))
	}
	render(w, r, d.log, http.StatusOK, views.HistoryPage(newShell(r, d.dev, "History"), v))
}

// parseDone reads the confirmation a redirect asks for; anything unknown
// shows none.
func parseDone(r *http.Request) views.Done {
	switch d := views.Done(r.URL.Query().Get("done")); d {
	case views.DoneUploaded, views.DoneAppleID, views.DoneAlreadyActive, views.DoneDelivery, views.DoneAPNSCheck:
		return d
	default:
		return views.DoneNone
	}
}

// statusSources are what the status page shows besides the certificate:
// the delivery targets and the connection check, each nil when absent.
type statusSources struct {
	deliv *delivery.Deliverer
	mon   *apns.Monitor
}

// loadStatus reads what the status page shows. The upload handler uses it
// too, to show the page again with a refusal.
func loadStatus(r *http.Request, svc *pushcert.Service, src statusSources, now time.Time) (views.StatusView, error) {
	st, pending, err := svc.Status(r.Context())
	if err != nil {
		return views.StatusView{}, err
	}
	var failure *pushcert.Event
	if st.UploadStatus == pushcert.UploadFailed {
		// Only a failed status pays for this read: the state keeps the
		// reason, the audit event who refused upload it was and when.
		if failure, err = lastUploadFailure(r, svc); err != nil {
			return views.StatusView{}, err
		}
	}
	v := statusView(st, pending, failure, now, svc.ExpiresSoonDays(), svc.PendingKeyLifetimeText())
	if v.Delivery, err = deliveryViews(r, src.deliv); err != nil {
		return views.StatusView{}, err
	}
	if v.APNS, err = apnsView(r, src.mon); err != nil {
		return views.StatusView{}, err
	}
	v.ExportEnabled = src.deliv != nil && src.deliv.ExportEnabled()
	v.VendorSigning = svc.VendorSigning()
	return v, nil
}

// lastUploadFailure returns the newest refused upload among the recent
// audit events, or nil when it is further back.
func lastUploadFailure(r *http.Request, svc *pushcert.Service) (*pushcert.Event, error) {
	events, err := svc.History(r.Context(), failureSearchLimit)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	for i := range events {
		if events[i].Kind == pushcert.EventUploadFailed {
			return &events[i], nil
		}
	}
	return nil, nil
}

// statusView works out the status page from the state, the latest pending
// CSR (nil if none), the refused upload the state's failure comes from
// (nil if unknown or none) and the time.
func statusView(st pushcert.State, pending *pushcert.PendingKey, failure *pushcert.Event, now time.Time, expiresSoonDays int, csrLifetime string) views.StatusView {
	v := views.StatusView{
		AppleID:         st.AppleID,
		Form:            views.UploadForm{AppleID: st.AppleID, Version: st.Version},
		ExpiresSoonDays: expiresSoonDays,
		CSRLifetime:     csrLifetime,
	}
	if !st.LastModified.IsZero() {
		v.LastChange = formatTime(st.LastModified)
		v.LastChangeISO = isoTime(st.LastModified)
		v.LastChangeBy = actorLabel(st.LastModifiedBy)
	}
	switch st.UploadStatus {
	case pushcert.UploadSucceeded:
		v.UploadStatus = "Succeeded"
	case pushcert.UploadFailed:
		v.UploadStatus = "Failed"
		v.UploadFailed = true
		v.UploadFailureReason = sentence(st.UploadFailureReason)
		if failure != nil {
			v.UploadFailedAt = formatTime(failure.At)
			v.UploadFailedAtISO = isoTime(failure.At)
			v.UploadFailedBy = actorLabel(failure.Actor)
			v.UploadFailedFile = failure.FileName
		}
		v.UploadFailureOld = failure == nil || now.Sub(failure.At) >= uploadFailureAge
	default:
		v.UploadStatus = "No upload yet"
	}
	if pending != nil {
		v.Pending = &views.PendingView{
			Created:      formatTime(pending.CreatedAt),
			CreatedBy:    actorLabel(pending.CreatedBy),
			VendorSigned: pending.VendorSigned,
		}
	}

	c := st.Certificate
	if c != nil {
		days := c.DaysLeft(now)
		v.Certificate = &views.CertificateView{
			Topic:          c.Topic,
			APSPName:       c.CommonName,
			Serial:         c.SerialNumber,
			Issuer:         c.Issuer,
			Expiry:         formatTime(c.NotAfter),
			ExpiryISO:      isoTime(c.NotAfter),
			ExpiryRelative: relativeDays(days),
			DaysLeft:       days,
			Expired:        !now.Before(c.NotAfter),
		}
	}
	// A CSR made after the last change means an admin is on the way to
	// Apple's portal. Before the first certificate that is the state; with
	// a certificate it is shown beside the certificate's health, which the
	// renewal does not change until the renewed certificate is uploaded.
	renewing := pending != nil && c != nil && !pending.CreatedAt.Before(st.LastModified)
	v.Renewing = renewing
	switch {
	case c == nil && pending != nil:
		v.State = views.StateWaiting
	case c == nil:
		v.State = views.StateNotSetUp
	case v.Certificate.Expired:
		v.State = views.StateExpired
	case v.Certificate.DaysLeft <= expiresSoonDays:
		v.State = views.StateExpiresSoon
	default:
		v.State = views.StateActive
	}
	return v
}

// alertsView words how alerts are set up and the last one sent; nil when
// the page is built without them.
func alertsView(ctx context.Context, a *AlertsInfo) (*views.AlertsView, error) {
	if a == nil {
		return nil, nil
	}
	v := &views.AlertsView{On: a.WebhookHost != "", WebhookHost: a.WebhookHost, Thresholds: thresholdsText(a.Thresholds)}
	if a.Sent == nil {
		return v, nil
	}
	last, ok, err := a.Sent.LastSentAlert(ctx)
	if err != nil {
		return nil, fmt.Errorf("read last alert: %w", err)
	}
	if ok {
		v.LastSent = formatTime(last.At)
		v.LastSentISO = isoTime(last.At)
		// The payload is what pushcert sent; an unreadable one still has
		// its time.
		var body alert.Alert
		if json.Unmarshal(last.Payload, &body) == nil {
			v.LastSentText = sentence(body.Text)
		}
	}
	return v, nil
}

// thresholdsText says alert thresholds in words: "30, 14 and 7 days
// before expiry".
func thresholdsText(days []int) string {
	if len(days) == 0 {
		return ""
	}
	parts := make([]string, len(days))
	for i, d := range days {
		parts[i] = fmt.Sprint(d)
	}
	s := parts[len(parts)-1]
	if len(parts) > 1 {
		s = strings.Join(parts[:len(parts)-1], ", ") + " and " + s
	}
	unit := "days"
	if len(days) == 1 && days[0] == 1 {
		unit = "day"
	}
	return s + " " + unit + " before expiry"
}

// historyRow words an audit event for the history page.
func historyRow(e pushcert.Event) views.HistoryRow {
	row := views.HistoryRow{
		Kind:    string(e.Kind),
		Who:     actorLabel(e.Actor),
		When:    formatTime(e.At),
		WhenISO: e.At.UTC().Format(time.RFC3339),
		Serial:  e.Serial,
		Topic:   e.Topic,
		Detail:  sentence(e.Detail),
	}
	if e.FileName != "" {
		row.Detail += " File: " + e.FileName + "."
	}
	if !e.NotAfter.IsZero() {
		row.Expiry = formatTime(e.NotAfter)
	}
	switch e.Kind {
	case pushcert.EventCSRGenerated:
		row.What = "CSR generated"
	case pushcert.EventUploadSucceeded:
		row.What = "Certificate uploaded and made active"
	case pushcert.EventUploadFailed:
		row.What = "Upload refused"
		row.Failure = true
	case pushcert.EventAppleIDChanged:
		row.What = "Apple ID changed"
	case pushcert.EventKeysRotated:
		row.What = "Private keys re-encrypted"
	case pushcert.EventDelivered:
		row.What = "Delivered to an MDM server"
	case pushcert.EventDeliveryFailed:
		row.What = "Delivery failed"
		row.Failure = true
	case pushcert.EventDeliveryRequested:
		row.What = "Delivery asked for"
	case pushcert.EventDeliveryOutOfSync:
		row.What = "MDM server out of sync"
		row.Failure = true
	case pushcert.EventKeyExported:
		row.What = "Certificate and private key exported"
	case pushcert.EventAPNSAccepted:
		row.What = "Apple accepted the certificate"
	case pushcert.EventAPNSRejected:
		row.What = "Apple refused the certificate"
		row.Failure = true
	case pushcert.EventAPNSUnreachable:
		row.What = "Apple's push service out of reach"
		row.Failure = true
	case pushcert.EventAPNSAlertRejected:
		row.What = "Alert: Apple refuses the certificate"
		row.Failure = true
	case pushcert.EventAPNSAlertUnreachable:
		row.What = "Alert: Apple's push service out of reach"
		row.Failure = true
	case pushcert.EventSessionRevoked:
		row.What = "Session signed out by an administrator"
	default:
		row.What = string(e.Kind)
	}
	return row
}

// formatTime shows a time the way every page does: UTC, to the minute.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02 15:04") + " UTC"
}

// isoTime is a time for a <time datetime> attribute: RFC 3339 in UTC.
func isoTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// relativeDays says a day difference in words: "in 23 days", "today",
// "3 days ago".
func relativeDays(days int) string {
	switch {
	case days == 0:
		return "today"
	case days == 1:
		return "tomorrow"
	case days == -1:
		return "yesterday"
	case days > 0:
		return fmt.Sprintf("in %d days", days)
	default:
		return fmt.Sprintf("%d days ago", -days)
	}
}

// actorLabel names who did something, for pages.
func actorLabel(u auth.User) string {
	if l := u.Label(); l != "" {
		return l
	}
	return "unknown"
}

// sentence makes a message from the service (written in lowercase and
// without a final stop, to be embedded in others) stand on its own on a
// page: a capital letter first and a full stop last.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	if r, n := utf8.DecodeRuneInString(s); unicode.IsLower(r) {
		s = string(unicode.ToUpper(r)) + s[n:]
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}
