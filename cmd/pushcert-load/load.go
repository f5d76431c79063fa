package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// generator drives load at one URL from a process of its own, so that the
// load it makes does not share a Go runtime with what it measures.
type generator interface {
	// String names the generator for the report.
	String() string
	run(ctx context.Context, url string, headers []string, connections int, d time.Duration) (loadResult, error)
}

// wrkGenerator runs wrk (Debian's wrk package) with --latency.
type wrkGenerator struct {
	path    string
	threads int
	version string
}

func newWrk(path string, connections int) wrkGenerator {
	g := wrkGenerator{path: path, threads: min(runtime.NumCPU(), connections), version: "wrk"}
	// wrk -v prints its version and exits with status 1.
	out, _ := exec.Command(path, "-v").CombinedOutput()
	if line, _, _ := strings.Cut(string(out), "\n"); strings.HasPrefix(line, "wrk ") {
		g.version, _, _ = strings.Cut(line, " [")
	}
	return g
}

func (g wrkGenerator) String() string {
	return fmt.Sprintf("%s (%d threads)", g.version, g.threads)
}

func (g wrkGenerator) run(ctx context.Context, url string, headers []string, connections int, d time.Duration) (loadResult, error) {
	args := []string{"-t", strconv.Itoa(g.threads), "-c", strconv.Itoa(connections),
		"-d", strconv.Itoa(max(int(d.Round(time.Second)/time.Second), 1)) + "s", "--latency"}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, g.path, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	c, err := startChild(cmd)
	if err != nil {
		return loadResult{}, err
	}
	<-c.exited
	if c.err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w\n%s", c.err, out.String())
	}
	res, err := parseWrk(bytes.NewReader(out.Bytes()))
	if err != nil {
		return loadResult{}, fmt.Errorf("%w\n%s", err, out.String())
	}
	return res, nil
}

// goGenerator runs this program again in -worker mode: a small Go load
// generator, for machines without wrk.
type goGenerator struct{ self string }

func (g goGenerator) String() string { return "the Go load generator (pushcert-load -worker)" }

func (g goGenerator) run(ctx context.Context, url string, headers []string, connections int, d time.Duration) (loadResult, error) {
	args := []string{"-worker", "-url", url, "-connections", strconv.Itoa(connections), "-duration", d.String()}
	for _, h := range headers {
		args = append(args, "-header", h)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, g.self, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	c, err := startChild(cmd)
	if err != nil {
		return loadResult{}, err
	}
	<-c.exited
	if c.err != nil {
		return loadResult{}, fmt.Errorf("load worker: %w\n%s", c.err, stderr.String())
	}
	var res loadResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return loadResult{}, fmt.Errorf("load worker output: %w", err)
	}
	return res, nil
}

// runWorker is the -worker mode: connections goroutines, each with its own
// keep-alive connection, send GET url back to back for d, and the result is
// written to w as JSON. Redirects are not followed and count as errors.
func runWorker(ctx context.Context, url string, headers []string, connections int, d time.Duration, w io.Writer) error {
	if connections < 1 || d <= 0 {
		return errors.New("worker: want -connections >= 1 and a positive -duration")
	}
	tr := &http.Transport{
		MaxIdleConns:        connections,
		MaxIdleConnsPerHost: connections,
		MaxConnsPerHost:     connections,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	type tally struct {
		lat                     []time.Duration
		non2xx, sockErrs, bytes int64
	}
	tallies := make([]tally, connections)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for i := range tallies {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for _, h := range headers {
			k, v, ok := strings.Cut(h, ":")
			if !ok {
				return fmt.Errorf("worker: header %q: want Name: value", h)
			}
			req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
		}
		t := &tallies[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						t.sockErrs++
					}
					continue
				}
				n, err := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err != nil {
					if ctx.Err() == nil {
						t.sockErrs++
					}
					continue
				}
				t.lat = append(t.lat, time.Since(t0))
				t.bytes += n
				if resp.StatusCode < 200 || resp.StatusCode > 299 {
					t.non2xx++
				}
			}
		})
	}
	wg.Wait()
	res := loadResult{Elapsed: time.Since(start)}
	var all []time.Duration
	for _, t := range tallies {
		all = append(all, t.lat...)
		res.Non2xx += t.non2xx
		res.SocketErrors += t.sockErrs
		res.Bytes += t.bytes
	}
	if res.SocketErrors > 0 {
		res.SocketDetail = fmt.Sprintf("%d requests failed or timed out after 5 s", res.SocketErrors)
	}
	res.Requests = int64(len(all))
	res.P50, res.P99 = percentile(all, 50), percentile(all, 99)
	return json.NewEncoder(w).Encode(res)
}

// runCeiling is the -ceiling mode: a bare net/http server on a free
// loopback port that answers every request with size bytes. It prints its
// address on the first line of w and serves until ctx ends.
func runCeiling(ctx context.Context, size int, w io.Writer) error {
	body := bytes.Repeat([]byte("<p>pushcert</p>\n"), size/16+1)[:size]
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	if _, err := fmt.Fprintln(w, ln.Addr().String()); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}

// ceiling is the running -ceiling child.
type ceiling struct {
	*child
	url string
}

// startCeiling starts this program in -ceiling mode serving size bytes.
func startCeiling(ctx context.Context, self string, size int) (*ceiling, error) {
	// A pipe of our own rather than StdoutPipe: Wait, already running in
	// startChild, must not close it under the read.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.CommandContext(ctx, self, "-ceiling", "-size", strconv.Itoa(size))
	cmd.Stdout = w
	c, err := startChild(cmd)
	w.Close()
	if err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("ceiling server: no address: %w", err)
	}
	return &ceiling{child: c, url: "http://" + strings.TrimSpace(line) + "/"}, nil
}
