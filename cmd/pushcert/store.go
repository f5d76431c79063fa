package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pushcert/pushcert/internal/store"
)

// openStore opens (and migrates) the configured database, and refuses it
// when a stored private key does not open with the configured
// key-encryption secrets: started with the wrong secret, pushcert would
// hand out CSRs under keys it could not open again.
func openStore(ctx context.Context, cfg *config) (*store.DB, error) {
	keys, err := store.NewKeyring(cfg.KeyEncryptionSecret, cfg.KeyEncryptionSecretsPrevious...)
	if err != nil {
		return nil, fmt.Errorf("key-encryption secret: %w", err)
	}
	if dir, ok := sqliteDir(cfg.DatabaseURL); ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data folder %s: %w", dir, err)
		}
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, keys)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := checkKeys(ctx, st); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// checkKeys returns one line naming the settings when a stored private key
// does not open with the configured key-encryption secrets. It never
// names a secret.
func checkKeys(ctx context.Context, st *store.DB) error {
	n, err := st.UnreadableKeys(ctx)
	switch {
	case err != nil:
		return fmt.Errorf("check the stored private keys: %w", err)
	case n == 1:
		return errors.New("1 stored private key does not open with PUSHCERT_KEY_ENCRYPTION_SECRET or PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS: " + unreadableHint)
	case n > 1:
		return fmt.Errorf("%d stored private keys do not open with PUSHCERT_KEY_ENCRYPTION_SECRET or PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS: "+unreadableHint, n)
	}
	return nil
}

const unreadableHint = "set the secret the keys were stored with, or add it to PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS"

// logStatusCache says at startup whether the status page and API GET are
// answered from memory while the database is unchanged: a SQLite database
// that cannot use the cache still works, only slower, and the log says why.
func logStatusCache(log *slog.Logger, st *store.DB, dbURL string) {
	on, why := st.StatusCache()
	switch _, sqlite := sqliteDir(dbURL); {
	case on:
		log.Info("status cache on: reads are answered from memory while the database is unchanged")
	case sqlite:
		log.Warn("status cache off: every status page and API GET reads the database", "reason", why)
	default:
		log.Info("status cache off", "reason", why)
	}
}

func sqliteDir(databaseURL string) (string, bool) {
	if len(databaseURL) < len("sqlite:") || databaseURL[:len("sqlite:")] != "sqlite:" {
		return "", false
	}
	return filepath.Dir(databaseURL[len("sqlite:"):]), true
}
