package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

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
	_, err := t.exec(ctx, `INSERT INTO audit_events (at, kind, actor_subject, actor_name, actor_email, serial, topic, not_after, detail, file_name)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.timeArg(e.At), string(e.Kind), e.Actor.Subject, e.Actor.Name, e.Actor.Email, e.Serial, e.Topic, d.nullTime(e.NotAfter), e.Detail, e.FileName)
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
