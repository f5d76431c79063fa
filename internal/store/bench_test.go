package store

import (
	"testing"
	"time"
)

func BenchmarkActivate(b *testing.B) {
	f := fixtures(b)
	db := open(b, "sqlite:"+b.TempDir()+"/bench.db", newKeyring(b, secretA))
	_, cert := activateNew(b, db, f.keys[0], "")
	a := activation(0, cert, "", time.Now())
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
