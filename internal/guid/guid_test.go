package guid

import (
	"regexp"
	"testing"
)

var form = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNew(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := New()
		if !form.MatchString(id) {
			t.Fatalf("got %q, want a lowercase version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("got %q twice in 1000 ids", id)
		}
		seen[id] = true
	}
}

func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		_ = New()
	}
}
