package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/session"
	"github.com/pushcert/pushcert/views"
)

// Sessions shows admins who is signed in to the console and signs
// sessions out.
type Sessions struct {
	log *slog.Logger
	m   *session.Manager
	dev bool
}

// NewSessions returns the sessions pages over m.
func NewSessions(log *slog.Logger, m *session.Manager, dev bool) *Sessions {
	return &Sessions{log: log, m: m, dev: dev}
}

// Show handles GET /sessions: the live sessions, the admin's own marked.
func (h *Sessions) Show(w http.ResponseWriter, r *http.Request) {
	list, err := h.m.Active(r.Context())
	if err != nil {
		serverError(w, r, h.log, err)
		return
	}
	current := session.CurrentFrom(r.Context())
	v := views.SessionsView{
		Revoked:  r.URL.Query().Get("done") == "revoked",
		Lifetime: spanWords(h.m.Lifetime()),
		CacheFor: spanWords(session.CacheFor),
	}
	if idle := h.m.IdleTimeout(); idle > 0 {
		v.IdleTimeout = spanWords(idle)
	}
	for _, s := range list {
		v.Rows = append(v.Rows, views.SessionRow{
			Handle: s.Handle, Who: s.User.Label(), Role: s.User.Role,
			Since: formatTime(s.CreatedAt), LastSeen: formatTime(s.LastSeen), Expires: formatTime(s.ExpiresAt),
			Client: s.Client, Address: s.Address, Current: current != "" && s.Handle == current,
		})
	}
	render(w, r, h.log, http.StatusOK, views.SessionsPage(newShell(r, h.dev, "Sessions"), v))
}

// Revoke handles POST /sessions/{handle}/revoke: the session ends on
// every replica and the audit history records who ended it. The form is
// protected from other sites by the cross-origin middleware.
func (h *Sessions) Revoke(w http.ResponseWriter, r *http.Request) {
	by, _ := auth.UserFrom(r.Context())
	if _, err := h.m.Revoke(r.Context(), r.PathValue("handle"), by); err != nil {
		pageError(w, r, h.log, h.dev, fmt.Errorf("sign a session out: %w", err))
		return
	}
	http.Redirect(w, r, "/sessions?done=revoked", http.StatusSeeOther)
}

// spanWords says a session's span in hours when whole, else as
// durationWords does: "8 hours", "90 minutes", "5 seconds".
func spanWords(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "1 hour"
	case d > time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return durationWords(d)
}
