package store

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/pushcert"
)

func TestAPNSCheckStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"fresh record", testAPNSFresh},
		{"result round trip", testAPNSRoundTrip},
		{"claim: due, leased, released", testAPNSClaim},
		{"concurrent claims", testAPNSConcurrentClaims},
		{"events on change only", testAPNSEvents},
		{"older result is not the last", testAPNSOlderResult},
		{"alerted once per episode", testAPNSAlerted},
		{"only the holder releases the lease", testAPNSLeaseHolder},
		{"the active certificate's result is kept", testAPNSActiveFirst},
	}
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) { tt.fn(t, b) })
			}
		})
	}
}

// apnsResult is a check of the certificate with fingerprint fp at at.
func apnsResult(o apns.Outcome, fp string, at time.Time) apns.Result {
	return apns.Result{At: at, Outcome: o, Message: "message " + string(o), Serial: "SERIAL-" + fp, Fingerprint: fp,
		Topic: "com.apple.mgmt.External.topic", Server: "api.push.apple.com:443", HTTPStatus: 400, Reason: "BadDeviceToken",
		By: apns.System}
}

// finished is r to record, releasing the lease that ended at lease (zero:
// the check was not claimed), and in the history when always.
func finished(r apns.Result, lease time.Time, always bool) apns.Finished {
	kind := map[apns.Outcome]pushcert.EventKind{apns.OutcomeAccepted: pushcert.EventAPNSAccepted,
		apns.OutcomeRejected: pushcert.EventAPNSRejected, apns.OutcomeUnreachable: pushcert.EventAPNSUnreachable}[r.Outcome]
	return apns.Finished{Result: r, Lease: lease, Always: always,
		Event: pushcert.Event{At: r.At, Kind: kind, Actor: r.By, Serial: r.Serial, Detail: r.Message}}
}

