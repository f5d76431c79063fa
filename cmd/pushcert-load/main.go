// Command pushcert-load is pushcert's load benchmark, a program rather than
// a test: `go test ./...` never runs it. It builds pushcert, starts it with
// -dev on loopback with SQLite in a temporary folder, signs the demo admin in
// through the real OpenID Connect flow, and drives load from a second
// process (wrk when it is on PATH, else its own Go load generator in a child
// process) against
//
//  1. the authenticated status page, GET /,
//  2. the JSON API's GET of the resource, with a bearer token,
//  3. a bare net/http handler in a child process that answers with as many
//     bytes as the status page: the ceiling on this machine,
//
// then times CSR generation and certificate uploads through the API one by
// one, and the status page again while CSRs are being generated. It prints
// a table and PASS or MISS for each target in docs/performance.md. With
// -profile it also saves a CPU profile of pushcert during the first round's
// status page and API runs and the status-page-while-CSRs run.
//
// Usage:
//
//	go run ./cmd/pushcert-load [-duration 10s] [-connections 64] [-rounds 3] [-n 30] [-generator auto|wrk|go] [-out report.md] [-profile DIR]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "pushcert-load:", err)
		os.Exit(1)
	}
}

// options are the benchmark's settings.
type options struct {
	duration    time.Duration
	connections int
	rounds      int
	samples     int
	generator   string
	out         string
	keep        bool
	profile     string // folder for CPU profiles of pushcert; "" for none
}

// headerList collects a repeated -header flag.
type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

// run parses the flags and runs the benchmark, or one of the internal modes
// the benchmark starts this program in: the Go load generator (-worker) and
// the ceiling server (-ceiling).
func run(ctx context.Context, args []string, stdout, progress io.Writer) error {
	fs := flag.NewFlagSet("pushcert-load", flag.ContinueOnError)
	fs.SetOutput(progress)
	var o options
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long each load run lasts")
	fs.IntVar(&o.connections, "connections", 64, "concurrent connections of each load run")
	fs.IntVar(&o.rounds, "rounds", 3, "how many times to load the status page, the API and the ceiling in turn; targets use the medians")
	fs.IntVar(&o.samples, "n", 30, "how many CSR generations and uploads to time one by one")
	fs.StringVar(&o.generator, "generator", "auto", "load generator: wrk, go (this program's own), or auto (wrk when on PATH)")
	fs.StringVar(&o.out, "out", "", "also write the report as Markdown to this file")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary folder with pushcert's data and request log")
	fs.StringVar(&o.profile, "profile", "", "write CPU profiles of pushcert to this folder: the first round's status page and API runs and the status-page-while-CSRs run (status.pprof, api.pprof, status-during-csr.pprof)")
	worker := fs.Bool("worker", false, "internal: be the Go load generator for -url")
	url := fs.String("url", "", "internal: the URL -worker loads")
	var headers headerList
	fs.Var(&headers, "header", "internal: a request header of -worker, \"Name: value\" (repeatable)")
	ceil := fs.Bool("ceiling", false, "internal: serve the ceiling handler on a free loopback port")
	size := fs.Int("size", 0, "internal: the ceiling's response size in bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *worker:
		return runWorker(ctx, *url, headers, o.connections, o.duration, stdout)
	case *ceil:
		return runCeiling(ctx, *size, stdout)
	}
	if o.connections < 1 || o.duration < time.Second || o.samples < 1 || o.rounds < 1 {
		return errors.New("want -connections >= 1, -duration >= 1s, -rounds >= 1 and -n >= 1")
	}
	return bench(ctx, o, stdout, progress)
}

// pickGenerator chooses the load generator.
func pickGenerator(name, self string, connections int) (generator, error) {
	switch name {
	case "go":
		return goGenerator{self: self}, nil
	case "wrk", "auto":
		path, err := exec.LookPath("wrk")
		if err == nil {
			return newWrk(path, connections), nil
		}
		if name == "wrk" {
			return nil, errors.New("wrk is not on PATH (apt-get install wrk), or use -generator go")
		}
		return goGenerator{self: self}, nil
	default:
		return nil, fmt.Errorf("-generator %q: want auto, wrk or go", name)
	}
}
