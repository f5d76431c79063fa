package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/internal/pushcert"
)

var _ delivery.Store = (*DB)(nil)

// deliveryCols are a deliveries row's columns in the order scanDelivery
// reads them.
const deliveryCols = `target, delivered_serial, delivered_fingerprint, delivered_settings, delivered_at, last_attempt_at,
	last_error, failures, next_attempt_at, attempt_fingerprint, claimed_at, lease_until, requested_at, out_of_sync_since, alerted`

func scanDelivery(row interface{ Scan(...any) error }) (delivery.Record, error) {
	var r delivery.Record
	var alerted int
	err := row.Scan(&r.Target, &r.DeliveredSerial, &r.DeliveredFingerprint, &r.DeliveredSettings, scanTime{&r.DeliveredAt},
		scanTime{&r.LastAttemptAt}, &r.LastError, &r.Failures, scanTime{&r.NextAttemptAt}, &r.AttemptFingerprint,
		scanTime{&r.ClaimedAt}, scanTime{&r.LeaseUntil}, scanTime{&r.RequestedAt}, scanTime{&r.OutOfSyncSince}, &alerted)
	r.Alerted = alerted != 0
	return r, err
}

// ActivePair returns the active certificate and its key, read in one
// statement so that the two always belong together.
func (db *DB) ActivePair(ctx context.Context) (pushcert.Certificate, []byte, error) {
	row := db.sql.QueryRowContext(ctx, `SELECT `+installationCols+` FROM installation WHERE singleton = 1`)
	in, err := scanInstallation(row, true)
	if err != nil {
		return pushcert.Certificate{}, nil, fmt.Errorf("read active pair: %w", err)
	}
	if in.state.Certificate == nil || in.keyCT == nil {
		return pushcert.Certificate{}, nil, fmt.Errorf("active pair: %w", pushcert.ErrNotFound)
	}
	der, err := db.keys.decrypt(in.keyCT, in.keyID, aadActive(in.state.ID))
	if err != nil {
		return pushcert.Certificate{}, nil, fmt.Errorf("decrypt active key: %w", err)
	}
	return *in.state.Certificate, der, nil
}

// DeliveryRecords returns the record of every target tried so far, by name.
func (db *DB) DeliveryRecords(ctx context.Context) ([]delivery.Record, error) {
	recs, err := cachedRead(ctx, db, &db.side.deliveries, db.readDeliveryRecords)
	return cloneRecords(recs), err
}

