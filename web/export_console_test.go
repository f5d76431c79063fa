package web_test

import (
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/pushcert/pushcert/web"
	"github.com/pushcert/pushcert/web/webtest"
)

// testPassphrase is what the tests type; no page or log may show it.
const testPassphrase = "Tr0ub4dor&3 export"

// postExport sends the export form as the browser c.
func postExport(t *testing.T, app *webtest.App, c *http.Client, format, passphrase, confirm string) (*http.Response, []byte) {
	t.Helper()
	form := url.Values{"format": {format}, "passphrase": {passphrase}, "confirm": {confirm}}
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/export", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", app.URL)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestExportConsoleRecentSignIn(t *testing.T) {
	app := newExportApp(t, webtest.Options{})
	admin := app.LoginAs(t, "admin")
	// Still within the limit: a sign-in exactly ExportSignInAge old counts.
	app.Clock.Advance(web.DefaultExportSignInAge)
	resp, body := postExport(t, app, admin, "pkcs12-compatible", testPassphrase, testPassphrase)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200 with the file", resp.StatusCode)
	}
	wantName := "push-" + activeSerial(t, app) + ".p12"
	if ct, cd := resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"); ct != "application/x-pkcs12" || cd != "attachment; filename="+wantName {
		t.Errorf("got %q, %q; want application/x-pkcs12, attachment; filename=%s", ct, cd, wantName)
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}
	key, cert, _, err := pkcs12.DecodeChain(body, testPassphrase)
	if err != nil {
		t.Fatalf("decode pkcs12 with the passphrase: %v", err)
	}
	wantPairMatches(t, app, cert, key)
	wantOneExport(t, app, "dev-admin", "the console")
	if strings.Contains(app.Logs.String(), testPassphrase) {
		t.Error("the log holds the passphrase")
	}
}

// TestExportConsoleStaleSignIn: a sign-in older than the limit sends the
// admin back to the provider, exporting and recording nothing, and after a
// fresh sign-in the admin lands on the export page and can download.
func TestExportConsoleStaleSignIn(t *testing.T) {
	app := newExportApp(t, webtest.Options{ExportSignInAge: 2 * time.Minute})
	admin := app.LoginAs(t, "admin")
	app.Clock.Advance(2*time.Minute + time.Second)

	resp, body := postExport(t, app, admin, "pkcs12-modern", testPassphrase, testPassphrase)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("got %d, want 303 to the provider", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), app.Provider.Issuer()) {
		t.Fatalf("got Location %q, want the provider at %s", resp.Header.Get("Location"), app.Provider.Issuer())
	}
	q := loc.Query()
	if q.Get("prompt") != "login" || q.Get("max_age") != "120" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		t.Errorf("got authorization query %v, want prompt=login, max_age=120, PKCE and state", q)
	}
	if strings.Contains(loc.String(), url.QueryEscape(testPassphrase)) || strings.Contains(string(body), testPassphrase) {
		t.Error("the redirect carries the passphrase")
	}
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "pkcs12") || strings.Contains(ct, "pem") {
		t.Errorf("got Content-Type %q, want no file", ct)
	}
	wantNoExport(t, app)

	// The provider signs the admin in again and pushcert brings them back
	// to the export page, asking to press Download again.
	q.Set("demo_user", "admin")
	loc.RawQuery = q.Encode()
	resp, _ = get(t, admin, loc.String())
	resp, _ = get(t, admin, resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/export?signin=renewed" {
		t.Fatalf("callback: got %d %q, want 303 to /export?signin=renewed", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page := get(t, admin, app.URL+resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="signin-renewed"`) || strings.Contains(page, testPassphrase) {
		t.Errorf("got %d, want the export page with the renewed sign-in banner and no passphrase", resp.StatusCode)
	}
	resp, _ = postExport(t, app, admin, "pkcs12-modern", testPassphrase, testPassphrase)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-pkcs12" {
		t.Fatalf("after signing in again: got %d %q, want 200 with the file", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	wantOneExport(t, app, "dev-admin", "the console")
}

// TestExportConsoleRefusals: a form refused for its passphrase is shown
// again with 422 and what to change, never echoing the passphrase, and
// nothing is exported or recorded.
func TestExportConsoleRefusals(t *testing.T) {
	tests := []struct {
		name                        string
		format, passphrase, confirm string
		wantText                    string
	}{
		{"passphrases differ", "pkcs12-modern", testPassphrase, testPassphrase + "x", "The two passphrases differ"},
		{"passphrase too short", "pkcs12-compatible", "short", "short", "The passphrase must be at least 8 characters."},
		{"no passphrase for PKCS 12", "pkcs12-compatible", "", "", "Enter a passphrase of at least 8 characters"},
		{"PEM with a passphrase", "pem", testPassphrase, testPassphrase, "A PEM file is not encrypted"},
		{"no format", "", testPassphrase, testPassphrase, "Choose one of the formats"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newExportApp(t, webtest.Options{})
			admin := app.LoginAs(t, "admin")
			resp, body := postExport(t, app, admin, tt.format, tt.passphrase, tt.confirm)
			page := string(body)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("got %d, want 422", resp.StatusCode)
			}
			if !strings.Contains(page, `data-testid="export-error"`) || !strings.Contains(page, tt.wantText) {
				t.Errorf("got page without the refusal %q", tt.wantText)
			}
			if tt.passphrase != "" && strings.Contains(page, tt.passphrase) {
				t.Error("the page shows the passphrase")
			}
			if tt.format != "" && !strings.Contains(page, `value="`+tt.format+`" checked`) {
				t.Errorf("the form lost the chosen format %s", tt.format)
			}
			wantNoExport(t, app)
		})
	}
}

func TestExportConsolePage(t *testing.T) {
	app := newExportApp(t, webtest.Options{})
	admin, viewer := app.LoginAs(t, "admin"), app.LoginAs(t, "viewer")

	resp, page := get(t, admin, app.URL+"/export")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /export: got %d, want 200", resp.StatusCode)
	}
	for _, want := range []string{
		`data-testid="export-form"`, `data-testid="export-recorded"`, `data-testid="export-download"`,
		"PKCS#12, compatible", "PKCS#12, modern", "PEM, unencrypted", "macOS Keychain",
		`type="password" id="passphrase" name="passphrase" autocomplete="new-password"`,
		`type="password" id="confirm" name="confirm" autocomplete="new-password"`,
		`value="pkcs12-compatible" checked`, activeSerial(t, app),
		"Exporting needs a sign-in from the last " + strconv.Itoa(int(web.DefaultExportSignInAge.Minutes())) + " minutes",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("export page lacks %q", want)
		}
	}
	_, status := get(t, admin, app.URL+"/")
	if !strings.Contains(status, `data-testid="export-link"`) {
		t.Error("the admin's status page has no link to the export")
	}

	// Viewers neither see the way nor get through.
	_, status = get(t, viewer, app.URL+"/")
	if strings.Contains(status, `data-testid="export-link"`) {
		t.Error("the viewer's status page links to the export")
	}
	if resp, body := get(t, viewer, app.URL+"/export"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, webtest.AdminGroup) {
		t.Errorf("viewer GET /export: got %d, want 403 naming %s", resp.StatusCode, webtest.AdminGroup)
	}
	if resp, body := postExport(t, app, viewer, "pem", "", ""); resp.StatusCode != http.StatusForbidden || strings.Contains(string(body), "PRIVATE KEY") {
		t.Errorf("viewer POST /export: got %d, want 403 and no key", resp.StatusCode)
	}
	wantNoExport(t, app)
}

func TestExportConsoleDisabled(t *testing.T) {
	app := newExportApp(t, webtest.Options{ExportDisabled: true})
	admin := app.LoginAs(t, "admin")
	resp, page := get(t, admin, app.URL+"/export")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="export-disabled"`) || strings.Contains(page, `data-testid="export-form"`) {
		t.Errorf("GET /export: got %d, want 200 saying export is off, with no form", resp.StatusCode)
	}
	if _, status := get(t, admin, app.URL+"/"); strings.Contains(status, `data-testid="export-link"`) {
		t.Error("the status page links to a turned-off export")
	}
	resp, body := postExport(t, app, admin, "pem", "", "")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "PUSHCERT_DISABLE_EXPORT") || strings.Contains(string(body), "PRIVATE KEY") {
		t.Errorf("POST /export: got %d, want 403 naming PUSHCERT_DISABLE_EXPORT and no key", resp.StatusCode)
	}
	wantNoExport(t, app)
}

