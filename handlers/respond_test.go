package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/a-h/templ"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/views"
)

func TestRenderError(t *testing.T) {
	tests := []struct {
		name       string
		user       *auth.User
		dev        bool
		status     int
		title      string
		message    string
		wantIDs    []string // data-testids on the page
		wantAbsent []string
		wantLink   string
	}{
		{"forbidden, signed in without a role", &auth.User{Email: "x@example.com"}, false, http.StatusForbidden, "Access denied",
			"Your account is not in the pushcert-admins or pushcert-viewers group.", []string{"user-label", "signout", "error-status"}, []string{"dev-banner", "signin", "signin-again"}, ""},
		{"session ended", nil, true, http.StatusUnauthorized, "Signed out", "Your session has ended, so nothing was changed.",
			[]string{"dev-banner", "signin", "signin-again", "error-status"}, []string{"user-label", "signout"}, `href="/login"`},
		{"viewer, server error", &viewer, false, http.StatusInternalServerError, "Something went wrong", "Try again.",
			[]string{"user-label", "signout", "error-status"}, []string{"dev-banner", "signin-again"}, `href="/"`},
		// web answers GET /signed-out with this page: a notice, not an error.
		{"signed-out notice", nil, true, http.StatusOK, "Signed out", "You have signed out of pushcert.",
			[]string{"dev-banner", "signin", "signin-again"}, []string{"user-label", "signout", "error-status"}, `href="/login"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/somewhere", nil)
			if tt.user != nil {
				r = as(r, *tt.user)
			}
			w := httptest.NewRecorder()
			RenderError(w, r, discardLogger(), tt.dev, tt.status, tt.title, tt.message)
			if w.Code != tt.status {
				t.Fatalf("got status %d, want %d", w.Code, tt.status)
			}
			assertPage(t, w)
			body := w.Body.String()
			if got := testIDText(t, body, "error-title"); got != tt.title {
				t.Errorf("got title %q, want %q", got, tt.title)
			}
			if got := testIDText(t, body, "error-message"); got != tt.message {
				t.Errorf("got message %q, want %q", got, tt.message)
			}
			for _, id := range tt.wantIDs {
				if len(findTestID(t, body, id)) != 1 {
					t.Errorf("got no data-testid=%s, want one", id)
				}
			}
			for _, id := range tt.wantAbsent {
				if len(findTestID(t, body, id)) != 0 {
					t.Errorf("got data-testid=%s, want none", id)
				}
			}
			if tt.wantLink != "" && !strings.Contains(body, tt.wantLink) {
				t.Errorf("got no %s link, want one", tt.wantLink)
			}
			if got, want := strings.Contains(body, "HTTP status"), tt.status >= 300; got != want {
				t.Errorf("got status line %v, want %v for %d", got, want, tt.status)
			}
			if ids := findTestID(t, body, "signin-again"); len(ids) == 1 && (ids[0].text != "Sign in again" || ids[0].attrs["href"] != "/login") {
				t.Errorf("got sign-in-again link %+v, want \"Sign in again\" to /login", ids[0])
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("got Cache-Control %q, want no-store", got)
			}
		})
	}
}

func TestServerErrorHidesDetail(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	w := httptest.NewRecorder()
	serverError(w, as(httptest.NewRequest(http.MethodPatch, "/certificate", nil), admin), log,
		errors.New(`query "SELECT key_ciphertext FROM pending_keys": secret detail`))
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", w.Code)
	}
	assertPage(t, w)
	if body := w.Body.String(); strings.Contains(body, "secret detail") || strings.Contains(body, "SELECT") {
		t.Errorf("got the internal error on the page, want a generic message")
	}
	for _, want := range []string{"request failed", "method=PATCH", "path=/certificate", "secret detail"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("got log %q, want it to contain %q", logged.String(), want)
		}
	}
}

// TestRenderTemplateFailure: a component that fails halfway gives a clean
// 500 page, not the half it wrote.
func TestRenderTemplateFailure(t *testing.T) {
	broken := templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, _ = io.WriteString(w, "<p>half of the page")
		return errors.New("template exploded")
	})
	w := httptest.NewRecorder()
	render(w, as(httptest.NewRequest(http.MethodGet, "/", nil), admin), discardLogger(), http.StatusOK, broken)
	if w.Code != http.StatusInternalServerError {
		t.Fatalf("got status %d, want 500", w.Code)
	}
	assertPage(t, w)
	if body := w.Body.String(); strings.Contains(body, "half of the page") || strings.Contains(body, "exploded") {
		t.Errorf("got partial output or the error text, want only the 500 page")
	}
}

func TestNotFound(t *testing.T) {
	w := httptest.NewRecorder()
	NotFound(discardLogger(), false).ServeHTTP(w, as(httptest.NewRequest(http.MethodGet, "/nope", nil), viewer))
	if w.Code != http.StatusNotFound {
		t.Fatalf("got status %d, want 404", w.Code)
	}
	assertPage(t, w)
	if got := testIDText(t, w.Body.String(), "error-title"); got != "Page not found" {
		t.Errorf("got title %q, want Page not found", got)
	}
}

func TestHealthz(t *testing.T) {
	w := httptest.NewRecorder()
	Healthz(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if w.Code != http.StatusOK || w.Body.String() != "ok" {
		t.Errorf("got %d %q, want 200 \"ok\"", w.Code, w.Body.String())
	}
}

func TestLayout(t *testing.T) {
	tests := []struct {
		name      string
		user      auth.User
		dev       bool
		path      string
		wantNav   []string // nav links
		wantDev   bool
		wantLabel string
	}{
		{"admin in dev mode", admin, true, "/", []string{"/", "/history", "/sessions", "/dev/apple"}, true, "ada@example.com administrator"},
		{"admin on the sessions page", admin, false, "/sessions", []string{"/", "/history", "/sessions"}, false, "ada@example.com administrator"},
		{"viewer", viewer, false, "/history", []string{"/", "/history"}, false, "vic@example.com viewer"},
		// /sessions and /dev/apple are admin-only, so viewers get no link to a 403.
		{"viewer in dev mode", viewer, true, "/", []string{"/", "/history"}, true, "vic@example.com viewer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := as(httptest.NewRequest(http.MethodGet, tt.path, nil), tt.user)
			w := httptest.NewRecorder()
			render(w, r, discardLogger(), http.StatusOK, views.ErrorPage(newShell(r, tt.dev, "Test"), views.ErrorView{Status: 200, Title: "t", Message: "m"}))
			assertPage(t, w)
			body := w.Body.String()
			var nav []string
			for i, a := range findElements(t, body, func(a map[string]string, name string) bool { return name == "a" && a["class"] == "" && a["href"] != "" }) {
				nav = append(nav, a.attrs["href"])
				if i < len(tt.wantNav) && (a.attrs["href"] == tt.path) != (a.attrs["aria-current"] == "page") {
					t.Errorf("link %s: got aria-current %q on page %s", a.attrs["href"], a.attrs["aria-current"], tt.path)
				}
			}
			// The error page adds its own link to "/" after the navigation.
			if strings.Join(nav, " ") != strings.Join(append(tt.wantNav, "/"), " ") {
				t.Errorf("got links %v, want navigation %v then /", nav, tt.wantNav)
			}
			if got := len(findTestID(t, body, "dev-banner")) == 1; got != tt.wantDev {
				t.Errorf("got dev banner %v, want %v", got, tt.wantDev)
			}
			label := testIDText(t, body, "user-label") + " " + testIDText(t, body, "user-role")
			if label != tt.wantLabel {
				t.Errorf("got user %q, want %q", label, tt.wantLabel)
			}
			forms := findElements(t, body, func(a map[string]string, name string) bool { return name == "form" && a["action"] == "/logout" })
			if len(forms) != 1 || forms[0].attrs["method"] != "post" || !strings.Contains(forms[0].text, "Sign out") {
				t.Errorf("got sign-out forms %+v, want one POST form to /logout", forms)
			}
			if !strings.Contains(body, `href="/static/css/app.css?v=`+views.StaticVersion+`"`) {
				t.Errorf("got no versioned stylesheet link, want one")
			}
		})
	}
}

// logRecord is one line of a JSON log.
type logRecord struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	Err   string `json:"err"`
}

// recordingLogger logs JSON at every level into a buffer, for asserting
// on what was logged.
func recordingLogger() (*slog.Logger, func(t *testing.T) []logRecord) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return log, func(t *testing.T) []logRecord {
		t.Helper()
		var recs []logRecord
		for line := range strings.Lines(buf.String()) {
			var rec logRecord
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			recs = append(recs, rec)
		}
		return recs
	}
}

// canceled returns r with a context that has ended, as net/http cancels a
// request's context when its client closes the connection.
func canceled(r *http.Request) *http.Request {
	ctx, cancel := context.WithCancel(r.Context())
	cancel()
	return r.WithContext(ctx)
}

// TestClientGone: when the client goes away while its request is served,
// what fails is the request's own context. That is logged once, at debug
// level, and answered with the bare status 499 instead of an error page;
// a failure of the server is still logged as an error with the 500 page.
func TestClientGone(t *testing.T) {
	e := newEnv(t)
	e.activate(t, "it@example.com", applesim.Request{})
	tests := []struct {
		name     string
		serve    func(log *slog.Logger, w http.ResponseWriter)
		wantCode int
		wantLog  []string // level and message of each line
	}{
		{"status page", func(log *slog.Logger, w http.ResponseWriter) {
			NewDashboard(log, e.svc, false).Show(w, canceled(as(httptest.NewRequest(http.MethodGet, "/", nil), admin)))
		}, statusClientClosedRequest, []string{"DEBUG client went away"}},
		{"history page", func(log *slog.Logger, w http.ResponseWriter) {
			NewDashboard(log, e.svc, false).History(w, canceled(as(httptest.NewRequest(http.MethodGet, "/history", nil), admin)))
		}, statusClientClosedRequest, []string{"DEBUG client went away"}},
		{"API GET", func(log *slog.Logger, w http.ResponseWriter) {
			NewAPI(log, e.svc, testBaseURL).Get(w, canceled(as(httptest.NewRequest(http.MethodGet, testResource, nil), admin)))
		}, statusClientClosedRequest, []string{"DEBUG client went away"}},
		{"a page whose rendering sees the end", func(log *slog.Logger, w http.ResponseWriter) {
			r := canceled(as(httptest.NewRequest(http.MethodGet, "/", nil), admin))
			render(w, r, log, http.StatusOK, views.ErrorPage(newShell(r, false, "Test"), views.ErrorView{Status: 200, Title: "t", Message: "m"}))
		}, statusClientClosedRequest, []string{"DEBUG client went away"}},
		{"canceled, but not the request", func(log *slog.Logger, w http.ResponseWriter) {
			serverError(w, as(httptest.NewRequest(http.MethodGet, "/", nil), admin), log, fmt.Errorf("read state: %w", context.Canceled))
		}, http.StatusInternalServerError, []string{"ERROR request failed"}},
		{"another error after the client left", func(log *slog.Logger, w http.ResponseWriter) {
			serverError(w, canceled(as(httptest.NewRequest(http.MethodGet, "/", nil), admin)), log, errors.New("disk on fire"))
		}, http.StatusInternalServerError, []string{"ERROR request failed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logged := recordingLogger()
			w := httptest.NewRecorder()
			tt.serve(log, w)
			if w.Code != tt.wantCode {
				t.Errorf("got status %d, want %d", w.Code, tt.wantCode)
			}
			if tt.wantCode == statusClientClosedRequest && w.Body.Len() != 0 {
				t.Errorf("got a body of %d bytes, want none", w.Body.Len())
			}
			var got []string
			for _, rec := range logged(t) {
				got = append(got, rec.Level+" "+rec.Msg)
				if rec.Level == "DEBUG" && !strings.Contains(rec.Err, "context canceled") {
					t.Errorf("debug line: got err %q, want the cancellation", rec.Err)
				}
			}
			if !slices.Equal(got, tt.wantLog) {
				t.Errorf("got log %q, want %q", got, tt.wantLog)
			}
		})
	}
}

// TestRenderPooledBuffers: pages rendered one after another, and at once,
// each get exactly their own bytes, though their buffers are reused.
func TestRenderPooledBuffers(t *testing.T) {
	page := func(n int) templ.Component {
		return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
			_, err := fmt.Fprintf(w, "<p>page %d</p>%s", n, strings.Repeat("x", n*97%(3*pageBufferSize)))
			return err
		})
	}
	want := func(n int) string {
		return fmt.Sprintf("<p>page %d</p>%s", n, strings.Repeat("x", n*97%(3*pageBufferSize)))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 40 {
				n := g*1000 + i*37
				w := httptest.NewRecorder()
				render(w, httptest.NewRequest(http.MethodGet, "/", nil), discardLogger(), http.StatusOK, page(n))
				if w.Code != http.StatusOK || w.Body.String() != want(n) || w.Header().Get("Content-Length") != strconv.Itoa(len(want(n))) {
					t.Errorf("page %d: got %d with %d bytes (Content-Length %s), want 200 with %d",
						n, w.Code, w.Body.Len(), w.Header().Get("Content-Length"), len(want(n)))
					return
				}
			}
		})
	}
	wg.Wait()
	// A buffer that grew beyond the limit is not kept.
	big := getPageBuffer()
	big.Grow(maxPooledPageBuffer + 1)
	putPageBuffer(big)
	for range 10 {
		if b := getPageBuffer(); b.Cap() > maxPooledPageBuffer || b.Len() != 0 {
			t.Errorf("got a pooled buffer of cap %d len %d, want at most %d and empty", b.Cap(), b.Len(), maxPooledPageBuffer)
		}
	}
}
