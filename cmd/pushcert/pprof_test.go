package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// getStatus fetches url and returns the status and up to 4 KiB of the body.
func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return resp.StatusCode, string(b)
}

// TestPprofListener runs pushcert with PUSHCERT_PPROF_ADDR, in production
// mode and in -dev, and checks that the profiles answer on that address
// only, and that the listener goes away with the server.
func TestPprofListener(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, pprofAddr string) *running
	}{
		{"production", func(t *testing.T, pprofAddr string) *running {
			return launch(t, nil, env(prodEnv(t, startProvider(t), freeAddr(t), map[string]string{"PUSHCERT_PPROF_ADDR": pprofAddr})))
		}},
		{"dev", func(t *testing.T, pprofAddr string) *running {
			return launch(t, []string{"-dev", "-listen-addr=" + freeAddr(t), "-dev-provider-addr=" + freeAddr(t), "-data-dir=" + t.TempDir(), "-pprof-addr=" + pprofAddr}, env(nil))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pprofAddr := freeAddr(t)
			r := tt.start(t, pprofAddr)
			stopped := false
			t.Cleanup(func() {
				if !stopped {
					r.cancel()
					<-r.done
				}
			})

			if code, body := getStatus(t, "http://"+pprofAddr+"/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "profile") {
				t.Errorf("pprof GET /debug/pprof/: got %d %.200q, want 200 with the index", code, body)
			}
			if code, body := getStatus(t, "http://"+pprofAddr+"/debug/pprof/cmdline"); code != http.StatusOK || body == "" {
				t.Errorf("pprof GET /debug/pprof/cmdline: got %d %q, want 200 with the command line", code, body)
			}
			if code, _ := getStatus(t, "http://"+pprofAddr+"/"); code != http.StatusNotFound {
				t.Errorf("pprof GET /: got %d, want 404: the pprof listener serves nothing of the application", code)
			}
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
				if code, _ := getStatus(t, "http://"+r.addr+path); code != http.StatusNotFound {
					t.Errorf("main server GET %s: got %d, want 404", path, code)
				}
			}
			if want := "pprof listening"; !strings.Contains(r.out.String(), want) || !strings.Contains(r.out.String(), pprofAddr) {
				t.Errorf("got log without %q and %s, want one line with both:\n%s", want, pprofAddr, r.out.String())
			}

			// A CPU profile in flight must not hold up the shutdown: it
			// answers with what it has when the server stops.
			profile := make(chan int, 1)
			go func() {
				resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/profile?seconds=30")
				if err != nil {
					profile <- 0
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				profile <- resp.StatusCode
			}()
			time.Sleep(200 * time.Millisecond) // let the profile start; the result is the same if it has not
			r.cancel()
			select {
			case err := <-r.done:
				stopped = true
				if err != nil {
					t.Errorf("run returned %v, want nil", err)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("run did not return within 15 s of cancel with a 30 s CPU profile in flight")
			}
			if code := <-profile; code != http.StatusOK {
				t.Errorf("CPU profile cut short by the shutdown: got status %d, want 200", code)
			}
			waitRefused(t, pprofAddr)
		})
	}
}

func TestPprofOffByDefault(t *testing.T) {
	c, err := parseConfig("pushcert", modeServe, []string{"-dev"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.PprofAddr != "" {
		t.Errorf("got PprofAddr %q, want empty (off)", c.PprofAddr)
	}
	r := launch(t, []string{"-dev", "-listen-addr=" + freeAddr(t), "-dev-provider-addr=" + freeAddr(t), "-data-dir=" + t.TempDir()}, env(nil))
	defer func() {
		r.cancel()
		<-r.done
	}()
	if strings.Contains(r.out.String(), "pprof") {
		t.Errorf("got a pprof line in the log without PUSHCERT_PPROF_ADDR, want none:\n%s", r.out.String())
	}
	if code, _ := getStatus(t, "http://"+r.addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("main server GET /debug/pprof/: got %d, want 404", code)
	}
}

func TestPprofAddrConfig(t *testing.T) {
	tests := []struct {
		addr    string
		wantErr string // "" when the address is accepted
	}{
		{"127.0.0.1:6060", ""},
		{"localhost:6060", ""},
		{"[::1]:6060", ""},
		{"127.0.0.1:0", ""},
		{"0.0.0.0:6060", "loopback"},
		{":6060", "loopback"},
		{"[::]:6060", "loopback"},
		{"192.0.2.10:6060", "loopback"},
		{"pprof.example.com:6060", "loopback"},
		{"6060", "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			c, err := parseConfig("pushcert", modeServe, []string{"-dev"}, env(map[string]string{"PUSHCERT_PPROF_ADDR": tt.addr}), io.Discard)
			if tt.wantErr == "" {
				if err != nil || c.PprofAddr != tt.addr {
					t.Errorf("got %v, PprofAddr %q; want %q accepted", err, c.PprofAddr, tt.addr)
				}
				return
			}
			var ce *configError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "PUSHCERT_PPROF_ADDR (-pprof-addr)") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got %v, want a configuration problem naming PUSHCERT_PPROF_ADDR (-pprof-addr) and %q", err, tt.wantErr)
			}
		})
	}
}

// TestPprofRefusesNonLoopback checks the refusal through run, in production
// mode and in -dev, before anything listens.
func TestPprofRefusesNonLoopback(t *testing.T) {
	prod := map[string]string{
		"PUSHCERT_BASE_URL": "https://pushcert.example.com", "PUSHCERT_ORGANIZATION": "Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": strings.Repeat("k", 32), "PUSHCERT_SESSION_SECRET": strings.Repeat("s", 32),
		"PUSHCERT_OIDC_ISSUER": "https://login.example.com", "PUSHCERT_OIDC_CLIENT_ID": "pushcert",
		"PUSHCERT_ADMIN_GROUPS": "mdm-admins", "PUSHCERT_DATA_DIR": t.TempDir(),
		"PUSHCERT_LISTEN_ADDR": "127.0.0.1:0", "PUSHCERT_PPROF_ADDR": "0.0.0.0:6060",
	}
	for _, tt := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"production", nil, prod},
		{"dev", []string{"-dev", "-listen-addr=127.0.0.1:0", "-data-dir=" + t.TempDir(), "-pprof-addr=:6060"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, env(tt.env), io.Discard)
			if err == nil || !strings.Contains(err.Error(), "PUSHCERT_PPROF_ADDR") || !strings.Contains(err.Error(), "loopback") {
				t.Errorf("got %v, want a refusal naming PUSHCERT_PPROF_ADDR and loopback", err)
			}
		})
	}
}

// TestListenLoopback: the pprof listener is refused unless the socket is
// bound to loopback, whatever name the address used.
func TestListenLoopback(t *testing.T) {
	ln, err := listenLoopback("localhost:0")
	if err != nil {
		t.Fatalf("localhost: %v", err)
	}
	ln.Close()
	if ln, err := listenLoopback("0.0.0.0:0"); err == nil {
		ln.Close()
		t.Fatal("0.0.0.0: got a listener, want a refusal")
	} else if !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("0.0.0.0: got %v, want it to say the address is not loopback", err)
	}
}
