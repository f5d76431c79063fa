package handlers

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
	"github.com/pushcert/pushcert/views"
)

func TestDashboardShow(t *testing.T) {
	// Every env's clock starts at the tests' instant, which may be any
	// (PUSHCERT_TEST_NOW): the rows count from it, never from a time of day.
	now := testclock.Start(t)
	const topic = "com.apple.mgmt.External.11111111-2222-4333-8444-555555555555"
	tests := []struct {
		name  string
		user  auth.User
		setup func(t *testing.T, e *env) // what happened before the page is loaded, at e.now()
		later time.Duration              // how far the clock moves after setup, before the page is loaded
		state views.State
		// texts maps data-testid to the text the element must contain.
		texts  map[string]string
		absent []string // data-testids that must not be on the page
		// notTexts maps data-testid to text the element must not contain.
		notTexts map[string]string
	}{
		{
			name:  "not set up",
			user:  admin,
			setup: func(*testing.T, *env) {},
			state: views.StateNotSetUp,
			texts: map[string]string{
				"status-state":     "Not set up",
				"next-step":        "Create a Certificate",
				"apple-id":         "Not recorded",
				"upload-status":    "No upload yet",
				"last-change":      "Never",
				"generate-csr":     "Generate",
				"upload-form":      "Apple ID",
				"certificate-help": "Required",
			},
			absent:   []string{"download-csr", "topic", "renew-help", "confirmation", "upload-error", "refusal-banner", "allow-topic-change"},
			notTexts: map[string]string{"certificate-help": "Leave it empty"},
		},
		{
			name:  "CSR downloaded, no certificate yet",
			user:  admin,
			setup: func(t *testing.T, e *env) { e.generateCSR(t) },
			state: views.StateWaiting,
			texts: map[string]string{
				"status-state":     "CSR downloaded, waiting for Apple's certificate",
				"next-step":        "upload it below",
				"download-csr":     "Download the latest CSR again",
				"pending-csr":      "by ada@example.com",
				"certificate-help": "Required",
			},
			absent:   []string{"topic", "renew-help"},
			notTexts: map[string]string{"next-step": "an administrator uploads it"},
		},
		{
			name:  "viewer waiting for the first certificate",
			user:  viewer,
			setup: func(t *testing.T, e *env) { e.generateCSR(t) },
			state: views.StateWaiting,
			texts: map[string]string{
				"next-step": "an administrator uploads it here",
				"read-only": "administrator role",
			},
			absent:   []string{"upload-form", "certificate-help"},
			notTexts: map[string]string{"next-step": "below"},
		},
		{
			name: "active",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{Topic: "com.apple.mgmt.External.11111111-2222-4333-8444-555555555555", NotAfter: e.now().AddDate(0, 0, 200)})
			},
			state: views.StateActive,
			texts: map[string]string{
				"status-state":     "Active",
				"next-step":        "nothing for now",
				"apple-id":         "it@example.com",
				"topic":            "com.apple.mgmt.External.11111111-2222-4333-8444-555555555555",
				"apsp-name":        "APSP:11111111-2222-4333-8444-555555555555",
				"expiry":           now.AddDate(0, 0, 200).Format("2006-01-02 15:04") + " UTC",
				"expiry-relative":  "in 200 days",
				"last-change":      "by ada@example.com",
				"last-change-time": now.Format("2006-01-02 15:04") + " UTC",
				"upload-status":    "Succeeded",
				"renew-help":       "APSP:11111111-2222-4333-8444-555555555555",
				"renew-apple-id":   "it@example.com",
				"certificate-help": "Leave it empty to change only the Apple ID.",
			},
			absent: []string{"upload-failure", "upload-failure-link"},
		},
		{
			name: "expires soon",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 23)})
			},
			state: views.StateExpiresSoon,
			texts: map[string]string{
				"status-state":    "Expires soon",
				"next-step":       "renew it now",
				"expiry-relative": "in 23 days",
			},
		},
		{
			name: "expires in 30 days is soon",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 30)})
			},
			state: views.StateExpiresSoon,
			texts: map[string]string{"expiry-relative": "in 30 days"},
		},
		{
			name: "expires in 31 days is active",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 31)})
			},
			state: views.StateActive,
			texts: map[string]string{"expiry-relative": "in 31 days"},
		},
		{
			name: "expired",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 2)})
			},
			later: 5 * 24 * time.Hour,
			state: views.StateExpired,
			texts: map[string]string{
				"status-state":    "Expired",
				"next-step":       "renew it at once",
				"expiry-relative": "3 days ago",
			},
		},
		{
			name: "expires today",
			user: admin,
			setup: func(t *testing.T, e *env) {
				// The last second of the day, however little of it is left:
				// at 23:59:30 the certificate has 29 seconds to go. Only in
				// the day's very last second is there no whole second left
				// before it, so the clock steps back one.
				if !e.now().Before(endOfDay(e.now())) {
					e.clk.Advance(-time.Second)
				}
				e.activate(t, "it@example.com", applesim.Request{NotAfter: endOfDay(e.now())})
			},
			state: views.StateExpiresSoon,
			texts: map[string]string{"expiry-relative": "today"},
		},
		{
			name: "renewal under way",
			user: admin,
			setup: func(t *testing.T, e *env) {
				// The upload was a minute ago, so the CSR made now is newer.
				notAfter := e.now().AddDate(0, 0, 20)
				e.earlier(time.Minute, func() { e.activate(t, "it@example.com", applesim.Request{NotAfter: notAfter}) })
				e.generateCSR(t)
			},
			state: views.StateExpiresSoon,
			texts: map[string]string{
				"status-state":    "Expires soon",
				"renewal-state":   "Renewal in progress",
				"next-step":       "sign in with it@example.com",
				"expiry-relative": "in 20 days",
				"download-csr":    "Download",
			},
		},
		{
			name: "renewal under way keeps a healthy certificate active",
			user: admin,
			setup: func(t *testing.T, e *env) {
				notAfter := e.now().AddDate(0, 0, 200)
				e.earlier(time.Minute, func() { e.activate(t, "it@example.com", applesim.Request{NotAfter: notAfter}) })
				e.generateCSR(t)
			},
			state: views.StateActive,
			texts: map[string]string{
				"status-state":  "Active",
				"renewal-state": "waiting for Apple's certificate",
				"next-step":     "keeps working until it expires",
			},
		},
		{
			name: "no renewal note once the renewed certificate is active",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 200)})
			},
			state:  views.StateActive,
			absent: []string{"renewal-state"},
		},
		{
			name: "failed upload is reported",
			user: admin,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 100)})
				_, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: []byte("not a certificate")})
				if err == nil {
					t.Fatal("got no error for garbage, want a refusal")
				}
			},
			state: views.StateActive,
			texts: map[string]string{
				"upload-status":       "Failed",
				"upload-failure":      "ertificate",
				"upload-failure-when": now.Format("2006-01-02 15:04") + " UTC by ada@example.com",
			},
			absent: []string{"upload-failure-link", "upload-failure-history"},
		},
		{
			name: "a failed upload six days old is still status",
			user: viewer,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 100)})
				if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: []byte("not a certificate")}); err == nil {
					t.Fatal("got no error for garbage, want a refusal")
				}
			},
			later: 6 * 24 * time.Hour,
			state: views.StateActive,
			texts: map[string]string{
				"upload-status":       "Failed",
				"upload-failure-when": "by ada@example.com",
			},
			absent: []string{"upload-failure-history"},
		},
		{
			name: "a failed upload a week old is history",
			user: viewer,
			setup: func(t *testing.T, e *env) {
				e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 100)})
				if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: []byte("not a certificate")}); err == nil {
					t.Fatal("got no error for garbage, want a refusal")
				}
			},
			later: 7 * 24 * time.Hour,
			state: views.StateActive,
			texts: map[string]string{
				"upload-failure-history": "An earlier upload on " + now.Format("2006-01-02 15:04") + " UTC by ada@example.com was refused",
			},
			absent: []string{"upload-status", "upload-failure", "upload-failure-when"},
		},
		{
			name: "a failed upload followed by a successful one is gone",
			user: viewer,
			setup: func(t *testing.T, e *env) {
				e.earlier(time.Hour, func() {
					e.activate(t, "it@example.com", applesim.Request{Topic: topic, NotAfter: e.now().AddDate(0, 0, 100)})
					if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: []byte("not a certificate")}); err == nil {
						t.Fatal("got no error for garbage, want a refusal")
					}
				})
				e.activate(t, "it@example.com", applesim.Request{Topic: topic, NotAfter: e.now().AddDate(0, 0, 200)})
			},
			state:  views.StateActive,
			texts:  map[string]string{"upload-status": "Succeeded"},
			absent: []string{"upload-failure", "upload-failure-when", "upload-failure-history"},
		},
		{
			name: "viewer sees no admin controls",
			user: viewer,
			setup: func(t *testing.T, e *env) {
				notAfter := e.now().AddDate(0, 0, 100)
				e.earlier(time.Minute, func() { e.activate(t, "it@example.com", applesim.Request{NotAfter: notAfter}) })
				e.generateCSR(t)
			},
			state: views.StateActive,
			texts: map[string]string{
				"renewal-state": "Renewal in progress",
				"read-only":     "administrator role",
				"user-label":    "vic@example.com",
				"user-role":     "viewer",
				"next-step":     "an administrator uploads it here",
			},
			absent:   []string{"generate-csr", "download-csr", "upload-form", "dev-banner"},
			notTexts: map[string]string{"next-step": "below"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e)
			e.clk.Advance(tt.later)
			d := NewDashboard(discardLogger(), e.svc, false)
			w := httptest.NewRecorder()
			d.Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), tt.user))

			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", w.Code)
			}
			assertPage(t, w)
			body := w.Body.String()
			states := findTestID(t, body, "status-state")
			if len(states) != 1 || states[0].attrs["data-state"] != string(tt.state) {
				t.Errorf("got state elements %+v, want one with data-state %q", states, tt.state)
			}
			for id, want := range tt.texts {
				if got := testIDText(t, body, id); !strings.Contains(got, want) {
					t.Errorf("data-testid=%s: got %q, want it to contain %q", id, got, want)
				}
			}
			for _, id := range tt.absent {
				if n := len(findTestID(t, body, id)); n != 0 {
					t.Errorf("data-testid=%s: got %d elements, want none", id, n)
				}
			}
			for id, bad := range tt.notTexts {
				if got := testIDText(t, body, id); strings.Contains(got, bad) {
					t.Errorf("data-testid=%s: got %q, want no %q", id, got, bad)
				}
			}
			assertSentences(t, body)
		})
	}
}

