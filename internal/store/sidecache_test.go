package store

import (
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// The status page's other reads (delivery records, the last connection
// check) are kept while the database is unchanged, and a write through
// another handle on the same file is seen at the next read.
func TestSideCacheSeesOtherConnections(t *testing.T) {
	ctx := t.Context()
	url := storetest.SQLiteURL(t)
	db := open(t, url, newKeyring(t, secretA))
	other := open(t, url, newKeyring(t, secretA))
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i, name := range []string{"a", "b", "c"} {
		for range 2 { // the second read is answered from the cache
			recs, err := db.DeliveryRecords(ctx)
			if err != nil || len(recs) != i {
				t.Fatalf("before write %d: got %d records (%v), want %d", i, len(recs), err, i)
			}
		}
		if _, ok, err := other.ClaimDelivery(ctx, name, "FP", "settings", now, now.Add(time.Minute)); err != nil || !ok {
			t.Fatalf("claim %s: %v %v", name, ok, err)
		}
		if recs, err := db.DeliveryRecords(ctx); err != nil || len(recs) != i+1 || recs[i].Target != name {
			t.Fatalf("after the claim of %s through another handle: got %+v (%v)", name, recs, err)
		}
	}
	for range 2 {
		if _, ok, err := db.LastSentAlert(ctx); err != nil || ok {
			t.Fatalf("before any alert: got one (%v)", err)
		}
	}
	if _, err := other.AddAlert(ctx, "k1", []byte(`{"text":"t"}`), now); err != nil {
		t.Fatal(err)
	}
	if err := other.FinishAlert(ctx, "k1", alert.OutcomeSent, now); err != nil {
		t.Fatal(err)
	}
	if a, ok, err := db.LastSentAlert(ctx); err != nil || !ok || a.Key != "k1" {
		t.Fatalf("after an alert sent through another handle: got %+v %v (%v)", a, ok, err)
	}
	before, err := db.APNSCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	claimed, err := other.ClaimAPNSCheck(ctx, "FP", now, now.Add(time.Minute), now)
	if err != nil || !claimed {
		t.Fatalf("claim the check: %v %v", claimed, err)
	}
	after, err := db.APNSCheck(ctx)
	if err != nil || after.LeaseUntil.Equal(before.LeaseUntil) || !after.LeaseUntil.Equal(now.Add(time.Minute)) {
		t.Errorf("after a claim through another handle: lease %v (%v), want %v", after.LeaseUntil, err, now.Add(time.Minute))
	}
}
