package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/web"
)

// shutdownGrace is how long in-flight requests (an upload, say) get to
// finish after SIGTERM before the server closes.
const shutdownGrace = 20 * time.Second

// run builds the app from its inputs and serves until ctx ends; tests call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) > 0 {
		switch args[0] {
		case "serve":
			args = args[1:]
		case "rotate-key":
			return rotateKey(ctx, args[1:], getenv, stdout)
		case "healthcheck":
			return healthcheck(ctx, args[1:], getenv, stdout)
		}
	}
	cfg, err := parseConfig("pushcert", modeServe, args, getenv, stdout)
	if isHelp(err) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	defer ln.Close()

	var devCA *applesim.CA
	if cfg.Dev {
		dev, err := setUpDev(cfg, log, ln.Addr().(*net.TCPAddr))
		if err != nil {
			return err
		}
		if dev.provider != nil {
			defer dev.provider.Close()
		}
		devCA = dev.ca
	}

	st, svc, err := openService(ctx, cfg, devCA)
	if err != nil {
		return err
	}
	defer st.Close()

	authn, err := web.NewAuthenticator(ctx, log, web.AuthConfig{
		Issuer:          cfg.OIDCIssuer,
		ClientID:        cfg.OIDCClientID,
		ClientSecret:    cfg.OIDCClientSecret,
		Audience:        cfg.OIDCAudience,
		Scopes:          cfg.OIDCScopes,
		BaseURL:         cfg.BaseURL,
		GroupsClaim:     cfg.GroupsClaim,
		AdminGroups:     cfg.AdminGroups,
		ViewerGroups:    cfg.ViewerGroups,
		SessionSecret:   cfg.SessionSecret,
		SessionLifetime: cfg.SessionLifetime,
		SecureCookies:   !cfg.Dev,
		Dev:             cfg.Dev,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           web.NewServer(log, authn, svc, cfg.BaseURL, cfg.Organization, devCA),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("pushcert listening", "addr", ln.Addr().String(), "base_url", cfg.BaseURL, "dev", cfg.Dev)
	if cfg.Dev {
		fmt.Fprintf(stdout, "\npushcert is running in development mode: open %s and sign in as the demo admin.\n\n", cfg.BaseURL)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace_seconds", int(shutdownGrace.Seconds()))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// openService opens the store and builds the certificate service with the
// configured vendor signing and trusted issuers.
func openService(ctx context.Context, cfg *config, devCA *applesim.CA) (*store.DB, *pushcert.Service, error) {
	keys, err := store.NewKeyring(cfg.KeyEncryptionSecret, cfg.KeyEncryptionSecretsPrevious...)
	if err != nil {
		return nil, nil, fmt.Errorf("key-encryption secret: %w", err)
	}
	if dir, ok := sqliteDir(cfg.DatabaseURL); ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, nil, fmt.Errorf("create data folder %s: %w", dir, err)
		}
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("open database: %w", err)
	}
	vendor, err := loadVendor(cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	roots, err := loadTrustBundle(cfg.TrustBundleFile)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if devCA != nil {
		if roots == nil {
			roots = x509.NewCertPool()
		}
		roots.AddCert(devCA.Cert)
	}
	svc := pushcert.NewService(st, pushcert.Config{
		Organization:   cfg.Organization,
		Vendor:         vendor,
		TrustRoots:     roots,
		AllowAnyIssuer: cfg.AllowAnyIssuer,
	})
	return st, svc, nil
}

func loadVendor(cfg *config) (*pushcert.Vendor, error) {
	if cfg.VendorCertFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(cfg.VendorCertFile)
	if err != nil {
		return nil, fmt.Errorf("vendor certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(cfg.VendorKeyFile)
	if err != nil {
		return nil, fmt.Errorf("vendor key: %w", err)
	}
	var chainPEM []byte
	if cfg.VendorChainFile != "" {
		if chainPEM, err = os.ReadFile(cfg.VendorChainFile); err != nil {
			return nil, fmt.Errorf("vendor chain: %w", err)
		}
	}
	v, err := pushcert.NewVendor(certPEM, keyPEM, chainPEM, time.Now())
	if err != nil {
		return nil, fmt.Errorf("vendor signing (PUSHCERT_VENDOR_CERT, PUSHCERT_VENDOR_KEY): %w", err)
	}
	return v, nil
}

func loadTrustBundle(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("trust bundle %s holds no PEM certificates", path)
	}
	return pool, nil
}

func sqliteDir(databaseURL string) (string, bool) {
	if len(databaseURL) < len("sqlite:") || databaseURL[:len("sqlite:")] != "sqlite:" {
		return "", false
	}
	return filepath.Dir(databaseURL[len("sqlite:"):]), true
}

func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// devSetup is what -dev starts besides pushcert itself.
type devSetup struct {
	provider *web.DevProvider
	ca       *applesim.CA
}

// setUpDev fills the configuration for development mode: secrets generated
// once and kept in the data folder, the embedded provider on the next port,
// and the development CA that plays Apple.
func setUpDev(cfg *config, log *slog.Logger, addr *net.TCPAddr) (*devSetup, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data folder %s: %w", cfg.DataDir, err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + addr.String()
	}
	var err error
	if cfg.SessionSecret == "" {
		if cfg.SessionSecret, err = devSecret(cfg.DataDir, "dev-session-secret"); err != nil {
			return nil, err
		}
	}
	if cfg.KeyEncryptionSecret == "" {
		if cfg.KeyEncryptionSecret, err = devSecret(cfg.DataDir, "dev-key-encryption-secret"); err != nil {
			return nil, err
		}
	}
	ca, err := devCA(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if cfg.OIDCIssuer != "" {
		// An explicitly configured provider wins; dev mode then only adds
		// the secrets, the data folder and the development CA.
		return &devSetup{provider: nil, ca: ca}, nil
	}
	port := 0
	if addr.Port != 0 {
		port = addr.Port + 1
	}
	users := []web.DevUser{
		{Key: "admin", Label: "Demo Admin", Email: "admin@example.com", Groups: cfg.AdminGroups[:1]},
		{Key: "viewer", Label: "Demo Viewer", Email: "viewer@example.com", Groups: firstOr(cfg.ViewerGroups, "pushcert-viewers")},
		{Key: "outsider", Label: "Demo Outsider", Email: "outsider@example.com"},
	}
	p, err := web.StartDevProvider(log, net.JoinHostPort(addr.IP.String(), strconv.Itoa(port)), cfg.DataDir, users)
	if err != nil {
		return nil, err
	}
	cfg.OIDCIssuer = p.Issuer()
	cfg.OIDCClientID = web.DevClientID
	cfg.OIDCClientSecret = p.ClientSecret()
	if cfg.OIDCAudience == "" {
		cfg.OIDCAudience = web.DevClientID
	}
	cfg.OIDCScopes = append(cfg.OIDCScopes, "groups")
	return &devSetup{provider: p, ca: ca}, nil
}

func firstOr(list []string, def string) []string {
	if len(list) > 0 {
		return list[:1]
	}
	return []string{def}
}

// devSecret reads a generated secret from the data folder, creating it the
// first time.
func devSecret(dir, name string) (string, error) {
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return string(b), nil
	}
	var raw [32]byte
	_, _ = rand.Read(raw[:])
	s := hex.EncodeToString(raw[:])
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return s, nil
}

// devCA loads the development CA from the data folder, creating it the
// first time.
func devCA(dir string) (*applesim.CA, error) {
	certPath, keyPath := filepath.Join(dir, "dev-ca.pem"), filepath.Join(dir, "dev-ca-key.pem")
	certPEM, errC := os.ReadFile(certPath)
	keyPEM, errK := os.ReadFile(keyPath)
	if errC == nil && errK == nil {
		ca, err := applesim.LoadCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("development CA in %s (delete both dev-ca files to start over): %w", dir, err)
		}
		return ca, nil
	}
	ca, err := applesim.NewCA(applesim.DevCAName)
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

// rotateKey re-encrypts every stored private key under the current
// key-encryption secret. Run it with the new secret in
// PUSHCERT_KEY_ENCRYPTION_SECRET and the old one in
// PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS.
func rotateKey(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig("pushcert rotate-key", modeRotate, args, getenv, stdout)
	if isHelp(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cfg.Dev {
		if cfg.KeyEncryptionSecret == "" {
			if cfg.KeyEncryptionSecret, err = devSecret(cfg.DataDir, "dev-key-encryption-secret"); err != nil {
				return err
			}
		}
	}
	st, svc, err := openService(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	n, err := svc.RotateKeys(ctx, auth.System)
	if err != nil {
		return fmt.Errorf("rotate keys: %w", err)
	}
	fmt.Fprintf(stdout, "re-encrypted %d private keys under the current key-encryption secret\n", n)
	return nil
}

// healthcheck asks a running pushcert for /healthz and fails unless it
// answers 200; container images without a shell use it as their HEALTHCHECK.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	addr := getenv("PUSHCERT_LISTEN_ADDR")
	if len(args) > 0 {
		addr = args[0]
	}
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: want host:port, got %q", addr)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errors.New("healthcheck: status " + resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}