func mustAPNS(t *testing.T, db *DB) apns.Record {
	t.Helper()
	r, err := db.APNSCheck(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func record(t *testing.T, db *DB, f apns.Finished) bool {
	t.Helper()
	changed, err := db.RecordAPNSCheck(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	return changed
}

func claim(t *testing.T, db *DB, fp string, now, leaseUntil, checkedBefore time.Time) bool {
	t.Helper()
	ok, err := db.ClaimAPNSCheck(t.Context(), fp, now, leaseUntil, checkedBefore)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// apnsEvents returns the kinds of the check's audit events, oldest first.
func apnsEvents(t *testing.T, db *DB) []string {
	t.Helper()
	es := mustEvents(t, db)
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		if k := string(es[i].Kind); strings.HasPrefix(k, "apns_") {
			out = append(out, k)
		}
	}
	return out
}

func testAPNSFresh(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	if got := mustAPNS(t, db); !reflect.DeepEqual(got, apns.Record{}) {
		t.Errorf("got %+v, want the zero record", got)
	}
}

func testAPNSRoundTrip(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	at := utc(testNow())
	r := apnsResult(apns.OutcomeRejected, "FP1", at)
	r.By, r.HTTPStatus, r.Reason = withoutRole(admin), 403, "BadCertificate"
	record(t, db, finished(r, time.Time{}, true))
	want := apns.Record{Last: r, Since: at}
	if got := mustAPNS(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	r = apnsResult(apns.OutcomeAccepted, "FP2", at.Add(time.Second))
	r.Topic, r.NoTopic = "", true
	record(t, db, finished(r, time.Time{}, false))
	if got := mustAPNS(t, db).Last; !reflect.DeepEqual(got, r) {
		t.Errorf("without a topic: got %+v, want %+v", got, r)
	}
}

func testAPNSClaim(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	lease := time.Minute
	if !claim(t, db, "FP1", t0, t0.Add(lease), time.Time{}) {
		t.Fatal("first check of a certificate: not claimed")
	}
	if claim(t, db, "FP1", t0.Add(lease-time.Second), t0.Add(2*lease), time.Time{}) {
		t.Error("claimed while leased")
	}
	if got := mustAPNS(t, db).LeaseUntil; !got.Equal(t0.Add(lease)) {
		t.Errorf("lease: got %v, want %v", got, t0.Add(lease))
	}
	// A replica that stopped mid-check: once its lease runs out, another claims.
	if !claim(t, db, "FP1", t0.Add(lease), t0.Add(2*lease), time.Time{}) {
		t.Fatal("not claimed after the lease ran out")
	}
	at := t0.Add(lease + time.Second)
	record(t, db, finished(apnsResult(apns.OutcomeAccepted, "FP1", at), t0.Add(2*lease), false))
	if got := mustAPNS(t, db).LeaseUntil; !got.IsZero() {
		t.Errorf("after recording the claimed check: lease %v, want none", got)
	}
	now := at.Add(time.Hour)
	for _, tt := range []struct {
		name          string
		fp            string
		checkedBefore time.Time
		want          bool
	}{
		{"same certificate, periodic off", "FP1", time.Time{}, false},
		{"same certificate, checked since", "FP1", at.Add(-time.Microsecond), false},
		{"same certificate, checked then", "FP1", at, true},
		{"another certificate", "FP2", time.Time{}, true},
	} {
		if got := claim(t, db, tt.fp, now, now.Add(lease), tt.checkedBefore); got != tt.want {
			t.Errorf("%s: claimed %v, want %v", tt.name, got, tt.want)
		}
		// Release what was claimed, as an on-demand check would not.
		record(t, db, finished(apnsResult(apns.OutcomeAccepted, "FP1", at), now.Add(lease), false))
	}
}

func testAPNSConcurrentClaims(t *testing.T, b backend) {
	u := b.URL(t)
	keys := newKeyring(t, secretA)
	const n = 8
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = open(t, u, keys)
	}
	t0 := utc(testNow())
	for round := range 3 {
		now := t0.Add(time.Duration(round) * time.Hour)
		var wg sync.WaitGroup
		won := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				won[i], errs[i] = dbs[i].ClaimAPNSCheck(t.Context(), "FP1", now, now.Add(time.Minute), now.Add(-30*time.Minute))
			}()
		}
		wg.Wait()
		winners := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d claim %d: %v", round, i, errs[i])
			}
			if won[i] {
				winners++
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d replicas claimed the check, want 1", round, winners)
		}
		record(t, dbs[0], finished(apnsResult(apns.OutcomeAccepted, "FP1", now.Add(time.Second)), now.Add(time.Minute), false))
	}
}

func testAPNSEvents(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	steps := []struct {
		name        string
		f           apns.Finished
		wantChanged bool
		wantEvent   pushcert.EventKind // "" for none
		wantSince   time.Duration      // after t0
	}{
		{"first check", finished(apnsResult(apns.OutcomeAccepted, "FP1", t0), time.Time{}, false), true, pushcert.EventAPNSAccepted, 0},
		{"same outcome", finished(apnsResult(apns.OutcomeAccepted, "FP1", t0.Add(1*time.Minute)), time.Time{}, false), false, "", 0},
		{"same outcome, asked for", finished(apnsResult(apns.OutcomeAccepted, "FP1", t0.Add(2*time.Minute)), time.Time{}, true), false, pushcert.EventAPNSAccepted, 0},
		{"renewed certificate accepted", finished(apnsResult(apns.OutcomeAccepted, "FP2", t0.Add(3*time.Minute)), time.Time{}, false), true, pushcert.EventAPNSAccepted, 0},
		{"out of reach", finished(apnsResult(apns.OutcomeUnreachable, "FP2", t0.Add(4*time.Minute)), time.Time{}, false), true, pushcert.EventAPNSUnreachable, 4 * time.Minute},
		{"still out of reach", finished(apnsResult(apns.OutcomeUnreachable, "FP2", t0.Add(5*time.Minute)), time.Time{}, false), false, "", 4 * time.Minute},
		{"rejected", finished(apnsResult(apns.OutcomeRejected, "FP2", t0.Add(6*time.Minute)), time.Time{}, false), true, pushcert.EventAPNSRejected, 6 * time.Minute},
		{"still rejected", finished(apnsResult(apns.OutcomeRejected, "FP2", t0.Add(7*time.Minute)), time.Time{}, false), false, "", 6 * time.Minute},
		{"another certificate rejected", finished(apnsResult(apns.OutcomeRejected, "FP3", t0.Add(8*time.Minute)), time.Time{}, false), true, pushcert.EventAPNSRejected, 8 * time.Minute},
	}
	var want []string
	for _, s := range steps {
		changed := record(t, db, s.f)
		if s.wantEvent != "" {
			want = append(want, string(s.wantEvent))
		}
		got := apnsEvents(t, db)
		rec := mustAPNS(t, db)
		if changed != s.wantChanged || fmt.Sprint(got) != fmt.Sprint(want) || !rec.Since.Equal(t0.Add(s.wantSince)) {
			t.Errorf("%s: got changed %v, events %v, since %v; want %v, %v, %v",
				s.name, changed, got, rec.Since, s.wantChanged, want, t0.Add(s.wantSince))
		}
	}
	es := mustEvents(t, db)
	if e := es[0]; e.Serial != "SERIAL-FP3" || e.Detail != "message rejected" || e.Actor.Subject != apns.System.Subject {
		t.Errorf("newest event: got %+v, want the rejection of FP3 by pushcert", e)
	}
}

