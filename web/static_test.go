package web

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/views"
)

// newTestServer is the whole application with baseURL as its external
// URL, over a real store and the development provider.
func newTestServer(t *testing.T, baseURL string) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	authn, _, clk := newAuthenticatorWith(t, nil)
	st := openTestStore(t)
	svc := pushcert.NewService(st, pushcert.Config{Organization: "Test Org", Now: clk.Now})
	return NewServer(log, authn, svc, nil, nil, NewOps(log, st, ""), baseURL, "Test Org", nil)
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	return w
}

func TestStaticDirectoriesNotListed(t *testing.T) {
	h := newTestServer(t, "http://127.0.0.1:1")
	tests := []struct {
		path     string
		wantCode int
	}{
		{"/static/", http.StatusNotFound},
		{"/static/css/", http.StatusNotFound},
		{"/static/css", http.StatusNotFound},
		{"/static/img/", http.StatusNotFound},
		{"/static/css/app.css", http.StatusOK},
		{"/static/img/favicon.svg", http.StatusOK},
		{"/static/js/", http.StatusNotFound},
		{"/static/js/localtime.js", http.StatusOK},
		{"/static/css/none.css", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			w := get(t, h, tt.path)
			// A redirect would lead to the listing; none is followed here.
			if w.Code != tt.wantCode {
				t.Errorf("got %d %q, want %d", w.Code, w.Body.String(), tt.wantCode)
			}
			if tt.wantCode == http.StatusNotFound && w.Header().Get("Cache-Control") == "public, max-age=86400" {
				t.Errorf("a 404 is cached for a day")
			}
		})
	}
}

func TestHSTSWhateverTheSchemesCase(t *testing.T) {
	tests := []struct {
		baseURL  string
		wantHSTS bool
	}{
		{"https://pushcert.example.com", true},
		{"HTTPS://pushcert.example.com", true},
		{"Https://pushcert.example.com/", true},
		{"http://pushcert.example.com", false},
		{"HTTP://https.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.baseURL, func(t *testing.T) {
			w := get(t, newTestServer(t, tt.baseURL), "/healthz")
			if got := w.Header().Get("Strict-Transport-Security"); (got != "") != tt.wantHSTS {
				t.Errorf("Strict-Transport-Security: got %q, want set %v", got, tt.wantHSTS)
			}
		})
	}
}

// TestLocalTimeScript: the status page's script is served as JavaScript
// (nosniff makes browsers refuse anything else) under a CSP that allows
// scripts from this origin only.
func TestLocalTimeScript(t *testing.T) {
	w := get(t, newTestServer(t, "http://127.0.0.1:1"), "/static/js/localtime.js?v="+views.StaticVersion)
	if ct := w.Header().Get("Content-Type"); w.Code != http.StatusOK || !strings.HasPrefix(ct, "text/javascript") {
		t.Errorf("got %d %q, want 200 text/javascript", w.Code, ct)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self';") {
		t.Errorf("got CSP %q, want script-src 'self'", csp)
	}
}
