// Package store persists pushcert's state in SQLite (the embedded default)
// or PostgreSQL (shared by several replicas). One implementation over
// database/sql serves both; a small dialect holds what differs.
//
// Private keys are stored only as AES-256-GCM ciphertext under a key derived
// from the configured secret (see Keyring), bound to the row that holds them.
// Every write is one transaction that first locks the installation row, so
// writers from any number of processes apply one after another, and a write
// made against a stale version changes nothing.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// DB is a pushcert.Store over SQLite or PostgreSQL.
type DB struct {
	sql  *sql.DB
	d    *dialect
	keys *Keyring
	// beforeStmt is set only by tests. It runs before each statement of a
	// write transaction and before its commit, numbered from 1, and an error
	// it returns fails that step as the database would.
	beforeStmt func(n int) error
	// stmts are the reads every page view and API GET makes, prepared once
	// so that SQLite does not parse them again for each request.
	stmts preparedStmts
	// cache answers the status reads while the database is unchanged; nil
	// for PostgreSQL (see statusCache), and for SQLite when cacheOff says
	// why.
	cache    *statusCache
	cacheOff string
	// side keeps the status page's other reads by the cache's rule.
	side sideCaches
	// verdicts remembers, per key ID the keyring does not know, whether a
	// configured secret opens it (see UnreadableKeys).
	verdictMu sync.Mutex
	verdicts  map[string]bool
}

// sqliteConns is how many connections a SQLite database keeps.
const sqliteConns = 4

// preparedStmts are the hot reads, prepared at Open. database/sql prepares
// each again on every pooled connection it runs on, once.
type preparedStmts struct {
	state         *sql.Stmt
	activeKey     *sql.Stmt
	latestPending *sql.Stmt
	status        *sql.Stmt
	apnsCheck     *sql.Stmt // the status page shows the last connection check
}

var _ pushcert.Store = (*DB)(nil)

// Open opens and migrates the database named by dbURL, which is either
// "sqlite:" followed by a file path (sqlite:/var/lib/pushcert/pushcert.db,
// sqlite:pushcert.db) or a PostgreSQL URL (postgres://... or
// postgresql://...). keys encrypts and decrypts the stored private keys.
func Open(ctx context.Context, dbURL string, keys *Keyring) (*DB, error) {
	if keys == nil {
		return nil, errors.New("open store: no keyring")
	}
	d, dsn, err := dialectFor(dbURL)
	if err != nil {
		return nil, err
	}
	sdb, err := sql.Open(d.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s database: %w", d.name, err)
	}
	if d == sqliteDialect {
		// Writers queue on SQLite's lock anyway; a few connections keep
		// readers concurrent without piling up file handles. All of them
		// stay open when idle: by default database/sql keeps only two, so
		// under load connections were closed and opened (and their
		// statements prepared) again all the time.
		// One more is held by the status cache and never used for queries.
		sdb.SetMaxOpenConns(sqliteConns + 1)
		sdb.SetMaxIdleConns(sqliteConns + 1)
	}
	db := &DB{sql: sdb, d: d, keys: keys, verdicts: map[string]bool{}}
	if err := connect(ctx, sdb, d); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("connect to %s database: %w", d.name, err)
	}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("migrate %s database: %w", d.name, err)
	}
	// Prepared after migrating: the tables they read must exist.
	if err := db.prepare(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("prepare %s statements: %w", d.name, err)
	}
	if err := db.bindKeyIDs(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("bind key-encryption key IDs in the %s database: %w", d.name, err)
	}
	if d == sqliteDialect {
		if db.cache, db.cacheOff, err = openStatusCache(ctx, sdb); err != nil {
			db.Close()
			return nil, fmt.Errorf("set up the status cache: %w", err)
		}
	}
	return db, nil
}

// connectRetry bounds how long connect retries a SQLite database that
// answers busy: as long as the busy timeout sqliteDSN sets.
const connectRetry = 10 * time.Second

// connect opens the first connection. Several processes (or stores) that
// open a new SQLite file at the same moment race to switch it to WAL mode,
// and SQLite answers the losers SQLITE_BUSY at once, without waiting out
// the busy timeout: those are retried until the switch is done.
func connect(ctx context.Context, sdb *sql.DB, d *dialect) error {
	deadline := time.Now().Add(connectRetry)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := sdb.PingContext(ctx)
		if err == nil || d != sqliteDialect || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY, in any of its
// extended forms.
func isBusy(err error) bool {
	var coded interface{ Code() int }
	return errors.As(err, &coded) && coded.Code()&0xff == 5
}

// prepare prepares the hot reads.
func (db *DB) prepare(ctx context.Context) error {
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{
		{&db.stmts.state, stateQuery},
		{&db.stmts.activeKey, activeKeyQuery},
		{&db.stmts.latestPending, latestPendingQuery},
		{&db.stmts.status, statusQuery},
		{&db.stmts.apnsCheck, apnsCheckQuery},
	} {
		stmt, err := db.sql.PrepareContext(ctx, db.d.rebind(p.query))
		if err != nil {
			return err
		}
		*p.stmt = stmt
	}
	return nil
}

// Ping reports whether the database is reachable.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("ping %s database: %w", db.d.name, err)
	}
	return nil
}

// Close closes the prepared statements and the database.
func (db *DB) Close() error {
	if db.cache != nil {
		db.cache.close()
	}
	for _, stmt := range []*sql.Stmt{db.stmts.state, db.stmts.activeKey, db.stmts.latestPending, db.stmts.status, db.stmts.apnsCheck} {
		if stmt != nil {
			_ = stmt.Close() // closing the database below releases them anyway
		}
	}
	return db.sql.Close()
}
