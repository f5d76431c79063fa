package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/store"
)

// newMonitor returns the connection check of the active certificate
// against Apple's push service, and what stops it. onAlert is called when
// the check raises an alert: the alert checker's Poke, so the webhook
// hears of it at once. In development mode the service is a fake one on
// loopback that trusts the development CA, as Apple trusts its own: the
// check of a certificate issued on the Dev Apple page is then accepted.
func newMonitor(cfg *config, log *slog.Logger, st *store.DB, devCA *applesim.CA, now func() time.Time, onAlert func()) (*apns.Monitor, func(), error) {
	cc := apns.CheckerConfig{URL: cfg.APNSURL, Now: now}
	closeFake := func() {}
	switch {
	case devCA != nil:
		fake, err := apnstest.New(devCA.Cert, now)
		if err != nil {
			return nil, nil, fmt.Errorf("development push service: %w", err)
		}
		cc.URL, cc.RootCAs, closeFake = fake.URL(), fake.RootCAs(), fake.Close
	case cfg.APNSCAFile != "":
		roots, err := rootsWith(cfg.APNSCAFile)
		if err != nil {
			return nil, nil, err
		}
		cc.RootCAs = roots
	}
	checker, err := apns.NewChecker(cc)
	if err != nil {
		closeFake()
		return nil, nil, fmt.Errorf("apns-url: %w", err)
	}
	alertAfter := cfg.APNSUnreachableAlertAfter
	if alertAfter == 0 {
		alertAfter = -1 // the setting's 0 means never
	}
	mon := apns.New(log, st, checker, apns.Config{
		Interval:              cfg.APNSCheckInterval,
		UnreachableAlertAfter: alertAfter,
		OnAlert:               onAlert,
		Now:                   now,
	})
	log.Info("connection check", "apns_url", checker.URL(), "interval", cfg.APNSCheckInterval.String())
	return mon, closeFake, nil
}

// rootsWith is the system's roots and the certificates of the PEM file at
// path.
func rootsWith(path string) (*x509.CertPool, error) {
	roots, err := x509.SystemCertPool()
	if err != nil {
		roots = x509.NewCertPool()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apns-ca-file: %w", err)
	}
	if !roots.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("apns-ca-file %s: no PEM certificate in it", path)
	}
	return roots, nil
}

// Bounds of PUSHCERT_APNS_CHECK_INTERVAL besides 0 (off). Each periodic
// check is a connection to Apple with the push certificate: more often
// than hourly would only add load on Apple's service, and the check after
// every upload and on demand does not wait for the interval.
const (
	minCheckInterval = time.Hour
	maxCheckInterval = 30 * 24 * time.Hour
)

// checkInterval reads PUSHCERT_APNS_CHECK_INTERVAL into p: 0 turns the
// periodic check off, anything else is between minCheckInterval and
// maxCheckInterval.
func checkInterval(p *time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d != 0 && (d < minCheckInterval || d > maxCheckInterval) {
			return errors.New("want 0s (off) or a duration between 1h and 720h, like 24h")
		}
		*p = d
		return nil
	}
}
