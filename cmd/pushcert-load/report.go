package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// loadResult is what one load run against one URL measured.
type loadResult struct {
	Requests     int64         `json:"requests"`
	Elapsed      time.Duration `json:"elapsed_ns"`
	P50          time.Duration `json:"p50_ns"`
	P99          time.Duration `json:"p99_ns"`
	Non2xx       int64         `json:"non2xx"`        // answers outside 200-299, as the generator saw them
	SocketErrors int64         `json:"socket_errors"` // connect, read, write errors and timeouts
	SocketDetail string        `json:"socket_detail"` // the breakdown, as the generator words it
	Bytes        int64         `json:"bytes"`         // response bytes read, headers included where the generator counts them
}

// RPS is requests per second over the run.
func (r loadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// phaseResult is a load run with what was measured on the serving process.
type phaseResult struct {
	Name string
	loadResult
	ServerNon2xx int64         // non-2xx answers in the server's request log (-1: not known)
	ServerP99    time.Duration // 99th percentile of the time requests took inside the server (0: not known)
	PeakRSS      int64         // bytes, VmHWM of the serving process during the run (0: not known)
	CPUPerReq    time.Duration
}

// Errors is every failed request: socket errors plus non-2xx answers, taking
// the server's own count when it has one, since wrk does not count a 3xx
// (such as a redirect to the sign-in page) as an error.
func (p phaseResult) Errors() int64 {
	return p.SocketErrors + max(p.Non2xx, p.ServerNon2xx)
}

// errorText breaks Errors down by where they were seen.
func (p phaseResult) errorText() string {
	server := "not known"
	if p.ServerNon2xx >= 0 {
		server = strconv.FormatInt(p.ServerNon2xx, 10)
	}
	detail := ""
	if p.SocketDetail != "" {
		detail = " (" + p.SocketDetail + ")"
	}
	return fmt.Sprintf("%d socket errors%s, %d non-2xx seen by the load generator, %s logged by the server",
		p.SocketErrors, detail, p.Non2xx, server)
}

// sampleResult is a series of single requests timed one by one.
type sampleResult struct {
	Name      string
	Latencies []time.Duration
	Errors    int
}

// Median is the 50th percentile of the latencies.
func (s sampleResult) Median() time.Duration { return percentile(s.Latencies, 50) }

// P99 is the 99th percentile of the latencies.
func (s sampleResult) P99() time.Duration { return percentile(s.Latencies, 99) }

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. ds need not be sorted; it is not changed.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// parseWrk reads the output of wrk --latency.
func parseWrk(r io.Reader) (loadResult, error) {
	var res loadResult
	var sawRequests, sawP50, sawP99 bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "50%":
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return res, err
			}
			res.P50, sawP50 = d, true
		case len(f) == 2 && f[0] == "99%":
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return res, err
			}
			res.P99, sawP99 = d, true
		case len(f) >= 6 && f[1] == "requests" && f[2] == "in":
			// "201234 requests in 10.00s, 1.60GB read"
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return res, fmt.Errorf("wrk request count %q: %w", f[0], err)
			}
			d, err := parseWrkDuration(strings.TrimSuffix(f[3], ","))
			if err != nil {
				return res, err
			}
			b, err := parseWrkBytes(f[4])
			if err != nil {
				return res, err
			}
			res.Requests, res.Elapsed, res.Bytes, sawRequests = n, d, b, true
		case len(f) >= 2 && f[0] == "Socket" && f[1] == "errors:":
			// "Socket errors: connect 0, read 0, write 0, timeout 12"
			res.SocketDetail = strings.Join(f[2:], " ")
			for i := 2; i+1 < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i+1], ","), 10, 64)
				if err != nil {
					return res, fmt.Errorf("wrk socket errors %q: %w", sc.Text(), err)
				}
				res.SocketErrors += n
			}
		case len(f) == 5 && f[0] == "Non-2xx":
			// "Non-2xx or 3xx responses: 5"
			n, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return res, fmt.Errorf("wrk non-2xx count %q: %w", f[4], err)
			}
			res.Non2xx = n
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if !sawRequests || !sawP50 || !sawP99 {
		return res, errors.New("wrk output lacks the request count or the latency distribution (run it with --latency)")
	}
	return res, nil
}

