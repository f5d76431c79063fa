package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
)

// keyCheckText is what key_encryption_keys.check_ciphertext seals.
const keyCheckText = "pushcert key-encryption key check"

// keyTables are the tables that hold private keys apart from installation.
var keyTables = []string{"pending_keys", "certificate_history"}

// storedKeyIDsQuery counts the stored private keys (the active one, the
// pending ones and those in history) by the ID of the key that sealed them.
const storedKeyIDsQuery = `SELECT key_id, COUNT(*) FROM (
	SELECT key_id FROM installation WHERE key_ciphertext IS NOT NULL
	UNION ALL SELECT key_id FROM pending_keys
	UNION ALL SELECT key_id FROM certificate_history) stored GROUP BY key_id`

// legacyRotatedDetail matches the key ID that keys_rotated events of earlier
// versions named: a hash of the derived key, which must not stay in the
// history viewers read.
var legacyRotatedDetail = regexp.MustCompile(` under key [0-9a-f]{16}\b`)

const rotatedDetailRedacted = " under the current key-encryption secret"

// querier runs a query on the database or in a transaction.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// bindKeyIDs learns the stored ID of every configured key-encryption key,
// gives the current one an ID if it has none yet, relabels the ciphertexts
// that still carry an ID of earlier versions and removes those IDs from the
// history. The writes are made once, in one write transaction, so that
// replicas starting together agree on one ID per secret; later starts only
// read.
func (db *DB) bindKeyIDs(ctx context.Context) error {
	work, err := db.keyIDWork(ctx, db.sql)
	if err != nil || !work {
		return err
	}
	return db.write(ctx, 0, func(t *tx, _ installation) error { return t.bindKeyIDs(ctx) })
}

// keyIDWork learns the stored IDs and reports whether bindKeyIDs has
// anything to write.
func (db *DB) keyIDWork(ctx context.Context, q querier) (bool, error) {
	hasCurrent, err := db.learnKeyIDs(ctx, q)
	if err != nil {
		return false, err
	}
	counts, err := storedKeyIDs(ctx, q)
	if err != nil {
		return false, err
	}
	for _, kk := range db.keys.all {
		if counts[kk.legacyID] > 0 {
			return true, nil
		}
	}
	redact, err := legacyDetails(ctx, q)
	return !hasCurrent || len(redact) > 0, err
}

// learnKeyIDs reads key_encryption_keys and learns the ID of each
// configured key whose check opens; it reports whether the current key has
// one. Should two IDs name the current key, the smallest wins on every
// replica.
func (db *DB) learnKeyIDs(ctx context.Context, q querier) (hasCurrent bool, err error) {
	rows, err := q.QueryContext(ctx, `SELECT id, check_ciphertext FROM key_encryption_keys ORDER BY id`)
	if err != nil {
		return false, fmt.Errorf("read key IDs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var check []byte
		if err := rows.Scan(&id, &check); err != nil {
			return false, fmt.Errorf("read key IDs: %w", err)
		}
		kk := db.keys.opener(check, aadKeyCheck(id))
		switch {
		case kk == nil:
		case kk == db.keys.current && !hasCurrent:
			db.keys.setCurrentID(id)
			hasCurrent = true
		default:
			db.keys.learn(id, kk)
		}
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("read key IDs: %w", err)
	}
	return hasCurrent, nil
}

// opener returns the configured key that opens the ciphertext, or nil.
func (k *Keyring) opener(ct []byte, aad string) *kek {
	for _, kk := range k.all {
		if plain, err := kk.open(ct, aad); err == nil {
			clear(plain)
			return kk
		}
	}
	return nil
}

// bindKeyIDs makes bindKeyIDs' writes, after reading again under the lock.
func (t *tx) bindKeyIDs(ctx context.Context) error {
	keys := t.db.keys
	hasCurrent, err := t.db.learnKeyIDs(ctx, t.tx)
	if err != nil {
		return err
	}
	if !hasCurrent {
		if err := t.addKeyID(ctx, keys.current, keys.CurrentID()); err != nil {
			return err
		}
	}
	counts, err := storedKeyIDs(ctx, t.tx)
	if err != nil {
		return err
	}
	for _, kk := range keys.all {
		if counts[kk.legacyID] == 0 {
			continue
		}
		id := keys.idOf(kk)
		if id == "" {
			id = newKeyID()
			if err := t.addKeyID(ctx, kk, id); err != nil {
				return err
			}
			keys.learn(id, kk)
		}
		// Only the label changes: the ciphertexts stay as they are.
		for _, table := range append([]string{"installation"}, keyTables...) {
			if _, err := t.exec(ctx, `UPDATE `+table+` SET key_id = ? WHERE key_id = ?`, id, kk.legacyID); err != nil {
				return fmt.Errorf("relabel %s: %w", table, err)
			}
		}
	}
	redact, err := legacyDetails(ctx, t.tx)
	if err != nil {
		return err
	}
	for id, detail := range redact {
		if _, err := t.exec(ctx, `UPDATE audit_events SET detail = ? WHERE id = ?`, detail, id); err != nil {
			return fmt.Errorf("redact key IDs in history: %w", err)
		}
	}
	return nil
}

// addKeyID stores id as the name of kk.
func (t *tx) addKeyID(ctx context.Context, kk *kek, id string) error {
	check, err := kk.seal([]byte(keyCheckText), aadKeyCheck(id))
	if err != nil {
		return err
	}
	if _, err := t.exec(ctx, `INSERT INTO key_encryption_keys (id, check_ciphertext) VALUES (?, ?)`, id, check); err != nil {
		return fmt.Errorf("store key ID: %w", err)
	}
	return nil
}

// idOf returns the ID kk is known by, "" when none was learnt.
func (k *Keyring) idOf(kk *kek) string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return kk.id
}

