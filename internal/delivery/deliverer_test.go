package delivery_test

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/export"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
	"github.com/pushcert/pushcert/internal/target"
)

// A pass delivers the active certificate to every target that lacks it,
// once: a second pass sends nothing, and an activation is delivered again.
func TestReconcileDeliversOnce(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		mdm := newMDMServer(t)
		dir := t.TempDir()
		folder, err := target.NewFolder(target.FolderOptions{Name: "volume", Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		d := e.deliverer(e.st, delivery.Config{}, mdm.target(t, "nanomdm"), folder)

		if next := reconcile(t, d); !next.IsZero() {
			t.Errorf("with no certificate: next %v, want nothing due", next)
		}
		if s := status(t, d, "nanomdm"); s.InSync || !s.LastAttemptAt.IsZero() {
			t.Errorf("with no certificate: got %+v, want no attempt", s)
		}
		first := e.activate(t)
		reconcile(t, d)
		reconcile(t, d)
		if got, tries := mdm.counts(); got[first.SerialNumber] != 1 || tries != 1 {
			t.Errorf("NanoMDM got %v in %d tries, want %s once", got, tries, first.SerialNumber)
		}
		for _, name := range []string{"nanomdm", "volume"} {
			s := status(t, d, name)
			if !s.InSync || s.DeliveredSerial != first.SerialNumber || s.LastError != "" || !s.DeliveredAt.Equal(e.clock.Now()) {
				t.Errorf("%s: got %+v, want in sync with %s delivered now", name, s, first.SerialNumber)
			}
		}
		certFile, _, _ := folder.Files()
		if b, err := os.ReadFile(certFile); err != nil || !strings.Contains(first.PEM, strings.TrimSpace(string(b))) {
			t.Errorf("the folder holds %q (%v), want the active certificate", b, err)
		}

		second := e.activate(t)
		if s := status(t, d, "nanomdm"); s.InSync {
			t.Errorf("after a renewal, before a pass: got in sync, want out of sync")
		}
		reconcile(t, d)
		if got, _ := mdm.counts(); got[second.SerialNumber] != 1 || got[first.SerialNumber] != 1 {
			t.Errorf("NanoMDM got %v, want each certificate once", got)
		}
		if n := len(e.events(t, pushcert.EventDelivered)); n != 4 {
			t.Errorf("history has %d deliveries, want 4 (two certificates, two targets)", n)
		}
	})
}

// A target that is down is retried with a doubling wait and no history
// row per retry; a new reason is recorded; once it answers it is in sync.
func TestReconcileBacksOffWhileDown(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	mdm := newMDMServer(t)
	d := e.deliverer(e.st, delivery.Config{RetryBase: 10 * time.Second, RetryMax: 30 * time.Second, AlertAfter: -1}, mdm.target(t, "nanomdm"))
	cert := e.activate(t)
	mdm.setStatus(http.StatusInternalServerError)

	start := e.clock.Now()
	if next := reconcile(t, d); !next.Equal(start.Add(10 * time.Second)) {
		t.Errorf("after the first failure: next %v, want %v", next, start.Add(10*time.Second))
	}
	s := status(t, d, "nanomdm")
	if s.InSync || s.Failures != 1 || s.LastError == "" || !s.OutOfSyncSince.Equal(start) {
		t.Fatalf("after the first failure: got %+v, want out of sync since now with the reason", s)
	}
	reconcile(t, d) // not due yet
	if _, tries := mdm.counts(); tries != 1 {
		t.Errorf("a pass before the retry is due tried again (%d tries)", tries)
	}
	for i, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second} {
		e.clock.Advance(wait)
		next := reconcile(t, d)
		want := []time.Duration{20 * time.Second, 30 * time.Second, 30 * time.Second}[i]
		if !next.Equal(e.clock.Now().Add(want)) {
			t.Errorf("after failure %d: next in %v, want %v", i+2, next.Sub(e.clock.Now()), want)
		}
	}
	if _, tries := mdm.counts(); tries != 4 {
		t.Errorf("got %d tries, want 4", tries)
	}
	if n := len(e.events(t, pushcert.EventDeliveryFailed)); n != 1 {
		t.Errorf("history has %d failures for one reason, want 1", n)
	}
	mdm.setStatus(http.StatusUnauthorized)
	e.clock.Advance(30 * time.Second)
	reconcile(t, d)
	failed := e.events(t, pushcert.EventDeliveryFailed)
	if len(failed) != 2 || !strings.Contains(failed[1].Detail, "API key") || failed[1].Serial != cert.SerialNumber {
		t.Errorf("after a new reason: got %+v, want a second failure naming the API key", failed)
	}
	mdm.setStatus(0)
	e.clock.Advance(30 * time.Second)
	if next := reconcile(t, d); !next.IsZero() {
		t.Errorf("in sync: next %v, want nothing due", next)
	}
	if s := status(t, d, "nanomdm"); !s.InSync || s.Failures != 0 || s.LastError != "" || !s.OutOfSyncSince.IsZero() {
		t.Errorf("after recovery: got %+v, want in sync with no failure", s)
	}
}

