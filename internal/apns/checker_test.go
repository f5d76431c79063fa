package apns_test

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/testclock"
)

// Each row checks a certificate against a real fake APNs over HTTP/2 and
// TLS, set up to answer as Apple would in one situation.
func TestCheck(t *testing.T) {
	tests := []struct {
		name        string
		cert        func(t *testing.T) pair
		setup       func(s *apnstest.Server, p pair)
		wantOutcome apns.Outcome
		wantStatus  int
		wantReason  string
		wantText    string
	}{
		{"accepted: BadDeviceToken", goodCert, nil,
			apns.OutcomeAccepted, 400, "BadDeviceToken", "Apple accepted the certificate (it answered BadDeviceToken for a test device token, as expected)"},
		{"accepted: DeviceTokenNotForTopic", goodCert, answer(400, "DeviceTokenNotForTopic"),
			apns.OutcomeAccepted, 400, "DeviceTokenNotForTopic", "Apple accepted the certificate"},
		{"accepted: 410 Unregistered", goodCert, answer(410, "Unregistered"),
			apns.OutcomeAccepted, 410, "Unregistered", "it answered Unregistered"},
		{"accepted: 200", goodCert, answer(200, ""),
			apns.OutcomeAccepted, 200, "", "Apple accepted the certificate"},
		{"rejected: 403 BadCertificate", goodCert, answer(403, "BadCertificate"),
			apns.OutcomeRejected, 403, "BadCertificate", "Apple refused the certificate (403 BadCertificate)"},
		{"rejected: 403 BadCertificateEnvironment", goodCert, answer(403, "BadCertificateEnvironment"),
			apns.OutcomeRejected, 403, "BadCertificateEnvironment", "other push environment"},
		{"rejected: 403 Forbidden", goodCert, answer(403, "Forbidden"),
			apns.OutcomeRejected, 403, "Forbidden", "renew it at Apple's Push Certificates Portal"},
		{"rejected: expired client certificate", expiredCert, nil,
			apns.OutcomeRejected, 0, "tls: expired certificate", "Apple refused the certificate: it has expired; renew it"},
		{"rejected: client certificate from another CA", otherCACert, nil,
			apns.OutcomeRejected, 0, "tls: unknown certificate authority", "not issued by Apple's push certificate authority"},
		{"rejected: revoked serial", goodCert, func(s *apnstest.Server, p pair) { s.Revoke(p.cert.SerialNumber) },
			apns.OutcomeRejected, 0, "tls: revoked certificate", "it has been revoked at Apple's Push Certificates Portal"},
		{"rejected: handshake cut off", goodCert, func(s *apnstest.Server, _ pair) { s.CutHandshakes(true) },
			apns.OutcomeRejected, 0, "", "Apple closed the connection during the TLS handshake"},
		{"rejected: key not the certificate's", mismatchedKey, nil,
			apns.OutcomeRejected, 0, "", "pushcert could not use the stored key: it does not belong to the certificate, so nothing was sent to Apple"},
		{"rejected: key unreadable", unreadableKey, nil,
			apns.OutcomeRejected, 0, "", "pushcert could not use the stored key: it is not a private key pushcert can read; nothing was sent to Apple"},
		{"rejected: topic refused", noTopicCert, nil,
			apns.OutcomeRejected, 400, "MissingTopic", "the certificate has no topic"},
		{"unreachable: 503", goodCert, answer(503, "ServiceUnavailable"),
			apns.OutcomeUnreachable, 503, "ServiceUnavailable", "Apple's push service is having trouble (it answered 503 ServiceUnavailable)"},
		{"unreachable: 429", goodCert, answer(429, "TooManyRequests"),
			apns.OutcomeUnreachable, 429, "TooManyRequests", "having trouble"},
		{"accepted: 400 BadPayload", goodCert, answer(400, "BadPayload"),
			apns.OutcomeAccepted, 400, "BadPayload", "Apple accepted the certificate (it took the TLS connection with it); note that it answered the test push with 400 BadPayload"},
		{"accepted: 400 InvalidPushType", goodCert, answer(400, "InvalidPushType"),
			apns.OutcomeAccepted, 400, "InvalidPushType", "Apple accepted the certificate"},
		{"accepted: 405 MethodNotAllowed", goodCert, answer(405, "MethodNotAllowed"),
			apns.OutcomeAccepted, 405, "MethodNotAllowed", "answered the test push with 405 MethodNotAllowed"},
		{"accepted: 413 PayloadTooLarge", goodCert, answer(413, "PayloadTooLarge"),
			apns.OutcomeAccepted, 413, "PayloadTooLarge", "answered the test push with 413 PayloadTooLarge"},
		{"unreachable: 403 MissingProviderToken, TLS inspected", goodCert, answer(403, "MissingProviderToken"),
			apns.OutcomeUnreachable, 403, "MissingProviderToken", "as Apple's push service does when no client certificate reached it, so this says nothing about the certificate: a proxy or firewall that inspects TLS"},
		{"unreachable: 403 InvalidProviderToken", goodCert, answer(403, "InvalidProviderToken"),
			apns.OutcomeUnreachable, 403, "InvalidProviderToken", "let api.push.apple.com through uninspected"},
		{"unreachable: 403 ExpiredProviderToken", goodCert, answer(403, "ExpiredProviderToken"),
			apns.OutcomeUnreachable, 403, "ExpiredProviderToken", "inspects TLS"},
		{"unreachable: not APNs", goodCert, answer(404, ""),
			apns.OutcomeUnreachable, 404, "", "check that the APNs URL (PUSHCERT_APNS_URL) is https://api.push.apple.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startAPNs(t)
			p := tt.cert(t)
			if tt.setup != nil {
				tt.setup(srv, p)
			}
			res := checker(t, srv, apns.CheckerConfig{}).Check(t.Context(), p.cert, p.key)
			if res.Outcome != tt.wantOutcome || res.HTTPStatus != tt.wantStatus || res.Reason != tt.wantReason || !strings.Contains(res.Message, tt.wantText) {
				t.Errorf("got %s %d %q %q, want %s %d %q containing %q",
					res.Outcome, res.HTTPStatus, res.Reason, res.Message, tt.wantOutcome, tt.wantStatus, tt.wantReason, tt.wantText)
			}
			if res.Serial != p.cert.SerialNumber || res.Fingerprint != p.cert.Fingerprint || res.Topic != p.cert.Topic ||
				res.NoTopic != (p.cert.Topic == "") || !res.At.Equal(testclock.Start(t)) || res.Server != strings.TrimPrefix(srv.URL(), "https://") {
				t.Errorf("got %+v, want the certificate's serial, fingerprint and topic, the server and the test clock's time", res)
			}
			if strings.Contains(res.Message, "PRIVATE KEY") || strings.Contains(res.Message, "BEGIN") {
				t.Errorf("message %q holds PEM", res.Message)
			}
			if strings.HasPrefix(tt.wantText, "pushcert could not use") && (strings.Contains(res.Message, "Apple refuse") || strings.Contains(res.Message, "Apple would")) {
				t.Errorf("message %q says Apple refused a certificate it was never sent", res.Message)
			}
		})
	}
}

