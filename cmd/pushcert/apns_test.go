package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

const apnsCheckPath = "/api/pushcert/apns-check"

// apnsResult is GET /api/pushcert/apns-check.
type apnsResult struct {
	Outcome   string `json:"outcome"`
	Message   string `json:"message"`
	Serial    string `json:"serialNumber"`
	CheckedBy string `json:"checkedBy"`
	ForActive bool   `json:"forActiveCertificate"`
}

func apnsCheck(t *testing.T, method, base, token string) apnsResult {
	t.Helper()
	code, body := apiCall(t, method, base+apnsCheckPath, token, nil)
	if code != http.StatusOK {
		t.Fatalf("%s %s: got %d %s, want 200", method, apnsCheckPath, code, body)
	}
	var r apnsResult
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestAPNSCheckAgainstFakeAPNs is the issue's "done when" in production
// mode, against a fake APNs (a real HTTP/2 TLS server that verifies client
// certificates): an upload is checked by itself; an admin's check is
// accepted, then rejected once the certificate is revoked, then
// unreachable once the service is gone; a second replica shows the same
// result, the metric follows, and the webhook hears of the refusal once, at
// once (not at the alert checker's next hourly round).
func TestAPNSCheckAgainstFakeAPNs(t *testing.T) {
	ca, err := appleCA()
	if err != nil {
		t.Fatal(err)
	}
	fake := apnstest.Start(t, ca.Cert, serverClock(t))
	caFile := filepath.Join(t.TempDir(), "apns-ca.pem")
	if err := os.WriteFile(caFile, fake.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	provider := startProvider(t)
	hook := newHookRecorder(t)
	shared := map[string]string{
		"PUSHCERT_DATABASE_URL":      "sqlite:" + filepath.Join(t.TempDir(), "shared.db"),
		"PUSHCERT_APNS_URL":          fake.URL(),
		"PUSHCERT_APNS_CA_FILE":      caFile,
		"PUSHCERT_ALERT_WEBHOOK_URL": hook.srv.URL + "/" + hookSecret,
	}
	addrA, _ := startRun(t, nil, env(prodEnv(t, provider, freeAddr(t), shared)))
	addrB, _ := startRun(t, nil, env(prodEnv(t, provider, freeAddr(t), shared)))
	a, b := "http://"+addrA, "http://"+addrB
	token := providerToken(t, provider, "admin")

	if r := apnsCheck(t, http.MethodGet, b, token); r.Outcome != "none" {
		t.Errorf("before any certificate: got %+v, want none", r)
	}
	if code, _ := apiCall(t, http.MethodPost, a+apnsCheckPath, token, nil); code != http.StatusConflict {
		t.Errorf("a check with no certificate: got %d, want 409", code)
	}
	serial, _ := upload(t, a, token, certificateForNewCSR(t, a, token))
	deadline := time.Now().Add(30 * time.Second)
	for r := apnsCheck(t, http.MethodGet, b, token); r.Outcome != "accepted" || r.Serial != serial; r = apnsCheck(t, http.MethodGet, b, token) {
		if time.Now().After(deadline) {
			t.Fatalf("after the upload: B shows %+v, want %s accepted", r, serial)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := apnsCheck(t, http.MethodPost, a, token); r.Outcome != "accepted" || r.CheckedBy != "admin@example.com" || !r.ForActive {
		t.Errorf("the admin's check: got %+v, want accepted, by the admin, for the active certificate", r)
	}

	fake.Revoke(serial)
	r := apnsCheck(t, http.MethodPost, a, token)
	if r.Outcome != "rejected" || !strings.Contains(r.Message, "revoked") {
		t.Errorf("revoked: got %+v, want rejected saying it was revoked", r)
	}
	if r := apnsCheck(t, http.MethodGet, b, token); r.Outcome != "rejected" {
		t.Errorf("B after the refusal: got %+v, want rejected", r)
	}
	if m := get(t, b+"/metrics"); !strings.Contains(m, `pushcert_apns_check_outcome{outcome="rejected"} 1`) ||
		!strings.Contains(m, `pushcert_apns_check_outcome{outcome="accepted"} 0`) || !strings.Contains(m, "pushcert_apns_check_timestamp_seconds ") {
		t.Errorf("B's /metrics do not follow:\n%s", grepLines(m, "pushcert_apns"))
	}
	deadline = time.Now().Add(30 * time.Second)
	for !slices.Contains(hook.got(), "apns_rejected/0/"+serial) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// The alert checkers' interval is the default hour: only the poke from
	// the check that raised the alert sent it. Give a second one, which
	// must not come, a moment.
	time.Sleep(time.Second)
	n := 0
	for _, a := range hook.got() {
		if strings.HasPrefix(a, "apns_rejected/") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the webhook got %v, want one apns_rejected alert", hook.got())
	}

	fake.Close()
	if r := apnsCheck(t, http.MethodPost, b, token); r.Outcome != "unreachable" || !strings.Contains(r.Message, "could not reach") {
		t.Errorf("with the service gone: got %+v, want unreachable", r)
	}
}

// In development mode the check asks a fake APNs that trusts the
// development CA, so a certificate from the Dev Apple page is accepted.
func TestDevAPNSAcceptsDevCertificates(t *testing.T) {
	now := testclock.Running(testclock.Start(t))
	devCA, err := applesim.NewCA(applesim.AppleCAName, now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config{Dev: true, APNSURL: apns.DefaultURL}
	mon, closeFake, err := newMonitor(cfg, discard(), nil, devCA, now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFake()
	if u := mon.Checker().URL(); !strings.HasPrefix(u, "https://127.0.0.1:") {
		t.Fatalf("dev checks %s, want a fake on loopback", u)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	der, err := devCA.Issue(applesim.Request{PublicKey: key.Public()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := pushcert.ParseCertificate(applesim.PEM(der))
	if err != nil {
		t.Fatal(err)
	}
	if r := mon.Checker().Check(t.Context(), pushcert.Describe(c), keyDER); r.Outcome != apns.OutcomeAccepted {
		t.Errorf("got %s %q, want accepted", r.Outcome, r.Message)
	}
}

// PUSHCERT_APNS_CHECK_INTERVAL is 0 (off) or between an hour and 30 days:
// a check every nanosecond would hammer Apple.
func TestAPNSCheckIntervalSetting(t *testing.T) {
	const problem = "configuration: PUSHCERT_APNS_CHECK_INTERVAL (-apns-check-interval): want 0s (off) or a duration between 1h and 720h, like 24h"
	for _, tt := range []struct {
		value string
		want  time.Duration // when valid
		ok    bool
	}{
		{"0s", 0, true},
		{"0", 0, true},
		{"1h", time.Hour, true},
		{"24h", 24 * time.Hour, true},
		{"720h", 720 * time.Hour, true},
		{"1ns", 0, false},
		{"59m59s", 0, false},
		{"-1h", 0, false},
		{"721h", 0, false},
		{"daily", 0, false},
	} {
		t.Run(tt.value, func(t *testing.T) {
			args := []string{"-dev", "-data-dir=" + t.TempDir(), "-dev-provider-addr=127.0.0.1:0", "-apns-check-interval=" + tt.value}
			cfg, err := parseConfig("pushcert", modeServe, args, env(nil), io.Discard)
			switch {
			case tt.ok && (err != nil || cfg.APNSCheckInterval != tt.want):
				t.Errorf("got %v, %v; want %v", cfg, err, tt.want)
			case !tt.ok && (err == nil || err.Error() != problem):
				t.Errorf("got %v, want the problem %q", err, problem)
			}
		})
	}
}
