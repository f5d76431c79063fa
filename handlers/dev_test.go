package handlers

import (
	"crypto/rsa"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func devIssueRequest(topic string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/dev/apple/issue", strings.NewReader(url.Values{"topic": {topic}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return as(r, admin)
}

func TestDevAppleShow(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, e *env)
		wantID  string // the data-testid saying whether a CSR waits
		wantNew bool   // the "new topic" choice is offered
	}{
		{"no CSR", func(*testing.T, *env) {}, "dev-no-pending", false},
		{"CSR waiting", func(t *testing.T, e *env) { e.generateCSR(t) }, "dev-pending", false},
		{"renewal", func(t *testing.T, e *env) { withActive(t, e); e.generateCSR(t) }, "dev-pending", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e)
			w := httptest.NewRecorder()
			NewDevApple(discardLogger(), e.svc, e.ca).Show(w, as(httptest.NewRequest(http.MethodGet, "/dev/apple", nil), admin))
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", w.Code)
			}
			assertPage(t, w)
			body := w.Body.String()
			if len(findTestID(t, body, tt.wantID)) != 1 || len(findTestID(t, body, "dev-banner")) != 1 {
				t.Errorf("got a page without %s or the dev banner, want both", tt.wantID)
			}
			if got := strings.Contains(body, `id="topic-new"`); got != tt.wantNew {
				t.Errorf("got new-topic choice %v, want %v", got, tt.wantNew)
			}
			pending := tt.wantID == "dev-pending"
			for _, choice := range []string{`id="validity-year"`, `id="validity-soon"`, `id="validity-minutes"`, `id="validity-expired"`, "Expires in 5 days"} {
				if got := strings.Contains(body, choice); got != pending {
					t.Errorf("got %s offered %v, want %v", choice, got, pending)
				}
			}
		})
	}
}

func TestDevAppleIssue(t *testing.T) {
	tests := []struct {
		name      string
		active    bool
		choice    string
		wantCode  int
		wantTopic func(activeTopic string) func(string) bool // nil when no certificate is issued
		// wantUpload is the status of uploading the issued certificate.
		wantUpload int
	}{
		{"first certificate", false, "renew", http.StatusOK, func(string) func(string) bool {
			return func(got string) bool { return strings.HasPrefix(got, "com.apple.mgmt.External.") }
		}, http.StatusSeeOther},
		{"renewal keeps the topic", true, "renew", http.StatusOK, func(a string) func(string) bool {
			return func(got string) bool { return got == a }
		}, http.StatusSeeOther},
		{"new topic", true, "new", http.StatusOK, func(a string) func(string) bool {
			return func(got string) bool { return got != a && strings.HasPrefix(got, "com.apple.mgmt.External.") }
		}, http.StatusUnprocessableEntity},
		{"unknown choice", false, "other", http.StatusBadRequest, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.active {
				withActive(t, e)
			}
			pk := e.generateCSR(t)
			w := httptest.NewRecorder()
			NewDevApple(discardLogger(), e.svc, e.ca).Issue(w, devIssueRequest(tt.choice))
			if w.Code != tt.wantCode {
				t.Fatalf("got status %d, want %d; body:\n%s", w.Code, tt.wantCode, w.Body)
			}
			if tt.wantTopic == nil {
				assertPage(t, w)
				return
			}
			assertDownload(t, w, "apple-push-cert-dev-"+e.now().UTC().Format(time.DateOnly)+".pem", "application/x-pem-file")
			cert := parsePEMCertificate(t, w.Body.Bytes())
			csr, err := x509.ParseCertificateRequest(pk.CSRDER)
			if err != nil {
				t.Fatal(err)
			}
			if !csr.PublicKey.(*rsa.PublicKey).Equal(cert.PublicKey) {
				t.Errorf("got a certificate for another key, want one for the pending CSR")
			}
			var topic string
			for _, n := range cert.Subject.Names {
				if s, ok := n.Value.(string); ok && strings.HasPrefix(s, "com.apple.mgmt.") {
					topic = s
				}
			}
			if !tt.wantTopic(activeTopic)(topic) {
				t.Errorf("got topic %q, want the %s one", topic, tt.choice)
			}

			// pushcert takes what the simulated portal issued, or refuses
			// the new topic, as it would Apple's.
			up := httptest.NewRecorder()
			NewCertificate(discardLogger(), e.svc, "Example Corp", true).Upload(up, uploadRequest(t, map[string]string{"apple_id": "it@example.com"}, w.Body.Bytes()))
			if up.Code != tt.wantUpload {
				t.Errorf("got %d uploading the issued certificate, want %d; body:\n%s", up.Code, tt.wantUpload, up.Body)
			}
		})
	}
}

