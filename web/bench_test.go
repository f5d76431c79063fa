package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/pushcert/pushcert/web/webtest"
)

// BenchmarkServer measures the whole chain (middleware, routing,
// credentials, database reads, rendering) for the two requests the load
// benchmark drives, in process and without the network.
func BenchmarkServer(b *testing.B) {
	app := webtest.New(b, webtest.Options{})
	u, err := url.Parse(app.URL)
	if err != nil {
		b.Fatal(err)
	}
	cookies := app.LoginAs(b, "admin").Jar.Cookies(u)
	if len(cookies) == 0 {
		b.Fatal("got no session cookie, want one")
	}
	token := app.Token(b, "admin")
	activate(b, app, token)
	h := app.Server.Config.Handler
	run := func(b *testing.B, newReq func() *http.Request) {
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, newReq())
			if w.Code != http.StatusOK {
				b.Fatalf("got %d, want 200", w.Code)
			}
		}
	}
	b.Run("status page", func(b *testing.B) {
		run(b, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			for _, c := range cookies {
				r.AddCookie(c)
			}
			return r
		})
	})
	b.Run("API GET", func(b *testing.B) {
		run(b, func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, apiBase, nil)
			r.Header.Set("Authorization", "Bearer "+token)
			return r
		})
	})
	b.Run("healthz", func(b *testing.B) {
		run(b, func() *http.Request { return httptest.NewRequest(http.MethodGet, "/healthz", nil) })
	})
}

// activate generates a CSR and uploads a certificate for it through the
// API, so the API has an entity to return.
func activate(b *testing.B, app *webtest.App, token string) {
	b.Helper()
	send := func(method, path string, body []byte) {
		req, err := http.NewRequestWithContext(b.Context(), method, app.URL+path, bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s %s: got %d, want 200", method, path, resp.StatusCode)
		}
	}
	send(http.MethodPost, apiBase+"/generateApplePushNotificationCertificateSigningRequest", nil)
	body, err := json.Marshal(map[string]string{"appleIdentifier": "it@example.com", "certificate": string(app.IssueForLatestCSR(b, ""))})
	if err != nil {
		b.Fatal(err)
	}
	send(http.MethodPatch, apiBase, body)
}
