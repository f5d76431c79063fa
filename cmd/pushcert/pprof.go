package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

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

// startPprof serves the profiles on ln in the background.
func startPprof(ctx context.Context, log *slog.Logger, ln net.Listener) *http.Server {
	srv := newPprofServer(ctx, log)
	log.Info("pprof listening", "addr", ln.Addr().String())
	go func() {
		// Profiles are a diagnostic: their listener failing is logged
		// and the console goes on serving.
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof stopped serving", "err", err)
		}
	}()
	return srv
}

// stopPprof shuts the profiles' server down. Its requests already ended
// with the serving context, so this is quick; a profile is no one's work in
// flight, so cutting it off is not a failure.
func stopPprof(ctx context.Context, log *slog.Logger, srv *http.Server) {
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		log.Warn("pprof requests cut off at shutdown", "err", err)
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
