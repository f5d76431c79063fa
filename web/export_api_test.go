package web_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/web/webtest"
)

const exportAPIPath = "/api/pushcert/export"

// newExportApp is a running pushcert with an active certificate.
func newExportApp(t *testing.T, opts webtest.Options) *webtest.App {
	t.Helper()
	app := webtest.New(t, opts)
	setupConcurrentActive(t, app)
	return app
}

// exportAPI posts body to the export API with token and returns the
// answer and its body.
func exportAPI(t *testing.T, app *webtest.App, token, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, app.URL+exportAPIPath, strings.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// exportEvents are the key_exported events in the history.
func exportEvents(t *testing.T, app *webtest.App) []pushcert.Event {
	t.Helper()
	events, err := app.Service.History(context.Background(), 100)
	if err != nil {
		t.Fatalf("history: %v", err)
	}
	var out []pushcert.Event
	for _, e := range events {
		if e.Kind == pushcert.EventKeyExported {
			out = append(out, e)
		}
	}
	return out
}

// wantOneExport asserts the history holds exactly one export, by subject
// and through via.
func wantOneExport(t *testing.T, app *webtest.App, subject, via string) {
	t.Helper()
	events := exportEvents(t, app)
	if len(events) != 1 {
		t.Fatalf("got %d key_exported events, want 1", len(events))
	}
	e := events[0]
	if e.Actor.Subject != subject || !strings.Contains(e.Detail, via) || e.Serial != activeSerial(t, app) {
		t.Errorf("got event by %q, detail %q, serial %s; want by %s through %q, serial %s",
			e.Actor.Subject, e.Detail, e.Serial, subject, via, activeSerial(t, app))
	}
}

func wantNoExport(t *testing.T, app *webtest.App) {
	t.Helper()
	if n := len(exportEvents(t, app)); n != 0 {
		t.Errorf("got %d key_exported events, want none", n)
	}
}

// wantPairMatches asserts that cert is the active certificate and key its
// private key.
func wantPairMatches(t *testing.T, app *webtest.App, cert *x509.Certificate, key any) {
	t.Helper()
	if got, want := serialHex(cert), activeSerial(t, app); got != want {
		t.Errorf("got certificate serial %s, want the active %s", got, want)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		t.Fatalf("got key %T, want a crypto.Signer", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		t.Error("the private key does not belong to the certificate")
	}
}

// parsePEMPair reads the certificate and the PKCS#1 key of a PEM export.
func parsePEMPair(t *testing.T, data []byte) (*x509.Certificate, any) {
	t.Helper()
	var cert *x509.Certificate
	var key any
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		var err error
		switch b.Type {
		case "CERTIFICATE":
			cert, err = x509.ParseCertificate(b.Bytes)
		case "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			t.Fatalf("unexpected PEM block %q", b.Type)
		}
		if err != nil {
			t.Fatalf("parse %s: %v", b.Type, err)
		}
	}
	if cert == nil || key == nil {
		t.Fatalf("got certificate %v and key %v, want both", cert != nil, key != nil)
	}
	return cert, key
}

func TestExportAPIExportRole(t *testing.T) {
	app := newExportApp(t, webtest.Options{})
	resp, body := exportAPI(t, app, app.Token(t, "mdmhost"), "application/json", `{"format":"pem"}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %s, want 200", resp.StatusCode, body)
	}
	wantName := "push-" + activeSerial(t, app) + ".pem"
	for h, want := range map[string]string{
		"Content-Type":        "application/x-pem-file",
		"Content-Disposition": "attachment; filename=" + wantName,
		"Cache-Control":       "no-store",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s: got %q, want %q", h, got, want)
		}
	}
	cert, key := parsePEMPair(t, body)
	wantPairMatches(t, app, cert, key)
	wantOneExport(t, app, "dev-mdmhost", "the API")
	if strings.Contains(app.Logs.String(), "PRIVATE KEY") {
		t.Error("the log holds the private key")
	}

	// PKCS#12 through the API opens with its passphrase.
	resp, body = exportAPI(t, app, app.Token(t, "mdmhost"), "application/json", `{"format":"pkcs12-modern","passphrase":"correct horse battery"}`)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-pkcs12" {
		t.Fatalf("pkcs12: got %d %q, want 200 application/x-pkcs12", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	p12key, p12cert, _, err := pkcs12.DecodeChain(body, "correct horse battery")
	if err != nil {
		t.Fatalf("decode pkcs12: %v", err)
	}
	wantPairMatches(t, app, p12cert, p12key)
	if n := len(exportEvents(t, app)); n != 2 {
		t.Errorf("got %d key_exported events after two fetches, want 2", n)
	}
}

// TestExportAPIRefusals: every refused fetch exports nothing and records
// nothing.
func TestExportAPIRefusals(t *testing.T) {
	tests := []struct {
		name        string
		opts        webtest.Options
		noCert      bool
		user        string // "" sends no token
		contentType string
		body        string
		wantStatus  int
		wantCode    string
		wantText    string
	}{
		{"admin without the export role", webtest.Options{}, false, "admin", "application/json", `{"format":"pem"}`,
			http.StatusForbidden, "Forbidden", "PUSHCERT_EXPORT_GROUPS"},
		{"viewer", webtest.Options{}, false, "viewer", "application/json", `{"format":"pem"}`,
			http.StatusForbidden, "Forbidden", webtest.ExportGroup},
		{"outsider", webtest.Options{}, false, "outsider", "application/json", `{"format":"pem"}`,
			http.StatusForbidden, "Forbidden", webtest.ExportGroup},
		{"no export groups configured", webtest.Options{ExportGroups: []string{}}, false, "mdmhost", "application/json", `{"format":"pem"}`,
			http.StatusForbidden, "Forbidden", "no group has the export role"},
		{"no token", webtest.Options{}, false, "", "application/json", `{"format":"pem"}`,
			http.StatusUnauthorized, "InvalidAuthenticationToken", "bearer token"},
		{"export turned off", webtest.Options{ExportDisabled: true}, false, "mdmhost", "application/json", `{"format":"pem"}`,
			http.StatusForbidden, "exportDisabled", "PUSHCERT_DISABLE_EXPORT"},
		{"no certificate yet", webtest.Options{}, true, "mdmhost", "application/json", `{"format":"pem"}`,
			http.StatusConflict, "conflict", "no active push certificate"},
		{"short passphrase", webtest.Options{}, false, "mdmhost", "application/json", `{"format":"pkcs12-modern","passphrase":"short"}`,
			http.StatusBadRequest, "invalidRequest", "at least 8 characters"},
		{"no passphrase for PKCS 12", webtest.Options{}, false, "mdmhost", "application/json", `{"format":"pkcs12-compatible"}`,
			http.StatusBadRequest, "invalidRequest", "Enter a passphrase"},
		{"PEM with a passphrase", webtest.Options{}, false, "mdmhost", "application/json", `{"format":"pem","passphrase":"secret passphrase"}`,
			http.StatusBadRequest, "invalidRequest", "not encrypted"},
		{"unknown format", webtest.Options{}, false, "mdmhost", "application/json", `{"format":"jks"}`,
			http.StatusBadRequest, "invalidRequest", "pkcs12-compatible, pkcs12-modern, pem"},
		{"unknown property", webtest.Options{}, false, "mdmhost", "application/json", `{"format":"pem","password":"secret passphrase"}`,
			http.StatusBadRequest, "invalidRequest", `"format"`},
		{"not JSON", webtest.Options{}, false, "mdmhost", "text/plain", `format=pem`,
			http.StatusUnsupportedMediaType, "unsupportedMediaType", "application/json"},
		{"body too large", webtest.Options{}, false, "mdmhost", "application/json", `{"format":"pem","passphrase":"` + strings.Repeat("a", 20<<10) + `"}`,
			http.StatusRequestEntityTooLarge, "requestTooLarge", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := webtest.New(t, tt.opts)
			if !tt.noCert {
				setupConcurrentActive(t, app)
			}
			token := ""
			if tt.user != "" {
				token = app.Token(t, tt.user)
			}
			resp, raw := exportAPI(t, app, token, tt.contentType, tt.body)
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("got %d with %d bytes of %q, want a JSON error", resp.StatusCode, len(raw), resp.Header.Get("Content-Type"))
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			assertErrorShape(t, resp, body, tt.wantCode)
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if !strings.Contains(msg, tt.wantText) {
				t.Errorf("got message %q, want it to contain %q", msg, tt.wantText)
			}
			if strings.Contains(msg, "secret passphrase") || strings.Contains(string(raw), "PRIVATE KEY") {
				t.Errorf("the refusal quotes the passphrase or a key: %q", raw)
			}
			wantNoExport(t, app)
		})
	}
}
