package handlers

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/target"
)

// flakyMDM answers as NanoMDM does while up, and 503 while down.
type flakyMDM struct {
	srv  *httptest.Server
	down atomic.Bool
}

func newFlakyMDM(t *testing.T) *flakyMDM {
	t.Helper()
	m := &flakyMDM{}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if m.down.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"error":"maintenance"}`)
			return
		}
		b, _ := pem.Decode(body)
		if b == nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, `{"topic":%q}`, pushcert.Describe(c).Topic)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func (e *env) deliverer(t *testing.T, m *flakyMDM) *delivery.Deliverer {
	t.Helper()
	tg, err := target.NewNanoMDM(target.Options{Name: "nanomdm", URL: m.srv.URL, APIKey: "s3cr3t-api-key"})
	if err != nil {
		t.Fatal(err)
	}
	return delivery.New(slog.New(slog.DiscardHandler), e.st, []delivery.Target{tg}, delivery.Config{Now: e.clk.Now})
}

// The status page shows each target's state in words, the reason of a
// failure, and "Deliver now" to admins only; never the target's API key.
func TestStatusPageDelivery(t *testing.T) {
	e := newEnv(t)
	m := newFlakyMDM(t)
	d := e.deliverer(t, m)
	show := func(u string) string {
		t.Helper()
		w := httptest.NewRecorder()
		NewDashboard(discardLogger(), e.svc, false).WithDelivery(d).Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), map[string]auth.User{"admin": admin, "viewer": viewer}[u]))
		assertPage(t, w)
		if strings.Contains(w.Body.String(), "s3cr3t-api-key") {
			t.Fatal("the status page shows the target's API key")
		}
		return w.Body.String()
	}
	page := show("admin")
	if got := targetState(t, page); got != "nothing" || len(findTestID(t, page, "deliver-now")) != 0 {
		t.Errorf("before any certificate: got state %q and a Deliver now button: %v, want nothing and no button", got, len(findTestID(t, page, "deliver-now")))
	}
	st := e.activate(t, "it@example.com", applesim.Request{})
	if got := targetState(t, show("viewer")); got != "pending" {
		t.Errorf("after the upload, before delivery: got %q, want pending", got)
	}
	if _, err := d.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	page = show("viewer")
	if got := targetState(t, page); got != "in-sync" || !strings.Contains(testIDText(t, page, "delivery-delivered"), st.Certificate.SerialNumber) {
		t.Errorf("after delivery: got %q, %q; want in sync holding %s", got, testIDText(t, page, "delivery-delivered"), st.Certificate.SerialNumber)
	}
	if len(findTestID(t, page, "deliver-now")) != 0 {
		t.Error("a viewer sees Deliver now")
	}
	m.down.Store(true)
	e.activate(t, "it@example.com", applesim.Request{Topic: st.Certificate.Topic})
	if _, err := d.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	page = show("admin")
	if got, reason := targetState(t, page), testIDText(t, page, "delivery-error"); got != "out-of-sync" || !strings.Contains(reason, "503") || !strings.Contains(reason, "tries again") {
		t.Errorf("with the server down: got %q, %q; want out of sync with the reason and the retry", got, reason)
	}
	if len(findTestID(t, page, "deliver-now")) != 1 {
		t.Error("an admin does not see Deliver now")
	}
}

func targetState(t *testing.T, page string) string {
	t.Helper()
	nodes := findTestID(t, page, "delivery-target")
	if len(nodes) != 1 {
		t.Fatalf("got %d delivery targets on the page, want 1", len(nodes))
	}
	return nodes[0].attrs["data-state"]
}

// Deliver now answers 303 to the status page with a confirmation and
// records who asked; with no certificate it says there is nothing to
// deliver. The API's does the same with 202 and the status.
func TestDeliverNow(t *testing.T) {
	e := newEnv(t)
	h := NewDelivery(discardLogger(), e.deliverer(t, newFlakyMDM(t)), false)
	w := httptest.NewRecorder()
	h.DeliverNow(w, as(httptest.NewRequest(http.MethodPost, "/deliveries", nil), admin))
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), "no active push certificate") {
		t.Errorf("with no certificate: got %d, want 409 saying there is nothing to deliver", w.Code)
	}
	e.activate(t, "it@example.com", applesim.Request{})
	w = httptest.NewRecorder()
	h.DeliverNow(w, as(httptest.NewRequest(http.MethodPost, "/deliveries", nil), admin))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/?done=delivery" {
		t.Errorf("got %d to %q, want 303 to /?done=delivery", w.Code, w.Header().Get("Location"))
	}
	w = httptest.NewRecorder()
	h.Deliver(w, as(httptest.NewRequest(http.MethodPost, "/api/pushcert/deliveries", nil), admin))
	var body struct {
		Targets []map[string]any `json:"targets"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); w.Code != http.StatusAccepted || err != nil || len(body.Targets) != 1 || body.Targets[0]["name"] != "nanomdm" {
		t.Errorf("API: got %d %s, want 202 with the target", w.Code, w.Body)
	}
	events, err := e.svc.History(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	for _, ev := range events {
		if ev.Kind == pushcert.EventDeliveryRequested && ev.Actor.Email == admin.Email {
			asked++
		}
	}
	if asked != 2 {
		t.Errorf("history has %d delivery requests by the admin, want 2", asked)
	}
}