func goodCert(t *testing.T) pair {
	nb, na := year(t)
	return issue(t, ca(t, appleCA), 0, applesim.Request{NotBefore: nb, NotAfter: na})
}

func expiredCert(t *testing.T) pair {
	now := testclock.Start(t)
	return issue(t, ca(t, appleCA), 0, applesim.Request{NotBefore: now.AddDate(-1, 0, -1), NotAfter: now.Add(-24 * time.Hour)})
}

func otherCACert(t *testing.T) pair {
	nb, na := year(t)
	return issue(t, ca(t, otherCA), 0, applesim.Request{NotBefore: nb, NotAfter: na})
}

func noTopicCert(t *testing.T) pair {
	nb, na := year(t)
	p := issue(t, ca(t, appleCA), 0, applesim.Request{Topic: applesim.NoTopic, NotBefore: nb, NotAfter: na})
	p.cert.Topic = "" // as pushcert describes it
	return p
}

// mismatchedKey is a certificate with another certificate's key.
func mismatchedKey(t *testing.T) pair {
	p := goodCert(t)
	p.key = issue(t, ca(t, appleCA), 1, applesim.Request{}).key
	return p
}

// unreadableKey is a certificate with a key that is not PKCS#8.
func unreadableKey(t *testing.T) pair {
	p := goodCert(t)
	p.key = []byte("not a key")
	return p
}

func answer(status int, reason string) func(*apnstest.Server, pair) {
	return func(s *apnstest.Server, _ pair) { s.Answer(status, reason) }
}

// The test push is one MDM push, over HTTP/2, to a device token no device
// has, with the certificate's topic; a key that is not the certificate's
// is never sent.
func TestCheckSendsOneMDMPush(t *testing.T) {
	srv := startAPNs(t)
	p := goodCert(t)
	checker(t, srv, apns.CheckerConfig{}).Check(t.Context(), p.cert, p.key)
	got := srv.Pushes()
	want := apnstest.Push{Method: "POST", Path: "/3/device/" + apns.TestDeviceToken, Proto: "HTTP/2.0", Topic: p.cert.Topic,
		Body: `{"mdm":"pushcert-connection-check"}`, ClientSerial: p.cert.SerialNumber, ClientTopic: p.cert.Topic}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("got %+v, want one push %+v", got, want)
	}
	if len(apns.TestDeviceToken) != 64 || strings.Trim(apns.TestDeviceToken, "0") != "" {
		t.Errorf("TestDeviceToken %q: want 64 hex zeros", apns.TestDeviceToken)
	}
	m := mismatchedKey(t)
	checker(t, srv, apns.CheckerConfig{}).Check(t.Context(), m.cert, m.key)
	if n := len(srv.Pushes()); n != 1 {
		t.Errorf("a mismatched key was sent: got %d pushes, want 1", n)
	}
}