// An out-of-sync episode that outlasts AlertAfter records one event (the
// alert checker turns it into the webhook alert), however many passes or
// replicas see it; a later episode gets its own.
func TestOutOfSyncAlertedOncePerEpisode(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		mdm := newMDMServer(t)
		cfg := delivery.Config{RetryBase: time.Second, AlertAfter: time.Minute}
		a := e.deliverer(e.st, cfg, mdm.target(t, "nanomdm"))
		b := e.deliverer(e.open(t), cfg, mdm.target(t, "nanomdm"))
		e.activate(t)
		mdm.setStatus(http.StatusServiceUnavailable)
		start := e.clock.Now()
		if next := reconcile(t, a); !next.Equal(start.Add(time.Second)) {
			t.Errorf("next %v, want the retry in 1 s", next)
		}
		e.clock.Advance(time.Second)
		if next := reconcile(t, a); !next.Equal(start.Add(3 * time.Second)) {
			t.Errorf("after the second failure: next %v, want the retry 2 s later, %v", next, start.Add(3*time.Second))
		}
		e.clock.Advance(58 * time.Second)
		if next := reconcile(t, a); !next.Equal(start.Add(time.Minute)) {
			t.Errorf("a second before the alert, with the retry later: next %v, want the alert's time %v", next, start.Add(time.Minute))
		}
		if n := len(e.events(t, pushcert.EventDeliveryOutOfSync)); n != 0 {
			t.Fatalf("alerted after 59 s, want after a minute")
		}
		e.clock.Advance(time.Second)
		for range 3 {
			reconcile(t, a)
			reconcile(t, b)
		}
		got := e.events(t, pushcert.EventDeliveryOutOfSync)
		if len(got) != 1 || !strings.Contains(got[0].Detail, "nanomdm") || !strings.Contains(got[0].Detail, "503") {
			t.Fatalf("got %+v, want one out-of-sync event naming the target and the reason", got)
		}
		mdm.setStatus(0)
		e.clock.Advance(time.Hour)
		reconcile(t, a)
		mdm.setStatus(http.StatusServiceUnavailable)
		e.activate(t)
		reconcile(t, b)
		e.clock.Advance(2 * time.Minute)
		reconcile(t, b)
		reconcile(t, a)
		if n := len(e.events(t, pushcert.EventDeliveryOutOfSync)); n != 2 {
			t.Errorf("got %d out-of-sync events over two episodes, want 2", n)
		}
	})
}