// assertSentences checks that the messages pushcert words from the
// service's reasons stand as sentences: a capital letter, a final stop.
func assertSentences(t *testing.T, body string) {
	t.Helper()
	for _, id := range []string{"upload-failure", "upload-error", "history-detail"} {
		for _, n := range findTestID(t, body, id) {
			if n.text == "" {
				continue
			}
			if r, _ := utf8.DecodeRuneInString(n.text); unicode.IsLower(r) || !strings.HasSuffix(n.text, ".") {
				t.Errorf("data-testid=%s: got %q, want a sentence (a capital letter, a final stop)", id, n.text)
			}
		}
	}
}

func TestSentence(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"the file is not a certificate", "The file is not a certificate."},
		{"Already a sentence.", "Already a sentence."},
		{"is it? ", "Is it?"},
		{"über alles!", "Über alles!"},
		{"PEM CSR for public key c0309defb686272b", "PEM CSR for public key c0309defb686272b."},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := sentence(tt.in); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDashboardShowConfirmation(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  string // "" for no banner
	}{
		{"uploaded", "?done=uploaded", "The certificate was uploaded"},
		{"apple id", "?done=appleid", "The Apple ID was saved"},
		{"unknown value", "?done=%3Cb%3Ehi%3C%2Fb%3E", ""},
		{"no query", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			w := httptest.NewRecorder()
			NewDashboard(discardLogger(), e.svc, false).Show(w, as(httptest.NewRequest(http.MethodGet, "/"+tt.query, nil), admin))
			got := findTestID(t, w.Body.String(), "confirmation")
			switch {
			case tt.want == "" && len(got) != 0:
				t.Errorf("got banner %q, want none", got[0].text)
			case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0].text, tt.want)):
				t.Errorf("got banners %+v, want one containing %q", got, tt.want)
			}
		})
	}
}

