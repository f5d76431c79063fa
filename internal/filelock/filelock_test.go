//go:build unix

package filelock

import (
	"path/filepath"
	"testing"
	"time"
)

// A second Lock on the same file waits until the first is released.
func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{})
	go func() {
		u, err := Lock(path)
		if err != nil {
			t.Error(err)
			return
		}
		u()
		close(got)
	}()
	select {
	case <-got:
		t.Fatal("a second lock was taken while the first was held")
	case <-time.After(100 * time.Millisecond): // a polling window, not a timing assertion
	}
	unlock()
	<-got
}