// Replicas reconciling at the same moment deliver each certificate once.
func TestConcurrentReplicasDeliverOnce(t *testing.T) {
	backends(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL)
		mdm := newMDMServer(t)
		var ds []*delivery.Deliverer
		for range 4 {
			ds = append(ds, e.deliverer(e.open(t), delivery.Config{}, mdm.target(t, "nanomdm")))
		}
		cert := e.activate(t)
		var wg sync.WaitGroup
		for _, d := range ds {
			for range 3 {
				wg.Go(func() {
					if _, err := d.Reconcile(t.Context()); err != nil {
						t.Errorf("Reconcile: %v", err)
					}
				})
			}
		}
		wg.Wait()
		if got, tries := mdm.counts(); got[cert.SerialNumber] != 1 || tries != 1 {
			t.Errorf("NanoMDM got %v in %d tries, want one delivery", got, tries)
		}
	})
}

// "Deliver now" sends the certificate again to a target in sync, records
// who asked, and is refused with nothing to deliver or nowhere to.
func TestRequestRedelivers(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	mdm := newMDMServer(t)
	d := e.deliverer(e.st, delivery.Config{}, mdm.target(t, "nanomdm"))
	if err := d.Request(t.Context(), admin); !errors.Is(err, delivery.ErrNoActiveKey) {
		t.Errorf("with no certificate: got %v, want ErrNoActiveKey", err)
	}
	if err := e.deliverer(e.st, delivery.Config{}).Request(t.Context(), admin); !errors.Is(err, delivery.ErrNoTargets) {
		t.Errorf("with no targets: got %v, want ErrNoTargets", err)
	}
	cert := e.activate(t)
	reconcile(t, d)
	if err := d.Request(t.Context(), admin); err != nil {
		t.Fatal(err)
	}
	if s := status(t, d, "nanomdm"); !s.InSync || !s.Redeliver {
		t.Errorf("after the request: got %+v, want in sync with a redelivery asked", s)
	}
	reconcile(t, d)
	reconcile(t, d)
	if got, _ := mdm.counts(); got[cert.SerialNumber] != 2 {
		t.Errorf("NanoMDM got %v, want the certificate twice", got)
	}
	asked := e.events(t, pushcert.EventDeliveryRequested)
	if len(asked) != 1 || asked[0].Actor.Email != admin.Email || !strings.Contains(asked[0].Detail, "nanomdm") {
		t.Errorf("got %+v, want one request by the admin naming the target", asked)
	}
}

// An export hands out the active pair and records who took it and how; a
// refused one records nothing.
func TestExportIsAudited(t *testing.T) {
	e := newEnv(t, storetest.SQLiteURL(t))
	d := e.deliverer(e.st, delivery.Config{})
	if _, err := d.Export(t.Context(), admin, export.PEM, "", "the console"); !errors.Is(err, delivery.ErrNoActiveKey) {
		t.Errorf("with no certificate: got %v, want ErrNoActiveKey", err)
	}
	cert := e.activate(t)
	if _, err := d.Export(t.Context(), admin, export.PKCS12Modern, "short", "the console"); !errors.As(err, new(*export.PassphraseError)) {
		t.Errorf("short passphrase: got %v, want a PassphraseError", err)
	}
	if n := len(e.events(t, pushcert.EventKeyExported)); n != 0 {
		t.Fatalf("a refused export was recorded (%d events)", n)
	}
	f, err := d.Export(t.Context(), admin, export.PEM, "", "the API")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Data), "PRIVATE KEY") || !strings.Contains(string(f.Data), strings.TrimSpace(cert.PEM)) {
		t.Errorf("the PEM export lacks the certificate or key")
	}
	got := e.events(t, pushcert.EventKeyExported)
	if len(got) != 1 || got[0].Actor.Email != admin.Email || !strings.Contains(got[0].Detail, "the API") || got[0].Serial != cert.SerialNumber {
		t.Errorf("got %+v, want one export by the admin through the API", got)
	}
	off := e.deliverer(e.st, delivery.Config{ExportDisabled: true})
	if _, err := off.Export(t.Context(), admin, export.PEM, "", "the API"); !errors.Is(err, delivery.ErrExportDisabled) || off.ExportEnabled() {
		t.Errorf("disabled: got %v, want ErrExportDisabled", err)
	}
}
