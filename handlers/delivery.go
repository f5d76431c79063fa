package handlers

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/views"
)

// Delivery serves "Deliver now" and pushcert's own delivery API, which
// lives outside the device-management resource.
type Delivery struct {
	log   *slog.Logger
	deliv *delivery.Deliverer
	dev   bool
}

// NewDelivery returns the delivery handlers over deliv.
func NewDelivery(log *slog.Logger, deliv *delivery.Deliverer, dev bool) *Delivery {
	return &Delivery{log: log, deliv: deliv, dev: dev}
}

// DeliverNow handles POST /deliveries, the status page's "Deliver now":
// every target is sent the active certificate again, in the background,
// and the page shows their status as they answer.
func (h *Delivery) DeliverNow(w http.ResponseWriter, r *http.Request) {
	u, _ := auth.UserFrom(r.Context())
	if err := h.deliv.Request(r.Context(), u); err != nil {
		pageError(w, r, h.log, h.dev, fmt.Errorf("deliver now: %w", err))
		return
	}
	http.Redirect(w, r, "/?done="+string(views.DoneDelivery), http.StatusSeeOther)
}

// apiDeliveries is the JSON of GET /api/pushcert/deliveries.
type apiDeliveries struct {
	// ActiveSerial is the active certificate's serial, "" when none.
	ActiveSerial string              `json:"activeSerialNumber"`
	Targets      []apiDeliveryTarget `json:"targets"`
}

// apiDeliveryTarget is one target; times are RFC 3339 in UTC, null when
// they never happened. It never holds the target's secret.
type apiDeliveryTarget struct {
	Name            string     `json:"name"`
	Kind            string     `json:"kind"`
	Destination     string     `json:"destination"`
	InSync          bool       `json:"inSync"`
	State           string     `json:"state"`
	DeliveredSerial string     `json:"deliveredSerialNumber"`
	DeliveredAt     *time.Time `json:"deliveredDateTime"`
	LastAttemptAt   *time.Time `json:"lastAttemptDateTime"`
	LastResult      string     `json:"lastResult"` // "succeeded", "failed" or "none"
	LastError       string     `json:"lastError"`
	Failures        int        `json:"failedAttempts"`
	NextAttemptAt   *time.Time `json:"nextAttemptDateTime"`
	OutOfSyncSince  *time.Time `json:"outOfSyncSinceDateTime"`
}

// Status handles GET /api/pushcert/deliveries: every configured target's
// status, for viewers.
func (h *Delivery) Status(w http.ResponseWriter, r *http.Request) {
	h.writeStatus(w, r, http.StatusOK)
}

// Deliver handles POST /api/pushcert/deliveries, the API's "Deliver now",
// for admins: 202 with the status at the moment of asking; GET the status
// again to see each target answer.
func (h *Delivery) Deliver(w http.ResponseWriter, r *http.Request) {
	u, _ := auth.UserFrom(r.Context())
	if err := h.deliv.Request(r.Context(), u); err != nil {
		writeAPIErrorFor(w, r, h.log, fmt.Errorf("deliver now: %w", err))
		return
	}
	h.writeStatus(w, r, http.StatusAccepted)
}

func (h *Delivery) writeStatus(w http.ResponseWriter, r *http.Request, status int) {
	targets, serial, err := h.deliv.Status(r.Context())
	if err != nil {
		apiServerError(w, r, h.log, fmt.Errorf("read delivery status: %w", err))
		return
	}
	out := apiDeliveries{ActiveSerial: serial, Targets: []apiDeliveryTarget{}}
	for _, t := range targets {
		out.Targets = append(out.Targets, apiDeliveryTarget{
			Name: t.Name, Kind: t.Kind, Destination: t.Destination, InSync: t.InSync,
			State:           string(deliveryState(t, serial != "")),
			DeliveredSerial: t.DeliveredSerial, DeliveredAt: timeOrNil(t.DeliveredAt),
			LastAttemptAt: timeOrNil(t.LastAttemptAt), LastResult: lastResult(t), LastError: t.LastError,
			Failures: t.Failures, NextAttemptAt: timeOrNil(t.NextAttemptAt), OutOfSyncSince: timeOrNil(t.OutOfSyncSince),
		})
	}
	writeJSON(w, status, out)
}

func lastResult(t delivery.TargetStatus) string {
	switch {
	case t.LastAttemptAt.IsZero():
		return "none"
	case t.LastError != "":
		return "failed"
	default:
		return "succeeded"
	}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// deliveryState is how t stands with the active certificate.
func deliveryState(t delivery.TargetStatus, haveCert bool) views.DeliveryState {
	switch {
	case !haveCert:
		return views.DeliveryNothing
	case t.InSync:
		return views.DeliveryInSync
	case t.LastError != "":
		return views.DeliveryOutOfSync
	default:
		return views.DeliveryPending
	}
}

// deliveryViews formats the targets' status for the status page; nil
// deliv (handlers built without delivery) shows none.
func deliveryViews(r *http.Request, deliv *delivery.Deliverer) (*views.DeliverySection, error) {
	if deliv == nil || len(deliv.Targets()) == 0 {
		return nil, nil
	}
	targets, serial, err := deliv.Status(r.Context())
	if err != nil {
		return nil, fmt.Errorf("read delivery status: %w", err)
	}
	var out []views.DeliveryView
	for _, t := range targets {
		v := views.DeliveryView{
			Name: t.Name, KindLabel: t.KindLabel, Destination: t.Destination,
			State: deliveryState(t, serial != ""), DeliveredSerial: t.DeliveredSerial, LastError: t.LastError,
		}
		if !t.DeliveredAt.IsZero() {
			v.DeliveredAt = formatTime(t.DeliveredAt)
		}
		if !t.LastAttemptAt.IsZero() {
			v.LastAttempt = formatTime(t.LastAttemptAt)
		}
		if t.LastError != "" && !t.NextAttemptAt.IsZero() {
			v.NextAttempt = formatTime(t.NextAttemptAt)
		}
		if !t.OutOfSyncSince.IsZero() && !t.InSync {
			v.OutOfSyncSince = formatTime(t.OutOfSyncSince)
		}
		out = append(out, v)
	}
	return &views.DeliverySection{Targets: out}, nil
}
