package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/web/webtest"
)

// TestClientGoneRequestLog: a request whose client went away is one
// request log line with status 499 and no error line, for the pages and
// for the API.
func TestClientGoneRequestLog(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	u, _ := url.Parse(app.URL)
	var session *http.Cookie
	for _, ck := range app.LoginAs(t, "viewer").Jar.Cookies(u) {
		if ck.Name == "pushcert_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("no session cookie")
	}
	token := app.Token(t, "viewer")
	tests := []struct {
		name, path string
		auth       func(r *http.Request)
	}{
		{"status page", "/", func(r *http.Request) { r.AddCookie(session) }},
		{"history page", "/history", func(r *http.Request) { r.AddCookie(session) }},
		{"API GET", "/v1.0/deviceManagement/applePushNotificationCertificate", func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+token)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := len(app.Logs.String())
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			r := httptest.NewRequest(http.MethodGet, tt.path, nil).WithContext(ctx)
			tt.auth(r)
			w := httptest.NewRecorder()
			app.Server.Config.Handler.ServeHTTP(w, r)
			if w.Code != 499 || w.Body.Len() != 0 {
				t.Errorf("got %d with %d bytes, want 499 without a body", w.Code, w.Body.Len())
			}
			var requests []float64
			for line := range strings.Lines(app.Logs.String()[start:]) {
				var rec struct {
					Level  string  `json:"level"`
					Msg    string  `json:"msg"`
					Path   string  `json:"path"`
					Status float64 `json:"status"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("log line %q: %v", line, err)
				}
				if rec.Level == "ERROR" || rec.Level == "WARN" {
					t.Errorf("got log line %s, want none at %s", line, rec.Level)
				}
				if rec.Msg == "request" && rec.Path == tt.path {
					requests = append(requests, rec.Status)
				}
			}
			if len(requests) != 1 || requests[0] != 499 {
				t.Errorf("got request lines with status %v, want one with 499", requests)
			}
		})
	}
}