func TestExportConsoleNoCertificate(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin := app.LoginAs(t, "admin")
	if resp, page := get(t, admin, app.URL+"/export"); resp.StatusCode != http.StatusOK || !strings.Contains(page, `data-testid="export-nothing"`) {
		t.Errorf("GET /export: got %d, want 200 saying there is nothing to export", resp.StatusCode)
	}
	if resp, _ := postExport(t, app, admin, "pem", "", ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("POST /export: got %d, want 409", resp.StatusCode)
	}
	wantNoExport(t, app)
}

// TestLoginReauth: /login asks the provider for a fresh sign-in only when
// told to.
func TestLoginReauth(t *testing.T) {
	app := webtest.New(t, webtest.Options{ExportSignInAge: 90 * time.Second})
	for _, tt := range []struct {
		query          string
		prompt, maxAge string
	}{
		{"?next=%2Fexport&reauth=1", "login", "90"},
		{"?next=%2Fexport", "", ""},
	} {
		resp, _ := get(t, app.Client(t), app.URL+"/login"+tt.query)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("GET /login%s: got %d %q, want 302 to the provider", tt.query, resp.StatusCode, resp.Header.Get("Location"))
		}
		if q := loc.Query(); q.Get("prompt") != tt.prompt || q.Get("max_age") != tt.maxAge {
			t.Errorf("GET /login%s: got prompt %q, max_age %q; want %q, %q", tt.query, q.Get("prompt"), q.Get("max_age"), tt.prompt, tt.maxAge)
		}
	}
}

// TestExportConsoleReauthWithoutAuthTime: a provider that does not say when
// the admin signed in (no auth_time in the ID token) cannot prove a fresh
// sign-in, so the export page says so and nothing is exported, however
// often the admin comes back.
func TestExportConsoleReauthWithoutAuthTime(t *testing.T) {
	app := newExportApp(t, webtest.Options{ExportSignInAge: 2 * time.Minute})
	app.Provider.OmitAuthTime(true)
	admin := app.LoginAs(t, "admin")
	for range 2 {
		resp, _ := postExport(t, app, admin, "pem", "", "")
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || err != nil || !strings.HasPrefix(loc.String(), app.Provider.Issuer()) {
			t.Fatalf("got %d to %q, want 303 to the provider", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := loc.Query()
		q.Set("demo_user", "admin")
		loc.RawQuery = q.Encode()
		resp, _ = get(t, admin, loc.String())
		resp, _ = get(t, admin, resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/export?signin=old" {
			t.Fatalf("callback: got %d %q, want 303 to /export?signin=old", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	wantNoExport(t, app)
}