func testAPNSOlderResult(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	newer := apnsResult(apns.OutcomeAccepted, "FP1", t0.Add(time.Minute))
	record(t, db, finished(newer, time.Time{}, true))
	if !claim(t, db, "FP2", t0, t0.Add(time.Hour), time.Time{}) {
		t.Fatal("not claimed")
	}
	// A slow check, claimed before and finished before the recorded one,
	// recorded after it.
	if changed := record(t, db, finished(apnsResult(apns.OutcomeUnreachable, "FP1", t0), t0.Add(time.Hour), false)); changed {
		t.Error("an older result counted as a change")
	}
	rec := mustAPNS(t, db)
	if !reflect.DeepEqual(rec.Last, newer) || !rec.LeaseUntil.IsZero() {
		t.Errorf("got %+v, want the newer result and the lease released", rec)
	}
	record(t, db, finished(apnsResult(apns.OutcomeUnreachable, "FP1", t0), time.Time{}, true))
	if got := apnsEvents(t, db); fmt.Sprint(got) != "[apns_accepted apns_unreachable]" {
		t.Errorf("events: got %v, want the asked-for older check in the history", got)
	}
	if !reflect.DeepEqual(mustAPNS(t, db).Last, newer) {
		t.Error("an older asked-for check replaced the last result")
	}
}

func testAPNSAlerted(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	_, cert := activateNew(t, db, f.keys[0], "")
	fp := cert.Fingerprint
	t0 := utc(testNow())
	mark := func(o apns.Outcome, since time.Time) bool {
		t.Helper()
		ok, err := db.MarkAPNSAlerted(t.Context(), o, since, pushcert.Event{At: since, Kind: pushcert.EventAPNSAlertRejected, Actor: apns.System})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	record(t, db, finished(apnsResult(apns.OutcomeRejected, fp, t0), time.Time{}, false))
	if mark(apns.OutcomeRejected, t0.Add(time.Second)) || mark(apns.OutcomeUnreachable, t0) {
		t.Error("marked an episode that is not the current one")
	}
	if !mark(apns.OutcomeRejected, t0) {
		t.Fatal("the current episode was not marked")
	}
	if mark(apns.OutcomeRejected, t0) {
		t.Error("marked twice")
	}
	record(t, db, finished(apnsResult(apns.OutcomeRejected, fp, t0.Add(time.Minute)), time.Time{}, false))
	if rec := mustAPNS(t, db); !rec.Alerted || !rec.Since.Equal(t0) {
		t.Errorf("same episode: got alerted %v since %v, want alerted since %v", rec.Alerted, rec.Since, t0)
	}
	record(t, db, finished(apnsResult(apns.OutcomeAccepted, fp, t0.Add(2*time.Minute)), time.Time{}, false))
	record(t, db, finished(apnsResult(apns.OutcomeRejected, fp, t0.Add(3*time.Minute)), time.Time{}, false))
	if rec := mustAPNS(t, db); rec.Alerted || !rec.Since.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("new episode: got alerted %v since %v, want not alerted since %v", rec.Alerted, rec.Since, t0.Add(3*time.Minute))
	}
	// The refusal is of a certificate that is no longer active once the
	// renewal is: it raises no alert.
	activateNew(t, db, f.keys[1], cert.Topic)
	if mark(apns.OutcomeRejected, t0.Add(3*time.Minute)) {
		t.Error("marked the refusal of a certificate that is no longer active")
	}
	if got := apnsEvents(t, db); fmt.Sprint(got) != "[apns_rejected apns_alert_rejected apns_accepted apns_rejected]" {
		t.Errorf("events: got %v, want one alert event", got)
	}
}

