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
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"
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
}

// The queries behind preparedStmts.
const (
	// stateQuery reads the State alone: not the active key's ciphertext,
	// which a page view has no use for.
	stateQuery     = `SELECT ` + stateCols + ` FROM installation WHERE singleton = 1`
	activeKeyQuery = `SELECT id, key_ciphertext, key_id FROM installation WHERE singleton = 1`
	// pendingCols are a pending key's columns but its ciphertext, in the
	// order scanPending reads them.
	pendingCols = `id, created_at, created_by_subject, created_by_name, created_by_email,
		csr_der, request, vendor_signed, public_key_hash`
	latestPendingQuery = `SELECT ` + pendingCols + ` FROM pending_keys
		WHERE consumed_at IS NULL AND created_at >= ? ORDER BY created_at DESC, seq DESC LIMIT 1`
)

// statusQuery reads what the status page shows, the State and the newest
// pending key (latestPendingQuery's row, NULLs when there is none), in one
// statement: one read transaction and one round trip instead of two.
var statusQuery = `SELECT ` + qualify("i", stateCols) + `, ` + qualify("p", pendingCols) + `
	FROM installation i LEFT JOIN pending_keys p ON p.id = (SELECT id FROM pending_keys
		WHERE consumed_at IS NULL AND created_at >= ? ORDER BY created_at DESC, seq DESC LIMIT 1)
	WHERE i.singleton = 1`

