package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/pushcert/pushcert/internal/guid"
	"github.com/pushcert/pushcert/internal/pushcert"
)

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
	id := guid.New()
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

// RotateKeys re-encrypts, in one transaction, every stored private key
// (active, pending and history) that is not under the keyring's current key,
// stores the event and returns how many were re-encrypted. When e.Detail is
// empty it says how many; never under which key ID.
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
			e.Detail = fmt.Sprintf("%d private keys re-encrypted under the current key-encryption secret", n)
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

// nonNil keeps a NOT NULL bytes column from receiving NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
