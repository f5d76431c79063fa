package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/webhook"
)

// newChecker returns the alert checker over st, delivering to the
// configured webhook, if any.
func newChecker(cfg *config, log *slog.Logger, st *store.DB, now func() time.Time) (*alert.Checker, error) {
	notifier, err := newNotifier(cfg, log)
	if err != nil {
		return nil, err
	}
	return alert.NewChecker(log, st, notifier, alert.Config{
		Thresholds: cfg.AlertThresholds,
		Interval:   cfg.AlertInterval,
		ConsoleURL: cfg.BaseURL,
		Now:        now,
	}), nil
}

// newNotifier returns the webhook alerts go to, or nil when none is
// configured. Only the webhook's host is logged: its path and query are
// the secret that lets anyone post to the channel.
func newNotifier(cfg *config, log *slog.Logger) (alert.Notifier, error) {
	if cfg.AlertWebhookURL == "" {
		log.Info("alerts off: no alert webhook configured")
		return nil, nil
	}
	wh, err := webhook.New(cfg.AlertWebhookURL, nil)
	if err != nil {
		return nil, err
	}
	log.Info("alerts on", "webhook_host", wh.Host(), "thresholds_days", fmt.Sprint(cfg.AlertThresholds), "interval", cfg.AlertInterval.String())
	return wh, nil
}

// alertsInfo is how alerts are set up, for the status page: only the
// webhook's host is shown, as only it is logged.
func alertsInfo(cfg *config, st *store.DB) (handlers.AlertsInfo, error) {
	a := handlers.AlertsInfo{Thresholds: cfg.AlertThresholds, Sent: st}
	if cfg.AlertWebhookURL != "" {
		wh, err := webhook.New(cfg.AlertWebhookURL, nil)
		if err != nil {
			return handlers.AlertsInfo{}, err
		}
		a.WebhookHost = wh.Host()
	}
	return a, nil
}

// pokingStore is the store the service writes through. After every write
// it pokes the alert checker, which never waits, so that the new audit
// event is logged and a refused upload alerted within moments rather than
// at the next interval, and never by the request itself. After an
// activation it also pokes the deliverer, so the new certificate reaches
// the delivery targets within moments.
type pokingStore struct {
	*store.DB
	poke      func()
	activated func()
}

func (s pokingStore) AddPendingKey(ctx context.Context, k pushcert.PendingKey, e pushcert.Event) error {
	defer s.poke()
	return s.DB.AddPendingKey(ctx, k, e)
}

func (s pokingStore) Activate(ctx context.Context, a pushcert.Activation) (pushcert.State, error) {
	defer s.poke()
	st, err := s.DB.Activate(ctx, a)
	if err == nil {
		s.activated()
	}
	return st, err
}

func (s pokingStore) RecordUploadFailure(ctx context.Context, expectVersion int64, reason string, e pushcert.Event) (pushcert.State, error) {
	defer s.poke()
	return s.DB.RecordUploadFailure(ctx, expectVersion, reason, e)
}

func (s pokingStore) SetAppleID(ctx context.Context, expectVersion int64, appleID string, e pushcert.Event) (pushcert.State, error) {
	defer s.poke()
	return s.DB.SetAppleID(ctx, expectVersion, appleID, e)
}

func (s pokingStore) RotateKeys(ctx context.Context, e pushcert.Event) (int, error) {
	defer s.poke()
	return s.DB.RotateKeys(ctx, e)
}
