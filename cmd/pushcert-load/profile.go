package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// profileWindow returns when, after a load run of length d starts, to start
// pushcert's CPU profile and how many whole seconds it lasts (pprof takes
// whole seconds): the middle of the run, leaving out about a second at
// each end where the generator starts its connections and stops. The
// profile lasts at least a second, even when the run is shorter than three.
func profileWindow(d time.Duration) (delay time.Duration, seconds int) {
	seconds = max(int((d-2*time.Second)/time.Second), 1)
	delay = max((d-time.Duration(seconds)*time.Second)/2, 0)
	return delay, seconds
}

// profiler fetches CPU profiles from pushcert's pprof listener
// (PUSHCERT_PPROF_ADDR) into a folder, one file per load run.
type profiler struct {
	base string // http://HOST:PORT of the pprof listener
	dir  string
}

// start fetches, in the background, a CPU profile covering the middle of a
// load run of length d that starts now, into dir/name.pprof. The returned
// function waits for it and returns the file's path.
func (p *profiler) start(ctx context.Context, name string, d time.Duration) (wait func() (string, error)) {
	path := filepath.Join(p.dir, name+".pprof")
	delay, seconds := profileWindow(d)
	done := make(chan error, 1)
	go func() {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			done <- ctx.Err()
			return
		}
		done <- p.fetch(ctx, path, seconds)
	}()
	return func() (string, error) {
		if err := <-done; err != nil {
			return "", fmt.Errorf("CPU profile %s: %w", path, err)
		}
		return path, nil
	}
}

// fetch asks the pprof listener for a CPU profile of the given seconds and
// writes it to path. Nothing is left at path when it fails.
func (p *profiler) fetch(ctx context.Context, path string, seconds int) error {
	// pushcert answers once the seconds are over; the margin covers a
	// machine made slow by the very load being profiled.
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/debug/pprof/profile?seconds="+strconv.Itoa(seconds), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("status %d: %s", resp.StatusCode, clip(b))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errors.Join(err, os.Remove(path))
	}
	return nil
}
