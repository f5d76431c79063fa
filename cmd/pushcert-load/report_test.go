package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// These tests cover the benchmark's arithmetic and parsing only; the
// benchmark itself is a program (go run ./cmd/pushcert-load), never a test.

const wrkClean = `Running 10s test @ http://127.0.0.1:43893/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   396.66us  780.70us  11.10ms   92.85%
    Req/Sec    18.70k     2.68k   21.91k    55.00%
  Latency Distribution
     50%  161.00us
     75%  344.00us
     90%    0.86ms
     99%    3.86ms
  372890 requests in 10.00s, 1.50GB read
Requests/sec:  37289.00
Transfer/sec:    153.60MB`

const wrkErrors = `Running 10s test @ http://127.0.0.1:8080/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.91ms   30.10ms   1.02s    91.00%
    Req/Sec     1.40k   200.00     1.90k    70.00%
  Latency Distribution
     50%   12.50ms
     75%   20.00ms
     90%   45.00ms
     99%    1.02s
  27470 requests in 10.01s, 150.00MB read
  Socket errors: connect 0, read 3, write 1, timeout 12
  Non-2xx or 3xx responses: 5
Requests/sec:   2744.26
Transfer/sec:     14.99MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name string
		out  string
		want loadResult
	}{
		{"clean run", wrkClean, loadResult{
			Requests: 372890, Elapsed: 10 * time.Second, P50: 161 * time.Microsecond, P99: 3860 * time.Microsecond,
			Bytes: int64(1.5 * (1 << 30)),
		}},
		{"errors", wrkErrors, loadResult{
			Requests: 27470, Elapsed: 10010 * time.Millisecond, P50: 12500 * time.Microsecond, P99: 1020 * time.Millisecond,
			Non2xx: 5, SocketErrors: 16, SocketDetail: "connect 0, read 3, write 1, timeout 12", Bytes: 150 << 20,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(strings.NewReader(tt.out))
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkRefusesIncompleteOutput(t *testing.T) {
	for _, out := range []string{
		"",
		"unable to connect to 127.0.0.1:1 Connection refused",
		"  372890 requests in 10.00s, 1.50GB read\nRequests/sec:  37289.00\n", // run without --latency
		strings.Replace(wrkClean, "161.00us", "161.00xs", 1),
	} {
		if got, err := parseWrk(strings.NewReader(out)); err == nil {
			t.Errorf("parseWrk(%.40q): got %+v, want an error", out, got)
		}
	}
}

func TestParseWrkUnits(t *testing.T) {
	durations := []struct {
		in   string
		want time.Duration
	}{
		{"812.00us", 812 * time.Microsecond},
		{"2.80ms", 2800 * time.Microsecond},
		{"1.02s", 1020 * time.Millisecond},
		{"1.50m", 90 * time.Second},
		{"2.00h", 2 * time.Hour},
	}
	for _, d := range durations {
		if got, err := parseWrkDuration(d.in); err != nil || got != d.want {
			t.Errorf("parseWrkDuration(%q): got %v, %v, want %v", d.in, got, err, d.want)
		}
	}
	for _, bad := range []string{"", "ms", "1.0", "-1ms", "1.0xs"} {
		if got, err := parseWrkDuration(bad); err == nil {
			t.Errorf("parseWrkDuration(%q): got %v, want an error", bad, got)
		}
	}
	sizes := []struct {
		in   string
		want int64
	}{
		{"512.00B", 512}, {"1.50KB", 1536}, {"2.00MB", 2 << 20}, {"1.00GB", 1 << 30},
	}
	for _, s := range sizes {
		if got, err := parseWrkBytes(s.in); err != nil || got != s.want {
			t.Errorf("parseWrkBytes(%q): got %d, %v, want %d", s.in, got, err, s.want)
		}
	}
	if got, err := parseWrkBytes("12XB"); err == nil {
		t.Errorf("parseWrkBytes(12XB): got %d, want an error", got)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		var ds []time.Duration
		for _, n := range ns {
			ds = append(ds, time.Duration(n)*time.Millisecond)
		}
		return ds
	}
	thirty := make([]time.Duration, 30)
	for i := range thirty {
		thirty[i] = time.Duration(30-i) * time.Millisecond // 30 ms down to 1 ms
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 30 is the largest", thirty, 99, 30 * time.Millisecond},
		{"p50 of 30", thirty, 50, 15 * time.Millisecond},
		{"p100", ms(1, 9, 4), 100, 9 * time.Millisecond},
		{"p1 of 30 is the smallest", thirty, 1, time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]time.Duration(nil), tt.ds...)
			if got := percentile(tt.ds, tt.p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			for i := range in {
				if in[i] != tt.ds[i] {
					t.Fatalf("percentile reordered its input")
				}
			}
		})
	}
}

func TestRatioAndRPS(t *testing.T) {
	if got := ratio(1500, 3000); got != 0.5 {
		t.Errorf("ratio(1500, 3000): got %v, want 0.5", got)
	}
	if got := ratio(1500, 0); got != 0 {
		t.Errorf("ratio(1500, 0): got %v, want 0", got)
	}
	r := loadResult{Requests: 25000, Elapsed: 10 * time.Second}
	if got := r.RPS(); got != 2500 {
		t.Errorf("RPS: got %v, want 2500", got)
	}
	if got := (loadResult{Requests: 5}).RPS(); got != 0 {
		t.Errorf("RPS without elapsed time: got %v, want 0", got)
	}
}

func TestPhaseErrors(t *testing.T) {
	tests := []struct {
		name string
		p    phaseResult
		want int64
	}{
		{"clean", phaseResult{ServerNon2xx: 0}, 0},
		{"socket errors and wrk's non-2xx, no server count", phaseResult{loadResult: loadResult{SocketErrors: 3, Non2xx: 2}, ServerNon2xx: -1}, 5},
		{"redirects only the server saw", phaseResult{loadResult: loadResult{SocketErrors: 1, Non2xx: 0}, ServerNon2xx: 7}, 8},
		{"both counted the same answers", phaseResult{loadResult: loadResult{Non2xx: 4}, ServerNon2xx: 4}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Errors(); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReadServerLog(t *testing.T) {
	log := `{"time":"2026-03-02T09:00:00.5Z","level":"INFO","msg":"pushcert listening","addr":"127.0.0.1:1"}
{"time":"2026-03-02T09:00:01Z","level":"INFO","msg":"request","method":"GET","path":"/","status":200,"duration_ms":1.5}
{"time":"2026-03-02T09:00:02Z","level":"INFO","msg":"request","method":"GET","path":"/","status":303,"duration_ms":0.25}
{"time":"2026-03-02T09:00:03Z","level":"INFO","msg":"request","method":"GET","path":"/v1.0/x","status":500,"duration_ms":9}
{"time":"2026-03-02T09:00:04Z","level":"INFO","msg":"request","method":"GET","path":"/","status":204,"duration_ms":12}
not json at all "msg":"request"
{"time":"2026-03-02T09:00:10Z","level":"INFO","msg":"request","method":"GET","path":"/","status":500,"duration_ms":30}
`
	cutoff := time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)
	sl, err := readServerLog(strings.NewReader(log), "/", cutoff)
	if err != nil || sl.Requests != 3 || sl.Non2xx != 1 {
		t.Errorf("path /: got %d requests, %d non-2xx, %v; want 3, 1 (the 500 at the cutoff is left out)", sl.Requests, sl.Non2xx, err)
	}
	if got, want := percentile(sl.Durations, 99), 12*time.Millisecond; got != want {
		t.Errorf("path /: got server p99 %v, want %v", got, want)
	}
	sl, err = readServerLog(strings.NewReader(log), "/v1.0/x", cutoff)
	if err != nil || sl.Requests != 1 || sl.Non2xx != 1 {
		t.Errorf("path /v1.0/x: got %d, %d, %v; want 1, 1", sl.Requests, sl.Non2xx, err)
	}
}

func TestParseVmHWM(t *testing.T) {
	status := "Name:\tpushcert\nVmPeak:\t 1262080 kB\nVmHWM:\t   32412 kB\nVmRSS:\t   30000 kB\n"
	if got, err := parseVmHWM([]byte(status)); err != nil || got != 32412<<10 {
		t.Errorf("got %d, %v, want %d", got, err, 32412<<10)
	}
	if _, err := parseVmHWM([]byte("Name:\tx\n")); err == nil {
		t.Error("no VmHWM line: got no error, want one")
	}
}

func TestChecks(t *testing.T) {
	good := report{
		Rounds: []round{{
			Status:  phaseResult{loadResult: loadResult{Requests: 6000, Elapsed: time.Second, P99: 9 * time.Millisecond}, PeakRSS: 30e6},
			API:     phaseResult{loadResult: loadResult{Requests: 7000, Elapsed: time.Second}, PeakRSS: 31e6},
			Ceiling: phaseResult{loadResult: loadResult{Requests: 10000, Elapsed: time.Second}},
		}},
		CSR:    sampleResult{Latencies: []time.Duration{100 * time.Millisecond}},
		Upload: sampleResult{Latencies: []time.Duration{5 * time.Millisecond}},
	}
	for _, c := range good.checks() {
		if !c.Pass {
			t.Errorf("good report: %s: got MISS (%s), want PASS", c.Name, c.Got)
		}
	}
	bad := good
	bad.Rounds = []round{good.Rounds[0]}
	rd := &bad.Rounds[0]
	rd.Status.Requests = 4999 // 49.99% of the ceiling
	rd.API.Requests = 5999
	rd.Status.P99 = 11 * time.Millisecond
	bad.Concurrent.SocketErrors = 1
	rd.API.PeakRSS = 51e6
	bad.CSR.Latencies = []time.Duration{151 * time.Millisecond}
	bad.Upload.Latencies = []time.Duration{21 * time.Millisecond}
	for _, c := range bad.checks() {
		if c.Pass {
			t.Errorf("bad report: %s: got PASS (%s), want MISS", c.Name, c.Got)
		}
	}
	var out bytes.Buffer
	if err := bad.writeMarkdown(&out); err != nil || strings.Count(out.String(), "| MISS |") != 7 {
		t.Errorf("markdown: got %v and\n%s\nwant 7 MISS rows", err, out.String())
	}
	if got := (&report{}).checks(); got[0].Pass || got[2].Pass {
		t.Error("a report without rounds passes the ratio targets")
	}
}

// TestRoundMedians: with several rounds the targets use the median of the
// rounds' ratios and p99s, so one disturbed run decides nothing; every
// round is reported, and errors and peak memory of any round count.
func TestRoundMedians(t *testing.T) {
	mk := func(status, api, ceiling int64, p99, ceilP99 time.Duration) round {
		run := func(name string, n int64, p99 time.Duration) phaseResult {
			return phaseResult{Name: name, loadResult: loadResult{Requests: n, Elapsed: time.Second, P99: p99}, ServerNon2xx: -1, PeakRSS: 30e6}
		}
		return round{Status: run("status page", status, p99), API: run("API GET", api, 0), Ceiling: run("ceiling", ceiling, ceilP99)}
	}
	r := report{
		Rounds: []round{
			mk(2000, 9000, 10000, 30*time.Millisecond, 12*time.Millisecond), // status disturbed: 20%
			mk(6000, 7000, 10000, 9*time.Millisecond, 6*time.Millisecond),   // 60%, 70%
			mk(5500, 6500, 10000, 8*time.Millisecond, 5*time.Millisecond),   // 55%, 65%
		},
		CSR:    sampleResult{Latencies: []time.Duration{time.Millisecond}},
		Upload: sampleResult{Latencies: []time.Duration{time.Millisecond}},
	}
	if got := r.statusRatio(); got != 0.55 {
		t.Errorf("status ratio: got %v, want the median 0.55", got)
	}
	if got := r.apiRatio(); got != 0.7 {
		t.Errorf("API ratio: got %v, want the median 0.7", got)
	}
	if got := r.statusP99(); got != 9*time.Millisecond {
		t.Errorf("status p99: got %v, want the median 9ms", got)
	}
	if got := r.ceilingP99(); got != 6*time.Millisecond {
		t.Errorf("ceiling p99: got %v, want the median 6ms", got)
	}
	for _, c := range r.checks() {
		if !c.Pass {
			t.Errorf("%s: got MISS (%s), want PASS", c.Name, c.Got)
		}
	}
	r.Rounds[0].API.SocketErrors = 2
	r.Rounds[2].Status.PeakRSS = 60e6
	for _, c := range r.checks() {
		if (c.Name == "zero errors" || c.Name == "pushcert peak RSS ≤ 50 MB") && c.Pass {
			t.Errorf("%s: got PASS (%s) with a bad round, want MISS", c.Name, c.Got)
		}
	}
	var out bytes.Buffer
	if err := r.writeText(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1: status page", "3: ceiling", "round 1 ratios: status/ceiling 20%, API/ceiling 90%",
		"median ratios of 3 rounds: status/ceiling 55%, API/ceiling 70%", "55%, median of 3 rounds"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, out.String())
		}
	}
	r.Rounds = r.Rounds[:2]
	if got := r.statusRatio(); got < 0.399 || got > 0.401 {
		t.Errorf("two rounds: status ratio %v, want the mean of the middle two, 0.4", got)
	}
}