// parseWrkDuration reads wrk's durations: 812.00us, 2.80ms, 1.02s, 1.50m, 2.00h.
func parseWrkDuration(s string) (time.Duration, error) {
	units := []struct {
		suffix string
		unit   time.Duration
	}{{"us", time.Microsecond}, {"ms", time.Millisecond}, {"s", time.Second}, {"m", time.Minute}, {"h", time.Hour}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				break
			}
			return time.Duration(v * float64(u.unit)), nil
		}
	}
	return 0, fmt.Errorf("wrk duration %q: want a number with us, ms, s, m or h", s)
}

// parseWrkBytes reads wrk's sizes: 512.00B, 1.60KB, 1.60MB, 1.60GB (powers of 1024).
func parseWrkBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		unit   float64
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}, {"TB", 1 << 40}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			v, err := strconv.ParseFloat(num, 64)
			if err != nil || v < 0 {
				break
			}
			return int64(v * u.unit), nil
		}
	}
	return 0, fmt.Errorf("wrk size %q: want a number with B, KB, MB, GB or TB", s)
}

// serverLog is what pushcert's request log says about one run.
type serverLog struct {
	Requests  int64
	Non2xx    int64
	Durations []time.Duration // time each request took inside pushcert
}

// readServerLog reads pushcert's JSON request log: the requests for path
// logged before cutoff, those of them answered outside 200-299, and how long
// each took inside the server. Requests still running when the load
// generator stops are cut off by it and logged afterwards as failures no
// client saw; cutoff, the end of the run, leaves them out. Other lines are
// skipped.
func readServerLog(r io.Reader, path string, cutoff time.Time) (serverLog, error) {
	var sl serverLog
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"msg":"request"`)) {
			continue
		}
		var l struct {
			Time       time.Time `json:"time"`
			Msg        string    `json:"msg"`
			Path       string    `json:"path"`
			Status     int       `json:"status"`
			DurationMS float64   `json:"duration_ms"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "request" || l.Path != path || !l.Time.Before(cutoff) {
			continue
		}
		sl.Requests++
		if l.Status < 200 || l.Status > 299 {
			sl.Non2xx++
		}
		sl.Durations = append(sl.Durations, time.Duration(l.DurationMS*float64(time.Millisecond)))
	}
	return sl, sc.Err()
}

// Targets of the benchmark (issue 5), on the reference 2-core machine.
const (
	targetStatusRatio = 0.50
	targetStatusP99   = 10 * time.Millisecond
	targetAPIRatio    = 0.60
	targetPeakRSS     = 50_000_000 // bytes
	targetCSRMedian   = 150 * time.Millisecond
	targetUploadMed   = 20 * time.Millisecond
)

// report is everything one benchmark run measured.
type report struct {
	Machine     []string // lines describing the machine and the run
	Connections int
	Duration    time.Duration
	Generator   string
	PageSize    int
	Rounds      []round      // the status page, API and ceiling runs, in order
	Concurrent  phaseResult  // the status page while CSRs are generated
	CSR         sampleResult // sequential CSR generation
	Upload      sampleResult // sequential renewals
	ConcCSR     sampleResult // the CSRs generated during Concurrent
}

// round is the status page, the API GET and the ceiling loaded one after
// the other. Each round's ratios compare runs made seconds apart; on a
// machine shared with other work the median over rounds is what the
// targets are checked against, so that one run slowed by something else
// does not decide the result either way.
type round struct {
	Status, API, Ceiling phaseResult
}

// statusRatio and apiRatio are the medians over the rounds of each
// round's ratio to its ceiling.
func (r *report) statusRatio() float64 {
	return r.median(func(rd round) float64 { return ratio(rd.Status.RPS(), rd.Ceiling.RPS()) })
}

