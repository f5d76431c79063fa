package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

// The status cache is SQLite's alone; these tests use SQLite files.

// fromDatabase reads what Status(since) returns straight from the
// database, past the cache.
func fromDatabase(t *testing.T, db *DB, since time.Time) (pushcert.State, *pushcert.PendingKey) {
	t.Helper()
	st, k, err := db.readStatus(context.Background(), since)
	if err != nil {
		t.Fatalf("readStatus: %v", err)
	}
	return st, k
}

// checkFresh fails unless State, Status and LatestPendingKey answer
// exactly what the database holds now.
func checkFresh(t *testing.T, db *DB, since time.Time) {
	t.Helper()
	ctx := context.Background()
	wantSt, wantK := fromDatabase(t, db, since)
	st, k, err := db.Status(ctx, since)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if !reflect.DeepEqual(st, wantSt) || !reflect.DeepEqual(k, wantK) {
		t.Fatalf("Status = %+v, %+v; the database holds %+v, %+v", st, k, wantSt, wantK)
	}
	if st := mustState(t, db); !reflect.DeepEqual(st, wantSt) {
		t.Fatalf("State = %+v; the database holds %+v", st, wantSt)
	}
	lk, err := db.LatestPendingKey(ctx, since)
	switch {
	case wantK == nil && !errors.Is(err, pushcert.ErrNotFound):
		t.Fatalf("LatestPendingKey = %+v, %v; want ErrNotFound", lk, err)
	case wantK != nil && (err != nil || !reflect.DeepEqual(lk, *wantK)):
		t.Fatalf("LatestPendingKey = %+v, %v; the database holds %+v", lk, err, *wantK)
	}
}

func TestStatusCacheAnswersRepeatedReads(t *testing.T) {
	f := fixtures(t)
	db := open(t, storetest.SQLiteURL(t), newKeyring(t, secretA))
	if db.cache == nil {
		t.Fatal("a SQLite store has no status cache")
	}
	activateNew(t, db, f.keys[0], "")
	addPending(t, db, f.keys[1], testNow())
	checkFresh(t, db, time.Time{})
	hits, misses := db.cache.hits.Load(), db.cache.misses.Load()
	for range 10 {
		checkFresh(t, db, time.Time{})
	}
	// checkFresh makes three cached reads each time.
	if got := db.cache.hits.Load() - hits; got != 30 {
		t.Errorf("30 reads of an unchanged database: %d answered from the cache, want 30", got)
	}
	if got := db.cache.misses.Load() - misses; got != 0 {
		t.Errorf("30 reads of an unchanged database: %d read it, want 0", got)
	}
}

func TestStatusCacheSeesEveryWrite(t *testing.T) {
	f := fixtures(t)
	ctx := context.Background()
	db := open(t, storetest.SQLiteURL(t), newKeyring(t, secretA))
	var pendingID string
	steps := []struct {
		name  string
		write func(t *testing.T)
	}{
		{"apple id", func(t *testing.T) {
			st := mustState(t, db)
			if _, err := db.SetAppleID(ctx, st.Version, "first@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged, Actor: admin}); err != nil {
				t.Fatal(err)
			}
		}},
		{"pending key", func(t *testing.T) { pendingID = addPending(t, db, f.keys[0], testNow()).ID }},
		{"activation", func(t *testing.T) {
			cert := issue(t, f.ca, f.keys[0], "")
			if _, err := db.Activate(ctx, activation(0, cert, pendingID, testNow())); err != nil {
				t.Fatal(err)
			}
		}},
		{"upload failure", func(t *testing.T) {
			st := mustState(t, db)
			if _, err := db.RecordUploadFailure(ctx, st.Version, "wrong key", pushcert.Event{Kind: pushcert.EventUploadFailed, Actor: admin}); err != nil {
				t.Fatal(err)
			}
		}},
		{"old pending key", func(t *testing.T) { addPending(t, db, f.keys[1], testNow().Add(-time.Hour)) }},
		{"newer pending key", func(t *testing.T) { addPending(t, db, f.keys[2], testNow()) }},
		{"prune", func(t *testing.T) {
			if _, err := db.PrunePendingKeys(ctx, testNow().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}},
		{"rotate keys", func(t *testing.T) {
			if _, err := db.RotateKeys(ctx, pushcert.Event{Kind: pushcert.EventKeysRotated, Actor: admin}); err != nil {
				t.Fatal(err)
			}
		}},
		{"stale write refused", func(t *testing.T) {
			if _, err := db.SetAppleID(ctx, 1, "stale@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged}); !errors.Is(err, pushcert.ErrConflict) {
				t.Fatalf("stale SetAppleID: %v, want ErrConflict", err)
			}
		}},
	}
	checkFresh(t, db, time.Time{})
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			checkFresh(t, db, time.Time{}) // the cache holds the state before
			s.write(t)
			checkFresh(t, db, time.Time{})
			checkFresh(t, db, testNow().Add(-30*time.Minute))
		})
	}
}

