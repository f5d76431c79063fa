package store

import (
	"testing"
	"time"
)

func BenchmarkActivate(b *testing.B) {
	f := fixtures(b)
	db := open(b, "sqlite:"+b.TempDir()+"/bench.db", newKeyring(b, secretA))
	_, cert := activateNew(b, db, f.keys[0], "")
	a := activation(0, cert, "", testNow())
	for b.Loop() {
		if _, err := db.Activate(b.Context(), a); err != nil {
			b.Fatalf("Activate: %v", err)
		}
	}
}

func BenchmarkState(b *testing.B) {
	f := fixtures(b)
	db := open(b, "sqlite:"+b.TempDir()+"/bench.db", newKeyring(b, secretA))
	activateNew(b, db, f.keys[0], "")
	for b.Loop() {
		if _, err := db.State(b.Context()); err != nil {
			b.Fatalf("State: %v", err)
		}
	}
}

// BenchmarkLatestPendingKey reads the newest of 100 pending keys, as the
// status page does on every view; BenchmarkPendingKeys lists and decrypts
// all of them, as it did before.
func BenchmarkLatestPendingKey(b *testing.B) {
	db := benchPending(b, 100)
	for b.Loop() {
		if _, err := db.LatestPendingKey(b.Context(), time.Time{}); err != nil {
			b.Fatalf("LatestPendingKey: %v", err)
		}
	}
}

func BenchmarkPendingKeys(b *testing.B) {
	db := benchPending(b, 100)
	for b.Loop() {
		if _, err := db.PendingKeys(b.Context(), time.Time{}); err != nil {
			b.Fatalf("PendingKeys: %v", err)
		}
	}
}

// BenchmarkPendingKeysByHash finds one of 100 pending keys by its hash, as
// an upload does.
func BenchmarkPendingKeysByHash(b *testing.B) {
	db := benchPending(b, 100)
	k := addPending(b, db, fixtures(b).keys[1], testNow())
	for b.Loop() {
		if ks, err := db.PendingKeysByHash(b.Context(), k.PublicKeyHash, time.Time{}); err != nil || len(ks) != 1 {
			b.Fatalf("PendingKeysByHash: got %d keys, %v; want 1", len(ks), err)
		}
	}
}

// benchPending opens a SQLite store holding n pending keys.
func benchPending(b *testing.B, n int) *DB {
	b.Helper()
	f := fixtures(b)
	db := open(b, "sqlite:"+b.TempDir()+"/bench.db", newKeyring(b, secretA))
	for i := range n {
		addPending(b, db, f.keys[0], testNow().Add(time.Duration(i)*time.Millisecond))
	}
	return db
}

// BenchmarkStatus reads the state and the newest of 100 pending keys, as
// the status page does: from the status cache, the database unchanged.
// BenchmarkStatusQuery reads them from the database in one statement, as
// every call did before the cache, and BenchmarkStateAndLatest makes the
// two reads that statement replaced.
func BenchmarkStatus(b *testing.B) {
	db := benchPending(b, 100)
	for b.Loop() {
		if _, _, err := db.Status(b.Context(), time.Time{}); err != nil {
			b.Fatalf("Status: %v", err)
		}
	}
}

func BenchmarkStatusQuery(b *testing.B) {
	db := benchPending(b, 100)
	for b.Loop() {
		if _, _, err := db.readStatus(b.Context(), time.Time{}); err != nil {
			b.Fatalf("readStatus: %v", err)
		}
	}
}

func BenchmarkStateAndLatest(b *testing.B) {
	db := benchPending(b, 100)
	// The two statements, not the cache.
	c := db.cache
	db.cache = nil
	b.Cleanup(c.close)
	for b.Loop() {
		if _, err := db.State(b.Context()); err != nil {
			b.Fatalf("State: %v", err)
		}
		if _, err := db.LatestPendingKey(b.Context(), time.Time{}); err != nil {
			b.Fatalf("LatestPendingKey: %v", err)
		}
	}
}
