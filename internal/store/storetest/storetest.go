// Package storetest makes databases for tests outside package store: a
// SQLite file in the test's temporary folder, or a schema of its own in the
// PostgreSQL test server, dropped when the test ends.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// DefaultPostgresURL is the PostgreSQL server the tests use unless
// PUSHCERT_TEST_POSTGRES_URL names another.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Backend makes fresh databases of one kind.
type Backend struct {
	Name string
	// URL returns the database URL of a new, empty database that lives
	// until the test ends.
	URL func(t testing.TB) string
}

// Backends are SQLite and PostgreSQL, for tests that run against both.
var Backends = []Backend{
	{"sqlite", SQLiteURL},
	{"postgres", PostgresURL},
}

// SQLiteURL returns the URL of a new SQLite file in t.TempDir().
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "pushcert.db")
}

var (
	pgOnce sync.Once
	pgErr  error
)

func postgresBase() string {
	if u := os.Getenv("PUSHCERT_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// PostgresURL creates a schema for the test and returns a URL whose
// search_path selects it; the schema is dropped when the test ends. Without
// a reachable PostgreSQL the test is skipped, except when CI is set: CI must
// run the PostgreSQL tests, so there it fails.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := postgresBase()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pgErr = Exec(ctx, base, "SELECT 1")
	})
	if pgErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("postgres at %s: %v; CI must run the PostgreSQL tests", redact(base), pgErr)
		}
		t.Skipf("postgres at %s unreachable: %v", redact(base), pgErr)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	if err := Exec(context.Background(), base, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := Exec(context.Background(), base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Exec runs one statement on the PostgreSQL database at dsn.
func Exec(ctx context.Context, dsn, stmt string) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}
