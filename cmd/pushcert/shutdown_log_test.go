package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunFlushesLogOnShutdown checks that a request's log line, written an
// instant before the process is told to stop, reaches the output: once for
// a canceled context and once for SIGTERM (run's own signal handler
// catches it, as in production).
func TestRunFlushesLogOnShutdown(t *testing.T) {
	for _, stop := range []struct {
		name string
		do   func(r *running)
	}{
		{"context canceled", func(r *running) { r.cancel() }},
		{"SIGTERM", func(r *running) {
			if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(stop.name, func(t *testing.T) {
			r := launch(t, []string{"-dev", "-log-format=json", "-listen-addr=" + freeAddr(t), "-dev-provider-addr=" + freeAddr(t), "-data-dir=" + t.TempDir()}, env(nil))
			defer r.cancel()
			path := "/last-request-before-shutdown"
			resp, err := http.Get("http://" + r.addr + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			stop.do(r)
			select {
			case err := <-r.done:
				if err != nil {
					t.Fatalf("run returned %v, want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("run did not stop within 30 s")
			}
			logs := r.out.String()
			for _, want := range []string{`"path":"` + path + `"`, `"msg":"stopped"`} {
				if !strings.Contains(logs, want) {
					t.Errorf("got log without %s, want it:\n%s", want, logs)
				}
			}
		})
	}
}
