package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/pushcert"
)

func TestAlertStore(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"events after and counts", testEventsAfter},
		{"cursor", testAlertCursor},
		{"cursor starts at the newest event on upgrade", testAlertCursorUpgrade},
		{"add once", testAddAlertOnce},
		{"claim, lease, retry, finish", testClaimLifecycle},
		{"concurrent claims", testConcurrentClaims},
		{"last sent alert", testLastSentAlert},
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

// addEvents stores n upload-failure events through the store's write path.
func addEvents(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := range n {
		if _, err := db.RecordUploadFailure(t.Context(), 0, fmt.Sprintf("reason %d", i), pushcert.Event{
			Kind: pushcert.EventUploadFailed, Actor: admin, Detail: fmt.Sprintf("reason %d", i),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func testEventsAfter(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	addEvents(t, db, 5)
	addPending(t, db, fixtures(t).keys[0], testNow())
	all, err := db.EventsAfter(t.Context(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 {
		t.Fatalf("got %d events, want 6", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID <= all[i-1].ID {
			t.Errorf("events not oldest first: id %d after %d", all[i].ID, all[i-1].ID)
		}
	}
	if all[0].Detail != "reason 0" || all[0].Actor.Email != admin.Email || all[0].Kind != pushcert.EventUploadFailed {
		t.Errorf("first event: got %+v, want reason 0 by %s", all[0], admin.Email)
	}
	page, err := db.EventsAfter(t.Context(), all[1].ID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
		t.Errorf("page after %d: got %v, want events %d and %d", all[1].ID, page, all[2].ID, all[3].ID)
	}
	counts, err := db.EventCounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if counts[pushcert.EventUploadFailed] != 5 || counts[pushcert.EventCSRGenerated] != 1 || len(counts) != 2 {
		t.Errorf("counts: got %v, want 5 upload_failed and 1 csr_generated", counts)
	}
}

func testAlertCursor(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	cur, err := db.AlertCursor(t.Context())
	if err != nil || cur != 0 {
		t.Fatalf("fresh cursor: got %d, %v; want 0", cur, err)
	}
	moved, err := db.AdvanceAlertCursor(t.Context(), 0, 7)
	if err != nil || !moved {
		t.Fatalf("advance 0 to 7: got %v, %v; want moved", moved, err)
	}
	moved, err = db.AdvanceAlertCursor(t.Context(), 0, 9)
	if err != nil || moved {
		t.Errorf("advance from a stale 0: got %v, %v; want not moved", moved, err)
	}
	if cur, _ := db.AlertCursor(t.Context()); cur != 7 {
		t.Errorf("cursor: got %d, want 7", cur)
	}
}

// testAlertCursorUpgrade opens a database as the first schema left it,
// with audit events, and checks that the alerts migration starts the cursor
// after them, so enabling alerts does not replay old failures.
func testAlertCursorUpgrade(t *testing.T, b backend) {
	u := b.URL(t)
	keys := newKeyring(t, secretA)
	db := open(t, u, keys)
	addEvents(t, db, 3)
	for _, stmt := range []string{`DROP TABLE alerts`, `DROP TABLE alert_cursor`, `DELETE FROM schema_migrations WHERE version = 2`} {
		if _, err := db.sql.ExecContext(t.Context(), stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	db = open(t, u, keys)
	events := mustEvents(t, db)
	cur, err := db.AlertCursor(t.Context())
	if err != nil || cur != events[0].ID {
		t.Errorf("cursor after upgrade: got %d, %v; want the newest event %d", cur, err, events[0].ID)
	}
}

func testAddAlertOnce(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	now := testNow()
	for i, want := range []bool{true, false} {
		added, err := db.AddAlert(t.Context(), "expired:AB", []byte(fmt.Sprintf(`{"n":%d}`, i)), now)
		if err != nil || added != want {
			t.Errorf("add %d: got %v, %v; want %v", i, added, err, want)
		}
	}
	claimed, err := db.ClaimAlerts(t.Context(), now, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || string(claimed[0].Payload) != `{"n":0}` || claimed[0].Attempts != 1 || !claimed[0].CreatedAt.Equal(utc(now)) {
		t.Errorf("claimed: got %+v, want the first payload, 1 attempt, created %v", claimed, utc(now))
	}
}

func testClaimLifecycle(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, k := range []string{"a", "b"} {
		if _, err := db.AddAlert(ctx, k, []byte("{}"), t0); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(qs []alert.Queued) []string {
		var out []string
		for _, q := range qs {
			out = append(out, fmt.Sprintf("%s#%d", q.Key, q.Attempts))
		}
		return out
	}
	claim := func(now time.Time, want ...string) {
		t.Helper()
		qs, err := db.ClaimAlerts(ctx, now, now.Add(5*time.Minute), 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(keys(qs)); got != fmt.Sprint(want) {
			t.Errorf("claim at %s: got %s, want %v", now.Format(time.TimeOnly), got, want)
		}
	}
	claim(t0, "a#1", "b#1")
	claim(t0.Add(time.Minute)) // both leased
	// a is delivered; b fails and may be retried from t0+10m.
	if err := db.FinishAlert(ctx, "a", alert.OutcomeSent, t0); err != nil {
		t.Fatal(err)
	}
	if err := db.RetryAlert(ctx, "b", t0.Add(10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	claim(t0.Add(9 * time.Minute))
	claim(t0.Add(10*time.Minute), "b#2")
	// A claimer that crashed never finishes: the lease runs out and b is
	// claimed again.
	claim(t0.Add(14 * time.Minute))
	claim(t0.Add(15*time.Minute), "b#3")
	if err := db.FinishAlert(ctx, "b", alert.OutcomeSuperseded, t0); err != nil {
		t.Fatal(err)
	}
	claim(t0.Add(time.Hour))
	sent, failed, err := db.AlertCounts(ctx)
	if err != nil || sent != 1 || failed != 1 {
		t.Errorf("counts: got %d sent, %d failed, %v; want 1 and 1", sent, failed, err)
	}
}

// testConcurrentClaims claims from several connections at once, as
// replicas do, and checks every alert went to exactly one of them.
func testConcurrentClaims(t *testing.T, b backend) {
	u := b.URL(t)
	keys := newKeyring(t, secretA)
	const claimers, alerts = 4, 20
	dbs := make([]*DB, claimers)
	for i := range dbs {
		dbs[i] = open(t, u, keys)
	}
	now := testNow()
	for i := range alerts {
		if _, err := dbs[0].AddAlert(t.Context(), fmt.Sprintf("k%02d", i), []byte("{}"), now); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]int{}
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			qs, err := db.ClaimAlerts(context.Background(), now, now.Add(time.Minute), alerts)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, q := range qs {
				got[q.Key]++
			}
		})
	}
	wg.Wait()
	if len(got) != alerts {
		t.Errorf("claimed %d distinct alerts, want %d", len(got), alerts)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("alert %s claimed %d times, want once", k, n)
		}
	}
}

func testLastSentAlert(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	ctx := t.Context()
	now := testNow().Truncate(time.Second) // PostgreSQL keeps microseconds
	if _, ok, err := db.LastSentAlert(ctx); err != nil || ok {
		t.Fatalf("before any alert: got ok %v err %v, want none", ok, err)
	}
	for i, key := range []string{"expiring:a:30", "expiring:a:14", "expired:a"} {
		if _, err := db.AddAlert(ctx, key, []byte(`{"text":"`+key+`"}`), now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// The first is sent, the second sent later, the third dropped unsent:
	// the last sent is the second, at its finishing time.
	if err := db.FinishAlert(ctx, "expiring:a:30", alert.OutcomeSent, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishAlert(ctx, "expiring:a:14", alert.OutcomeSent, now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishAlert(ctx, "expired:a", alert.OutcomeSuperseded, now.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, ok, err := db.LastSentAlert(ctx)
	if err != nil || !ok {
		t.Fatalf("got ok %v err %v, want the last sent alert", ok, err)
	}
	if got.Key != "expiring:a:14" || string(got.Payload) != `{"text":"expiring:a:14"}` || !got.At.Equal(now.Add(2*time.Hour)) {
		t.Errorf("got %s %s at %s, want expiring:a:14 with its payload at %s", got.Key, got.Payload, got.At, now.Add(2*time.Hour))
	}
}