// Every failure to reach Apple is unreachable, in words that name what to
// check; a server that never answers is reported after the configured
// timeout.
func TestCheckUnreachable(t *testing.T) {
	srv := startAPNs(t)
	p := goodCert(t)
	tests := []struct {
		name     string
		cfg      func(t *testing.T) apns.CheckerConfig
		wantText []string
	}{
		{"closed port", func(t *testing.T) apns.CheckerConfig {
			return apns.CheckerConfig{URL: "https://127.0.0.1:" + closedPort(t)}
		}, []string{"pushcert could not reach 127.0.0.1:", "connection refused", "outbound 443 or 2197", "HTTPS_PROXY"}},
		{"server never answers", func(t *testing.T) apns.CheckerConfig {
			hung := startAPNs(t)
			hung.Hang(true)
			return apns.CheckerConfig{URL: hung.URL(), RootCAs: hung.RootCAs(), Timeout: 200 * time.Millisecond}
			// "did not answer within", or, on a machine so busy that the
			// handshake takes that long, "did not finish within".
		}, []string{"within 200ms"}},
		{"dead proxy from HTTPS_PROXY", func(t *testing.T) apns.CheckerConfig {
			return apns.CheckerConfig{URL: "https://api.push.apple.com"}
		}, []string{"could not reach the proxy " + deadProxy + " (HTTPS_PROXY): connection refused", "NO_PROXY"}},
		{"server certificate not trusted", func(t *testing.T) apns.CheckerConfig {
			return apns.CheckerConfig{URL: srv.URL(), RootCAs: pool(ca(t, otherCA).Cert)}
		}, []string{"does not trust the TLS certificate", "roots"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg(t)
			if cfg.Timeout == 0 {
				cfg.Timeout = 5 * time.Second
			}
			res := checker(t, srv, cfg).Check(t.Context(), p.cert, p.key)
			if res.Outcome != apns.OutcomeUnreachable || res.HTTPStatus != 0 {
				t.Errorf("got %s %d %q, want unreachable", res.Outcome, res.HTTPStatus, res.Message)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(res.Message, w) {
					t.Errorf("got %q, want it to contain %q", res.Message, w)
				}
			}
		})
	}
}

// A TLS alert that comes before pushcert's certificate went out (in
// answer to its hello) is something in between, not Apple's judgement of
// the certificate, whatever the alert says.
func TestCheckAlertBeforeCertificate(t *testing.T) {
	p := goodCert(t)
	for _, tt := range []struct {
		name  string
		alert byte
		text  string
	}{
		{"bad certificate", 42, "bad certificate"},
		{"certificate revoked", 44, "revoked certificate"},
		{"handshake failure", 40, "handshake failure"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			url := alertingServer(t, tt.alert)
			res := checker(t, nil, apns.CheckerConfig{URL: url, RootCAs: x509.NewCertPool()}).Check(t.Context(), p.cert, p.key)
			want := "failed before pushcert sent its certificate (TLS alert: " + tt.text + "), so this says nothing about the certificate: a middlebox or proxy"
			if res.Outcome != apns.OutcomeUnreachable || res.Reason != "tls: "+tt.text || !strings.Contains(res.Message, want) {
				t.Errorf("got %s %q %q, want unreachable %q containing %q", res.Outcome, res.Reason, res.Message, "tls: "+tt.text, want)
			}
		})
	}
}

// A check whose caller gives up is not blamed on anyone.
func TestCheckCanceled(t *testing.T) {
	srv := startAPNs(t)
	srv.Hang(true)
	p := goodCert(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	res := checker(t, srv, apns.CheckerConfig{}).Check(ctx, p.cert, p.key)
	if res.Outcome != apns.OutcomeUnreachable || !strings.Contains(res.Message, "canceled") {
		t.Errorf("got %s %q, want unreachable: canceled", res.Outcome, res.Message)
	}
}

func TestNewCheckerURL(t *testing.T) {
	for _, tt := range []struct {
		url, want string
	}{
		{"", apns.DefaultURL},
		{"https://api.push.apple.com:2197", "https://api.push.apple.com:2197"},
		{"https://api.push.apple.com/", "https://api.push.apple.com"},
		{"http://api.push.apple.com", ""},
		{"https://user:secret@api.push.apple.com", ""},
		{"https://api.push.apple.com/3/device", ""},
		{"api.push.apple.com", ""},
	} {
		t.Run(tt.url, func(t *testing.T) {
			c, err := apns.NewChecker(apns.CheckerConfig{URL: tt.url})
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("got %s, want an error", c.URL())
			case tt.want == "" && strings.Contains(err.Error(), "secret"):
				t.Errorf("error %q echoes the password", err)
			case tt.want != "" && (err != nil || c.URL() != tt.want || c.Timeout() != apns.DefaultTimeout):
				t.Errorf("got %v, want %s with the default timeout", err, tt.want)
			}
		})
	}
}
