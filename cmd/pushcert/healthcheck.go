package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

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
	return probe(ctx, "http://"+net.JoinHostPort(host, port)+path, path, stdout)
}

// probe gets url and prints its answer, or fails with it unless it is 200.
func probe(ctx context.Context, url, path string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