func TestDashboardHistory(t *testing.T) {
	e := newEnv(t)
	d := NewDashboard(discardLogger(), e.svc, false)

	w := httptest.NewRecorder()
	d.History(w, as(httptest.NewRequest(http.MethodGet, "/history", nil), viewer))
	if w.Code != http.StatusOK || len(findTestID(t, w.Body.String(), "history-empty")) != 1 {
		t.Fatalf("got %d without the empty note, want 200 saying nothing happened yet", w.Code)
	}

	st := e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 100)})
	if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: viewer, Certificate: []byte("garbage")}); err == nil {
		t.Fatal("got no error for garbage, want a refusal")
	}

	w = httptest.NewRecorder()
	d.History(w, as(httptest.NewRequest(http.MethodGet, "/history", nil), viewer))
	if w.Code != http.StatusOK {
		t.Fatalf("got status %d, want 200", w.Code)
	}
	assertPage(t, w)
	rows := findTestID(t, w.Body.String(), "history-row")
	want := []struct{ kind, text string }{
		{string(pushcert.EventUploadFailed), "Upload refused vic@example.com"},
		{string(pushcert.EventUploadSucceeded), "Certificate uploaded and made active ada@example.com Serial " + st.Certificate.SerialNumber},
		{string(pushcert.EventCSRGenerated), "CSR generated ada@example.com"},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d", len(rows), len(want))
	}
	for i, w := range want {
		if rows[i].attrs["data-kind"] != w.kind || !strings.Contains(rows[i].text, w.text) {
			t.Errorf("row %d: got %s %q, want %s containing %q", i, rows[i].attrs["data-kind"], rows[i].text, w.kind, w.text)
		}
	}
	if !strings.Contains(rows[1].text, st.Certificate.Topic) || !strings.Contains(rows[1].text, " UTC") {
		t.Errorf("got upload row %q, want its topic and UTC times", rows[1].text)
	}
	assertSentences(t, w.Body.String())
}

