package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

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

// rounds loads the status page, the API and the ceiling in turn, n times.
func (m measurer) rounds(ctx context.Context, n int, srv *server, ceil *ceiling, fx fixture) ([]round, error) {
	var rounds []round
	for i := range n {
		if n > 1 {
			m.say("round %d of %d", i+1, n)
		}
		// Profiles are taken in the first round only: one per kind of run.
		statusProf, apiProf := "status", "api"
		if i > 0 {
			statusProf, apiProf = "", ""
		}
		var rd round
		var err error
		if rd.Status, err = m.run(ctx, "status page GET /", srv.base+"/", []string{"Cookie: " + fx.cookie}, srv.pid(), srv.logPath, "/", statusProf); err != nil {
			return nil, err
		}
		if rd.API, err = m.run(ctx, "API GET", srv.base+apiPath, []string{"Authorization: Bearer " + fx.token}, srv.pid(), srv.logPath, apiPath, apiProf); err != nil {
			return nil, err
		}
		if rd.Ceiling, err = m.run(ctx, "ceiling (bare net/http)", ceil.url, nil, ceil.pid(), "", "", ""); err != nil {
			return nil, err
		}
		rounds = append(rounds, rd)
	}
	return rounds, nil
}
