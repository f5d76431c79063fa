package store

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// testStatus checks that Status returns exactly what State and
// LatestPendingKey return, with no pending key, several, and after the
// newest was consumed.
func testStatus(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)

	check := func(t *testing.T, since time.Time) {
		t.Helper()
		st, pk, err := db.Status(t.Context(), since)
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		wantState, err := db.State(t.Context())
		if err != nil {
			t.Fatalf("State: %v", err)
		}
		if !reflect.DeepEqual(st, wantState) {
			t.Errorf("got state %+v, want %+v", st, wantState)
		}
		wantKey, err := db.LatestPendingKey(t.Context(), since)
		switch {
		case errors.Is(err, pushcert.ErrNotFound):
			if pk != nil {
				t.Errorf("got pending key %+v, want none", pk)
			}
		case err != nil:
			t.Fatalf("LatestPendingKey: %v", err)
		case pk == nil || !reflect.DeepEqual(*pk, wantKey):
			t.Errorf("got pending key %+v, want %+v", pk, wantKey)
		}
	}

	t.Run("fresh", func(t *testing.T) { check(t, time.Time{}) })
	var added []pushcert.PendingKey
	for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(time.Hour)} {
		k := newPending(t, f.keys[i], at)
		k.VendorSigned = i == 1
		if err := db.AddPendingKey(t.Context(), k, csrEvent(k)); err != nil {
			t.Fatalf("AddPendingKey: %v", err)
		}
		added = append(added, k)
	}
	for _, since := range []time.Time{{}, t0.Add(time.Hour), t0.Add(time.Hour + time.Microsecond)} {
		t.Run("pending since "+since.Format(time.RFC3339Nano), func(t *testing.T) { check(t, since) })
	}
	if _, err := db.Activate(t.Context(), activation(0, issue(t, f.ca, f.keys[2], ""), added[2].ID, t0.Add(2*time.Hour))); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	t.Run("after the newest was consumed", func(t *testing.T) {
		check(t, time.Time{})
		_, pk, err := db.Status(t.Context(), time.Time{})
		if err != nil || pk == nil || pk.ID != added[1].ID || !pk.VendorSigned {
			t.Errorf("got %+v, %v, want the vendor-signed key %s", pk, err, added[1].ID)
		}
	})
}
