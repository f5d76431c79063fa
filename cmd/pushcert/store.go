package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/pushcert/pushcert/internal/store"
)

// openStore opens (and migrates) the configured database.
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
	return st, nil
}

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