func TestStatusViewRelativeDays(t *testing.T) {
	now := time.Date(2027, 11, 1, 23, 30, 0, 0, time.UTC)
	tests := []struct {
		notAfter time.Time
		want     string
	}{
		{time.Date(2027, 11, 1, 23, 59, 0, 0, time.UTC), "today"},
		{time.Date(2027, 11, 2, 0, 10, 0, 0, time.UTC), "tomorrow"},
		{time.Date(2027, 11, 24, 5, 0, 0, 0, time.UTC), "in 23 days"},
		{time.Date(2027, 10, 31, 23, 0, 0, 0, time.UTC), "yesterday"},
		{time.Date(2027, 10, 29, 1, 0, 0, 0, time.UTC), "3 days ago"},
		{time.Date(2027, 11, 1, 20, 0, 0, 0, time.UTC), "today"},
	}
	for _, tt := range tests {
		t.Run(tt.notAfter.Format(time.RFC3339), func(t *testing.T) {
			if got := relativeDays((pushcert.Certificate{NotAfter: tt.notAfter}).DaysLeft(now)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDashboardLifetimesFromConfig: the days the page counts and names, when
// the certificate expires soon and how long a CSR stays usable, are the
// service's configuration, not numbers written into the page.
func TestDashboardLifetimesFromConfig(t *testing.T) {
	for _, tt := range []struct {
		expiresSoon, csrDays, daysLeft int
		want                           views.State
	}{
		{expiresSoon: 60, csrDays: 45, daysLeft: 50, want: views.StateExpiresSoon},
		{expiresSoon: 20, csrDays: 120, daysLeft: 25, want: views.StateActive},
	} {
		t.Run(fmt.Sprintf("expires soon at %d days, %d days left", tt.expiresSoon, tt.daysLeft), func(t *testing.T) {
			e := newEnvWith(t, pushcert.Config{Organization: "Example Corp", ExpiresSoonDays: tt.expiresSoon,
				PendingKeyLifetime: time.Duration(tt.csrDays) * 24 * time.Hour})
			e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, tt.daysLeft)})
			w := httptest.NewRecorder()
			NewDashboard(discardLogger(), e.svc, false).Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), admin))
			body := w.Body.String()
			if states := findTestID(t, body, "status-state"); len(states) != 1 || states[0].attrs["data-state"] != string(tt.want) {
				t.Errorf("got state %+v, want %q", states, tt.want)
			}
			if want := fmt.Sprintf("last %d days", tt.csrDays); !strings.Contains(body, want) {
				t.Errorf("got a page without %q", want)
			}
			if tt.want == views.StateActive {
				if want := fmt.Sprintf("%d days before", tt.expiresSoon); !strings.Contains(body, want) {
					t.Errorf("got a page without %q", want)
				}
			}
		})
	}
}

