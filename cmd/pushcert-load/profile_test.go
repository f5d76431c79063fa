package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestProfileWindow(t *testing.T) {
	tests := []struct {
		d           time.Duration
		wantDelay   time.Duration
		wantSeconds int
	}{
		{10 * time.Second, time.Second, 8},
		{30 * time.Second, time.Second, 28},
		{4 * time.Second, time.Second, 2},
		{3 * time.Second, time.Second, 1},
		{10500 * time.Millisecond, 1250 * time.Millisecond, 8},               // whole seconds, centred
		{2 * time.Second, 500 * time.Millisecond, 1},                         // at least a second
		{time.Second, 0, 1},                                                  // the shortest run the tool allows
		{2500 * time.Millisecond, 750 * time.Millisecond, 1},                 // under three seconds
		{time.Minute + 999*time.Millisecond, 1499500 * time.Microsecond, 58}, // rounded down, not up
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			delay, seconds := profileWindow(tt.d)
			if delay != tt.wantDelay || seconds != tt.wantSeconds {
				t.Errorf("got %v and %d s, want %v and %d s", delay, seconds, tt.wantDelay, tt.wantSeconds)
			}
			if end := delay + time.Duration(seconds)*time.Second; tt.d >= time.Second && end > tt.d {
				t.Errorf("the profile ends at %v, after the %v run", end, tt.d)
			}
		})
	}
}

// TestProfilerFetch takes a real one-second CPU profile from net/http/pprof's
// handler, as pushcert's pprof listener serves it.
func TestProfilerFetch(t *testing.T) {
	var gotQuery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotQuery = r.URL.RawQuery
		if r.URL.Path != "/debug/pprof/profile" {
			http.NotFound(w, r)
			return
		}
		pprof.Profile(w, r)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	p := &profiler{base: srv.URL, dir: dir}

	// A run of 1 s gives a profile of 1 s from the start.
	path, err := p.start(context.Background(), "status", time.Second)()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "status.pprof"); path != want {
		t.Errorf("got path %s, want %s", path, want)
	}
	if gotQuery != "seconds=1" {
		t.Errorf("got query %q, want seconds=1", gotQuery)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A profile is a gzip-compressed protocol buffer.
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("got %d bytes starting %q, want a gzip-compressed profile", len(b), b[:min(len(b), 8)])
	}
}

func TestProfilerFetchFails(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Could not enable CPU profiling: cpu profiling already in use", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	p := &profiler{base: srv.URL, dir: dir}
	_, err := p.start(context.Background(), "api", time.Second)()
	if err == nil || !strings.Contains(err.Error(), "status 500") || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("got %v, want an error with the status and pushcert's answer", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "api.pprof")); !os.IsNotExist(err) {
		t.Errorf("got %v for api.pprof, want no file after a failed fetch", err)
	}

	// Canceled before the window opens: no request, an error, no file.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.start(ctx, "late", 10*time.Second)(); err == nil {
		t.Error("canceled: got nil, want an error")
	}
	if _, err := os.Stat(filepath.Join(dir, "late.pprof")); !os.IsNotExist(err) {
		t.Errorf("got %v for late.pprof, want no file", err)
	}
}
