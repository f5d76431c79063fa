package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/guid"
)

// requestInfo is filled in as a request goes down the chain, so the log line
// written on the way out can name the route and the user.
type requestInfo struct {
	route   string
	userID  string
	isAPI   bool
	started time.Time
}

type infoKey struct{}

func infoFrom(ctx context.Context) *requestInfo {
	if ri, ok := ctx.Value(infoKey{}).(*requestInfo); ok {
		return ri
	}
	return &requestInfo{}
}

// statusWriter remembers the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recoverPanics turns a panic into a logged stack and a generic 500, in the
// page layout or the API's error shape.
func recoverPanics(log *slog.Logger, dev bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if isAPIPath(r.URL.Path) {
				handlers.WriteAPIError(w, http.StatusInternalServerError, "internalServerError", "The server could not complete the request.")
				return
			}
			handlers.RenderError(w, r, log, dev, http.StatusInternalServerError, "Something went wrong",
				"pushcert could not complete this request. Try again; if it keeps happening, ask your administrator to check pushcert's logs.")
		}()
		next.ServeHTTP(w, r)
	})
}

// logRequests assigns each request an ID (sent back in the request-id
// header, and client-request-id echoed), writes one log line per request
// and records it in the request metrics. It logs the path but never the
// query, cookies or headers, which can carry codes and tokens. Probes and
// scrapes, which arrive every few seconds, are logged at debug level
// unless they fail.
func logRequests(log *slog.Logger, ops *Ops, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &requestInfo{started: time.Now(), isAPI: isAPIPath(r.URL.Path)}
		id := guid.New()
		// Assigned under the canonical keys computed once, as Set would
		// store them, without canonicalizing the names on every request.
		h := w.Header()
		h[headerRequestID] = []string{id}
		if c := r.Header.Get(handlers.HeaderClientRequestID); validClientRequestID(c) {
			h[headerClientRequestID] = []string{c}
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey{}, ri)))
		took := time.Since(ri.started)
		ops.observe(ri.route, r.Method, sw.status, took)
		level := slog.LevelInfo
		if probeRoutes[ri.route] && sw.status < 400 {
			level = slog.LevelDebug
		}
		// Typed attributes: slog need not box and pair loose arguments.
		log.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method),
			slog.String("route", ri.route),
			slog.String("path", r.URL.Path),
			slog.Int("status", sw.status),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
			slog.String("request_id", id),
			slog.String("user_id", ri.userID),
		)
	})
}

// The canonical forms of the request-ID header names, the keys
// Header.Set would use.
var (
	headerRequestID       = http.CanonicalHeaderKey(handlers.HeaderRequestID)
	headerClientRequestID = http.CanonicalHeaderKey(handlers.HeaderClientRequestID)
)

// probeRoutes are polled by load balancers and Prometheus.
var probeRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// validClientRequestID accepts the IDs SDKs send (GUIDs and similar) and
// nothing that could smuggle text into a header or log.
func validClientRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// securityHeaders sets the headers every response carries: a strict
// Content-Security-Policy (no inline script or style), frame denial,
// nosniff and a referrer policy. formTargets are the extra origins a form
// may lead to (the provider's end-session endpoint after sign-out).
func securityHeaders(formTargets []string, hsts bool, next http.Handler) http.Handler {
	formAction := strings.Join(append([]string{"'self'"}, formTargets...), " ")
	csp := "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action " + formAction
	// The values are built once and assigned to the header map directly
	// (the keys are already canonical): Header.Set would canonicalize each
	// key and allocate a new slice per header on every request. Sharing the
	// slices is safe because net/http only reads them, and Set or Add by a
	// handler replaces or reallocates them (each has capacity 1).
	type field struct {
		key   string
		value []string
	}
	fields := []field{
		{"Content-Security-Policy", []string{csp}},
		{"X-Frame-Options", []string{"DENY"}},
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"Referrer-Policy", []string{"same-origin"}},
		{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
	}
	if hsts {
		fields = append(fields, field{"Strict-Transport-Security", []string{"max-age=31536000"}})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, f := range fields {
			h[f.key] = f.value
		}
		next.ServeHTTP(w, r)
	})
}

// crossOriginProtection refuses cross-origin state-changing browser requests
// (CSRF), answering with the error page or the API's error shape.
func crossOriginProtection(log *slog.Logger, dev bool, next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPIPath(r.URL.Path) {
			handlers.WriteAPIError(w, http.StatusForbidden, "forbidden", "Cross-origin browser requests are not accepted.")
			return
		}
		handlers.RenderError(w, r, log, dev, http.StatusForbidden, "Request refused",
			"This form was sent from another site, so pushcert refused it and changed nothing. Open pushcert directly and try again.")
	}))
	return cop.Handler(next)
}

// methodOverride turns a browser form's POST to a URL with ?_method=PATCH
// (or DELETE) into that method before routing, so the upload form and the
// JSON API share one update path. Only POST may be overridden, and only to
// PATCH or DELETE. It reads the query string alone, never the body: a form
// is read only by the handler it is routed to, after the route's role
// check, so nobody who is not signed in gets a multipart body parsed.
func methodOverride(log *slog.Logger, dev bool, identify func(*http.Request) *http.Request, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || isAPIPath(r.URL.Path) || !strings.Contains(r.URL.RawQuery, "_method") {
			next.ServeHTTP(w, r)
			return
		}
		switch m := strings.ToUpper(r.URL.Query().Get("_method")); m {
		case "":
		case http.MethodPatch, http.MethodDelete:
			r.Method = m
		default:
			// Refused before the user is loaded; identify lets the error
			// page still show who is signed in.
			if identify != nil {
				r = identify(r)
			}
			handlers.RenderError(w, r, log, dev, http.StatusBadRequest, "Request refused",
				"A form may only stand in for PATCH or DELETE. Nothing was changed.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isAPIPath reports whether a path belongs to a JSON API, the
// device-management one or pushcert's own, whose errors are JSON rather
// than pages.
func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/v1.0/") || strings.HasPrefix(p, "/beta/") || strings.HasPrefix(p, "/api/")
}

// bearer authenticates API requests with a provider-issued bearer token and
// requires role. Cookies never authenticate the API, so a browser session
// cannot be turned against it.
func (a *Authenticator) bearer(want auth.Role, h http.HandlerFunc) http.Handler {
	return a.bearerIf(func(u auth.User) bool { return u.Role.Allows(want) },
		func(u auth.User) string { return a.forbiddenMessage(u, want) }, h)
}

// bearerIf authenticates API requests with a bearer token and lets through
// the users allowed accepts; the others get 403 with refusal's message.
func (a *Authenticator) bearerIf(allowed func(auth.User) bool, refusal func(auth.User) string, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := a.bearerUser(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			a.log.Info("bearer token refused", "path", r.URL.Path, "reason", tokenProblem(err))
			handlers.WriteAPIError(w, http.StatusUnauthorized, "InvalidAuthenticationToken",
				"Access token is missing or invalid: send a bearer token issued by the configured identity provider for this API's audience.")
			return
		}
		infoFrom(r.Context()).userID = u.Subject
		if !allowed(u) {
			handlers.WriteAPIError(w, http.StatusForbidden, "Forbidden", refusal(u))
			return
		}
		h(w, r.WithContext(auth.WithUser(r.Context(), u)))
	})
}