func TestDevAppleIssueWithoutCSR(t *testing.T) {
	e := newEnv(t)
	withActive(t, e) // the pending key was consumed by the upload
	before := e.active(t)
	w := httptest.NewRecorder()
	NewDevApple(discardLogger(), e.svc, e.ca).Issue(w, devIssueRequest("renew"))
	if w.Code != http.StatusConflict {
		t.Fatalf("got status %d, want 409", w.Code)
	}
	assertPage(t, w)
	if got := testIDText(t, w.Body.String(), "error-message"); !strings.Contains(got, "Generate a CSR") {
		t.Errorf("got %q, want it to say to generate a CSR first", got)
	}
	e.assertActiveUnchanged(t, before)
}

func TestDevAppleIssueValidity(t *testing.T) {
	tests := []struct {
		name          string
		validity      string
		wantNotBefore func(now time.Time) time.Time
		wantNotAfter  func(now time.Time) time.Time
		wantUpload    int
		wantText      string // on the status page after the upload, or in the refusal
	}{
		{"one year by default", "", func(n time.Time) time.Time { return n.Add(-time.Hour) },
			func(n time.Time) time.Time { return n.Add(-time.Hour).AddDate(1, 0, 0) }, http.StatusSeeOther, "Active"},
		{"one year", "year", func(n time.Time) time.Time { return n.Add(-time.Hour) },
			func(n time.Time) time.Time { return n.Add(-time.Hour).AddDate(1, 0, 0) }, http.StatusSeeOther, "Active"},
		{"expires soon", "soon", func(n time.Time) time.Time { return n.Add(-time.Hour) },
			func(n time.Time) time.Time { return n.AddDate(0, 0, devSoonDays) }, http.StatusSeeOther, "Expires soon"},
		{"expires in minutes", "minutes", func(n time.Time) time.Time { return n.Add(-time.Hour) },
			func(n time.Time) time.Time { return n.Add(devMinutes) }, http.StatusSeeOther, "Expires soon"},
		{"already expired", "expired", func(n time.Time) time.Time { return n.AddDate(-1, 0, 0) },
			func(n time.Time) time.Time { return n.AddDate(0, 0, -1) }, http.StatusUnprocessableEntity, "expired on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.generateCSR(t)
			form := url.Values{"topic": {"renew"}}
			if tt.validity != "" {
				form.Set("validity", tt.validity)
			}
			r := httptest.NewRequest(http.MethodPost, "/dev/apple/issue", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			NewDevApple(discardLogger(), e.svc, e.ca).Issue(w, as(r, admin))
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200; body:\n%s", w.Code, w.Body)
			}
			cert := parsePEMCertificate(t, w.Body.Bytes())
			now := e.now()
			if want := tt.wantNotBefore(now); !cert.NotBefore.Equal(want.Truncate(time.Second)) {
				t.Errorf("got notBefore %s, want %s", cert.NotBefore, want)
			}
			if want := tt.wantNotAfter(now); !cert.NotAfter.Equal(want.Truncate(time.Second)) {
				t.Errorf("got notAfter %s, want %s", cert.NotAfter, want)
			}

			up := httptest.NewRecorder()
			NewCertificate(discardLogger(), e.svc, "Example Corp", true).Upload(up, uploadRequest(t, map[string]string{"apple_id": "it@example.com"}, w.Body.Bytes()))
			if up.Code != tt.wantUpload {
				t.Fatalf("got %d uploading the issued certificate, want %d; body:\n%s", up.Code, tt.wantUpload, up.Body)
			}
			if up.Code != http.StatusSeeOther {
				if !strings.Contains(up.Body.String(), tt.wantText) {
					t.Errorf("got a refusal without %q, want it; page:\n%s", tt.wantText, up.Body)
				}
				return
			}
			sw := httptest.NewRecorder()
			NewDashboard(discardLogger(), e.svc, true).Show(sw, as(httptest.NewRequest(http.MethodGet, "/", nil), admin))
			if got := testIDText(t, sw.Body.String(), "status-state"); got != tt.wantText {
				t.Errorf("got status %q after the upload, want %q", got, tt.wantText)
			}
			if tt.validity != devValidityMinutes {
				return
			}
			// The "minutes" certificate expires while the admin watches.
			e.clk.Advance(devMinutes)
			sw = httptest.NewRecorder()
			NewDashboard(discardLogger(), e.svc, true).Show(sw, as(httptest.NewRequest(http.MethodGet, "/", nil), admin))
			if got := testIDText(t, sw.Body.String(), "status-state"); got != "Expired" {
				t.Errorf("got status %q %v after the upload, want Expired", got, devMinutes)
			}
		})
	}
}

func TestDevAppleIssueUnknownValidity(t *testing.T) {
	e := newEnv(t)
	e.generateCSR(t)
	r := httptest.NewRequest(http.MethodPost, "/dev/apple/issue", strings.NewReader(url.Values{"topic": {"renew"}, "validity": {"forever"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	NewDevApple(discardLogger(), e.svc, e.ca).Issue(w, as(r, admin))
	if w.Code != http.StatusBadRequest {
		t.Fatalf("got status %d, want 400", w.Code)
	}
	assertPage(t, w)
}
