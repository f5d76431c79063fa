package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/webhook"
	"github.com/pushcert/pushcert/web"
)

// run builds the app from its inputs and serves until ctx ends; tests call it too.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	now, err := processClock(getenv)
	if err != nil {
		return err
	}
	return runAt(ctx, args, getenv, stdout, now)
}

// runAt is run with the clock every part that reads the time (expiry, days
// left, alerts, sessions, pending keys, the development CA) takes from;
// only run and the tests that start the server in-process choose it.
func runAt(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer, now func() time.Time) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) > 0 {
		switch args[0] {
		case "serve":
			args = args[1:]
		case "rotate-key":
			return rotateKey(ctx, args[1:], getenv, stdout, now)
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
	setGCPercent(getenv)
	// Log lines are written straight through, not buffered: a crash must
	// not lose the last requests' and audit events' lines.
	log := newLogger(cfg, stdout)
	sign, err := loadSigning(cfg, now)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	defer ln.Close()
	var pprofLn net.Listener
	if cfg.PprofAddr != "" {
		if pprofLn, err = listenLoopback(cfg.PprofAddr); err != nil {
			return fmt.Errorf("listen for pprof on %s: %w", cfg.PprofAddr, err)
		}
		defer pprofLn.Close()
	}

	var devCA *applesim.CA
	if cfg.Dev {
		dev, err := setUpDev(cfg, log, ln.Addr().(*net.TCPAddr), now)
		if err != nil {
			return err
		}
		if dev.provider != nil {
			defer dev.provider.Close()
		}
		devCA = dev.ca
	}

	// The store is closed last, after the server and the checker stopped.
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	logStatusCache(log, st, cfg.DatabaseURL)

	notifier, err := newNotifier(cfg, log)
	if err != nil {
		return err
	}
	checker := alert.NewChecker(log, st, notifier, alert.Config{
		Thresholds: cfg.AlertThresholds,
		Interval:   cfg.AlertInterval,
		ConsoleURL: cfg.BaseURL,
		Now:        now,
	})
	svc := newService(cfg, pokingStore{DB: st, poke: checker.Poke}, sign, devCA, now)

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
		Now:             now,
	})
	if err != nil {
		return err
	}

	srv := &http.Server{
		Handler:           web.NewServer(log, authn, svc, web.NewOps(log, st, cfg.MetricsToken), cfg.BaseURL, cfg.Organization, devCA),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The checker outlives ctx until the server has drained, so that the
	// last requests' audit events are still seen; it stops before the store
	// closes.
	checkCtx, stopChecker := context.WithCancel(context.WithoutCancel(ctx))
	checkerDone := make(chan struct{})
	go func() {
		defer close(checkerDone)
		checker.Run(checkCtx)
	}()
	defer func() {
		stopChecker()
		<-checkerDone
	}()

	serveErr := make(chan error, 1)
	var pprofSrv *http.Server
	if pprofLn != nil {
		pprofSrv = newPprofServer(ctx, log)
		log.Info("pprof listening", "addr", pprofLn.Addr().String())
		go func() {
			// Profiles are a diagnostic: their listener failing is logged
			// and the console goes on serving.
			if err := pprofSrv.Serve(pprofLn); !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof stopped serving", "err", err)
			}
		}()
	}
	// The listener is open, so announcing before Serve starts is true; it
	// also means anyone who sees /healthz answer has seen the announcement.
	log.Info("pushcert listening", "addr", ln.Addr().String(), "base_url", cfg.BaseURL, "dev", cfg.Dev)
	if cfg.Dev {
		fmt.Fprintf(stdout, "\npushcert is running in development mode: open %s and sign in as the demo admin.\n\n", cfg.BaseURL)
	}
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Shutdown stops accepting at once, then waits for in-flight requests
	// (an upload, say) up to the timeout.
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if pprofSrv != nil {
		// Its requests already ended with ctx, so this is quick; a profile
		// is no one's work in flight, so cutting it off is not a failure.
		if err := pprofSrv.Shutdown(sctx); err != nil {
			_ = pprofSrv.Close()
			log.Warn("pprof requests cut off at shutdown", "err", err)
		}
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", cfg.ShutdownTimeout, err)
	}
	log.Info("stopped")
	return nil
}

