package handlers

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// readyTimeout bounds the database check of one readiness probe.
const readyTimeout = 2 * time.Second

// Healthz handles GET /healthz: it answers 200 "ok" while the process
// serves requests. It checks nothing else, so a slow database does not get
// a healthy process restarted.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	writeProbe(w, http.StatusOK, "ok")
}

// ReadyStore is what the readiness probe asks of the database: to answer,
// and to hold no private key the configured key-encryption secrets cannot
// open.
type ReadyStore interface {
	Ping(ctx context.Context) error
	UnreadableKeys(ctx context.Context) (int, error)
}

// Health answers the readiness probe.
type Health struct {
	log                *slog.Logger
	db                 ReadyStore
	providerDiscovered func() bool
}

// NewHealth returns the readiness probe over db. providerDiscovered reports
// whether the OpenID provider's configuration was read.
func NewHealth(log *slog.Logger, db ReadyStore, providerDiscovered func() bool) *Health {
	return &Health{log: log, db: db, providerDiscovered: providerDiscovered}
}

// Ready handles GET /readyz: 200 "ready" when the database answers within
// two seconds, every private key stored in it opens with the configured
// key-encryption secrets (another replica may have rotated them to a
// secret this one lacks) and the OpenID provider was discovered, 503 with
// a short reason otherwise, so a load balancer stops sending requests to a replica
// that cannot serve them. The reason never carries the error's text, which
// may name hosts and users; the log has it.
func (h *Health) Ready(w http.ResponseWriter, r *http.Request) {
	if !h.providerDiscovered() {
		writeProbe(w, http.StatusServiceUnavailable, "not ready: openid provider not discovered")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		h.log.Warn("not ready: database unreachable", "err", err)
		writeProbe(w, http.StatusServiceUnavailable, "not ready: database unreachable")
		return
	}
	n, err := h.db.UnreadableKeys(ctx)
	if err != nil {
		h.log.Warn("not ready: database unreachable", "err", err)
		writeProbe(w, http.StatusServiceUnavailable, "not ready: database unreachable")
		return
	}
	if n > 0 {
		h.log.Warn("not ready: stored private keys do not open with the key-encryption secrets", "keys", n)
		keys := fmt.Sprintf("%d stored private keys do", n)
		if n == 1 {
			keys = "1 stored private key does"
		}
		writeProbe(w, http.StatusServiceUnavailable, "not ready: "+keys+" not open with the configured key-encryption secrets")
		return
	}
	writeProbe(w, http.StatusOK, "ready")
}

func writeProbe(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
