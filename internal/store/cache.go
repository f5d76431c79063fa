package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// The status cache keeps, for a SQLite database, the last State and newest
// pending key read, and answers State, Status and LatestPendingKey from
// them while the database has not changed since. Every status page and API
// GET asks for them, and reading them from SQLite was about a third of the
// time pushcert spends on such a request.
//
// "Not changed" must hold for writes made by anyone: this process, a
// `pushcert rotate-key` run next to it, an operator's sqlite3, or a second
// pushcert started against the same file by mistake. So the cache is not
// invalidated by this process's writes alone: before each use it compares
// the database's WAL-index header with the one it saw when it read the
// entry. In WAL mode (which sqliteDSN sets) every committed write
// transaction, from any connection of any process, rewrites that header in
// the shared-memory file next to the database (FILE-shm) before the commit
// returns: it holds a change counter, the WAL's frame count and its salts
// (https://www.sqlite.org/walformat.html, "The WAL-Index Header"). Reading
// its 96 bytes (the header and its copy) is one pread, about a
// microsecond, where a read transaction costs tens.
//
// A counter of this process's own writes is checked as well, so a write
// made here is never missed even if the header check were wrong.
//
// PostgreSQL has no such cheap signal, so a PostgreSQL store reads every
// time: replicas see each other's writes at once.
type statusCache struct {
	// shm is the database's -shm file, opened read-only.
	shm *os.File
	// anchor is a connection held open for the life of the DB: SQLite
	// deletes the -shm file when the last connection to the database
	// closes, and a new one would be another file than shm.
	anchor *sql.Conn
	// writes counts this DB's write transactions, bumped after each ends.
	writes atomic.Uint64
	entry  atomic.Pointer[statusEntry]
	// hits and misses count answers from the entry and reads of the
	// database; tests read them.
	hits, misses atomic.Uint64
}

// walHeaderSize is the size of the two copies of the WAL-index header at
// the start of the -shm file. The checkpoint information after them is
// left out: a checkpoint changes no data.
const walHeaderSize = 96

type walMark [walHeaderSize]byte

// statusEntry is what the cache holds: the State and the newest unconsumed
// pending key of any age (nil if none), read when the header was mark and
// the write counter writes.
type statusEntry struct {
	mark    walMark
	writes  uint64
	state   pushcert.State
	pending *pushcert.PendingKey
}

// openStatusCache sets up the cache for db, a SQLite database. It returns
// nil, and why, when the database is not in WAL mode (a file system
// without shared memory, say) or its WAL index cannot be read: then every
// read goes to the database.
func openStatusCache(ctx context.Context, db *sql.DB) (c *statusCache, off string, err error) {
	anchor, err := db.Conn(ctx)
	if err != nil {
		return nil, "", err
	}
	path, off, err := walIndexPath(ctx, anchor)
	if err != nil || off != "" {
		return nil, off, errors.Join(err, anchor.Close())
	}
	shm, err := os.Open(path)
	if err != nil {
		return nil, "the WAL index cannot be opened: " + err.Error(), anchor.Close()
	}
	c = &statusCache{shm: shm, anchor: anchor}
	if _, ok := c.mark(); !ok {
		c.close()
		return nil, "the WAL index has no header", nil
	}
	return c, "", nil
}

// walIndexPath returns the path of the main database's -shm file, as
// SQLite resolved it (absolute, symbolic links followed: the -shm file
// lies next to the real file), or why there is none to use.
func walIndexPath(ctx context.Context, conn *sql.Conn) (path, off string, err error) {
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return "", "", fmt.Errorf("read journal mode: %w", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return "", "the database is in journal mode " + mode + ", not WAL", nil
	}
	// A read maps the WAL index, so the -shm file exists from here on.
	var n int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM installation`).Scan(&n); err != nil {
		return "", "", err
	}
	var file string
	if err := conn.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return "", "", fmt.Errorf("read the database's file name: %w", err)
	}
	if file == "" {
		return "", "the database has no file", nil
	}
	return file + "-shm", "", nil
}

// StatusCache reports whether the status reads are answered from memory
// while the database is unchanged, and if not, why: for startup's log.
func (db *DB) StatusCache() (on bool, why string) {
	switch {
	case db.cache != nil:
		return true, ""
	case db.d != sqliteDialect:
		return false, "PostgreSQL is read on every request, so that replicas see each other's writes at once"
	default:
		return false, db.cacheOff
	}
}

// mark reads the WAL-index header; ok is false when it cannot be read, and
// then the cache is not used.
func (c *statusCache) mark() (m walMark, ok bool) {
	n, err := c.shm.ReadAt(m[:], 0)
	return m, err == nil && n == len(m)
}

func (c *statusCache) close() {
	c.shm.Close()
	c.anchor.Close()
}

// latest returns the newest State and pending key: from the entry if the
// database has not changed since it was read, else from the database. Only
// called with the cache on.
func (db *DB) latest(ctx context.Context) (pushcert.State, *pushcert.PendingKey, error) {
	c := db.cache
	// As a query would, a read for a request that was canceled fails.
	if err := ctx.Err(); err != nil {
		return pushcert.State{}, nil, err
	}
	// The header and the counter are read before the database: a write
	// committed after this point makes the next call read again, even if
	// this read already saw it.
	writes := c.writes.Load()
	mark, ok := c.mark()
	if e := c.entry.Load(); ok && e != nil && e.mark == mark && e.writes == writes {
		c.hits.Add(1)
		return e.state, e.pending, nil
	}
	c.misses.Add(1)
	st, pk, err := db.readStatus(ctx, time.Time{})
	if err != nil {
		return pushcert.State{}, nil, err
	}
	if ok {
		c.entry.Store(&statusEntry{mark: mark, writes: writes, state: st, pending: pk})
	}
	return st, pk, nil
}

// wrote tells the cache that a write transaction of this DB ended,
// committed or not.
func (db *DB) wrote() {
	if db.cache != nil {
		db.cache.writes.Add(1)
	}
}

// copyState returns st with its own copy of the certificate, so a caller
// changing what it got cannot change what the cache holds.
func copyState(st pushcert.State) pushcert.State {
	if st.Certificate != nil {
		c := *st.Certificate
		st.Certificate = &c
	}
	return st
}

// pendingSince returns a copy of k if it was created at or after since,
// else nil: k is the newest pending key, so when it is older than since
// every other one is too. Times are compared at the microsecond, as the
// database compares them.
func pendingSince(k *pushcert.PendingKey, since time.Time) *pushcert.PendingKey {
	if k == nil || k.CreatedAt.Before(since.Truncate(time.Microsecond)) {
		return nil
	}
	cp := *k
	cp.CSRDER = bytes.Clone(k.CSRDER)
	return &cp
}
