package handlers

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
)

func (e *env) monitor(t *testing.T) (*apns.Monitor, *apnstest.Server) {
	t.Helper()
	return e.monitorEvery(t, apns.DefaultInterval)
}

// monitorEvery is a Monitor of a fake APNs checking every interval.
func (e *env) monitorEvery(t *testing.T, interval time.Duration) (*apns.Monitor, *apnstest.Server) {
	t.Helper()
	fake := apnstest.Start(t, e.ca.Cert, e.clk.Now)
	c, err := apns.NewChecker(apns.CheckerConfig{URL: fake.URL(), RootCAs: fake.RootCAs(), Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return apns.New(discardLogger(), e.st, c, apns.Config{Interval: interval, Now: e.clk.Now}), fake
}

// The status page words the periodic check from the configured interval.
func TestStatusPageAPNSInterval(t *testing.T) {
	for _, tt := range []struct {
		interval time.Duration
		want     string
	}{
		{24 * time.Hour, "after every upload, every day, and when an administrator asks."},
		{6 * time.Hour, "after every upload, every 6 hours, and when an administrator asks."},
		{time.Hour, "after every upload, every hour, and when an administrator asks."},
		{7 * 24 * time.Hour, "after every upload, every 7 days, and when an administrator asks."},
		{90 * time.Minute, "after every upload, every 1h30m0s, and when an administrator asks."},
		{0, "after every upload and when an administrator asks."},
	} {
		t.Run(tt.interval.String(), func(t *testing.T) {
			e := newEnv(t)
			mon, _ := e.monitorEvery(t, tt.interval)
			w := httptest.NewRecorder()
			NewDashboard(discardLogger(), e.svc, false).WithAPNS(mon).Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), viewer))
			assertPage(t, w)
			if got := strings.Join(strings.Fields(testIDText(t, w.Body.String(), "apns-never")), " "); !strings.HasSuffix(got, tt.want) {
				t.Errorf("got %q, want it to end %q", got, tt.want)
			}
		})
	}
}

// The status page shows the last connection check in words, the button
// to admins only, and the refusal's reason; the button's handler checks
// and comes back to the page.
func TestStatusPageAPNS(t *testing.T) {
	e := newEnv(t)
	mon, fake := e.monitor(t)
	show := func(u auth.User) string {
		t.Helper()
		w := httptest.NewRecorder()
		NewDashboard(discardLogger(), e.svc, false).WithAPNS(mon).Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), u))
		assertPage(t, w)
		return w.Body.String()
	}
	outcome := func(page string) string {
		t.Helper()
		nodes := findTestID(t, page, "apns-outcome")
		if len(nodes) != 1 {
			t.Fatalf("got %d outcomes on the page, want 1", len(nodes))
		}
		return nodes[0].attrs["data-outcome"]
	}
	if page := show(admin); outcome(page) != "none" || len(findTestID(t, page, "apns-check")) != 0 {
		t.Errorf("before any certificate: got %q and a button: %d, want none and no button", outcome(page), len(findTestID(t, page, "apns-check")))
	}
	st := e.activate(t, "it@example.com", applesim.Request{})
	h := NewAPNS(discardLogger(), mon, false)
	w := httptest.NewRecorder()
	h.CheckNow(w, as(httptest.NewRequest(http.MethodPost, "/apns-check", nil), admin))
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/?done=apnscheck") {
		t.Fatalf("Test connection: got %d to %q, want 303 to the status page", w.Code, w.Header().Get("Location"))
	}
	page := show(viewer)
	if outcome(page) != "accepted" || !strings.Contains(testIDText(t, page, "apns-checked"), st.Certificate.SerialNumber) ||
		!strings.Contains(testIDText(t, page, "apns-checked"), admin.Email) {
		t.Errorf("after the check: got %q, %q; want accepted, the serial and who asked", outcome(page), testIDText(t, page, "apns-checked"))
	}
	if len(findTestID(t, page, "apns-check")) != 0 {
		t.Error("a viewer sees Test connection to Apple")
	}
	if len(findTestID(t, show(admin), "apns-check")) != 1 {
		t.Error("an admin does not see Test connection to Apple")
	}
	fake.Revoke(st.Certificate.SerialNumber)
	w = httptest.NewRecorder()
	h.Check(w, as(httptest.NewRequest(http.MethodPost, "/api/pushcert/apns-check", nil), admin))
	var got map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &got); w.Code != http.StatusOK || err != nil || got["outcome"] != "rejected" {
		t.Errorf("API check after revocation: got %d %s, want 200 rejected", w.Code, w.Body)
	}
	page = show(viewer)
	if outcome(page) != "rejected" || !strings.Contains(testIDText(t, page, "apns-message"), "revoked") {
		t.Errorf("after revocation: got %q, %q; want rejected saying it was revoked", outcome(page), testIDText(t, page, "apns-message"))
	}
}