func (r *report) apiRatio() float64 {
	return r.median(func(rd round) float64 { return ratio(rd.API.RPS(), rd.Ceiling.RPS()) })
}

// statusP99 and ceilingP99 are the medians over the rounds of the p99s.
func (r *report) statusP99() time.Duration {
	return time.Duration(r.median(func(rd round) float64 { return float64(rd.Status.P99) }))
}

func (r *report) ceilingP99() time.Duration {
	return time.Duration(r.median(func(rd round) float64 { return float64(rd.Ceiling.P99) }))
}

// median returns the median of f over the rounds (the mean of the middle
// two for an even count), or 0 without rounds.
func (r *report) median(f func(round) float64) float64 {
	if len(r.Rounds) == 0 {
		return 0
	}
	vs := make([]float64, len(r.Rounds))
	for i, rd := range r.Rounds {
		vs[i] = f(rd)
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// check is one target, met or missed.
type check struct {
	Name string
	Got  string
	Pass bool
}

// checks compares the report with the targets.
func (r *report) checks() []check {
	statusRatio, apiRatio, statusP99 := r.statusRatio(), r.apiRatio(), r.statusP99()
	var errs, rss int64
	for _, p := range r.phases() {
		errs += p.Errors()
	}
	for _, rd := range r.Rounds {
		rss = max(rss, rd.Status.PeakRSS, rd.API.PeakRSS)
	}
	rss = max(rss, r.Concurrent.PeakRSS)
	errs += int64(r.CSR.Errors + r.Upload.Errors + r.ConcCSR.Errors)
	of := ""
	if len(r.Rounds) > 1 {
		of = fmt.Sprintf(", median of %d rounds", len(r.Rounds))
	}
	return []check{
		{"status page req/s ≥ 50% of the ceiling", pct(statusRatio) + of, len(r.Rounds) > 0 && statusRatio >= targetStatusRatio},
		{"status page p99 ≤ 10 ms", ms(statusP99) + " (the ceiling's own: " + ms(r.ceilingP99()) + ")" + of, statusP99 > 0 && statusP99 <= targetStatusP99},
		{"API GET req/s ≥ 60% of the ceiling", pct(apiRatio) + of, len(r.Rounds) > 0 && apiRatio >= targetAPIRatio},
		{"zero errors", strconv.FormatInt(errs, 10), errs == 0},
		{"pushcert peak RSS ≤ 50 MB", mb(rss), rss > 0 && rss <= targetPeakRSS},
		{"CSR generation median ≤ 150 ms", ms(r.CSR.Median()), len(r.CSR.Latencies) > 0 && r.CSR.Median() <= targetCSRMedian},
		{"upload median ≤ 20 ms", ms(r.Upload.Median()), len(r.Upload.Latencies) > 0 && r.Upload.Median() <= targetUploadMed},
	}
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// ms formats a latency in milliseconds with a precision that suits it.
func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.0f ms", v)
	}
}

func mb(b int64) string {
	if b <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}

func serverP99Text(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	return ms(d)
}

func cpuText(d time.Duration) string {
	if d <= 0 {
		return "?"
	}
	return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
}

// writeText prints the report as aligned plain-text tables.
func (r *report) writeText(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "pushcert load benchmark: %d connections, %v per run, load from %s\n", r.Connections, r.Duration, r.Generator)
	for _, m := range r.Machine {
		fmt.Fprintln(bw, "  "+m)
	}
	fmt.Fprintf(bw, "status page size: %d bytes (the ceiling serves as many)\n\n", r.PageSize)
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\treq/s\tp50\tp99\terrors\tpeak RSS\tCPU/req\tserver p99\t")
	for _, p := range r.phases() {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%s\t%s\t%s\t\n", p.Name, p.RPS(), ms(p.P50), ms(p.P99), p.Errors(), mb(p.PeakRSS), cpuText(p.CPUPerReq), serverP99Text(p.ServerP99))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(bw)
	for _, line := range r.ratioLines() {
		fmt.Fprintln(bw, line)
	}
	for _, p := range r.phases() {
		if p.Errors() > 0 {
			fmt.Fprintf(bw, "errors of %s: %s\n", p.Name, p.errorText())
		}
	}
	for _, s := range r.samples() {
		fmt.Fprintf(bw, "%s: median %s, p99 %s, %d errors (N=%d)\n", s.Name, ms(s.Median()), ms(s.P99()), s.Errors, len(s.Latencies))
	}
	fmt.Fprintln(bw, "\ntargets:")
	for _, c := range r.checks() {
		fmt.Fprintf(bw, "  %-4s %s: %s\n", passText(c.Pass), c.Name, c.Got)
	}
	return bw.Flush()
}

// writeMarkdown writes the report as Markdown, for docs/performance.md.
func (r *report) writeMarkdown(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d connections, %v per run, load from %s; status page %d bytes.\n\n", r.Connections, r.Duration, r.Generator, r.PageSize)
	for _, m := range r.Machine {
		fmt.Fprintf(bw, "- %s\n", m)
	}
	fmt.Fprintln(bw, "\n| run | req/s | p50 | p99 | errors | peak RSS | CPU/req | server p99 |")
	fmt.Fprintln(bw, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range r.phases() {
		fmt.Fprintf(bw, "| %s | %.0f | %s | %s | %d | %s | %s | %s |\n", p.Name, p.RPS(), ms(p.P50), ms(p.P99), p.Errors(), mb(p.PeakRSS), cpuText(p.CPUPerReq), serverP99Text(p.ServerP99))
	}
	fmt.Fprintln(bw)
	for _, line := range r.ratioLines() {
		fmt.Fprintf(bw, "%s.\n\n", line)
	}
	for _, p := range r.phases() {
		if p.Errors() > 0 {
			fmt.Fprintf(bw, "Errors of %s: %s.\n\n", p.Name, p.errorText())
		}
	}
	fmt.Fprintln(bw, "| sequential API calls | N | median | p99 | errors |")
	fmt.Fprintln(bw, "|---|---:|---:|---:|---:|")
	for _, s := range r.samples() {
		fmt.Fprintf(bw, "| %s | %d | %s | %s | %d |\n", s.Name, len(s.Latencies), ms(s.Median()), ms(s.P99()), s.Errors)
	}
	fmt.Fprintln(bw, "\n| target | measured | result |")
	fmt.Fprintln(bw, "|---|---:|---|")
	for _, c := range r.checks() {
		fmt.Fprintf(bw, "| %s | %s | %s |\n", c.Name, c.Got, passText(c.Pass))
	}
	return bw.Flush()
}

// phases lists every load run, each round's named by its round when there
// are several.
func (r *report) phases() []phaseResult {
	var ps []phaseResult
	for i, rd := range r.Rounds {
		for _, p := range []phaseResult{rd.Status, rd.API, rd.Ceiling} {
			if len(r.Rounds) > 1 {
				p.Name = fmt.Sprintf("%d: %s", i+1, p.Name)
			}
			ps = append(ps, p)
		}
	}
	return append(ps, r.Concurrent)
}

// ratioLines says the ratios to the ceiling: of each round, and their
// medians when there are several rounds.
func (r *report) ratioLines() []string {
	var lines []string
	for i, rd := range r.Rounds {
		prefix := "ratios"
		if len(r.Rounds) > 1 {
			prefix = fmt.Sprintf("round %d ratios", i+1)
		}
		lines = append(lines, fmt.Sprintf("%s: status/ceiling %s, API/ceiling %s", prefix,
			pct(ratio(rd.Status.RPS(), rd.Ceiling.RPS())), pct(ratio(rd.API.RPS(), rd.Ceiling.RPS()))))
	}
	if len(r.Rounds) > 1 {
		lines = append(lines, fmt.Sprintf("median ratios of %d rounds: status/ceiling %s, API/ceiling %s",
			len(r.Rounds), pct(r.statusRatio()), pct(r.apiRatio())))
	}
	return lines
}

func (r *report) samples() []sampleResult {
	return []sampleResult{r.CSR, r.Upload, r.ConcCSR}
}

func passText(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
