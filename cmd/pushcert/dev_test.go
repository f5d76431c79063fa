package main

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestDevSecret: a development secret is made once, kept, and never
// replaced: a damaged file stops startup instead, since the dev database's
// keys are encrypted under it.
func TestDevSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dev-key-encryption-secret")

	got, err := devSecret("", dir, "dev-key-encryption-secret")
	if err != nil || len(got) != 64 {
		t.Fatalf("first start: got %q, %v; want a new 64-character secret", got, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got %v, %v; want the file with mode 0600", fi, err)
	}
	if again, err := devSecret("", dir, "dev-key-encryption-secret"); err != nil || again != got {
		t.Fatalf("second start: got %q, %v; want the kept %q", again, err, got)
	}
	if given, err := devSecret("an explicitly configured secret, long enough", dir, "dev-key-encryption-secret"); err != nil || given != "an explicitly configured secret, long enough" {
		t.Fatalf("configured: got %q, %v; want the configured secret", given, err)
	}

	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := devSecret("", dir, "dev-key-encryption-secret"); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged file: got %v, want an error naming %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "short" {
		t.Fatalf("damaged file: got it replaced with %q, want it left as it was", b)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*")); len(leftovers) != 0 {
		t.Errorf("got temporary files left: %v", leftovers)
	}
}

// TestDevSecretConcurrentStarts: two starts on a new data folder agree on
// one secret.
func TestDevSecretConcurrentStarts(t *testing.T) {
	dir := t.TempDir()
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			s, err := devSecret("", dir, "dev-session-secret")
			if err != nil {
				t.Error(err)
			}
			got[i] = s
		})
	}
	wg.Wait()
	for _, s := range got {
		if s != got[0] || len(s) != 64 {
			t.Fatalf("got secrets %q, want one and the same", got)
		}
	}
}
