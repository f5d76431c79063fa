package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/web/webtest"
)

const apiBase = "/v1.0/deviceManagement/applePushNotificationCertificate"

// call sends one request and returns the status and body.
func call(t *testing.T, method, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// uploadThroughAPI generates a CSR, has the test CA issue a certificate for
// it and uploads that, all through the JSON API as a script would.
func uploadThroughAPI(t *testing.T, app *webtest.App) {
	t.Helper()
	token := app.Token(t, "admin")
	if code, body := call(t, http.MethodPost, app.URL+apiBase+"/generateApplePushNotificationCertificateSigningRequest", token, nil); code != http.StatusOK {
		t.Fatalf("generate CSR: got %d %s, want 200", code, body)
	}
	body, _ := json.Marshal(map[string]string{"appleIdentifier": "it@example.com", "certificate": string(app.IssueForLatestCSR(t, ""))})
	if code, resp := call(t, http.MethodPatch, app.URL+apiBase, token, body); code != http.StatusOK {
		t.Fatalf("upload: got %d %s, want 200", code, resp)
	}
}

// scrape returns the /metrics text.
func scrape(t *testing.T, url, token string) string {
	t.Helper()
	code, body := call(t, http.MethodGet, url+"/metrics", token, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: got %d %s, want 200", code, body)
	}
	return body
}

// sample returns the value of the series named exactly series (name and
// labels as the text format writes them), and whether it is there.
func sample(t *testing.T, text, series string) (float64, bool) {
	t.Helper()
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("series %s: value %q: %v", series, rest, err)
		}
		return v, true
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	app := webtest.New(t, webtest.Options{})

	text := scrape(t, app.URL, "")
	if v, ok := sample(t, text, "pushcert_certificate_configured"); !ok || v != 0 {
		t.Errorf("before any upload: configured got %v (present %v), want 0", v, ok)
	}
	if _, ok := sample(t, text, "pushcert_certificate_expiry_timestamp_seconds"); ok {
		t.Error("before any upload: got an expiry gauge, want none")
	}

	uploadThroughAPI(t, app)
	_, _ = call(t, http.MethodGet, app.URL+"/no/such/page/12345", "", nil)
	st, err := app.Service.State(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	text = scrape(t, app.URL, "")
	want := []struct {
		series string
		value  float64
	}{
		{"pushcert_certificate_expiry_timestamp_seconds", float64(st.Certificate.NotAfter.Unix())},
		{"pushcert_certificate_configured", 1},
		{"pushcert_database_up", 1},
		{`pushcert_uploads_total{result="succeeded"}`, 1},
		{`pushcert_uploads_total{result="failed"}`, 0},
		{"pushcert_csrs_generated_total", 1},
		{`pushcert_alerts_total{result="sent"}`, 0},
		{`pushcert_http_requests_total{code="200",method="PATCH",route="PATCH ` + apiBase + `"}`, 1},
		{`pushcert_http_requests_total{code="404",method="GET",route="/"}`, 1},
		{`pushcert_http_request_duration_seconds_count{route="PATCH ` + apiBase + `"}`, 1},
	}
	for _, w := range want {
		if got, ok := sample(t, text, w.series); !ok || got != w.value {
			t.Errorf("%s: got %v (present %v), want %v", w.series, got, ok, w.value)
		}
	}
	if strings.Contains(text, "12345") {
		t.Error("a raw request path became a label; want only route patterns")
	}
}

func TestMetricsToken(t *testing.T) {
	const token = "metrics-token-0123456789"
	app := webtest.New(t, webtest.Options{MetricsToken: token})
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "metrics-token-0123456780", http.StatusUnauthorized},
		{"a prefix of the token", "metrics-token", http.StatusUnauthorized},
		{"an API bearer token", app.Token(t, "admin"), http.StatusUnauthorized},
		{"the token", token, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, http.MethodGet, app.URL+"/metrics", tt.token, nil)
			if code != tt.want {
				t.Errorf("got %d, want %d", code, tt.want)
			}
			if code == http.StatusOK != strings.Contains(body, "pushcert_certificate_configured") {
				t.Errorf("got body %.100q with status %d, want metrics only with 200", body, code)
			}
		})
	}
}

func TestReadyz(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	if code, body := call(t, http.MethodGet, app.URL+"/readyz", "", nil); code != http.StatusOK || body != "ready" {
		t.Errorf("got %d %q, want 200 ready", code, body)
	}
	if code, body := call(t, http.MethodGet, app.URL+"/healthz", "", nil); code != http.StatusOK || body != "ok" {
		t.Errorf("healthz: got %d %q, want 200 ok", code, body)
	}
	app.Store.Close()
	if code, body := call(t, http.MethodGet, app.URL+"/readyz", "", nil); code != http.StatusServiceUnavailable || body != "not ready: database unreachable" {
		t.Errorf("database closed: got %d %q, want 503 naming the database", code, body)
	}
	if code, _ := call(t, http.MethodGet, app.URL+"/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz with the database closed: got %d, want 200", code)
	}
	text := scrape(t, app.URL, "")
	if v, ok := sample(t, text, "pushcert_database_up"); !ok || v != 0 {
		t.Errorf("database closed: pushcert_database_up got %v (present %v), want 0", v, ok)
	}
	if _, ok := sample(t, text, "pushcert_certificate_configured"); ok {
		t.Error("database closed: got a certificate metric, want none")
	}
}