// storedKeyIDs counts the stored private keys by key ID.
func storedKeyIDs(ctx context.Context, q querier) (map[string]int, error) {
	rows, err := q.QueryContext(ctx, storedKeyIDsQuery)
	if err != nil {
		return nil, fmt.Errorf("count stored keys: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count stored keys: %w", err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count stored keys: %w", err)
	}
	return counts, nil
}

// legacyDetails returns the keys_rotated events whose detail names a key
// ID of earlier versions, by event ID, with the detail to store instead.
func legacyDetails(ctx context.Context, q querier) (map[int64]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, detail FROM audit_events WHERE kind = 'keys_rotated' AND detail LIKE '% under key %'`)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	defer rows.Close()
	redact := map[int64]string{}
	for rows.Next() {
		var id int64
		var detail string
		if err := rows.Scan(&id, &detail); err != nil {
			return nil, fmt.Errorf("read history: %w", err)
		}
		if d := legacyRotatedDetail.ReplaceAllString(detail, rotatedDetailRedacted); d != detail {
			redact[id] = d
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	return redact, nil
}

// UnreadableKeys returns how many stored private keys (the active one, the
// pending ones and those in history) none of the configured key-encryption
// secrets opens. It is cheap enough for every readiness probe: one
// grouped count, and each key ID is judged once per process (an ID names
// one secret for good), by the check stored for it.
func (db *DB) UnreadableKeys(ctx context.Context) (int, error) {
	counts, err := storedKeyIDs(ctx, db.sql)
	if err != nil {
		return 0, err
	}
	n := 0
	for id, c := range counts {
		ok, err := db.keyIDReadable(ctx, id)
		if err != nil {
			return 0, err
		}
		if !ok {
			n += c
		}
	}
	return n, nil
}

// keyIDReadable reports whether id names one of the configured keys.
func (db *DB) keyIDReadable(ctx context.Context, id string) (bool, error) {
	if _, ok := db.keys.lookup(id); ok {
		return true, nil
	}
	db.verdictMu.Lock()
	ok, judged := db.verdicts[id]
	db.verdictMu.Unlock()
	if judged {
		return ok, nil
	}
	// An ID without a stored check is an earlier version's of a secret
	// this process does not hold (its own were relabelled or are known).
	var check []byte
	err := db.sql.QueryRowContext(ctx, db.d.rebind(`SELECT check_ciphertext FROM key_encryption_keys WHERE id = ?`), id).Scan(&check)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, fmt.Errorf("read key ID: %w", err)
	default:
		if kk := db.keys.opener(check, aadKeyCheck(id)); kk != nil {
			db.keys.learn(id, kk)
			ok = true
		}
	}
	db.verdictMu.Lock()
	db.verdicts[id] = ok
	db.verdictMu.Unlock()
	return ok, nil
}