// newPprofServer serves net/http/pprof's profiles under /debug/pprof/.
// They are registered here, on a mux of their own that only the pprof
// listener serves: importing net/http/pprof also registers them on
// http.DefaultServeMux, which no pushcert server serves, and the
// application's handler never gets them.
//
// A CPU profile or trace answers only after the seconds it was asked for,
// so the server has no write timeout, and its requests end with ctx: at
// shutdown one in flight answers at once with what it has collected
// instead of holding the process up.
func newPprofServer(ctx context.Context, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{
		Handler:           mux,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// newNotifier returns the webhook alerts go to, or nil when none is
// configured. Only the webhook's host is logged: its path and query are
// the secret that lets anyone post to the channel.
func newNotifier(cfg *config, log *slog.Logger) (alert.Notifier, error) {
	if cfg.AlertWebhookURL == "" {
		log.Info("alerts off: no alert webhook configured")
		return nil, nil
	}
	wh, err := webhook.New(cfg.AlertWebhookURL, nil)
	if err != nil {
		return nil, err
	}
	log.Info("alerts on", "webhook_host", wh.Host(), "thresholds_days", fmt.Sprint(cfg.AlertThresholds), "interval", cfg.AlertInterval.String())
	return wh, nil
}

// pokingStore is the store the service writes through. After every write
// it pokes the alert checker, which never waits, so that the new audit
// event is logged and a refused upload alerted within moments rather than
// at the next interval, and never by the request itself.
type pokingStore struct {
	*store.DB
	poke func()
}

func (s pokingStore) AddPendingKey(ctx context.Context, k pushcert.PendingKey, e pushcert.Event) error {
	defer s.poke()
	return s.DB.AddPendingKey(ctx, k, e)
}

func (s pokingStore) Activate(ctx context.Context, a pushcert.Activation) (pushcert.State, error) {
	defer s.poke()
	return s.DB.Activate(ctx, a)
}

func (s pokingStore) RecordUploadFailure(ctx context.Context, expectVersion int64, reason string, e pushcert.Event) (pushcert.State, error) {
	defer s.poke()
	return s.DB.RecordUploadFailure(ctx, expectVersion, reason, e)
}

func (s pokingStore) SetAppleID(ctx context.Context, expectVersion int64, appleID string, e pushcert.Event) (pushcert.State, error) {
	defer s.poke()
	return s.DB.SetAppleID(ctx, expectVersion, appleID, e)
}

func (s pokingStore) RotateKeys(ctx context.Context, e pushcert.Event) (int, error) {
	defer s.poke()
	return s.DB.RotateKeys(ctx, e)
}

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

// newService builds the certificate service over st with the configured
// vendor signing and trusted issuers, and in development mode the CA that
// plays Apple.
func newService(cfg *config, st pushcert.Store, s *signing, devCA *applesim.CA, now func() time.Time) *pushcert.Service {
	roots := s.roots
	if devCA != nil {
		if roots == nil {
			roots = x509.NewCertPool()
		}
		roots.AddCert(devCA.Cert)
	}
	return pushcert.NewService(st, pushcert.Config{
		Organization:   cfg.Organization,
		Vendor:         s.vendor,
		TrustRoots:     roots,
		AllowAnyIssuer: cfg.AllowAnyIssuer,
		Now:            now,
	})
}

// signing is what the service trusts and signs with, read from files.
type signing struct {
	vendor *pushcert.Vendor
	roots  *x509.CertPool
}

// loadSigning reads the vendor signing files and the trust bundle, so that
// a bad file stops startup before anything listens.
func loadSigning(cfg *config, now func() time.Time) (*signing, error) {
	vendor, err := loadVendor(cfg, now)
	if err != nil {
		return nil, err
	}
	roots, err := loadTrustBundle(cfg.TrustBundleFile)
	if err != nil {
		return nil, err
	}
	return &signing{vendor: vendor, roots: roots}, nil
}

func loadVendor(cfg *config, now func() time.Time) (*pushcert.Vendor, error) {
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
	v, err := pushcert.NewVendor(certPEM, keyPEM, chainPEM, now())
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
	provider *devidp.Provider
	ca       *applesim.CA
}

// setUpDev fills the configuration for development mode: secrets generated
// once and kept in the data folder, the embedded provider on the next port,
// and the development CA that plays Apple.
func setUpDev(cfg *config, log *slog.Logger, addr *net.TCPAddr, now func() time.Time) (*devSetup, error) {
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
	ca, err := devCA(cfg.DataDir, now)
	if err != nil {
		return nil, err
	}
	if cfg.OIDCIssuer != "" {
		// An explicitly configured provider wins; dev mode then only adds
		// the secrets, the data folder and the development CA.
		return &devSetup{provider: nil, ca: ca}, nil
	}
	providerAddr := cfg.DevProviderAddr
	if providerAddr == "" {
		port := 0
		if addr.Port != 0 {
			port = addr.Port + 1
		}
		providerAddr = net.JoinHostPort(addr.IP.String(), strconv.Itoa(port))
	}
	if !isLoopbackAddr(providerAddr) {
		return nil, fmt.Errorf("PUSHCERT_DEV_PROVIDER_ADDR (-dev-provider-addr): the development provider only listens on loopback, like 127.0.0.1:8081")
	}
	users := []devidp.User{
		{Key: "admin", Label: "Demo Admin", Email: "admin@example.com", Groups: cfg.AdminGroups[:1]},
		{Key: "viewer", Label: "Demo Viewer", Email: "viewer@example.com", Groups: firstOr(cfg.ViewerGroups, "pushcert-viewers")},
		{Key: "outsider", Label: "Demo Outsider", Email: "outsider@example.com"},
	}
	p, err := devidp.Start(log, providerAddr, cfg.DataDir, users, now)
	if err != nil {
		return nil, err
	}
	cfg.OIDCIssuer = p.Issuer()
	cfg.OIDCClientID = devidp.ClientID
	cfg.OIDCClientSecret = p.ClientSecret()
	if cfg.OIDCAudience == "" {
		cfg.OIDCAudience = devidp.ClientID
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
		if cfg.KeyEncryptionSecret == "" {
			if cfg.KeyEncryptionSecret, err = devSecret(cfg.DataDir, "dev-key-encryption-secret"); err != nil {
				return err
			}
		}
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

// healthcheck asks a running pushcert for /healthz, or with -ready for
// /readyz, and fails unless it answers 200; container images without a
// shell use it as their HEALTHCHECK.
func healthcheck(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("pushcert healthcheck", flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: pushcert healthcheck [-ready] [HOST:PORT]  (default PUSHCERT_LISTEN_ADDR, or :8080)")
		fs.PrintDefaults()
	}
	ready := fs.Bool("ready", false, "check /readyz (database reachable, provider discovered) instead of /healthz (process up)")
	if err := fs.Parse(args); err != nil {
		if isHelp(err) {
			return nil
		}
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("healthcheck: unexpected argument %q", fs.Arg(1))
	}
	addr := getenv("PUSHCERT_LISTEN_ADDR")
	if fs.NArg() == 1 {
		addr = fs.Arg(0)
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
	path := "/healthz"
	if *ready {
		path = "/readyz"
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+path, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintln(stdout, strings.TrimSpace(string(body)))
	return nil
}

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// the heap may grow to three times what is live, instead of Go's two. The
// live heap of pushcert is a few MiB, so this costs a few MiB of memory and
// saves collections, which under load took about a tenth of the CPU per
// request (docs/performance.md).
const defaultGCPercent = 200

// setGCPercent applies defaultGCPercent unless GOGC is set, which the
// runtime has then applied already.
func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// listenLoopback listens on addr and makes sure the socket is bound to a
// loopback address: the configuration check accepts the name localhost,
// which a host's resolver could map elsewhere.
func listenLoopback(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("bound to %s, which is not a loopback address", ln.Addr())
	}
	return ln, nil
}