// TestStatusCacheSeesOtherConnections writes through a second store on the
// same file, as a `pushcert rotate-key` or a second process would, also
// after a checkpoint has emptied the WAL.
func TestStatusCacheSeesOtherConnections(t *testing.T) {
	ctx := context.Background()
	url := storetest.SQLiteURL(t)
	db := open(t, url, newKeyring(t, secretA))
	other := open(t, url, newKeyring(t, secretA))
	for i, checkpoint := range []bool{false, true, true, false} {
		checkFresh(t, db, time.Time{})
		checkFresh(t, db, time.Time{}) // warm: the next read would be a hit
		if checkpoint {
			if _, err := other.sql.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
		}
		want := fmt.Sprintf("other-%d@example.com", i)
		if _, err := other.SetAppleID(ctx, 0, want, pushcert.Event{Kind: pushcert.EventAppleIDChanged}); err != nil {
			t.Fatal(err)
		}
		if got := mustState(t, db).AppleID; got != want {
			t.Fatalf("write %d (checkpoint first: %v) by another connection: State shows Apple ID %q, want %q", i, checkpoint, got, want)
		}
		checkFresh(t, db, time.Time{})
	}
}

// helperEnv names the database a re-run of this test binary writes to.
const helperEnv = "PUSHCERT_STORE_CACHE_HELPER_DB"

// TestCacheHelperProcess is not a test: TestStatusCacheSeesOtherProcesses
// runs the test binary again with it to write from another process.
func TestCacheHelperProcess(t *testing.T) {
	url := os.Getenv(helperEnv)
	if url == "" {
		t.Skip("only run by TestStatusCacheSeesOtherProcesses")
	}
	db := open(t, url, newKeyring(t, secretA))
	if _, err := db.SetAppleID(context.Background(), 0, "from-another-process@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged}); err != nil {
		t.Fatal(err)
	}
}

func TestStatusCacheSeesOtherProcesses(t *testing.T) {
	url := storetest.SQLiteURL(t)
	db := open(t, url, newKeyring(t, secretA))
	checkFresh(t, db, time.Time{})
	hits := db.cache.hits.Load()
	checkFresh(t, db, time.Time{})
	if db.cache.hits.Load() == hits {
		t.Fatal("the cache answered nothing before the other process wrote")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCacheHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+url)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writer process: %v\n%s", err, out)
	}
	if got := mustState(t, db).AppleID; got != "from-another-process@example.com" {
		t.Fatalf("after another process changed the Apple ID, State shows %q", got)
	}
	checkFresh(t, db, time.Time{})
}

