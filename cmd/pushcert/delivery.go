package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/target"
)

// newDeliverer returns the Deliverer of the targets the delivery
// configuration lists (none without one). A configuration that does not
// load stops startup: a target silently left out would never get the
// certificate. Only names and destinations are logged, never secrets.
func newDeliverer(cfg *config, log *slog.Logger, st *store.DB, getenv func(string) string, now func() time.Time) (*delivery.Deliverer, error) {
	var targets []delivery.Target
	if cfg.DeliveryConfigFile != "" {
		loaded, err := target.Load(cfg.DeliveryConfigFile, getenv)
		if err != nil {
			return nil, fmt.Errorf("delivery-config %s: %w", cfg.DeliveryConfigFile, err)
		}
		var names []string
		for _, t := range loaded {
			targets = append(targets, t)
			names = append(names, t.Name()+" ("+delivery.Describe(t)+")")
		}
		log.Info("delivery on", "targets", strings.Join(names, ", "), "interval", cfg.DeliveryInterval.String())
	} else if cfg.Dev {
		// Development mode shows delivery at work without an MDM server:
		// the development certificates go to a folder of its own.
		t, err := devFolderTarget(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
		log.Info("delivery to a development folder (set PUSHCERT_DELIVERY_CONFIG for real targets)", "dir", t.Describe())
	} else {
		log.Info("delivery off: no delivery targets configured (set PUSHCERT_DELIVERY_CONFIG)")
	}
	alertAfter := cfg.DeliveryAlertAfter
	if alertAfter == 0 {
		alertAfter = -1 // the setting's 0 means never
	}
	return delivery.New(log, st, targets, delivery.Config{
		Interval:       cfg.DeliveryInterval,
		AlertAfter:     alertAfter,
		ExportDisabled: cfg.ExportDisabled,
		Now:            now,
	}), nil
}

// devFolderTarget is development mode's delivery target: the folder
// dev-delivery in the data folder, readable by its owner only.
func devFolderTarget(dataDir string) (*target.Folder, error) {
	dir := filepath.Join(dataDir, "dev-delivery")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("development delivery folder: %w", err)
	}
	return target.NewFolder(target.FolderOptions{Name: "dev-folder", Dir: dir})
}

// startBackground runs run in the background until the returned stop is
// called. Like the alert checker, it outlives ctx until the server has
// drained; stop is called before the store closes.
func startBackground(ctx context.Context, run func(context.Context)) (stop func()) {
	bgCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		run(bgCtx)
	}()
	return func() {
		cancel()
		<-done
	}
}
