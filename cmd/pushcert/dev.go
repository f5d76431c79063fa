package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/devidp"
)

// devSetup is what -dev starts besides pushcert itself.
type devSetup struct {
	provider *devidp.Provider // nil when an OpenID provider is configured
	ca       *applesim.CA     // the development CA that plays Apple
}

// Close stops the embedded provider, if -dev started one.
func (d *devSetup) Close() {
	if d.provider != nil {
		_ = d.provider.Close()
	}
}

// devConfig returns cfg completed for development mode, served at addr:
// the base URL, secrets generated once and kept in the data folder, and,
// unless a provider is configured, the embedded OpenID provider on the
// next port. It also loads the development CA. The validated cfg itself
// stays as it was.
func devConfig(cfg config, log *slog.Logger, addr *net.TCPAddr, now func() time.Time) (config, *devSetup, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return config{}, nil, fmt.Errorf("create data folder %s: %w", cfg.DataDir, err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + addr.String()
	}
	var err error
	if cfg.SessionSecret, err = devSecret(cfg.SessionSecret, cfg.DataDir, "dev-session-secret"); err != nil {
		return config{}, nil, err
	}
	if cfg.KeyEncryptionSecret, err = devSecret(cfg.KeyEncryptionSecret, cfg.DataDir, "dev-key-encryption-secret"); err != nil {
		return config{}, nil, err
	}
	ca, err := devCA(cfg.DataDir, now)
	if err != nil {
		return config{}, nil, err
	}
	if cfg.OIDCIssuer != "" {
		// An explicitly configured provider wins; dev mode then only adds
		// the secrets, the data folder and the development CA.
		return cfg, &devSetup{ca: ca}, nil
	}
	p, err := startDevProvider(cfg, log, addr, now)
	if err != nil {
		return config{}, nil, err
	}
	cfg.OIDCIssuer = p.Issuer()
	cfg.OIDCClientID = devidp.ClientID
	cfg.OIDCClientSecret = p.ClientSecret()
	if cfg.OIDCAudience == "" {
		cfg.OIDCAudience = devidp.ClientID
	}
	// Clipped, so that the scopes get an array of their own rather than
	// growing into the validated configuration's.
	cfg.OIDCScopes = append(slices.Clip(cfg.OIDCScopes), "groups")
	return cfg, &devSetup{provider: p, ca: ca}, nil
}

// startDevProvider starts the embedded provider with a demo admin, viewer
// and outsider, at the configured address or else on the port after
// pushcert's.
func startDevProvider(cfg config, log *slog.Logger, addr *net.TCPAddr, now func() time.Time) (*devidp.Provider, error) {
	providerAddr := cfg.DevProviderAddr
	if providerAddr == "" {
		port := 0
		if addr.Port != 0 {
			port = addr.Port + 1
		}
		providerAddr = net.JoinHostPort(addr.IP.String(), strconv.Itoa(port))
	}
	// The configuration checked a configured address; this one comes from
	// the address pushcert's listener is bound to.
	if !isLoopbackAddr(providerAddr) {
		return nil, fmt.Errorf("PUSHCERT_DEV_PROVIDER_ADDR (-dev-provider-addr): the development provider only listens on loopback, like 127.0.0.1:8081")
	}
	users := []devidp.User{
		{Key: "admin", Label: "Demo Admin", Email: "admin@example.com", Groups: cfg.AdminGroups[:1]},
		{Key: "viewer", Label: "Demo Viewer", Email: "viewer@example.com", Groups: firstOr(cfg.ViewerGroups, "pushcert-viewers")},
		{Key: "outsider", Label: "Demo Outsider", Email: "outsider@example.com"},
	}
	return devidp.Start(log, providerAddr, cfg.DataDir, users, now)
}

func firstOr(list []string, def string) []string {
	if len(list) > 0 {
		return list[:1]
	}
	return []string{def}
}

// devSecret returns secret when it is set, or else the generated secret
// kept in the file name in dir, creating it the first time. A file that is
// there but unreadable or too short is an error, never replaced: the dev
// database's private keys are encrypted under the key-encryption secret,
// and a new one would make them unreadable for good.
func devSecret(secret, dir, name string) (string, error) {
	if secret != "" {
		return secret, nil
	}
	path := filepath.Join(dir, name)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(b) >= 32:
		return string(b), nil
	case err == nil:
		return "", fmt.Errorf("%s holds %d characters, and a development secret has at least 32: restore the file, or delete the data folder %s to start over", path, len(b), dir)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	s := hex.EncodeToString(raw[:])
	if err := writeNew(path, []byte(s)); errors.Is(err, fs.ErrExist) {
		// Another start made it first: use that one.
		return devSecret(secret, dir, name)
	} else if err != nil {
		return "", err
	}
	return s, nil
}

// writeNew writes a new file whole or not at all: a temporary file in the
// same folder, synced, then linked in place only if path does not exist
// yet, so a crash never leaves half a secret and two starts never
// overwrite each other's.
func writeNew(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// devCA loads the development CA from the data folder, creating it the
// first time.
func devCA(dir string, now func() time.Time) (*applesim.CA, error) {
	certPath, keyPath := filepath.Join(dir, "dev-ca.pem"), filepath.Join(dir, "dev-ca-key.pem")
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	if errC == nil && errK == nil {
		ca, err := applesim.LoadCA(certPEM, keyPEM, now)
		if err != nil {
			return nil, fmt.Errorf("development CA in %s (delete both dev-ca files to start over): %w", dir, err)
		}
		return ca, nil
	}
	ca, err := applesim.NewCA(applesim.DevCAName, now)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(keyPath, ca.KeyPEM(), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.WriteFile(certPath, ca.CertPEM(), 0o600); err != nil {
		return nil, fmt.Errorf("write %s: %w", certPath, err)
	}
	return ca, nil
}
