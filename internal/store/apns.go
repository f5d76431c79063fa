package store

import (
	"context"
	"fmt"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/pushcert"
)

var _ apns.Store = (*DB)(nil)

// apnsCols are the apns_check row's columns in the order scanAPNSCheck
// reads them.
const apnsCols = `checked_at, outcome, message, serial, fingerprint, topic, server, http_status, reason,
	by_subject, by_name, by_email, lease_until, episode_since, alerted`

func scanAPNSCheck(row interface{ Scan(...any) error }) (apns.Record, error) {
	var r apns.Record
	l := &r.Last
	var outcome string
	var alerted int
	err := row.Scan(scanTime{&l.At}, &outcome, &l.Message, &l.Serial, &l.Fingerprint, &l.Topic, &l.Server, &l.HTTPStatus, &l.Reason,
		&l.By.Subject, &l.By.Name, &l.By.Email, scanTime{&r.LeaseUntil}, scanTime{&r.Since}, &alerted)
	l.Outcome, r.Alerted = apns.Outcome(outcome), alerted != 0
	l.NoTopic = l.Outcome != apns.OutcomeNone && l.Topic == ""
	return r, err
}

// APNSCheck returns the record of the connection checks.
func (db *DB) APNSCheck(ctx context.Context) (apns.Record, error) {
	r, err := scanAPNSCheck(db.sql.QueryRowContext(ctx, `SELECT `+apnsCols+` FROM apns_check WHERE singleton = 1`))
	if err != nil {
		return apns.Record{}, fmt.Errorf("read apns check: %w", err)
	}
	return r, nil
}

// ClaimAPNSCheck leases the check of the certificate with fingerprint.
// Like ClaimDelivery, the claim is one UPDATE that re-checks every
// condition, so of several replicas claiming at once one gets it. A zero
// checkedBefore is NULL, which no comparison matches.
func (db *DB) ClaimAPNSCheck(ctx context.Context, fingerprint string, now, leaseUntil, checkedBefore time.Time) (bool, error) {
	d := db.d
	res, err := db.sql.ExecContext(ctx, d.rebind(`UPDATE apns_check SET lease_until = ?
		WHERE singleton = 1 AND (lease_until IS NULL OR lease_until <= ?) AND (fingerprint <> ? OR checked_at <= ?)`),
		d.timeArg(leaseUntil), d.timeArg(now), fingerprint, d.nullTime(checkedBefore))
	if err != nil {
		return false, fmt.Errorf("claim apns check: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim apns check: %w", err)
	}
	return n == 1, nil
}

// RecordAPNSCheck records a check as the last one. It runs under the
// installation row's lock, like every write that stores an audit event,
// and so does the comparison with the last check that decides on the
// event: of two replicas recording the same change, one records it.
func (db *DB) RecordAPNSCheck(ctx context.Context, f apns.Finished) (bool, error) {
	r := f.Result
	var changed bool
	err := db.write(ctx, 0, func(t *tx, _ installation) error {
		row, err := t.queryRow(ctx, `SELECT `+apnsCols+` FROM apns_check WHERE singleton = 1`)
		if err != nil {
			return err
		}
		cur, err := scanAPNSCheck(row)
		if err != nil {
			return err
		}
		release := ""
		if f.Claimed {
			release = ", lease_until = NULL"
		}
		if !cur.Last.At.IsZero() && r.At.Before(cur.Last.At) {
			// A slow check that finished before the recorded one is not
			// the last check.
			if release != "" {
				if _, err := t.exec(ctx, `UPDATE apns_check SET lease_until = NULL WHERE singleton = 1`); err != nil {
					return err
				}
			}
			return apnsEvent(ctx, t, f, f.Always)
		}
		changed = cur.Last.Outcome != r.Outcome || cur.Last.Fingerprint != r.Fingerprint
		since, alerted := cur.Since, cur.Alerted
		if cur.Last.Outcome != r.Outcome || (r.Outcome == apns.OutcomeRejected && cur.Last.Fingerprint != r.Fingerprint) {
			since, alerted = r.At, false
		}
		d := db.d
		if _, err := t.exec(ctx, `UPDATE apns_check SET checked_at = ?, outcome = ?, message = ?, serial = ?, fingerprint = ?,
			topic = ?, server = ?, http_status = ?, reason = ?, by_subject = ?, by_name = ?, by_email = ?,
			episode_since = ?, alerted = ?`+release+` WHERE singleton = 1`,
			d.timeArg(r.At), string(r.Outcome), r.Message, r.Serial, r.Fingerprint, r.Topic, r.Server, r.HTTPStatus, r.Reason,
			r.By.Subject, r.By.Name, r.By.Email, d.nullTime(since), boolInt(alerted)); err != nil {
			return err
		}
		return apnsEvent(ctx, t, f, changed || f.Always)
	})
	if err != nil {
		return false, fmt.Errorf("record apns check of %s: %w", r.Serial, err)
	}
	return changed, nil
}

// apnsEvent stores f's event when write is set.
func apnsEvent(ctx context.Context, t *tx, f apns.Finished, write bool) error {
	if !write || f.Event.Kind == "" {
		return nil
	}
	return t.addEvent(ctx, f.Event)
}

// MarkAPNSAlerted records that the episode of outcome that began at since
// was alerted, once, with its event.
func (db *DB) MarkAPNSAlerted(ctx context.Context, outcome apns.Outcome, since time.Time, e pushcert.Event) (bool, error) {
	var marked bool
	err := db.write(ctx, 0, func(t *tx, _ installation) error {
		n, err := t.exec(ctx, `UPDATE apns_check SET alerted = 1 WHERE singleton = 1 AND alerted = 0 AND outcome = ? AND episode_since = ?`,
			string(outcome), db.d.timeArg(since))
		if err != nil || n != 1 {
			return err
		}
		marked = true
		return t.addEvent(ctx, e)
	})
	if err != nil {
		return false, fmt.Errorf("mark apns %s alert: %w", outcome, err)
	}
	return marked, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
