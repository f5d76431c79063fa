package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
)

// TestIsBusy: SQLite's "database is locked" is recognized through
// wrapping, and nothing else is.
func TestIsBusy(t *testing.T) {
	path := t.TempDir() + "/busy.db"
	holder, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`CREATE TABLE t (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", path+"?_txlock=immediate&_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, busy := other.Begin()
	if busy == nil || !isBusy(fmt.Errorf("wrapped: %w", busy)) {
		t.Errorf("a second writer: got %v, want SQLITE_BUSY recognized", busy)
	}
	if isBusy(errors.New("database is locked")) || isBusy(context.Canceled) || isBusy(nil) {
		t.Error("an error that is not SQLite's counts as busy")
	}
}