// TestDashboardLocalTimes checks that the dates that matter stay in UTC in
// the page and are marked for the script that appends the viewer's local
// time, which comes from /static/ (the CSP allows no inline script).
func TestDashboardLocalTimes(t *testing.T) {
	e := newEnv(t)
	e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 100)})
	if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: []byte("not a certificate")}); err == nil {
		t.Fatal("got no error for garbage, want a refusal")
	}
	w := httptest.NewRecorder()
	NewDashboard(discardLogger(), e.svc, false).Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), viewer))
	body := w.Body.String()

	scripts := findElements(t, body, func(_ map[string]string, name string) bool { return name == "script" })
	wantSrc := "/static/js/localtime.js?v=" + views.StaticVersion
	if len(scripts) != 1 || scripts[0].attrs["src"] != wantSrc || scripts[0].text != "" {
		t.Errorf("got scripts %+v, want one, empty, with src %q", scripts, wantSrc)
	}
	for _, id := range []string{"expiry", "last-change-time"} {
		nodes := findTestID(t, body, id)
		if len(nodes) != 1 {
			t.Fatalf("data-testid=%s: got %d elements, want one", id, len(nodes))
		}
		_, marked := nodes[0].attrs["data-localtime"]
		if n := nodes[0]; !marked || !strings.HasSuffix(n.text, " UTC") || n.attrs["datetime"] == "" {
			t.Errorf("data-testid=%s: got %+v, want a <time data-localtime datetime=…> saying the UTC time", id, n)
		}
	}
	times := findElements(t, body, func(attrs map[string]string, name string) bool {
		_, marked := attrs["data-localtime"]
		return name == "time" && marked
	})
	if len(times) != 3 {
		t.Errorf("got %d times marked for local time, want 3 (expiry, last change, refused upload)", len(times))
	}
}

// TestDashboardAlerts: the status page shows whether alerts are on, to
// which host, from how many days before expiry, and the last alert sent.
func TestDashboardAlerts(t *testing.T) {
	tests := []struct {
		name   string
		alerts *AlertsInfo // nil: the dashboard is built without them
		sent   bool        // an alert was sent an hour before the page is loaded
		texts  map[string]string
		absent []string
	}{
		{
			name:   "on, nothing sent yet",
			alerts: &AlertsInfo{WebhookHost: "hooks.example.com", Thresholds: []int{30, 14, 7}},
			texts: map[string]string{
				"alerts-webhook":    "On, to hooks.example.com",
				"alerts-thresholds": "30, 14 and 7 days before expiry",
				"alerts-last":       "None yet",
			},
		},
		{
			name:   "on, an alert sent",
			alerts: &AlertsInfo{WebhookHost: "hooks.example.com", Thresholds: []int{1}},
			sent:   true,
			texts: map[string]string{
				"alerts-thresholds": "1 day before expiry",
				"alerts-last":       "The push certificate expires in 30 days.",
			},
		},
		{
			name:   "off",
			alerts: &AlertsInfo{},
			texts:  map[string]string{"alerts-webhook": "Off", "alerts-last": "None yet"},
			absent: []string{"alerts-thresholds"},
		},
		{
			name:   "built without alerts",
			absent: []string{"alerts"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			d := NewDashboard(discardLogger(), e.svc, false)
			sentAt := e.now().Add(-time.Hour)
			if tt.alerts != nil {
				a := *tt.alerts
				a.Sent = e.st
				d = d.WithAlerts(a)
			}
			if tt.sent {
				if _, err := e.st.AddAlert(t.Context(), "expiring:x:30", []byte(`{"text":"the push certificate expires in 30 days"}`), sentAt); err != nil {
					t.Fatal(err)
				}
				if err := e.st.FinishAlert(t.Context(), "expiring:x:30", alert.OutcomeSent, sentAt); err != nil {
					t.Fatal(err)
				}
			}
			texts := maps.Clone(tt.texts)
			if tt.sent {
				texts["alerts-last"] = formatTime(sentAt) + " — " + texts["alerts-last"]
			}
			w := httptest.NewRecorder()
			d.Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), viewer))
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", w.Code)
			}
			assertPage(t, w)
			body := w.Body.String()
			for id, want := range texts {
				if got := testIDText(t, body, id); !strings.Contains(got, want) {
					t.Errorf("data-testid=%s: got %q, want it to contain %q", id, got, want)
				}
			}
			for _, id := range tt.absent {
				if n := len(findTestID(t, body, id)); n != 0 {
					t.Errorf("data-testid=%s: got %d elements, want none", id, n)
				}
			}
		})
	}
}
