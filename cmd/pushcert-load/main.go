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
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
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

// bench runs the whole benchmark and prints the report.
func bench(ctx context.Context, o options, stdout, progress io.Writer) error {
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	self, err := os.Executable()
	if err != nil {
		return err
	}
	gen, err := pickGenerator(o.generator, self, o.connections)
	if err != nil {
		return err
	}
	rep := &report{Connections: o.connections, Duration: o.duration, Generator: gen.String(), Machine: describeMachine()}
	otherLoad := "unknown"
	if busy, err := machineBusy(time.Second); err == nil {
		otherLoad = fmt.Sprintf("%.0f%%", busy*100)
	}
	loadBefore := loadAverage()
	if o.profile != "" {
		// Made first, so that a folder that cannot be written stops the
		// benchmark before it runs rather than after.
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return fmt.Errorf("-profile: %w", err)
		}
	}

	dir, err := os.MkdirTemp("", "pushcert-load-")
	if err != nil {
		return err
	}
	if o.keep {
		defer say("kept %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	say("building pushcert")
	bin, err := buildPushcert(ctx, dir)
	if err != nil {
		return err
	}
	say("starting pushcert -dev with SQLite in %s", dir)
	srv, err := startServer(ctx, bin, dir, o.profile != "")
	if err != nil {
		return err
	}
	defer srv.stop()
	var prof *profiler
	if o.profile != "" {
		prof = &profiler{base: srv.pprofBase, dir: o.profile}
		delay, seconds := profileWindow(o.duration)
		say("profiling pushcert's CPU for %d s of its first-round and while-CSRs load runs, starting %v in, into %s", seconds, delay, o.profile)
	}
	token, err := srv.token(ctx)
	if err != nil {
		return err
	}
	cookie, err := srv.signIn(ctx)
	if err != nil {
		return err
	}
	ca, err := srv.devCA()
	if err != nil {
		return fmt.Errorf("development CA: %w", err)
	}

	// The status page and the API show a real active certificate, as in
	// production.
	csr, err := srv.generateCSR(ctx, token)
	if err != nil {
		return err
	}
	certPEM, err := issue(ca, csr, applesim.NewTopic())
	if err != nil {
		return err
	}
	if _, err := srv.upload(ctx, token, certPEM); err != nil {
		return err
	}
	topic, err := srv.activeTopic(ctx, token)
	if err != nil {
		return err
	}
	code, page, err := srv.get(ctx, "/", "Cookie", cookie)
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("status page with the session cookie: status %d, %v", code, err)
	}
	rep.PageSize = len(page)

	say("starting the ceiling server (%d bytes per answer)", len(page))
	ceil, err := startCeiling(ctx, self, len(page))
	if err != nil {
		return err
	}
	defer ceil.stop()

	m := measurer{gen: gen, connections: o.connections, duration: o.duration, say: say, prof: prof}
	for i := range o.rounds {
		if o.rounds > 1 {
			say("round %d of %d", i+1, o.rounds)
		}
		// Profiles are taken in the first round only: one per kind of run.
		statusProf, apiProf := "status", "api"
		if i > 0 {
			statusProf, apiProf = "", ""
		}
		var rd round
		if rd.Status, err = m.run(ctx, "status page GET /", srv.base+"/", []string{"Cookie: " + cookie}, srv.pid(), srv.logPath, "/", statusProf); err != nil {
			return err
		}
		if rd.API, err = m.run(ctx, "API GET", srv.base+apiPath, []string{"Authorization: Bearer " + token}, srv.pid(), srv.logPath, apiPath, apiProf); err != nil {
			return err
		}
		if rd.Ceiling, err = m.run(ctx, "ceiling (bare net/http)", ceil.url, nil, ceil.pid(), "", "", ""); err != nil {
			return err
		}
		rep.Rounds = append(rep.Rounds, rd)
	}

	say("timing %d CSR generations one by one", o.samples)
	var csrs [][]byte
	rep.CSR = sampleResult{Name: "CSR generation (POST generate…SigningRequest)"}
	for range o.samples {
		t0 := time.Now()
		der, err := srv.generateCSR(ctx, token)
		if err != nil {
			say("  %v", err)
			rep.CSR.Errors++
			continue
		}
		rep.CSR.Latencies = append(rep.CSR.Latencies, time.Since(t0))
		csrs = append(csrs, der)
	}

	say("timing %d uploads (renewals: same topic, keys from those CSRs) one by one", len(csrs))
	// Issued first, in order, so that each expires no earlier than the one
	// before it and every upload is a valid renewal; only the upload is timed.
	var certs [][]byte
	for _, der := range csrs {
		c, err := issue(ca, der, topic)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	rep.Upload = sampleResult{Name: "upload validation + store (PATCH)"}
	for _, c := range certs {
		t0 := time.Now()
		if _, err := srv.upload(ctx, token, c); err != nil {
			say("  %v", err)
			rep.Upload.Errors++
			continue
		}
		rep.Upload.Latencies = append(rep.Upload.Latencies, time.Since(t0))
	}

	rep.Concurrent, rep.ConcCSR, err = m.whileGeneratingCSRs(ctx, srv, token, cookie)
	if err != nil {
		return err
	}

	rep.Machine = append(rep.Machine,
		fmt.Sprintf("other load: %s of all CPUs were busy in the second before the benchmark started; load average %s before, %s after",
			otherLoad, loadBefore, loadAverage()))
	if err := rep.writeText(stdout); err != nil {
		return err
	}
	if o.profile != "" {
		say("CPU profiles of pushcert are in %s; read one with: go tool pprof -top %s", o.profile, filepath.Join(o.profile, "status.pprof"))
	}
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			return err
		}
		if err := rep.writeMarkdown(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

// measurer runs load against one URL at a time and measures the process
// serving it.
type measurer struct {
	gen         generator
	connections int
	duration    time.Duration
	say         func(string, ...any)
	prof        *profiler // nil without -profile
}

// run loads url for the duration and measures the serving process pid: its
// peak RSS and CPU time, and, when logPath names its request log, the
// answers outside 2xx it logged for logPath. With -profile and a profile
// name, it also saves a CPU profile of the middle of the run under that
// name.
func (m measurer) run(ctx context.Context, name, url string, headers []string, pid int, logPath, logRoute, profile string) (phaseResult, error) {
	m.say("%s: %v at %d connections", name, m.duration, m.connections)
	p := phaseResult{Name: name, ServerNon2xx: -1}
	_ = resetPeakRSS(pid) // without it, the peak covers the process's life
	cpu0, cpuErr := cpuTime(pid)
	var logStart int64
	if logPath != "" {
		if fi, err := os.Stat(logPath); err == nil {
			logStart = fi.Size()
		}
	}
	var waitProfile func() (string, error)
	if m.prof != nil && profile != "" {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel() // a failed run leaves no fetch behind
		waitProfile = m.prof.start(pctx, profile, m.duration)
	}
	start := time.Now()
	res, err := m.gen.run(ctx, url, headers, m.connections, m.duration)
	if err != nil {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	p.loadResult = res
	if cpu1, err := cpuTime(pid); err == nil && cpuErr == nil && res.Requests > 0 {
		p.CPUPerReq = (cpu1 - cpu0) / time.Duration(res.Requests)
	}
	if rss, err := peakRSS(pid); err == nil {
		p.PeakRSS = rss
	}
	// Waited for after CPU time and RSS are read, so that they cover the
	// load run alone; the profile has normally ended before the run did.
	if waitProfile != nil {
		path, err := waitProfile()
		if err != nil {
			return p, fmt.Errorf("%s: %w", name, err)
		}
		m.say("  wrote pushcert's CPU profile to %s", path)
	}
	if logPath != "" {
		// The request line is logged after the answer is written.
		time.Sleep(300 * time.Millisecond)
		f, err := os.Open(logPath)
		if err != nil {
			return p, err
		}
		defer f.Close()
		if _, err := f.Seek(logStart, io.SeekStart); err != nil {
			return p, err
		}
		sl, err := readServerLog(f, logRoute, start.Add(m.duration))
		if err != nil {
			return p, fmt.Errorf("read the request log: %w", err)
		}
		if sl.Requests > 0 {
			p.ServerNon2xx, p.ServerP99 = sl.Non2xx, percentile(sl.Durations, 99)
		} else {
			m.say("  the request log holds no request lines for %s: errors are wrk's alone", logRoute)
		}
	}
	return p, nil
}

// whileGeneratingCSRs loads the status page as run does while this process
// generates CSRs through the API one after another.
func (m measurer) whileGeneratingCSRs(ctx context.Context, srv *server, token, cookie string) (phaseResult, sampleResult, error) {
	s := sampleResult{Name: "CSR generation during the status-page load"}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cctx.Err() == nil {
			t0 := time.Now()
			_, err := srv.generateCSR(cctx, token)
			switch {
			case cctx.Err() != nil:
				return
			case err != nil:
				s.Errors++
			default:
				s.Latencies = append(s.Latencies, time.Since(t0))
			}
		}
	}()
	p, err := m.run(ctx, "status page GET / while CSRs are generated", srv.base+"/", []string{"Cookie: " + cookie}, srv.pid(), srv.logPath, "/", "status-during-csr")
	cancel()
	<-done
	return p, s, err
}
