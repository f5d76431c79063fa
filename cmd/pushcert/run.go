package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
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
	return serve(ctx, cfg, getenv, stdout, now)
}

// serve starts what cfg describes and serves until ctx ends. The parts
// stop in the reverse order they started: the server drains, the
// connection check, the deliverer and the alert checker stop, and the
// store closes last.
func serve(ctx context.Context, cfg *config, getenv func(string) string, stdout io.Writer, now func() time.Time) error {
	setGCPercent(getenv)
	// Log lines are written straight through, not buffered: a crash must
	// not lose the last requests' and audit events' lines.
	log := newLogger(cfg, stdout)
	sign, err := loadSigning(cfg, now)
	if err != nil {
		return err
	}
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	defer lns.Close()

	var devCA *applesim.CA
	if cfg.Dev {
		devCfg, dev, err := devConfig(*cfg, log, lns.app.Addr().(*net.TCPAddr), now)
		if err != nil {
			return err
		}
		defer dev.Close()
		cfg, devCA = &devCfg, dev.ca
	}

	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	logStatusCache(log, st, cfg.DatabaseURL)
	checker, err := newChecker(cfg, log, st, now)
	if err != nil {
		return err
	}
	deliverer, err := newDeliverer(cfg, log, st, getenv, now)
	if err != nil {
		return err
	}
	monitor, closeFakeAPNS, err := newMonitor(cfg, log, st, devCA, now, checker.Poke)
	if err != nil {
		return err
	}
	defer closeFakeAPNS()
	handler, err := newHandler(ctx, cfg, log, st, outbound{checker, deliverer, monitor}, sign, devCA, now)
	if err != nil {
		return err
	}
	defer startBackground(ctx, checker.Run)()
	defer startBackground(ctx, deliverer.Run)()
	defer startBackground(ctx, monitor.Run)()
	return serveUntilDone(ctx, cfg, log, stdout, lns, handler)
}

// listeners are the sockets pushcert serves: the application's, and
// pprof's when it is configured.
type listeners struct {
	app, pprof net.Listener
}

// listen opens the configured listeners.
func listen(cfg *config) (*listeners, error) {
	app, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	lns := &listeners{app: app}
	if cfg.PprofAddr != "" {
		if lns.pprof, err = listenLoopback(cfg.PprofAddr); err != nil {
			app.Close()
			return nil, fmt.Errorf("listen for pprof on %s: %w", cfg.PprofAddr, err)
		}
	}
	return lns, nil
}

// Close closes every listener; after a server's Shutdown they are closed
// already.
func (l *listeners) Close() {
	l.app.Close()
	if l.pprof != nil {
		l.pprof.Close()
	}
}

// serveUntilDone serves handler (and pprof's profiles) on lns until ctx
// ends or serving fails, then shuts down: it stops accepting at once, then
// waits for in-flight requests (an upload, say) up to the shutdown
// timeout.
func serveUntilDone(ctx context.Context, cfg *config, log *slog.Logger, stdout io.Writer, lns *listeners, handler http.Handler) error {
	srv := newHTTPServer(log, handler)
	var pprofSrv *http.Server
	if lns.pprof != nil {
		pprofSrv = startPprof(ctx, log, lns.pprof)
	}
	// The listener is open, so announcing before Serve starts is true; it
	// also means anyone who sees /healthz answer has seen the announcement.
	log.Info("pushcert listening", "addr", lns.app.Addr().String(), "base_url", cfg.BaseURL, "dev", cfg.Dev)
	if cfg.Dev {
		fmt.Fprintf(stdout, "\npushcert is running in development mode: open %s and sign in as the demo admin.\n\n", cfg.BaseURL)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(lns.app) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if pprofSrv != nil {
		stopPprof(sctx, log, pprofSrv)
	}
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", cfg.ShutdownTimeout, err)
	}
	log.Info("stopped")
	return nil
}

// newHTTPServer is the application's server, with timeouts that keep a slow
// or idle client from holding a connection.
func newHTTPServer(log *slog.Logger, handler http.Handler) *http.Server {
	return &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
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
