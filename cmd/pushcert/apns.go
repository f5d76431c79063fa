package main

import (
	"crypto/x509"
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
// against Apple's push service, and what stops it. In development mode the
// service is a fake one on loopback that trusts the development CA, as
// Apple trusts its own: the check of a certificate issued on the Dev Apple
// page is then accepted.
func newMonitor(cfg *config, log *slog.Logger, st *store.DB, devCA *applesim.CA, now func() time.Time) (*apns.Monitor, func(), error) {
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
