package main

import (
	"context"
	"crypto/x509"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/web"
)

// newHandler assembles the application, pages and API: the certificate
// service over st, which pokes checker after every write, and sign-in at
// the configured OpenID provider, discovered once here.
// outbound are the background workers that act on the certificate: the
// alert checker, the deliverer and the connection check.
type outbound struct {
	checker   *alert.Checker
	deliverer *delivery.Deliverer
	monitor   *apns.Monitor
}

// activated is what an activation sets off: the delivery and the check of
// the new certificate.
func (o outbound) activated() {
	o.deliverer.Poke()
	o.monitor.Poke()
}

func newHandler(ctx context.Context, cfg *config, log *slog.Logger, st *store.DB, out outbound, sign *signing, devCA *applesim.CA, now func() time.Time) (http.Handler, error) {
	svc := newService(cfg, pokingStore{DB: st, poke: out.checker.Poke, activated: out.activated}, sign, devCA, now)
	authn, err := web.NewAuthenticator(ctx, log, web.AuthConfig{
		Issuer:          cfg.OIDCIssuer,
		ClientID:        cfg.OIDCClientID,
		ClientSecret:    cfg.OIDCClientSecret,
		Audience:        cfg.OIDCAudience,
		Scopes:          cfg.OIDCScopes,
		BaseURL:         cfg.BaseURL,
		GroupsClaim:     cfg.GroupsClaim,
		AdminGroups:     cfg.AdminGroups,
		ViewerGroups:    cfg.ViewerGroups,
		ExportGroups:    cfg.ExportGroups,
		ExportSignInAge: cfg.ExportSignInAge,
		SessionSecret:   cfg.SessionSecret,
		SessionLifetime: cfg.SessionLifetime,
		IdleTimeout:     cfg.SessionIdleTimeout,
		Sessions:        st,
		SecureCookies:   !cfg.Dev,
		Dev:             cfg.Dev,
		Now:             now,
	})
	if err != nil {
		return nil, err
	}
	alerts, err := alertsInfo(cfg, st)
	if err != nil {
		return nil, err
	}
	ops := web.NewOps(log, st, cfg.MetricsToken).WithAlerts(alerts)
	return web.NewServer(log, authn, svc, out.deliverer, out.monitor, ops, cfg.BaseURL, cfg.Organization, devCA), nil
}

// newService builds the certificate service over st with the configured
// vendor signing and trusted issuers, and in development mode the CA that
// plays Apple.
func newService(cfg *config, st pushcert.Store, s *signing, devCA *applesim.CA, now func() time.Time) *pushcert.Service {
	roots := s.roots
	if devCA != nil {
		if roots == nil {
			roots = x509.NewCertPool()
		}
		roots.AddCert(devCA.Cert)
	}
	return pushcert.NewService(st, pushcert.Config{
		Organization:       cfg.Organization,
		Vendor:             s.vendor,
		TrustRoots:         roots,
		TrustIntermediates: s.intermediates,
		AllowAnyIssuer:     cfg.AllowAnyIssuer,
		ExpiresSoonDays:    firstAlertDays(cfg.AlertThresholds),
		Now:                now,
	})
}

// firstAlertDays is the largest alert threshold: the status page says
// "expires soon" from the day the first alert goes out. 0 (the service's
// default) without thresholds.
func firstAlertDays(thresholds []int) int {
	if len(thresholds) == 0 {
		return 0
	}
	return slices.Max(thresholds)
}
