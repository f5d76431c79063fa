package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

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

// eventColumns are the audit_events columns scanEvents reads, in order.
const eventColumns = `id, at, kind, actor_subject, actor_name, actor_email, serial, topic, not_after, detail, file_name`

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
			&e.Serial, &e.Topic, scanTime{&e.NotAfter}, &e.Detail, &e.FileName); err != nil {
			return nil, err
		}
		e.Kind = pushcert.EventKind(kind)
		events = append(events, e)
	}
	return events, rows.Err()
}
