package handlers

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/views"
)

// APNS serves the connection check against Apple's push service: the
// status page's "Test connection to Apple" and pushcert's own API for it.
type APNS struct {
	log *slog.Logger
	mon *apns.Monitor
	dev bool
}

// NewAPNS returns the connection-check handlers over mon.
func NewAPNS(log *slog.Logger, mon *apns.Monitor, dev bool) *APNS {
	return &APNS{log: log, mon: mon, dev: dev}
}

// CheckNow handles POST /apns-check, the status page's "Test connection to
// Apple": it checks the active certificate now (at most about ten
// seconds) and shows the status page with the result.
func (h *APNS) CheckNow(w http.ResponseWriter, r *http.Request) {
	u, _ := auth.UserFrom(r.Context())
	if _, err := h.mon.CheckNow(r.Context(), u); err != nil {
		pageError(w, r, h.log, h.dev, fmt.Errorf("check connection: %w", err))
		return
	}
	http.Redirect(w, r, "/?done="+string(views.DoneAPNSCheck)+"#apns-heading", http.StatusSeeOther)
}

// apnsCheck is the JSON of pushcert's connection-check API. Times are
// RFC 3339 in UTC, null when they never happened.
type apnsCheck struct {
	Outcome      string     `json:"outcome"` // "accepted", "rejected", "unreachable", or "none" before the first check
	Message      string     `json:"message"`
	CheckedAt    *time.Time `json:"checkedDateTime"`
	Serial       string     `json:"serialNumber"`
	Topic        string     `json:"topicIdentifier"`
	Server       string     `json:"server"`
	HTTPStatus   int        `json:"httpStatus"`
	Reason       string     `json:"reason"`
	CheckedBy    string     `json:"checkedBy"`
	ForActive    bool       `json:"forActiveCertificate"`
	TopicMatches bool       `json:"topicMatchesActive"`
	Since        *time.Time `json:"outcomeSinceDateTime"`
	NextCheckAt  *time.Time `json:"nextCheckDateTime"`
}

// Last handles GET /api/pushcert/apns-check: the last check's result, for
// viewers.
func (h *APNS) Last(w http.ResponseWriter, r *http.Request) {
	last, err := h.mon.Last(r.Context())
	if err != nil {
		apiServerError(w, r, h.log, fmt.Errorf("read connection check: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, apnsJSON(last))
}

// Check handles POST /api/pushcert/apns-check, for admins: it checks the
// active certificate now and answers with the result (200 whatever the
// outcome; 409 when there is no certificate).
func (h *APNS) Check(w http.ResponseWriter, r *http.Request) {
	u, _ := auth.UserFrom(r.Context())
	if _, err := h.mon.CheckNow(r.Context(), u); err != nil {
		writeAPIErrorFor(w, r, h.log, fmt.Errorf("check connection: %w", err))
		return
	}
	h.Last(w, r)
}

func apnsJSON(l apns.LastResult) apnsCheck {
	out := apnsCheck{
		Outcome: string(l.Outcome), Message: l.Message, CheckedAt: timeOrNil(l.At), Serial: l.Serial, Topic: l.Topic,
		Server: l.Server, HTTPStatus: l.HTTPStatus, Reason: l.Reason, ForActive: l.ForActive, TopicMatches: l.TopicMatches,
		Since: timeOrNil(l.Since), NextCheckAt: timeOrNil(l.NextCheckAt),
	}
	if out.Outcome == "" {
		out.Outcome = "none"
	}
	if l.Outcome != apns.OutcomeNone {
		out.CheckedBy = checkedBy(l.By)
	}
	return out
}

// checkedBy names who asked for a check: a person, or pushcert itself.
func checkedBy(u auth.User) string {
	if u.Subject == "" || u.Subject == apns.System.Subject {
		return "pushcert"
	}
	return actorLabel(u)
}

// writeJSON answers with v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apnsView formats the last check for the status page; nil mon (handlers
// built without the check) shows none.
func apnsView(r *http.Request, mon *apns.Monitor) (*views.APNSView, error) {
	if mon == nil {
		return nil, nil
	}
	l, err := mon.Last(r.Context())
	if err != nil {
		return nil, fmt.Errorf("read connection check: %w", err)
	}
	v := &views.APNSView{
		Outcome: string(l.Outcome), Label: l.Outcome.Label(), Message: l.Message, Serial: l.Serial,
		Server: l.Server, ForActive: l.ForActive, TopicMatches: l.TopicMatches || l.Outcome == apns.OutcomeNone,
		Checking: l.Checking, Every: everyText(mon.Interval()),
	}
	if l.Outcome == apns.OutcomeNone {
		v.Outcome = "none"
	} else {
		v.CheckedAt, v.CheckedAtISO, v.CheckedBy = formatTime(l.At), l.At.UTC().Format(time.RFC3339), checkedBy(l.By)
	}
	if !l.NextCheckAt.IsZero() {
		v.NextCheck = formatTime(l.NextCheckAt)
	}
	return v, nil
}

// everyText words the periodic check's interval for the status page:
// "every day", "every 6 hours"; "" when the periodic check is off.
func everyText(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d <= 0:
		return ""
	case d == day:
		return "every day"
	case d%day == 0:
		return fmt.Sprintf("every %d days", d/day)
	case d == time.Hour:
		return "every hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("every %d hours", d/time.Hour)
	default:
		return "every " + d.String()
	}
}
