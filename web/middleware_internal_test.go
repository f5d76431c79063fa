package web

import (
	"regexp"
	"testing"
)

func TestNewRequestID(t *testing.T) {
	guid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := newRequestID()
		if !guid.MatchString(id) {
			t.Fatalf("got %q, want the 8-4-4-4-12 form", id)
		}
		if seen[id] {
			t.Fatalf("got %q twice, want a new ID each time", id)
		}
		seen[id] = true
	}
}

func BenchmarkNewRequestID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = newRequestID()
	}
}
