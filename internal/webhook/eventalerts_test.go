package webhook_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// An out-of-sync delivery target and an exported key each raise one alert,
// however often the checker looks, and the alert's text carries the reason.
func TestAlertRaisedByDeliveryAndExportEvents(t *testing.T) {
	e := newAlertEnv(t, storetest.SQLiteURL(t))
	rc := newReceiver(t)
	c := e.checker(t, e.st, rc)
	cert := e.upload(t, "", e.t0.Add(200*24*time.Hour))
	check(t, c) // the upload itself raises nothing

	now := e.clock.Now()
	if _, ok, err := e.st.ClaimDelivery(t.Context(), "nanomdm", cert.Fingerprint, "nanomdm settings", now, now.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := e.st.FinishDelivery(t.Context(), delivery.Result{Target: "nanomdm", At: now, Error: "connection refused", NextAttempt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	ev := pushcert.Event{At: now, Kind: pushcert.EventDeliveryOutOfSync, Actor: delivery.System, Serial: cert.SerialNumber,
		Detail: "nanomdm (NanoMDM at http://127.0.0.1:9/v1/pushcert) has not had the active certificate: connection refused"}
	for i := range 2 { // a second replica finds the episode alerted
		marked, err := e.st.MarkOutOfSyncAlerted(t.Context(), "nanomdm", now, ev)
		if err != nil || marked != (i == 0) {
			t.Fatalf("mark %d: got %v %v, want %v", i, marked, err, i == 0)
		}
	}
	if err := e.st.RecordEvent(t.Context(), pushcert.Event{At: now, Kind: pushcert.EventKeyExported, Actor: alertAdmin,
		Serial: cert.SerialNumber, Detail: "as PKCS#12 (compatible) from the console"}); err != nil {
		t.Fatal(err)
	}
	check(t, c)
	check(t, c)
	if got := rc.alerts(); fmt.Sprint(got) != "[delivery_out_of_sync/0 key_exported/0]" {
		t.Fatalf("got %v, want one out-of-sync and one export alert", got)
	}
	a, _ := rc.last()
	if a.Actor != alertAdmin.Email || !strings.Contains(a.Text, "private key was exported by "+alertAdmin.Email) ||
		!strings.Contains(a.Text, "PKCS#12 (compatible)") || a.Serial != cert.SerialNumber {
		t.Errorf("got %+v, want the exporter, the way and the serial", a)
	}
}
