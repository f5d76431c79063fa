package delivery_test

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/target"
)

// A target whose settings changed (another server under the same name)
// is not in sync and gets the certificate.
func TestChangedTargetIsDeliveredAgain(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	before, after := newMDMServer(t), newMDMServer(t)
	cert := e.activate(t)
	reconcile(t, e.deliverer(e.st, delivery.Config{}, before.target(t, "nanomdm")))
	moved := e.deliverer(e.st, delivery.Config{}, after.target(t, "nanomdm"))
	if s := status(t, moved, "nanomdm"); s.InSync {
		t.Errorf("after the target moved to another server: got in sync, want not")
	}
	reconcile(t, moved)
	if got, _ := after.counts(); got[cert.SerialNumber] != 1 {
		t.Errorf("the new server got %v, want the certificate", got)
	}
	if s := status(t, moved, "nanomdm"); !s.InSync {
		t.Errorf("after delivering to the new server: got %+v, want in sync", s)
	}
}

// A "Deliver now" made while a delivery is in flight is served by another
// delivery, not swallowed by the one in flight.
func TestRequestDuringDeliveryIsNotLost(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	mdm := newMDMServer(t)
	d := e.deliverer(e.st, delivery.Config{}, mdm.target(t, "nanomdm"))
	cert := e.activate(t)
	arrived, release := mdm.hold()
	done := make(chan error, 1)
	go func() { _, err := d.Reconcile(t.Context()); done <- err }()
	<-arrived
	e.clock.Advance(time.Second)
	if err := d.Request(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := status(t, d, "nanomdm"); !s.Redeliver {
		t.Errorf("after the delivery in flight landed: got %+v, want the request still waiting", s)
	}
	reconcile(t, d)
	if got, _ := mdm.counts(); got[cert.SerialNumber] != 2 {
		t.Errorf("NanoMDM got %v, want the certificate twice", got)
	}
	if s := status(t, d, "nanomdm"); s.Redeliver || !s.InSync {
		t.Errorf("after the second delivery: got %+v, want in sync and the request served", s)
	}
}

// A new activation is delivered at once, without waiting out the backoff
// the previous certificate's failures earned.
func TestActivationSkipsEarlierBackoff(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	mdm := newMDMServer(t)
	d := e.deliverer(e.st, delivery.Config{RetryBase: time.Hour, AlertAfter: -1}, mdm.target(t, "nanomdm"))
	e.activate(t)
	mdm.setStatus(http.StatusServiceUnavailable)
	reconcile(t, d)
	mdm.setStatus(0)
	renewed := e.activate(t)
	reconcile(t, d)
	if got, _ := mdm.counts(); got[renewed.SerialNumber] != 1 {
		t.Errorf("NanoMDM got %v, want the renewed certificate at once", got)
	}
}

// A folder that lost its files is written again, though its record says it
// holds the certificate.
func TestEmptiedFolderIsWrittenAgain(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	folder, err := target.NewFolder(target.FolderOptions{Name: "volume", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	d := e.deliverer(e.st, delivery.Config{}, folder)
	cert := e.activate(t)
	reconcile(t, d)
	certFile, keyFile, _ := folder.Files()
	for _, f := range []string{certFile, keyFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	reconcile(t, d)
	if _, err := os.Stat(keyFile); err != nil {
		t.Errorf("the key file was not written again: %v", err)
	}
	if s := status(t, d, "volume"); !s.InSync || s.DeliveredSerial != cert.SerialNumber {
		t.Errorf("got %+v, want in sync with %s", s, cert.SerialNumber)
	}
	if n := len(e.events(t, pushcert.EventDelivered)); n != 2 {
		t.Errorf("history has %d deliveries, want 2", n)
	}
}

// A replica that claimed a delivery and died holds it only until its lease
// runs out; then another replica delivers.
func TestLeaseOfADeadReplicaRunsOut(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		mdm := newMDMServer(t)
		tg := mdm.target(t, "nanomdm")
		d := e.deliverer(e.st, delivery.Config{}, tg)
		cert := e.activate(t)
		now := e.clock.Now()
		// The dead replica's claim, with the lease a Deliverer takes.
		lease := 90 * time.Second
		if _, ok, err := e.st.ClaimDelivery(t.Context(), "nanomdm", cert.Fingerprint, tg.(interface{ Settings() string }).Settings(), now, now.Add(lease)); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		if next := reconcile(t, d); !next.Equal(now.Add(lease)) {
			t.Errorf("while leased: next %v, want the lease's end %v", next, now.Add(lease))
		}
		if _, tries := mdm.counts(); tries != 0 {
			t.Fatalf("delivered while another replica holds the lease")
		}
		e.clock.Advance(lease)
		reconcile(t, d)
		if got, _ := mdm.counts(); got[cert.SerialNumber] != 1 {
			t.Errorf("after the lease ran out: NanoMDM got %v, want the certificate", got)
		}
	})
}
