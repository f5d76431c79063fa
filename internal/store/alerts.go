package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/pushcert"
)

var _ alert.Store = (*DB)(nil)

// The statements below need no lock on the installation row: each is one
// statement whose condition makes it safe to run from many replicas at
// once (INSERT … ON CONFLICT DO NOTHING, an UPDATE that re-checks the
// state it expects).

// EventsAfter returns up to limit audit events whose ID is above afterID,
// oldest first. Every write stores its event while holding the
// installation row's lock, so IDs are committed in order and an event can
// never appear below a cursor that has moved past it.
func (db *DB) EventsAfter(ctx context.Context, afterID int64, limit int) ([]pushcert.Event, error) {
	events, err := db.queryEvents(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE id > ? ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events after %d: %w", afterID, err)
	}
	return events, nil
}

// EventCounts returns how many audit events of each kind are stored.
func (db *DB) EventCounts(ctx context.Context) (map[pushcert.EventKind]int64, error) {
	rows, err := db.sql.QueryContext(ctx, `SELECT kind, COUNT(*) FROM audit_events GROUP BY kind`)
	if err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	defer rows.Close()
	counts := make(map[pushcert.EventKind]int64)
	for rows.Next() {
		var kind string
		var n int64
		if err := rows.Scan(&kind, &n); err != nil {
			return nil, fmt.Errorf("count events: %w", err)
		}
		counts[pushcert.EventKind(kind)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count events: %w", err)
	}
	return counts, nil
}

// AlertCursor returns the ID of the newest audit event the alert checker
// has looked at.
func (db *DB) AlertCursor(ctx context.Context) (int64, error) {
	var id int64
	if err := db.sql.QueryRowContext(ctx, `SELECT last_event_id FROM alert_cursor WHERE singleton = 1`).Scan(&id); err != nil {
		return 0, fmt.Errorf("read alert cursor: %w", err)
	}
	return id, nil
}

// AdvanceAlertCursor moves the cursor from from to to, and reports false,
// changing nothing, when it is no longer at from.
func (db *DB) AdvanceAlertCursor(ctx context.Context, from, to int64) (bool, error) {
	res, err := db.sql.ExecContext(ctx, db.d.rebind(`UPDATE alert_cursor SET last_event_id = ? WHERE singleton = 1 AND last_event_id = ?`), to, from)
	if err != nil {
		return false, fmt.Errorf("advance alert cursor: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("advance alert cursor: %w", err)
	}
	return n == 1, nil
}

// AddAlert records an alert under key unless one is recorded already, and
// reports whether this call recorded it.
func (db *DB) AddAlert(ctx context.Context, key string, payload []byte, at time.Time) (bool, error) {
	res, err := db.sql.ExecContext(ctx, db.d.rebind(`INSERT INTO alerts (alert_key, created_at, payload) VALUES (?, ?, ?)
		ON CONFLICT (alert_key) DO NOTHING`), key, db.d.timeArg(at), string(payload))
	if err != nil {
		return false, fmt.Errorf("add alert %s: %w", key, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("add alert %s: %w", key, err)
	}
	return n == 1, nil
}

// ClaimAlerts leases up to limit unfinished alerts that are free at now
// until leaseUntil, oldest first. Each claim is an UPDATE that re-checks
// that the alert is still free, so of several replicas claiming at once
// exactly one gets it.
func (db *DB) ClaimAlerts(ctx context.Context, now, leaseUntil time.Time, limit int) ([]alert.Queued, error) {
	rows, err := db.sql.QueryContext(ctx, db.d.rebind(`SELECT alert_key, created_at, payload, attempts FROM alerts
		WHERE finished_at IS NULL AND (lease_until IS NULL OR lease_until <= ?)
		ORDER BY created_at, alert_key LIMIT ?`), db.d.timeArg(now), limit)
	if err != nil {
		return nil, fmt.Errorf("list due alerts: %w", err)
	}
	var free []alert.Queued
	for rows.Next() {
		var q alert.Queued
		var payload string
		if err := rows.Scan(&q.Key, scanTime{&q.CreatedAt}, &payload, &q.Attempts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list due alerts: %w", err)
		}
		q.Payload = []byte(payload)
		free = append(free, q)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list due alerts: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list due alerts: %w", err)
	}
	var claimed []alert.Queued
	for _, q := range free {
		res, err := db.sql.ExecContext(ctx, db.d.rebind(`UPDATE alerts SET lease_until = ?, attempts = attempts + 1
			WHERE alert_key = ? AND finished_at IS NULL AND (lease_until IS NULL OR lease_until <= ?)`),
			db.d.timeArg(leaseUntil), q.Key, db.d.timeArg(now))
		if err != nil {
			return nil, fmt.Errorf("claim alert %s: %w", q.Key, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("claim alert %s: %w", q.Key, err)
		} else if n == 1 {
			q.Attempts++
			claimed = append(claimed, q)
		}
	}
	return claimed, nil
}

// FinishAlert records a claimed alert's outcome.
func (db *DB) FinishAlert(ctx context.Context, key string, outcome alert.Outcome, at time.Time) error {
	if _, err := db.sql.ExecContext(ctx, db.d.rebind(`UPDATE alerts SET finished_at = ?, outcome = ?, lease_until = NULL
		WHERE alert_key = ? AND finished_at IS NULL`), db.d.timeArg(at), string(outcome), key); err != nil {
		return fmt.Errorf("finish alert %s: %w", key, err)
	}
	return nil
}

// RetryAlert records a failed delivery and frees the alert from retryAt.
func (db *DB) RetryAlert(ctx context.Context, key string, retryAt time.Time) error {
	if _, err := db.sql.ExecContext(ctx, db.d.rebind(`UPDATE alerts SET failures = failures + 1, lease_until = ?
		WHERE alert_key = ? AND finished_at IS NULL`), db.d.timeArg(retryAt), key); err != nil {
		return fmt.Errorf("reschedule alert %s: %w", key, err)
	}
	return nil
}

// AlertCounts returns how many alerts were delivered and how many
// deliveries failed (each failed claim counts once, whatever its retries).
func (db *DB) AlertCounts(ctx context.Context) (sent, failed int64, err error) {
	err = db.sql.QueryRowContext(ctx, db.d.rebind(`SELECT
		COALESCE(SUM(CASE WHEN outcome = ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(failures), 0) FROM alerts`),
		string(alert.OutcomeSent)).Scan(&sent, &failed)
	if err != nil {
		return 0, 0, fmt.Errorf("count alerts: %w", err)
	}
	return sent, failed, nil
}

// LastSentAlert returns the alert the webhook accepted last; ok is false
// when none was sent yet.
func (db *DB) LastSentAlert(ctx context.Context) (a alert.Sent, ok bool, err error) {
	last, err := cachedRead(ctx, db, &db.side.lastAlert, db.readLastSentAlert)
	if err != nil || last == nil {
		return alert.Sent{}, false, err
	}
	a = *last
	a.Payload = slices.Clone(a.Payload)
	return a, true, nil
}

// readLastSentAlert reads the newest sent alert; nil when none was sent.
func (db *DB) readLastSentAlert(ctx context.Context) (*alert.Sent, error) {
	a, ok, err := db.queryLastSentAlert(ctx)
	if err != nil || !ok {
		return nil, err
	}
	return &a, nil
}

func (db *DB) queryLastSentAlert(ctx context.Context) (a alert.Sent, ok bool, err error) {
	var payload string
	err = db.sql.QueryRowContext(ctx, db.d.rebind(`SELECT alert_key, payload, finished_at FROM alerts
		WHERE outcome = ? ORDER BY finished_at DESC, alert_key DESC LIMIT 1`), string(alert.OutcomeSent)).
		Scan(&a.Key, &payload, scanTime{&a.At})
	if errors.Is(err, sql.ErrNoRows) {
		return alert.Sent{}, false, nil
	}
	if err != nil {
		return alert.Sent{}, false, fmt.Errorf("read last sent alert: %w", err)
	}
	a.Payload = []byte(payload)
	return a, true, nil
}