// qualify prefixes each column of a comma-separated list with table.
func qualify(table, cols string) string {
	list := strings.Split(cols, ",")
	for i, c := range list {
		list[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(list, ", ")
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
	db := &DB{sql: sdb, d: d, keys: keys}
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
	for _, stmt := range []*sql.Stmt{db.stmts.state, db.stmts.activeKey, db.stmts.latestPending, db.stmts.status} {
		if stmt != nil {
			_ = stmt.Close() // closing the database below releases them anyway
		}
	}
	return db.sql.Close()
}

// installation is the installation row: the State and the active key's
// ciphertext.
type installation struct {
	state pushcert.State
	keyCT []byte // nil when there is no active certificate
	keyID string
}

// stateCols are the installation row's columns that make up the State, in
// the order scanInstallation reads them; installationCols add the active
// key's ciphertext.
const (
	stateCols = `id, version, apple_id, topic, common_name, serial, issuer, fingerprint,
	not_before, not_after, cert_pem, upload_status, upload_failure_reason,
	last_modified, last_modified_subject, last_modified_name, last_modified_email`
	installationCols = stateCols + `, key_ciphertext, key_id`
)

// scanInstallation reads a row of stateCols and, when withKey, the two
// columns installationCols add, and then into extra, if given, the columns
// the query adds after them.
func scanInstallation(row interface{ Scan(...any) error }, withKey bool, extra ...any) (installation, error) {
	var in installation
	var c pushcert.Certificate
	s := &in.state
	var status string
	dest := []any{&s.ID, &s.Version, &s.AppleID, &c.Topic, &c.CommonName, &c.SerialNumber, &c.Issuer, &c.Fingerprint,
		scanTime{&c.NotBefore}, scanTime{&c.NotAfter}, &c.PEM, &status, &s.UploadFailureReason,
		scanTime{&s.LastModified}, &s.LastModifiedBy.Subject, &s.LastModifiedBy.Name, &s.LastModifiedBy.Email}
	if withKey {
		dest = append(dest, &in.keyCT, &in.keyID)
	}
	err := row.Scan(append(dest, extra...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return installation{}, errors.New("the installation row is missing")
	}
	if err != nil {
		return installation{}, err
	}
	s.UploadStatus = pushcert.UploadStatus(status)
	if c.PEM != "" {
		s.Certificate = &c
	}
	return in, nil
}

// State returns the current resource.
func (db *DB) State(ctx context.Context) (pushcert.State, error) {
	if db.cache != nil {
		st, _, err := db.latest(ctx)
		return copyState(st), err
	}
	in, err := scanInstallation(db.stmts.state.QueryRowContext(ctx), false)
	if err != nil {
		return pushcert.State{}, fmt.Errorf("read state: %w", err)
	}
	return in.state, nil
}

// ActiveKey returns the PKCS#8 DER of the active certificate's private key,
// or pushcert.ErrNotFound when there is no active certificate.
func (db *DB) ActiveKey(ctx context.Context) ([]byte, error) {
	var id, keyID string
	var ct []byte
	err := db.stmts.activeKey.QueryRowContext(ctx).Scan(&id, &ct, &keyID)
	if err != nil {
		return nil, fmt.Errorf("read active key: %w", err)
	}
	if ct == nil {
		return nil, fmt.Errorf("active key: %w", pushcert.ErrNotFound)
	}
	der, err := db.keys.decrypt(ct, keyID, aadActive(id))
	if err != nil {
		return nil, fmt.Errorf("decrypt active key: %w", err)
	}
	return der, nil
}

// AddPendingKey stores a new pending key, encrypted, and its audit event.
// k.ID must be set and unique.
func (db *DB) AddPendingKey(ctx context.Context, k pushcert.PendingKey, e pushcert.Event) error {
	if k.ID == "" || len(k.KeyDER) == 0 {
		return errors.New("add pending key: the key needs an id and a private key")
	}
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	ct, keyID, err := db.keys.encrypt(k.KeyDER, aadPending(k.ID))
	if err != nil {
		return fmt.Errorf("encrypt pending key %s: %w", k.ID, err)
	}
	err = db.write(ctx, 0, func(t *tx, _ installation) error {
		if _, err := t.exec(ctx, `INSERT INTO pending_keys (id, created_at, created_by_subject, created_by_name, created_by_email,
			key_ciphertext, key_id, csr_der, request, vendor_signed, public_key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.ID, db.d.timeArg(k.CreatedAt), k.CreatedBy.Subject, k.CreatedBy.Name, k.CreatedBy.Email,
			ct, keyID, nonNil(k.CSRDER), k.Request, k.VendorSigned, k.PublicKeyHash); err != nil {
			return err
		}
		return t.addEvent(ctx, e)
	})
	if err != nil {
		return fmt.Errorf("add pending key %s: %w", k.ID, err)
	}
	return nil
}

// PendingKeys returns the unconsumed pending keys created at or after since,
// newest first, with KeyDER decrypted. The service reads one key at a time
// (LatestPendingKey, PendingKeysByHash); this lists them all, for
// inspection and tests.
func (db *DB) PendingKeys(ctx context.Context, since time.Time) ([]pushcert.PendingKey, error) {
	keys, err := db.pendingKeys(ctx, `consumed_at IS NULL AND created_at >= ?`, db.d.timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("list pending keys: %w", err)
	}
	return keys, nil
}

// PendingKeysByHash returns the unconsumed pending keys created at or after
// since whose public-key hash is hash (lowercase hex, as
// pushcert.PublicKeyHash makes it), newest first, with KeyDER decrypted. Only
// these keys are decrypted: an upload finds its key without opening every
// pending key of the lifetime. There is one at most, unless the same key
// pair was stored twice.
func (db *DB) PendingKeysByHash(ctx context.Context, hash string, since time.Time) ([]pushcert.PendingKey, error) {
	keys, err := db.pendingKeys(ctx, `public_key_hash = ? AND consumed_at IS NULL AND created_at >= ?`, hash, db.d.timeArg(since))
	if err != nil {
		return nil, fmt.Errorf("find pending key by hash: %w", err)
	}
	return keys, nil
}

// pendingKeys returns the pending keys matching where, newest first, with
// KeyDER decrypted.
func (db *DB) pendingKeys(ctx context.Context, where string, args ...any) ([]pushcert.PendingKey, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.rebind(`SELECT `+pendingCols+`, key_ciphertext, key_id
		FROM pending_keys WHERE `+where+` ORDER BY created_at DESC, seq DESC`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []pushcert.PendingKey
	for rows.Next() {
		var ct []byte
		var keyID string
		k, err := scanPending(rows, &ct, &keyID)
		if err != nil {
			return nil, err
		}
		if k.KeyDER, err = db.keys.decrypt(ct, keyID, aadPending(k.ID)); err != nil {
			return nil, fmt.Errorf("decrypt pending key %s: %w", k.ID, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return keys, nil
}

// LatestPendingKey returns the newest unconsumed pending key created at or
// after since, without its private key (KeyDER is nil: nothing is
// decrypted), or pushcert.ErrNotFound when there is none.
func (db *DB) LatestPendingKey(ctx context.Context, since time.Time) (pushcert.PendingKey, error) {
	if db.cache != nil {
		_, k, err := db.latest(ctx)
		if k = pendingSince(k, since); err == nil && k == nil {
			err = fmt.Errorf("latest pending key: %w", pushcert.ErrNotFound)
		}
		if err != nil {
			return pushcert.PendingKey{}, err
		}
		return *k, nil
	}
	k, err := scanPending(db.stmts.latestPending.QueryRowContext(ctx, db.d.timeArg(since)))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return pushcert.PendingKey{}, fmt.Errorf("latest pending key: %w", pushcert.ErrNotFound)
	case err != nil:
		return pushcert.PendingKey{}, fmt.Errorf("read latest pending key: %w", err)
	}
	return k, nil
}

// Status returns the State and the newest unconsumed pending key created
// at or after since, as State and LatestPendingKey do, from one snapshot:
// the status cache's, or one statement's; the key is nil when there is
// none.
func (db *DB) Status(ctx context.Context, since time.Time) (pushcert.State, *pushcert.PendingKey, error) {
	if db.cache != nil {
		st, k, err := db.latest(ctx)
		if err != nil {
			return pushcert.State{}, nil, err
		}
		return copyState(st), pendingSince(k, since), nil
	}
	return db.readStatus(ctx, since)
}

// readStatus reads what Status returns from the database.
func (db *DB) readStatus(ctx context.Context, since time.Time) (pushcert.State, *pushcert.PendingKey, error) {
	// The pending key's columns are all NULL when the join found none.
	var id, subject, name, email, request, hash sql.NullString
	var vendorSigned sql.NullBool
	var k pushcert.PendingKey
	in, err := scanInstallation(db.stmts.status.QueryRowContext(ctx, db.d.timeArg(since)), false,
		&id, scanTime{&k.CreatedAt}, &subject, &name, &email, &k.CSRDER, &request, &vendorSigned, &hash)
	if err != nil {
		return pushcert.State{}, nil, fmt.Errorf("read status: %w", err)
	}
	if !id.Valid {
		return in.state, nil, nil
	}
	k.ID, k.CreatedBy.Subject, k.CreatedBy.Name, k.CreatedBy.Email = id.String, subject.String, name.String, email.String
	k.Request, k.VendorSigned, k.PublicKeyHash = request.String, vendorSigned.Bool, hash.String
	return in.state, &k, nil
}

// scanPending reads the pendingCols of a row, and then into extra, if
// given, the columns the query adds after them.
func scanPending(row interface{ Scan(...any) error }, extra ...any) (pushcert.PendingKey, error) {
	var k pushcert.PendingKey
	dest := append([]any{&k.ID, scanTime{&k.CreatedAt}, &k.CreatedBy.Subject, &k.CreatedBy.Name, &k.CreatedBy.Email,
		&k.CSRDER, &k.Request, &k.VendorSigned, &k.PublicKeyHash}, extra...)
	if err := row.Scan(dest...); err != nil {
		return pushcert.PendingKey{}, err
	}
	return k, nil
}

// PrunePendingKeys deletes pending keys created before the cutoff, consumed
// or not, and returns how many went.
func (db *DB) PrunePendingKeys(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := db.write(ctx, 0, func(t *tx, _ installation) error {
		var err error
		n, err = t.exec(ctx, `DELETE FROM pending_keys WHERE created_at < ?`, db.d.timeArg(before))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune pending keys: %w", err)
	}
	return int(n), nil
}

// Activate makes a validated certificate active in one transaction. An
// ExpectVersion of 0 skips the version check.
func (db *DB) Activate(ctx context.Context, a pushcert.Activation) (pushcert.State, error) {
	if a.Certificate.PEM == "" {
		return pushcert.State{}, errors.New("activate certificate: no certificate PEM")
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	var st pushcert.State
	err := db.write(ctx, a.ExpectVersion, func(t *tx, cur installation) error {
		active := aadActive(cur.state.ID)
		var keyCT []byte
		var keyID string
		if a.PendingID != "" {
			var err error
			if keyCT, keyID, err = t.consumePending(ctx, a.PendingID, active, a.At); err != nil {
				return err
			}
		} else {
			if cur.keyCT == nil {
				return fmt.Errorf("keep the active key: there is none: %w", pushcert.ErrNotFound)
			}
			keyCT, keyID = cur.keyCT, cur.keyID
		}
		// The replaced certificate and its key go to history in the same
		// transaction that replaces them, so neither is ever lost.
		if cur.state.Certificate != nil {
			if err := t.addHistory(ctx, cur, a.At); err != nil {
				return err
			}
		}
		c := a.Certificate
		by := a.Event.Actor
		if err := t.update(ctx, cur, `apple_id = ?, topic = ?, common_name = ?, serial = ?, issuer = ?, fingerprint = ?,
			not_before = ?, not_after = ?, cert_pem = ?, key_ciphertext = ?, key_id = ?,
			upload_status = ?, upload_failure_reason = '',
			last_modified = ?, last_modified_subject = ?, last_modified_name = ?, last_modified_email = ?`,
			a.AppleID, c.Topic, c.CommonName, c.SerialNumber, c.Issuer, c.Fingerprint,
			db.d.timeArg(c.NotBefore), db.d.timeArg(c.NotAfter), c.PEM, keyCT, keyID,
			string(pushcert.UploadSucceeded),
			db.d.timeArg(a.At), by.Subject, by.Name, by.Email); err != nil {
			return err
		}
		if err := t.addEvent(ctx, a.Event); err != nil {
			return err
		}
		var err error
		st, err = t.state(ctx)
		return err
	})
	if err != nil {
		return pushcert.State{}, fmt.Errorf("activate certificate %s: %w", a.Certificate.SerialNumber, err)
	}
	return st, nil
}

// consumePending marks the pending key id consumed at and returns its key
// re-encrypted for the active record (aad).
func (t *tx) consumePending(ctx context.Context, id, aad string, at time.Time) ([]byte, string, error) {
	row, err := t.queryRow(ctx, `SELECT key_ciphertext, key_id, consumed_at FROM pending_keys WHERE id = ?`, id)
	if err != nil {
		return nil, "", err
	}
	var ct []byte
	var keyID string
	var consumed time.Time
	err = row.Scan(&ct, &keyID, scanTime{&consumed})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, "", fmt.Errorf("pending key %s: %w", id, pushcert.ErrNotFound)
	case err != nil:
		return nil, "", fmt.Errorf("read pending key %s: %w", id, err)
	case !consumed.IsZero():
		return nil, "", fmt.Errorf("pending key %s was already used: %w", id, pushcert.ErrNotFound)
	}
	der, err := t.db.keys.decrypt(ct, keyID, aadPending(id))
	if err != nil {
		return nil, "", fmt.Errorf("decrypt pending key %s: %w", id, err)
	}
	defer clear(der)
	newCT, newKeyID, err := t.db.keys.encrypt(der, aad)
	if err != nil {
		return nil, "", fmt.Errorf("encrypt active key: %w", err)
	}
	n, err := t.exec(ctx, `UPDATE pending_keys SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL`, t.db.d.timeArg(at), id)
	if err != nil {
		return nil, "", err
	}
	if n != 1 {
		return nil, "", fmt.Errorf("pending key %s was used meanwhile: %w", id, pushcert.ErrConflict)
	}
	return newCT, newKeyID, nil
}

// addHistory copies the active certificate of cur, with its key
// re-encrypted for the history row, into certificate_history.
func (t *tx) addHistory(ctx context.Context, cur installation, at time.Time) error {
	der, err := t.db.keys.decrypt(cur.keyCT, cur.keyID, aadActive(cur.state.ID))
	if err != nil {
		return fmt.Errorf("decrypt active key: %w", err)
	}
	defer clear(der)
	id := newUUID()
	ct, keyID, err := t.db.keys.encrypt(der, aadHistory(id))
	if err != nil {
		return fmt.Errorf("encrypt history key: %w", err)
	}
	c := cur.state.Certificate
	d := t.db.d
	_, err = t.exec(ctx, `INSERT INTO certificate_history (id, replaced_at, apple_id, topic, common_name, serial, issuer, fingerprint,
		not_before, not_after, cert_pem, key_ciphertext, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, d.timeArg(at), cur.state.AppleID, c.Topic, c.CommonName, c.SerialNumber, c.Issuer, c.Fingerprint,
		d.timeArg(c.NotBefore), d.timeArg(c.NotAfter), c.PEM, ct, keyID)
	return err
}

// RecordUploadFailure sets the upload status to failed with reason, bumps
// the version and stores the event. An expectVersion of 0 skips the version
// check.
func (db *DB) RecordUploadFailure(ctx context.Context, expectVersion int64, reason string, e pushcert.Event) (pushcert.State, error) {
	st, err := db.writeState(ctx, expectVersion, e, `upload_status = ?, upload_failure_reason = ?`,
		string(pushcert.UploadFailed), reason)
	if err != nil {
		return pushcert.State{}, fmt.Errorf("record upload failure: %w", err)
	}
	return st, nil
}

// SetAppleID changes the Apple ID and records e's time and actor as the last
// modification, bumps the version and stores the event. An expectVersion of
// 0 skips the version check.
func (db *DB) SetAppleID(ctx context.Context, expectVersion int64, appleID string, e pushcert.Event) (pushcert.State, error) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	st, err := db.writeState(ctx, expectVersion, e,
		`apple_id = ?, last_modified = ?, last_modified_subject = ?, last_modified_name = ?, last_modified_email = ?`,
		appleID, db.d.timeArg(e.At), e.Actor.Subject, e.Actor.Name, e.Actor.Email)
	if err != nil {
		return pushcert.State{}, fmt.Errorf("set apple id: %w", err)
	}
	return st, nil
}

// writeState sets columns of the installation row, bumps the version, stores
// e and returns the new state.
func (db *DB) writeState(ctx context.Context, expectVersion int64, e pushcert.Event, set string, args ...any) (pushcert.State, error) {
	var st pushcert.State
	err := db.write(ctx, expectVersion, func(t *tx, cur installation) error {
		if err := t.update(ctx, cur, set, args...); err != nil {
			return err
		}
		if err := t.addEvent(ctx, e); err != nil {
			return err
		}
		var err error
		st, err = t.state(ctx)
		return err
	})
	return st, err
}

// eventColumns are the audit_events columns scanEvents reads, in order.
const eventColumns = `id, at, kind, actor_subject, actor_name, actor_email, serial, topic, not_after, detail`

// Events returns up to limit audit events, newest first; a limit of 0 or
// less returns them all.
func (db *DB) Events(ctx context.Context, limit int) ([]pushcert.Event, error) {
	q := `SELECT ` + eventColumns + ` FROM audit_events ORDER BY id DESC`
	var args []any
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	events, err := db.queryEvents(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	return events, nil
}

// queryEvents runs a query that selects eventColumns and scans every row.
func (db *DB) queryEvents(ctx context.Context, q string, args ...any) ([]pushcert.Event, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []pushcert.Event
	for rows.Next() {
		var e pushcert.Event
		var kind string
		if err := rows.Scan(&e.ID, scanTime{&e.At}, &kind, &e.Actor.Subject, &e.Actor.Name, &e.Actor.Email,
			&e.Serial, &e.Topic, scanTime{&e.NotAfter}, &e.Detail); err != nil {
			return nil, err
		}
		e.Kind = pushcert.EventKind(kind)
		events = append(events, e)
	}
	return events, rows.Err()
}

// RotateKeys re-encrypts, in one transaction, every stored private key
// (active, pending and history) that is not under the keyring's current key,
// stores the event and returns how many were re-encrypted. When e.Detail is
// empty it says how many and under which key.
func (db *DB) RotateKeys(ctx context.Context, e pushcert.Event) (int, error) {
	var n int
	err := db.write(ctx, 0, func(t *tx, cur installation) error {
		n = 0
		cid := db.keys.CurrentID()
		if cur.keyCT != nil && cur.keyID != cid {
			aad := aadActive(cur.state.ID)
			ct, keyID, err := db.keys.reencrypt(cur.keyCT, cur.keyID, aad)
			if err != nil {
				return fmt.Errorf("active key: %w", err)
			}
			if _, err := t.exec(ctx, `UPDATE installation SET key_ciphertext = ?, key_id = ? WHERE singleton = 1`, ct, keyID); err != nil {
				return err
			}
			n++
		}
		for _, table := range []struct {
			name string
			aad  func(string) string
		}{{"pending_keys", aadPending}, {"certificate_history", aadHistory}} {
			m, err := t.rotateTable(ctx, table.name, table.aad)
			if err != nil {
				return err
			}
			n += m
		}
		if e.Detail == "" {
			e.Detail = fmt.Sprintf("%d private keys re-encrypted under key %s", n, cid)
		}
		return t.addEvent(ctx, e)
	})
	if err != nil {
		return 0, fmt.Errorf("rotate keys: %w", err)
	}
	return n, nil
}

// rotateTable re-encrypts the keys of table (which has id, key_ciphertext
// and key_id columns) that are not under the current key.
func (t *tx) rotateTable(ctx context.Context, table string, aad func(id string) string) (int, error) {
	type stored struct {
		id, keyID string
		ct        []byte
	}
	rows, err := t.query(ctx, `SELECT id, key_ciphertext, key_id FROM `+table+` WHERE key_id <> ?`, t.db.keys.CurrentID())
	if err != nil {
		return 0, err
	}
	// Read them all before updating: a connection runs one statement at a time.
	var all []stored
	for rows.Next() {
		var s stored
		if err := rows.Scan(&s.id, &s.ct, &s.keyID); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read %s: %w", table, err)
		}
		all = append(all, s)
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", table, err)
	}
	for _, s := range all {
		ct, keyID, err := t.db.keys.reencrypt(s.ct, s.keyID, aad(s.id))
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", table, s.id, err)
		}
		if _, err := t.exec(ctx, `UPDATE `+table+` SET key_ciphertext = ?, key_id = ? WHERE id = ?`, ct, keyID, s.id); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

// reencrypt opens a ciphertext and seals it again under the current key.
func (k *Keyring) reencrypt(ct []byte, keyID, aad string) ([]byte, string, error) {
	der, err := k.decrypt(ct, keyID, aad)
	if err != nil {
		return nil, "", err
	}
	defer clear(der)
	return k.encrypt(der, aad)
}

// tx is a write transaction. Its statements go through exec, query and
// queryRow, which number them for the tests' failure hook.
type tx struct {
	db *DB
	tx *sql.Tx
	n  int
}

// write runs fn in a write transaction that first locks the installation
// row and checks its version against expect (0 means any version), then
// commits. Any error rolls everything back.
func (db *DB) write(ctx context.Context, expect int64, fn func(t *tx, cur installation) error) error {
	defer db.wrote()
	sqlTx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{db: db, tx: sqlTx}
	if err := t.run(ctx, expect, fn); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	return nil
}

func (t *tx) run(ctx context.Context, expect int64, fn func(t *tx, cur installation) error) error {
	row, err := t.queryRow(ctx, `SELECT `+installationCols+` FROM installation WHERE singleton = 1`+t.db.d.forUpdate)
	if err != nil {
		return err
	}
	cur, err := scanInstallation(row, true)
	if err != nil {
		return fmt.Errorf("lock installation: %w", err)
	}
	if expect != 0 && cur.state.Version != expect {
		return fmt.Errorf("version is %d, not %d: %w", cur.state.Version, expect, pushcert.ErrConflict)
	}
	if err := fn(t, cur); err != nil {
		return err
	}
	if err := t.step(); err != nil {
		return err
	}
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// step counts a statement and runs the tests' failure hook.
func (t *tx) step() error {
	t.n++
	if t.db.beforeStmt == nil {
		return nil
	}
	return t.db.beforeStmt(t.n)
}

// exec runs a statement and returns how many rows it changed.
func (t *tx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if err := t.step(); err != nil {
		return 0, err
	}
	res, err := t.tx.ExecContext(ctx, t.db.d.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := t.step(); err != nil {
		return nil, err
	}
	return t.tx.QueryContext(ctx, t.db.d.rebind(query), args...)
}

func (t *tx) queryRow(ctx context.Context, query string, args ...any) (*sql.Row, error) {
	if err := t.step(); err != nil {
		return nil, err
	}
	return t.tx.QueryRowContext(ctx, t.db.d.rebind(query), args...), nil
}

// update sets columns of the installation row and bumps its version. The
// version condition repeats the check made under the lock.
func (t *tx) update(ctx context.Context, cur installation, set string, args ...any) error {
	n, err := t.exec(ctx, `UPDATE installation SET `+set+`, version = version + 1 WHERE singleton = 1 AND version = ?`,
		append(args, cur.state.Version)...)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("version changed under the lock: %w", pushcert.ErrConflict)
	}
	return nil
}

// addEvent stores an audit event; a zero At means now.
func (t *tx) addEvent(ctx context.Context, e pushcert.Event) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	d := t.db.d
	_, err := t.exec(ctx, `INSERT INTO audit_events (at, kind, actor_subject, actor_name, actor_email, serial, topic, not_after, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.timeArg(e.At), string(e.Kind), e.Actor.Subject, e.Actor.Name, e.Actor.Email, e.Serial, e.Topic, d.nullTime(e.NotAfter), e.Detail)
	return err
}

// state reads the installation's state inside the transaction.
func (t *tx) state(ctx context.Context) (pushcert.State, error) {
	row, err := t.queryRow(ctx, stateQuery)
	if err != nil {
		return pushcert.State{}, err
	}
	in, err := scanInstallation(row, false)
	if err != nil {
		return pushcert.State{}, fmt.Errorf("read state: %w", err)
	}
	return in.state, nil
}

// nonNil keeps a NOT NULL bytes column from receiving NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
