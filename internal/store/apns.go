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
	return cachedRead(ctx, db, &db.side.apnsCheck, db.readAPNSCheck)
}

func (db *DB) readAPNSCheck(ctx context.Context) (apns.Record, error) {
	r, err := scanAPNSCheck(db.stmts.apnsCheck.QueryRowContext(ctx))
	if err != nil {
		return apns.Record{}, fmt.Errorf("read apns check: %w", err)
	}
	return r, nil
}

// apnsCheckQuery reads the last check, prepared once (see preparedStmts).
const apnsCheckQuery = `SELECT ` + apnsCols + ` FROM apns_check WHERE singleton = 1`

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
// event: of two replicas recording the same change, one records it. The
// active certificate read under that lock decides which result is the
// last: a result for it is never replaced by one for another
// certificate, however late that check finished.
func (db *DB) RecordAPNSCheck(ctx context.Context, f apns.Finished) (bool, error) {
	r := f.Result
	var changed bool
	err := db.write(ctx, 0, func(t *tx, in installation) error {
		row, err := t.queryRow(ctx, `SELECT `+apnsCols+` FROM apns_check WHERE singleton = 1`)
		if err != nil {
			return err
		}
		cur, err := scanAPNSCheck(row)
		if err != nil {
			return err
		}
		if err := db.releaseAPNSLease(ctx, t, f.Lease); err != nil {
			return err
		}
		if !isLast(cur.Last, r, activeFingerprint(in)) {
			return apnsEvent(ctx, t, f, f.Always)
		}
		changed = cur.Last.Outcome != r.Outcome || cur.Last.Fingerprint != r.Fingerprint
		since, alerted := cur.Since, cur.Alerted
		if cur.Last.Outcome != r.Outcome || (r.Outcome == apns.OutcomeRejected && cur.Last.Fingerprint != r.Fingerprint) {
			since, alerted = r.At, false
		}
		// The active certificate's result may have finished before the
		// earlier certificate's it replaces: an episode begins no later
		// than its first check.
		if since.After(r.At) {
			since = r.At
		}
		d := db.d
		if _, err := t.exec(ctx, `UPDATE apns_check SET checked_at = ?, outcome = ?, message = ?, serial = ?, fingerprint = ?,
			topic = ?, server = ?, http_status = ?, reason = ?, by_subject = ?, by_name = ?, by_email = ?,
			episode_since = ?, alerted = ? WHERE singleton = 1`,
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

// isLast reports whether r is to replace cur as the last check, given the
// active certificate's fingerprint ("" without one): a result for the
// active certificate beats one for another, and of two results for the
// same side the one that finished later wins.
func isLast(cur, r apns.Result, active string) bool {
	curActive := active != "" && cur.Outcome != apns.OutcomeNone && cur.Fingerprint == active
	rActive := active != "" && r.Fingerprint == active
	switch {
	case curActive != rActive:
		return rActive
	case cur.At.IsZero():
		return true
	default:
		return !r.At.Before(cur.At)
	}
}

// activeFingerprint is the fingerprint of in's active certificate, "" when
// there is none.
func activeFingerprint(in installation) string {
	if in.state.Certificate == nil {
		return ""
	}
	return in.state.Certificate.Fingerprint
}

// releaseAPNSLease ends the lease that ends at lease, if it is still the
// current one: a replica whose lease ran out mid-check must not release
// the lease of the replica that claimed after it. A zero lease releases
// nothing.
func (db *DB) releaseAPNSLease(ctx context.Context, t *tx, lease time.Time) error {
	if lease.IsZero() {
		return nil
	}
	_, err := t.exec(ctx, `UPDATE apns_check SET lease_until = NULL WHERE singleton = 1 AND lease_until = ?`, db.d.timeArg(lease))
	return err
}

// apnsEvent stores f's event when write is set.
func apnsEvent(ctx context.Context, t *tx, f apns.Finished, write bool) error {
	if !write || f.Event.Kind == "" {
		return nil
	}
	return t.addEvent(ctx, f.Event)
}

// MarkAPNSAlerted records that the episode of outcome that began at since
// was alerted, once, with its event. Only a result for the active
// certificate, read under the installation row's lock, is alerted: a
// renewal activated since the check ended its episode.
func (db *DB) MarkAPNSAlerted(ctx context.Context, outcome apns.Outcome, since time.Time, e pushcert.Event) (bool, error) {
	var marked bool
	err := db.write(ctx, 0, func(t *tx, in installation) error {
		active := activeFingerprint(in)
		if active == "" {
			return nil
		}
		n, err := t.exec(ctx, `UPDATE apns_check SET alerted = 1
			WHERE singleton = 1 AND alerted = 0 AND outcome = ? AND episode_since = ? AND fingerprint = ?`,
			string(outcome), db.d.timeArg(since), active)
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