func TestStatusCacheHandsOutCopies(t *testing.T) {
	f := fixtures(t)
	ctx := context.Background()
	db := open(t, storetest.SQLiteURL(t), newKeyring(t, secretA))
	activateNew(t, db, f.keys[0], "")
	addPending(t, db, f.keys[1], testNow())
	st, k, err := db.Status(ctx, time.Time{})
	if err != nil || k == nil || st.Certificate == nil {
		t.Fatalf("Status = %+v, %+v, %v", st, k, err)
	}
	st.Certificate.Topic = "changed by a caller"
	k.CSRDER[0] ^= 0xff
	k.ID = "changed"
	lk, err := db.LatestPendingKey(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	lk.CSRDER[1] ^= 0xff
	checkFresh(t, db, time.Time{})
}

// TestStatusCacheWithoutHeader: when the WAL index cannot be read, reads
// go to the database and nothing is cached.
func TestStatusCacheWithoutHeader(t *testing.T) {
	db := open(t, storetest.SQLiteURL(t), newKeyring(t, secretA))
	checkFresh(t, db, time.Time{})
	db.cache.shm.Close()
	misses := db.cache.misses.Load()
	if _, err := db.SetAppleID(context.Background(), 0, "new@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		checkFresh(t, db, time.Time{})
	}
	if got := db.cache.misses.Load() - misses; got != 9 {
		t.Errorf("9 reads without the WAL index: %d read the database, want 9", got)
	}
}

// TestStatusCacheConcurrent has writers change the state while readers
// read it, under -race: no reader ever sees the version go back, and once
// the writers are done every reader sees their last write.
func TestStatusCacheConcurrent(t *testing.T) {
	ctx := context.Background()
	url := storetest.SQLiteURL(t)
	db := open(t, url, newKeyring(t, secretA))
	other := open(t, url, newKeyring(t, secretA))
	const writes = 40
	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 16)
	for w, store := range []*DB{db, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range writes {
				if _, err := store.SetAppleID(ctx, 0, fmt.Sprintf("w%d-%d@example.com", w, i), pushcert.Event{Kind: pushcert.EventAppleIDChanged}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var last int64
			for {
				st, err := db.State(ctx)
				if err != nil {
					errs <- err
					return
				}
				if st.Version < last {
					errs <- fmt.Errorf("version went back from %d to %d", last, st.Version)
					return
				}
				last = st.Version
				select {
				case <-done:
					return
				default:
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got, want := mustState(t, db).Version, int64(1+2*writes); got != want {
		t.Errorf("after %d writes the cached version is %d, want %d", 2*writes, got, want)
	}
	checkFresh(t, db, time.Time{})
}

// TestStatusCacheCanceled: a canceled read fails as a query would, also
// when the cache could answer it.
func TestStatusCacheCanceled(t *testing.T) {
	db := open(t, storetest.SQLiteURL(t), newKeyring(t, secretA))
	checkFresh(t, db, time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.State(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("State with a canceled context: %v, want context.Canceled", err)
	}
	if _, _, err := db.Status(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Status with a canceled context: %v, want context.Canceled", err)
	}
}

// TestStatusCacheSymlinkedFile: SQLite keeps its -shm file next to the
// real database file when the configured name is a symbolic link; the
// cache reads that one, not a stale file next to the link.
func TestStatusCacheSymlinkedFile(t *testing.T) {
	dir := t.TempDir()
	real, link := dir+"/real.db", dir+"/link.db"
	if err := os.Symlink(real, link); err != nil {
		t.Skipf("symbolic links: %v", err)
	}
	// A leftover -shm next to the link, which no one writes.
	if err := os.WriteFile(link+"-shm", make([]byte, 32<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	db := open(t, "sqlite:"+link, newKeyring(t, secretA))
	other := open(t, "sqlite:"+real, newKeyring(t, secretA))
	if db.cache == nil {
		t.Fatal("a SQLite store opened through a symbolic link has no status cache")
	}
	checkFresh(t, db, time.Time{})
	checkFresh(t, db, time.Time{})
	if _, err := other.SetAppleID(context.Background(), 0, "through-the-real-name@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged}); err != nil {
		t.Fatal(err)
	}
	if got := mustState(t, db).AppleID; got != "through-the-real-name@example.com" {
		t.Fatalf("after a write by another connection, State through the link shows Apple ID %q", got)
	}
}

// TestStatusCacheCountsOwnWrites: this store's own writes are seen even if
// the WAL-index header did not change, through the count of its writes.
func TestStatusCacheCountsOwnWrites(t *testing.T) {
	db := open(t, storetest.SQLiteURL(t), newKeyring(t, secretA))
	// A header that never changes.
	frozen := t.TempDir() + "/frozen-shm"
	if err := os.WriteFile(frozen, make([]byte, walHeaderSize), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(frozen)
	if err != nil {
		t.Fatal(err)
	}
	db.cache.shm.Close()
	db.cache.shm = f
	for i := range 3 {
		checkFresh(t, db, time.Time{})
		checkFresh(t, db, time.Time{})
		want := fmt.Sprintf("own-%d@example.com", i)
		if _, err := db.SetAppleID(context.Background(), 0, want, pushcert.Event{Kind: pushcert.EventAppleIDChanged}); err != nil {
			t.Fatal(err)
		}
		if got := mustState(t, db).AppleID; got != want {
			t.Fatalf("own write %d with the header frozen: State shows %q, want %q", i, got, want)
		}
	}
}

// TestStatusCacheReport: StatusCache says whether the cache is on, and
// why not: on for SQLite in WAL mode, off for PostgreSQL, and off for a
// SQLite database in another journal mode.
func TestStatusCacheReport(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			db := open(t, b.URL(t), newKeyring(t, secretA))
			on, why := db.StatusCache()
			switch b.Name {
			case "sqlite":
				if !on || why != "" {
					t.Errorf("got %v, %q; want on", on, why)
				}
			default:
				if on || !strings.Contains(why, "PostgreSQL") {
					t.Errorf("got %v, %q; want off, saying PostgreSQL is read every time", on, why)
				}
			}
		})
	}
	t.Run("sqlite not in WAL mode", func(t *testing.T) {
		raw, err := sql.Open("sqlite", t.TempDir()+"/rollback.db")
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		c, why, err := openStatusCache(context.Background(), raw)
		if err != nil || c != nil || !strings.Contains(why, "not WAL") {
			t.Errorf("got %v, %q, %v; want no cache, saying the journal mode is not WAL", c, why, err)
		}
	})
}
