package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
)

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
	otherLoad := measureOtherLoad()
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
	srv, err := launchPushcert(ctx, dir, o.profile != "", say)
	if err != nil {
		return err
	}
	defer srv.stop()
	prof := newProfiler(srv, o, say)
	fx, err := newFixture(ctx, srv)
	if err != nil {
		return err
	}
	rep.PageSize = len(fx.page)

	say("starting the ceiling server (%d bytes per answer)", len(fx.page))
	ceil, err := startCeiling(ctx, self, len(fx.page))
	if err != nil {
		return err
	}
	defer ceil.stop()

	m := measurer{gen: gen, connections: o.connections, duration: o.duration, say: say, prof: prof}
	if rep.Rounds, err = m.rounds(ctx, o.rounds, srv, ceil, fx); err != nil {
		return err
	}
	var csrs [][]byte
	rep.CSR, csrs = timeCSRs(ctx, srv, fx.token, o.samples, say)
	if rep.Upload, err = timeUploads(ctx, srv, fx, csrs, say); err != nil {
		return err
	}
	rep.Concurrent, rep.ConcCSR, err = m.whileGeneratingCSRs(ctx, srv, fx.token, fx.cookie)
	if err != nil {
		return err
	}

	rep.Machine = append(rep.Machine,
		fmt.Sprintf("other load: %s of all CPUs were busy in the second before the benchmark started; load average %s before, %s after",
			otherLoad, loadBefore, loadAverage()))
	return writeReport(rep, o, stdout, say)
}

// measureOtherLoad returns how busy all CPUs were over the next second, as
// a percentage, or "unknown": the load that was there before the benchmark.
func measureOtherLoad() string {
	otherLoad := "unknown"
	if busy, err := machineBusy(time.Second); err == nil {
		otherLoad = fmt.Sprintf("%.0f%%", busy*100)
	}
	return otherLoad
}

// launchPushcert builds pushcert into dir and starts it with -dev and its
// SQLite database in dir; pprof turns on its pprof listener.
func launchPushcert(ctx context.Context, dir string, pprof bool, say func(string, ...any)) (*server, error) {
	say("building pushcert")
	bin, err := buildPushcert(ctx, dir)
	if err != nil {
		return nil, err
	}
	say("starting pushcert -dev with SQLite in %s", dir)
	return startServer(ctx, bin, dir, pprof)
}

// newProfiler returns the profiler of srv's CPU into the -profile folder,
// or nil without -profile.
func newProfiler(srv *server, o options, say func(string, ...any)) *profiler {
	if o.profile == "" {
		return nil
	}
	prof := &profiler{base: srv.pprofBase, dir: o.profile}
	delay, seconds := profileWindow(o.duration)
	say("profiling pushcert's CPU for %d s of its first-round and while-CSRs load runs, starting %v in, into %s", seconds, delay, o.profile)
	return prof
}

// fixture is what the benchmark's requests need from a started pushcert.
type fixture struct {
	token  string       // the demo admin's bearer token
	cookie string       // the demo admin's session cookie
	ca     *applesim.CA // the development CA, which issues the certificates
	topic  string       // the active certificate's topic
	page   []byte       // the status page, as the demo admin sees it
}

// newFixture signs the demo admin in and makes a certificate active.
func newFixture(ctx context.Context, srv *server) (fixture, error) {
	token, err := srv.token(ctx)
	if err != nil {
		return fixture{}, err
	}
	cookie, err := srv.signIn(ctx)
	if err != nil {
		return fixture{}, err
	}
	ca, err := srv.devCA()
	if err != nil {
		return fixture{}, fmt.Errorf("development CA: %w", err)
	}

	// The status page and the API show a real active certificate, as in
	// production.
	csr, err := srv.generateCSR(ctx, token)
	if err != nil {
		return fixture{}, err
	}
	certPEM, err := issue(ca, csr, applesim.NewTopic())
	if err != nil {
		return fixture{}, err
	}
	if _, err := srv.upload(ctx, token, certPEM); err != nil {
		return fixture{}, err
	}
	topic, err := srv.activeTopic(ctx, token)
	if err != nil {
		return fixture{}, err
	}
	code, page, err := srv.get(ctx, "/", "Cookie", cookie)
	if err != nil || code != http.StatusOK {
		return fixture{}, fmt.Errorf("status page with the session cookie: status %d, %v", code, err)
	}
	return fixture{token: token, cookie: cookie, ca: ca, topic: topic, page: page}, nil
}

// timeCSRs times n CSR generations through the API one by one and returns
// the timings and the CSRs generated.
func timeCSRs(ctx context.Context, srv *server, token string, n int, say func(string, ...any)) (sampleResult, [][]byte) {
	say("timing %d CSR generations one by one", n)
	var csrs [][]byte
	s := sampleResult{Name: "CSR generation (POST generate…SigningRequest)"}
	for range n {
		t0 := time.Now()
		der, err := srv.generateCSR(ctx, token)
		if err != nil {
			say("  %v", err)
			s.Errors++
			continue
		}
		s.Latencies = append(s.Latencies, time.Since(t0))
		csrs = append(csrs, der)
	}
	return s, csrs
}

// timeUploads times, one by one, the upload of a certificate for each of
// csrs: renewals of the active certificate, with its topic.
func timeUploads(ctx context.Context, srv *server, fx fixture, csrs [][]byte, say func(string, ...any)) (sampleResult, error) {
	say("timing %d uploads (renewals: same topic, keys from those CSRs) one by one", len(csrs))
	// Issued first, in order, so that each expires no earlier than the one
	// before it and every upload is a valid renewal; only the upload is timed.
	var certs [][]byte
	for _, der := range csrs {
		c, err := issue(fx.ca, der, fx.topic)
		if err != nil {
			return sampleResult{}, err
		}
		certs = append(certs, c)
	}
	s := sampleResult{Name: "upload validation + store (PATCH)"}
	for _, c := range certs {
		t0 := time.Now()
		if _, err := srv.upload(ctx, fx.token, c); err != nil {
			say("  %v", err)
			s.Errors++
			continue
		}
		s.Latencies = append(s.Latencies, time.Since(t0))
	}
	return s, nil
}

// writeReport prints the report to stdout and, with -out, writes it as
// Markdown to that file.
func writeReport(rep *report, o options, stdout io.Writer, say func(string, ...any)) error {
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
