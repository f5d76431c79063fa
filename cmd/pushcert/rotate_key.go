package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// rotateKey re-encrypts every stored private key under the current
// key-encryption secret. Run it with the new secret in
// PUSHCERT_KEY_ENCRYPTION_SECRET and the old one in
// PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS.
func rotateKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, now func() time.Time) error {
	cfg, err := parseConfig("pushcert rotate-key", modeRotate, args, getenv, stdout)
	if isHelp(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Dev {
		// -dev's generated secret, as the server it rotates for uses it.
		devCfg := *cfg
		if devCfg.KeyEncryptionSecret, err = devSecret(cfg.KeyEncryptionSecret, cfg.DataDir, "dev-key-encryption-secret"); err != nil {
			return err
		}
		cfg = &devCfg
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	// Rotating needs neither vendor signing nor trusted issuers.
	svc := pushcert.NewService(st, pushcert.Config{Organization: cfg.Organization, Now: now})
	n, err := svc.RotateKeys(ctx, auth.System)
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	fmt.Fprintf(stdout, "re-encrypted %d private keys under the current key-encryption secret\n", n)
	return nil
}
