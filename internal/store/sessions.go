package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/session"
)

var _ session.Store = (*DB)(nil)

// Sessions are written without the installation row's lock: each
// statement stands alone and is safe from many replicas at once. Only a
// revocation takes the lock, as it stores an audit event.

// sessionCols are a session row's columns in the order scanSession reads
// them.
const sessionCols = `token_hash, handle, subject, name, email, role, signed_in_at,
	created_at, last_seen_at, expires_at, client, address`

func scanSession(row interface{ Scan(...any) error }) (session.Session, error) {
	var s session.Session
	var hash, role string
	err := row.Scan(&hash, &s.Handle, &s.User.Subject, &s.User.Name, &s.User.Email, &role, scanTime{&s.User.SignedInAt},
		scanTime{&s.CreatedAt}, scanTime{&s.LastSeen}, scanTime{&s.ExpiresAt}, &s.Client, &s.Address)
	if err != nil {
		return session.Session{}, err
	}
	s.User.Role = auth.Role(role)
	if b, err := hex.DecodeString(hash); err == nil && len(b) == len(s.Key) {
		copy(s.Key[:], b)
	}
	return s, nil
}

func keyText(k session.Key) string { return hex.EncodeToString(k[:]) }

// CreateSession stores s after deleting the sessions that ended (expired
// by now or idle since before idleBefore) and the same user's oldest ones
// beyond keepPerUser-1, so the table stays as small as the sessions in
// use. The deletions and the insert are one transaction.
func (db *DB) CreateSession(ctx context.Context, s session.Session, now, idleBefore time.Time, keepPerUser int) error {
	d := db.d
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	for _, q := range []struct {
		query string
		args  []any
	}{
		{`DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at < ?`, []any{d.timeArg(now), d.timeArg(idleBefore)}},
		// The subquery names the sessions to keep: the newest ones.
		{`DELETE FROM sessions WHERE subject = ? AND token_hash NOT IN
			(SELECT token_hash FROM sessions WHERE subject = ? ORDER BY created_at DESC, token_hash LIMIT ?)`,
			[]any{s.User.Subject, s.User.Subject, max(keepPerUser-1, 0)}},
		{`INSERT INTO sessions (` + sessionCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			[]any{keyText(s.Key), s.Handle, s.User.Subject, s.User.Name, s.User.Email, string(s.User.Role), d.nullTime(s.User.SignedInAt),
				d.timeArg(s.CreatedAt), d.timeArg(s.LastSeen), d.timeArg(s.ExpiresAt), s.Client, s.Address}},
	} {
		if _, err := tx.ExecContext(ctx, d.rebind(q.query), q.args...); err != nil {
			return fmt.Errorf("create session: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the session with key, live or not.
func (db *DB) Session(ctx context.Context, key session.Key) (session.Session, error) {
	s, err := scanSession(db.sql.QueryRowContext(ctx, db.d.rebind(`SELECT `+sessionCols+` FROM sessions WHERE token_hash = ?`), keyText(key)))
	if errors.Is(err, sql.ErrNoRows) {
		return session.Session{}, fmt.Errorf("session: %w", pushcert.ErrNotFound)
	}
	if err != nil {
		return session.Session{}, fmt.Errorf("read session: %w", err)
	}
	return s, nil
}

// TouchSession moves the session's last-seen time forward to at; an
// earlier time, from a replica that was slower to write it, changes
// nothing.
func (db *DB) TouchSession(ctx context.Context, key session.Key, at time.Time) error {
	_, err := db.sql.ExecContext(ctx, db.d.rebind(`UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?`),
		db.d.timeArg(at), keyText(key), db.d.timeArg(at))
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes the session with key, if there is one.
func (db *DB) DeleteSession(ctx context.Context, key session.Key) error {
	if _, err := db.sql.ExecContext(ctx, db.d.rebind(`DELETE FROM sessions WHERE token_hash = ?`), keyText(key)); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// maxActiveSessions bounds the sessions page.
const maxActiveSessions = 500

// ActiveSessions lists the sessions that expire after now and were last
// seen at or after idleBefore, most recently seen first, at most
// maxActiveSessions.
func (db *DB) ActiveSessions(ctx context.Context, now, idleBefore time.Time) ([]session.Session, error) {
	d := db.d
	rows, err := db.sql.QueryContext(ctx, d.rebind(`SELECT `+sessionCols+` FROM sessions
		WHERE expires_at > ? AND last_seen_at >= ? ORDER BY last_seen_at DESC, created_at DESC LIMIT ?`),
		d.timeArg(now), d.timeArg(idleBefore), maxActiveSessions)
	if err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	defer rows.Close()
	var list []session.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("list sessions: %w", err)
		}
		list = append(list, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	return list, nil
}

// RevokeSession deletes the session named handle and stores the event
// made from it, under the installation row's lock like every write that
// stores an audit event.
func (db *DB) RevokeSession(ctx context.Context, handle string, event func(session.Session) pushcert.Event) (session.Session, error) {
	var s session.Session
	err := db.write(ctx, 0, func(t *tx, _ installation) error {
		row, err := t.queryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE handle = ?`, handle)
		if err != nil {
			return err
		}
		if s, err = scanSession(row); errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("session: %w", pushcert.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `DELETE FROM sessions WHERE handle = ?`, handle); err != nil {
			return err
		}
		return t.addEvent(ctx, event(s))
	})
	if err != nil {
		return session.Session{}, fmt.Errorf("revoke session: %w", err)
	}
	return s, nil
}