// A replica whose lease ran out while it checked releases only its own
// lease when it records: the replica that claimed after it keeps its own.
func testAPNSLeaseHolder(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	t0 := utc(testNow())
	first, second := t0.Add(time.Minute), t0.Add(2*time.Minute)
	if !claim(t, db, "FP1", t0, first, time.Time{}) {
		t.Fatal("first claim: not claimed")
	}
	if !claim(t, db, "FP1", first, second, time.Time{}) {
		t.Fatal("claim after the first lease ran out: not claimed")
	}
	record(t, db, finished(apnsResult(apns.OutcomeAccepted, "FP2", first.Add(time.Second)), first, false))
	if got := mustAPNS(t, db).LeaseUntil; !got.Equal(second) {
		t.Errorf("after the first claimant recorded: lease %v, want the second's %v", got, second)
	}
	if claim(t, db, "FP3", first.Add(2*time.Second), second.Add(time.Minute), time.Time{}) {
		t.Error("claimed while the second claimant holds the lease")
	}
	record(t, db, finished(apnsResult(apns.OutcomeAccepted, "FP2", first.Add(3*time.Second)), second, false))
	if got := mustAPNS(t, db).LeaseUntil; !got.IsZero() {
		t.Errorf("after the second claimant recorded: lease %v, want none", got)
	}
}

// A check of a certificate that is no longer active never replaces the
// active one's result, however late it finishes; only a check a person
// asked for is in the history. The active one's result replaces an
// earlier certificate's, even one that finished later.
func testAPNSActiveFirst(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	_, old := activateNew(t, db, f.keys[0], "")
	t0 := utc(testNow())
	record(t, db, finished(apnsResult(apns.OutcomeAccepted, old.Fingerprint, t0.Add(time.Hour)), time.Time{}, false))
	_, renewed := activateNew(t, db, f.keys[1], old.Topic)
	accepted := apnsResult(apns.OutcomeAccepted, renewed.Fingerprint, t0)
	if changed := record(t, db, finished(accepted, time.Time{}, false)); !changed {
		t.Error("the renewed certificate's first result: not a change")
	}
	if rec := mustAPNS(t, db); !reflect.DeepEqual(rec.Last, accepted) {
		t.Fatalf("got %+v, want the renewed certificate's result over the old one's later one", rec.Last)
	}
	for _, always := range []bool{true, false} {
		late := apnsResult(apns.OutcomeRejected, old.Fingerprint, t0.Add(2*time.Hour))
		if changed := record(t, db, finished(late, time.Time{}, always)); changed {
			t.Errorf("asked for %v: the old certificate's late refusal counted as a change", always)
		}
		if rec := mustAPNS(t, db); !reflect.DeepEqual(rec.Last, accepted) || !rec.Since.Equal(t0) || rec.Alerted {
			t.Errorf("asked for %v: got %+v, want the renewed certificate's acceptance kept", always, rec)
		}
	}
	if got := apnsEvents(t, db); fmt.Sprint(got) != "[apns_accepted apns_accepted apns_rejected]" {
		t.Errorf("events: got %v, want the asked-for late refusal in the history", got)
	}
}