func (db *DB) readDeliveryRecords(ctx context.Context) ([]delivery.Record, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT `+deliveryCols+` FROM deliveries ORDER BY target`)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	var recs []delivery.Record
	for rows.Next() {
		r, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list deliveries: %w", err)
		}
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return recs, nil
}

// ClaimDelivery leases target's delivery of the certificate with
// fingerprint. Like ClaimAlerts, the claim is one UPDATE that re-checks
// every condition, so of several replicas claiming at once one gets it.
func (db *DB) ClaimDelivery(ctx context.Context, target, fingerprint, settings string, now, leaseUntil time.Time) (delivery.Record, bool, error) {
	d := db.d
	if _, err := db.sql.ExecContext(ctx, d.rebind(`INSERT INTO deliveries (target) VALUES (?) ON CONFLICT (target) DO NOTHING`), target); err != nil {
		return delivery.Record{}, false, fmt.Errorf("claim delivery to %s: %w", target, err)
	}
	// last_attempt_at is left to FinishDelivery: until an attempt ends,
	// the status reports the one before it. The WHERE clause reads the
	// row as it was, before SET.
	res, err := db.sql.ExecContext(ctx, d.rebind(`UPDATE deliveries SET lease_until = ?, claimed_at = ?, attempt_fingerprint = ?,
		out_of_sync_since = CASE WHEN (delivered_fingerprint <> ? OR delivered_settings <> ?) AND out_of_sync_since IS NULL
			THEN ? ELSE out_of_sync_since END
		WHERE target = ? AND (delivered_fingerprint <> ? OR delivered_settings <> ? OR requested_at IS NOT NULL)
		AND (lease_until IS NULL OR lease_until <= ?)
		AND (next_attempt_at IS NULL OR next_attempt_at <= ? OR attempt_fingerprint <> ?)`),
		d.timeArg(leaseUntil), d.timeArg(now), fingerprint,
		fingerprint, settings, d.timeArg(now),
		target, fingerprint, settings,
		d.timeArg(now),
		d.timeArg(now), fingerprint)
	if err != nil {
		return delivery.Record{}, false, fmt.Errorf("claim delivery to %s: %w", target, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return delivery.Record{}, false, err
	}
	r, err := scanDelivery(db.sql.QueryRowContext(ctx, d.rebind(`SELECT `+deliveryCols+` FROM deliveries WHERE target = ?`), target))
	if err != nil {
		return delivery.Record{}, false, fmt.Errorf("read claimed delivery to %s: %w", target, err)
	}
	return r, true, nil
}

// ForgetDelivery records that target no longer holds the certificate with
// fingerprint.
func (db *DB) ForgetDelivery(ctx context.Context, target, fingerprint string) error {
	if _, err := db.sql.ExecContext(ctx, db.d.rebind(`UPDATE deliveries SET delivered_fingerprint = '', delivered_serial = ''
		WHERE target = ? AND delivered_fingerprint = ?`), target, fingerprint); err != nil {
		return fmt.Errorf("forget delivery to %s: %w", target, err)
	}
	return nil
}

// FinishDelivery records a claimed delivery's outcome. It runs under the
// installation row's lock, like every write that stores an audit event,
// so that event IDs are committed in order (see EventsAfter); it changes
// nothing on the installation row itself, but reads the active
// certificate from it.
func (db *DB) FinishDelivery(ctx context.Context, r delivery.Result) error {
	err := db.write(ctx, 0, func(t *tx, cur installation) error {
		row, err := t.queryRow(ctx, `SELECT `+deliveryCols+` FROM deliveries WHERE target = ?`, r.Target)
		if err != nil {
			return err
		}
		rec, err := scanDelivery(row)
		if err != nil {
			return fmt.Errorf("read delivery: %w", err)
		}
		if r.Error == "" {
			err = t.finishSuccess(ctx, r, rec, cur)
		} else {
			err = t.finishFailure(ctx, r, rec)
		}
		if err != nil {
			return err
		}
		if r.Event != nil {
			return t.addEvent(ctx, *r.Event)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record delivery to %s: %w", r.Target, err)
	}
	return nil
}

// finishSuccess records a delivery that landed. It serves the "Deliver
// now" requests made up to the claim (a later one still waits), and ends
// the out-of-sync episode only if the certificate sent is still the
// active one: otherwise the target is still behind, since the same moment.
func (t *tx) finishSuccess(ctx context.Context, r delivery.Result, rec delivery.Record, cur installation) error {
	d := t.db.d
	requested := rec.RequestedAt
	if !requested.After(rec.ClaimedAt) {
		requested = time.Time{}
	}
	since, alerted := rec.OutOfSyncSince, rec.Alerted
	if c := cur.state.Certificate; c != nil && c.Fingerprint == r.Fingerprint {
		since, alerted = time.Time{}, false
	}
	_, err := t.exec(ctx, `UPDATE deliveries SET delivered_serial = ?, delivered_fingerprint = ?, delivered_settings = ?,
		delivered_at = ?, last_attempt_at = ?, last_error = '', failures = 0, next_attempt_at = NULL, lease_until = NULL,
		requested_at = ?, out_of_sync_since = ?, alerted = ? WHERE target = ?`,
		r.Serial, r.Fingerprint, r.Settings, d.timeArg(r.At), d.timeArg(r.At),
		d.nullTime(requested), d.nullTime(since), boolInt(alerted), r.Target)
	return err
}

// finishFailure records a failed delivery; with a "Deliver now" made
// since the claim waiting, the target is due again at once.
func (t *tx) finishFailure(ctx context.Context, r delivery.Result, rec delivery.Record) error {
	d := t.db.d
	next := r.NextAttempt
	if rec.RequestedAt.After(rec.ClaimedAt) {
		next = time.Time{}
	}
	_, err := t.exec(ctx, `UPDATE deliveries SET last_attempt_at = ?, last_error = ?, failures = failures + 1,
		next_attempt_at = ?, lease_until = NULL WHERE target = ?`,
		d.timeArg(r.At), r.Error, d.nullTime(next), r.Target)
	return err
}

// MarkOutOfSyncAlerted records that target's out-of-sync episode that
// began at since was alerted, once, with its event.
func (db *DB) MarkOutOfSyncAlerted(ctx context.Context, target string, since time.Time, e pushcert.Event) (bool, error) {
	var marked bool
	err := db.write(ctx, 0, func(t *tx, _ installation) error {
		n, err := t.exec(ctx, `UPDATE deliveries SET alerted = 1 WHERE target = ? AND alerted = 0 AND out_of_sync_since = ?`,
			target, db.d.timeArg(since))
		if err != nil || n != 1 {
			return err
		}
		marked = true
		return t.addEvent(ctx, e)
	})
	if err != nil {
		return false, fmt.Errorf("mark out-of-sync alert for %s: %w", target, err)
	}
	return marked, nil
}

// RequestDelivery asks, at e.At, for the named targets to be sent the
// active certificate again at once: their backoff is cleared and they
// count as needing it until a delivery claimed after the request succeeds.
func (db *DB) RequestDelivery(ctx context.Context, targets []string, e pushcert.Event) error {
	if len(targets) == 0 {
		return nil
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	err := db.write(ctx, 0, func(t *tx, _ installation) error {
		for _, name := range targets {
			if _, err := t.exec(ctx, `INSERT INTO deliveries (target) VALUES (?) ON CONFLICT (target) DO NOTHING`, name); err != nil {
				return err
			}
		}
		args := []any{db.d.timeArg(e.At)}
		for _, name := range targets {
			args = append(args, name)
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(targets)), ", ")
		if _, err := t.exec(ctx, `UPDATE deliveries SET requested_at = ?, next_attempt_at = NULL WHERE target IN (`+marks+`)`, args...); err != nil {
			return err
		}
		return t.addEvent(ctx, e)
	})
	if err != nil {
		return fmt.Errorf("request delivery: %w", err)
	}
	return nil
}

// RecordEvent stores an audit event that goes with no other change, such
// as an export of the private key.
func (db *DB) RecordEvent(ctx context.Context, e pushcert.Event) error {
	if err := db.write(ctx, 0, func(t *tx, _ installation) error { return t.addEvent(ctx, e) }); err != nil {
		return fmt.Errorf("record %s event: %w", e.Kind, err)
	}
	return nil
}
