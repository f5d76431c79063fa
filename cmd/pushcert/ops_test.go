package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

const (
	apiPath     = "/v1.0/deviceManagement/applePushNotificationCertificate"
	hookSecret  = "hooks/T0001/B0001/s3cr3tWebhookPath"
	adminsGroup = "admins"
)

// serverClock is the clock a server the test starts runs on: from
// testclock.Start on, moving with the wall clock as a real server's does.
// Every part started with it (pushcert, the provider, the child processes
// given testNowEnv) agrees on the time.
func serverClock(t *testing.T) func() time.Time {
	t.Helper()
	return testclock.Running(testclock.Start(t))
}

// testNowEnv is the environment entry that starts a pushcert built with
// the pushcert_testclock tag (see buildTags) at testclock.Start.
func testNowEnv(t *testing.T) string {
	t.Helper()
	return testclock.Env + "=" + testclock.Start(t).Format(time.RFC3339)
}

// buildTags make the test binaries of pushcert read PUSHCERT_TEST_NOW.
const buildTags = "-tags=pushcert_testclock"

// startProvider runs a real OpenID provider for the test, as a company's
// would be: the development one, on a port of its own.
func startProvider(t *testing.T) *devidp.Provider {
	t.Helper()
	p, err := devidp.Start(discard(), "127.0.0.1:0", t.TempDir(), []devidp.User{
		{Key: "admin", Label: "Ops Admin", Email: "admin@example.com", Groups: []string{adminsGroup}},
	}, serverClock(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// prodEnv is a complete production configuration against provider.
func prodEnv(t *testing.T, provider *devidp.Provider, listen string, extra map[string]string) map[string]string {
	t.Helper()
	m := map[string]string{
		"PUSHCERT_LISTEN_ADDR":           listen,
		"PUSHCERT_BASE_URL":              "http://" + listen,
		"PUSHCERT_DATA_DIR":              t.TempDir(),
		"PUSHCERT_ORGANIZATION":          "Ops Test Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": "ops-test-kek-0123456789abcdefghijkl",
		"PUSHCERT_SESSION_SECRET":        "ops-test-session-0123456789abcdefgh",
		"PUSHCERT_OIDC_ISSUER":           provider.Issuer(),
		"PUSHCERT_OIDC_CLIENT_ID":        devidp.ClientID,
		"PUSHCERT_OIDC_CLIENT_SECRET":    provider.ClientSecret(),
		"PUSHCERT_OIDC_SCOPES":           "openid,email,profile,groups",
		"PUSHCERT_ADMIN_GROUPS":          adminsGroup,
		// Tests never ask Apple: the connection check goes to a port
		// nothing listens on (tests of the check start a fake APNs).
		"PUSHCERT_APNS_URL": "https://127.0.0.1:9",
		// pushcert trusts no CA by its name: the test CA is trusted explicitly.
		"PUSHCERT_TRUST_BUNDLE": testCABundle(t),
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

// providerToken gets an ID token for a demo user, usable as an API bearer
// token.
func providerToken(t *testing.T, p *devidp.Provider, user string) string {
	t.Helper()
	token, err := devidp.Token(t.Context(), http.DefaultClient, p.Issuer(), user)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// apiCall sends a JSON API request and returns the status and body.
func apiCall(t *testing.T, method, url, token string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var appleCA = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA(applesim.AppleCAName, testclock.Now) })

// certificateForNewCSR asks pushcert at base for a CSR through the API and
// plays Apple: it returns the upload body with a certificate for that CSR.
func certificateForNewCSR(t *testing.T, base, token string) []byte {
	t.Helper()
	return renewalFor(t, base, token, "") // "": a new topic
}

// waitRefused waits until nothing accepts connections at addr any more.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still accepts connections 10 s after shutdown began", addr)
}

// TestShutdownLetsUploadFinish starts an upload whose body is still being
// sent, stops pushcert, and checks that it stops accepting connections but
// lets the upload finish with a normal answer before run returns nil.
func TestShutdownLetsUploadFinish(t *testing.T) {
	provider := startProvider(t)
	hook := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(hook.Close)
	listen := freeAddr(t)
	r := launch(t, nil, env(prodEnv(t, provider, listen, map[string]string{
		"PUSHCERT_SHUTDOWN_TIMEOUT":  "20s",
		"PUSHCERT_ALERT_WEBHOOK_URL": hook.URL + "/" + hookSecret,
	})))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			r.cancel()
			<-r.done
		}
	})
	token := providerToken(t, provider, "admin")
	upload := certificateForNewCSR(t, "http://"+listen, token)

	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Expect: 100-continue makes the server say when the handler starts
	// reading the body, so the request is surely in flight.
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		apiPath, listen, token, len(upload))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %v, %v; want 100 Continue", resp, err)
	}
	half := len(upload) / 2
	if _, err := conn.Write(upload[:half]); err != nil {
		t.Fatal(err)
	}

	r.cancel()
	waitRefused(t, listen)
	select {
	case err := <-r.done:
		t.Fatalf("run returned %v with an upload in flight", err)
	default:
	}
	if _, err := conn.Write(upload[half:]); err != nil {
		t.Fatalf("finish the upload: %v", err)
	}
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read the answer to the upload: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"certificateUploadStatus":"succeeded"`) {
		t.Errorf("upload during shutdown: got %d %s, want 200 with the new certificate", resp.StatusCode, body)
	}
	select {
	case err := <-r.done:
		stopped = true
		if err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s of the upload finishing")
	}
	logs := r.out.String()
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"stopped"`, `"webhook_host":"` + hook.Listener.Addr().String() + `"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log has no %s:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "s3cr3t") || strings.Contains(logs, token) {
		t.Error("log contains the webhook's secret path or a token")
	}
}

func TestShutdownTimeout(t *testing.T) {
	provider := startProvider(t)
	listen := freeAddr(t)
	r := launch(t, nil, env(prodEnv(t, provider, listen, map[string]string{"PUSHCERT_SHUTDOWN_TIMEOUT": "200ms"})))
	token := providerToken(t, provider, "admin")
	conn, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A request that never finishes sending its body.
	fmt.Fprintf(conn, "PATCH %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
		apiPath, listen, token)
	if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("got %v, %v; want 100 Continue", resp, err)
	}
	r.cancel()
	select {
	case err := <-r.done:
		if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
			t.Errorf("got %v, want an error naming the timeout", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return within 30 s")
	}
}

func TestHealthcheckReady(t *testing.T) {
	listen := freeAddr(t)
	startRun(t, []string{"-dev", "-listen-addr=" + listen, "-dev-provider-addr=" + freeAddr(t), "-data-dir=" + t.TempDir()}, env(nil))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "-ready", listen}, env(nil), &out); err != nil || strings.TrimSpace(out.String()) != "ready" {
		t.Errorf("healthcheck -ready: got %v %q, want ready", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"healthcheck", "-ready"}, env(map[string]string{"PUSHCERT_LISTEN_ADDR": listen}), &out); err != nil {
		t.Errorf("healthcheck -ready at PUSHCERT_LISTEN_ADDR: got %v, want nil", err)
	}

	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("healthcheck -ready asked for %s, want /readyz", r.URL.Path)
		}
		http.Error(w, "not ready: database unreachable", http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	err := run(context.Background(), []string{"healthcheck", "-ready", notReady.Listener.Addr().String()}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "database unreachable") {
		t.Errorf("not ready: got %v, want an error with the reason", err)
	}
	if err := run(context.Background(), []string{"healthcheck", "-bogus"}, env(nil), io.Discard); err == nil {
		t.Error("healthcheck -bogus: got nil, want an error")
	}
}

func TestConfigOperations(t *testing.T) {
	base := map[string]string{
		"PUSHCERT_BASE_URL": "https://pushcert.example.com", "PUSHCERT_ORGANIZATION": "Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": strings.Repeat("k", 32), "PUSHCERT_SESSION_SECRET": strings.Repeat("s", 32),
		"PUSHCERT_OIDC_ISSUER": "https://login.example.com", "PUSHCERT_OIDC_CLIENT_ID": "pushcert",
		"PUSHCERT_ADMIN_GROUPS": "mdm-admins",
	}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	t.Run("defaults", func(t *testing.T) {
		c, err := parseConfig("pushcert", modeServe, nil, env(base), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.AlertThresholds) != "[30 14 7 3 1]" || c.AlertInterval != time.Hour || c.ShutdownTimeout != 20*time.Second || c.MetricsToken != "" {
			t.Errorf("got thresholds %v, interval %s, shutdown %s, token %q; want [30 14 7 3 1], 1h, 20s, none",
				c.AlertThresholds, c.AlertInterval, c.ShutdownTimeout, c.MetricsToken)
		}
	})
	t.Run("set", func(t *testing.T) {
		c, err := parseConfig("pushcert", modeServe, []string{"-alert-interval=5m"}, env(with(
			"PUSHCERT_ALERT_THRESHOLDS", " 60, 10 ,2", "PUSHCERT_SHUTDOWN_TIMEOUT", "45s",
			"PUSHCERT_METRICS_TOKEN", "a-long-enough-metrics-token")), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(c.AlertThresholds) != "[60 10 2]" || c.AlertInterval != 5*time.Minute || c.ShutdownTimeout != 45*time.Second || c.MetricsToken != "a-long-enough-metrics-token" {
			t.Errorf("got thresholds %v, interval %s, shutdown %s; want [60 10 2], 5m, 45s and the token",
				c.AlertThresholds, c.AlertInterval, c.ShutdownTimeout)
		}
	})
	bad := []struct{ name, key, value string }{
		{"thresholds not numbers", "PUSHCERT_ALERT_THRESHOLDS", "30,soon"},
		{"thresholds empty", "PUSHCERT_ALERT_THRESHOLDS", " , "},
		{"threshold zero", "PUSHCERT_ALERT_THRESHOLDS", "0"},
		{"interval too short", "PUSHCERT_ALERT_INTERVAL", "1ms"},
		{"shutdown timeout", "PUSHCERT_SHUTDOWN_TIMEOUT", "forever"},
		{"metrics token too short", "PUSHCERT_METRICS_TOKEN", "short-tok"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("pushcert", modeServe, nil, env(with(tt.key, tt.value)), io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("got %v, want a problem naming %s", err, tt.key)
			}
			if err != nil && tt.key == "PUSHCERT_METRICS_TOKEN" && strings.Contains(err.Error(), tt.value) {
				t.Errorf("got %q, which shows the token", err)
			}
		})
	}
}
