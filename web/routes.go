package web

import (
	"net/http"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/static"
)

// apiPrefixes are the versions the JSON API is served under, as the
// device-management API it mirrors serves both.
var apiPrefixes = []string{"/v1.0", "/beta"}

// addRoutes is the complete URL map of the application.
func addRoutes(serveMux *http.ServeMux, authn *Authenticator, ops *Ops, h routeHandlers) {
	mux := routes{serveMux}
	// Static files and health probes (public).
	mux.Handle("GET /static/", staticFiles())
	mux.HandleFunc("GET /healthz", handlers.Healthz)
	mux.HandleFunc("GET /readyz", h.health.Ready)

	// Prometheus metrics (public, or with the metrics bearer token).
	mux.HandleFunc("GET /metrics", ops.serveMetrics)

	// Sign-in flow (public).
	mux.HandleFunc("GET /login", authn.login)
	mux.HandleFunc("GET /auth/callback", authn.callback)
	mux.HandleFunc("POST /logout", authn.logout)
	mux.HandleFunc("GET /signed-out", authn.signedOut)

	// Certificate pages: viewers read, admins change.
	mux.Handle("GET /{$}", authn.viewer(h.dashboard.Show))
	mux.Handle("GET /history", authn.viewer(h.dashboard.History))
	mux.Handle("POST /csr", authn.admin(h.certificate.GenerateCSR))
	mux.Handle("GET /csr", authn.admin(h.certificate.DownloadCSR))
	mux.Handle("PATCH /certificate", authn.admin(h.certificate.Upload))
	mux.Handle("POST /deliveries", authn.admin(h.delivery.DeliverNow))
	if h.apns != nil {
		mux.Handle("POST /apns-check", authn.admin(h.apns.CheckNow))
	}

	// Signed-in sessions: admins list them and sign them out.
	mux.Handle("GET /sessions", authn.admin(h.sessions.Show))
	mux.Handle("POST /sessions/{handle}/revoke", authn.admin(h.sessions.Revoke))

	// Export of the certificate and private key: admins, and to download
	// only with a recent sign-in at the provider.
	mux.Handle("GET /export", authn.admin(h.export.Show))
	mux.Handle("POST /export", authn.admin(authn.recentSignIn(h.export.Download)))

	// pushcert's own API, outside the device-management resource.
	mux.Handle("GET /api/pushcert/deliveries", authn.bearer(auth.RoleViewer, h.delivery.Status))
	mux.Handle("POST /api/pushcert/deliveries", authn.bearer(auth.RoleAdmin, h.delivery.Deliver))
	if h.apns != nil {
		mux.Handle("GET /api/pushcert/apns-check", authn.bearer(auth.RoleViewer, h.apns.Last))
		mux.Handle("POST /api/pushcert/apns-check", authn.bearer(auth.RoleAdmin, h.apns.Check))
	}
	// Export for scripts: tokens of the export role only (not admin).
	mux.Handle("POST /api/pushcert/export", authn.exporter(h.export.API))

	// JSON API, shaped like the device-management API: bearer tokens only.
	for _, p := range apiPrefixes {
		base := p + "/deviceManagement/applePushNotificationCertificate"
		mux.Handle("GET "+base, authn.bearer(auth.RoleViewer, h.api.Get))
		mux.Handle("PATCH "+base, authn.bearer(auth.RoleAdmin, h.api.Patch))
		mux.Handle("POST "+base, authn.bearer(auth.RoleAdmin, h.api.Create))
		for _, suffix := range []string{"", "()"} {
			mux.Handle("POST "+base+"/generateApplePushNotificationCertificateSigningRequest"+suffix,
				authn.bearer(auth.RoleAdmin, h.api.GenerateCSR))
			mux.Handle("GET "+base+"/downloadApplePushNotificationCertificateSigningRequest"+suffix,
				authn.bearer(auth.RoleAdmin, h.api.DownloadCSR))
		}
		// The CSDL document @odata.context points at (public: only the shape).
		mux.HandleFunc("GET "+p+"/$metadata", h.api.Metadata)
		mux.HandleFunc(p+"/", h.api.NotFound)
	}

	// Development mode only: a page that plays Apple's portal.
	if h.devApple != nil {
		mux.Handle("GET /dev/apple", authn.admin(h.devApple.Show))
		mux.Handle("POST /dev/apple/issue", authn.admin(h.devApple.Issue))
	}

	// Everything else.
	mux.Handle("/", h.notFound)
}

// staticFiles serves the embedded CSS and images. Page links carry a version
// query, so browsers may cache them for a day without serving stale files
// for long after an upgrade.
func staticFiles() http.Handler {
	fs := http.StripPrefix("/static/", http.FileServerFS(filesOnly{static.FS}))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		fs.ServeHTTP(w, r)
	})
}

// routes registers handlers on a ServeMux, each wrapped so that the request
// log and the metrics learn the matched pattern.
type routes struct{ mux *http.ServeMux }

func (rs routes) Handle(pattern string, h http.Handler) { rs.mux.Handle(pattern, recordRoute(h)) }

func (rs routes) HandleFunc(pattern string, h http.HandlerFunc) { rs.Handle(pattern, h) }
