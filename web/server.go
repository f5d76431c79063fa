// Package web assembles pushcert's HTTP application: routes, middleware,
// OpenID Connect sign-in with sessions kept in the database, bearer tokens
// for the API, and roles.
package web

import (
	"log/slog"
	"net/http"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// NewServer returns the whole application, pages and API, as one
// http.Handler. ops serves readiness and metrics and counts every request.
// devCA is non-nil only in development mode, where it adds the page that
// plays Apple's portal.
func NewServer(log *slog.Logger, authn *Authenticator, svc *pushcert.Service, deliv *delivery.Deliverer, mon *apns.Monitor, ops *Ops, baseURL, org string, devCA *applesim.CA) http.Handler {
	dev := devCA != nil
	mux := http.NewServeMux()
	addRoutes(mux, authn, ops.WithDelivery(deliv).WithAPNS(mon), routeHandlers{
		dashboard:   withAlerts(handlers.NewDashboard(log, svc, dev).WithDelivery(deliv).WithAPNS(mon), ops.alerts),
		certificate: handlers.NewCertificate(log, svc, org, dev).WithDelivery(deliv).WithAPNS(mon),
		delivery:    handlers.NewDelivery(log, deliv, dev),
		apns:        newAPNS(log, mon, dev),
		export:      handlers.NewExport(log, svc, deliv, dev, authn.exportSignInAge),
		sessions:    handlers.NewSessions(log, authn.sessions.m, dev),
		api:         handlers.NewAPI(log, svc, baseURL),
		notFound:    handlers.NotFound(log, dev),
		devApple:    newDevApple(log, svc, devCA),
		// The Authenticator exists only once discovery succeeded.
		health: handlers.NewHealth(log, ops.db, func() bool { return authn.provider != nil }),
	})
	var h http.Handler = mux
	h = authn.loadUser(h)
	h = methodOverride(log, dev, authn.identify, h)
	h = crossOriginProtection(log, dev, h)
	h = securityHeaders(authn.formTargets(), isHTTPS(baseURL), h)
	h = logRequests(log, ops, h)
	return recoverPanics(log, dev, h)
}

// routeHandlers are the handler types addRoutes wires; devApple is nil
// outside development mode.
type routeHandlers struct {
	dashboard   *handlers.Dashboard
	certificate *handlers.Certificate
	delivery    *handlers.Delivery
	apns        *handlers.APNS
	export      *handlers.Export
	sessions    *handlers.Sessions
	api         *handlers.API
	notFound    http.Handler
	devApple    *handlers.DevApple
	health      *handlers.Health
}

// newAPNS is the connection check's handlers, nil without a Monitor.
func newAPNS(log *slog.Logger, mon *apns.Monitor, dev bool) *handlers.APNS {
	if mon == nil {
		return nil
	}
	return handlers.NewAPNS(log, mon, dev)
}

func newDevApple(log *slog.Logger, svc *pushcert.Service, ca *applesim.CA) *handlers.DevApple {
	if ca == nil {
		return nil
	}
	return handlers.NewDevApple(log, svc, ca)
}

// recordRoute wraps a registered handler so that it notes the pattern the
// mux matched (r.Pattern, set on the request the mux hands over) for the
// request log line and the metrics. Doing it inside the matched handler
// keeps routing to one match per request.
func recordRoute(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).route = r.Pattern
		h.ServeHTTP(w, r)
	})
}
