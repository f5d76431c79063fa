package web_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/pushcert/pushcert/internal/browsertest"
	"github.com/pushcert/pushcert/web/webtest"
)

// browserTimeout bounds the whole browser flow, Chromium's start included.
// The flow takes a few seconds on an idle machine; the rest is room for a
// busy two-core CI runner with the race detector on.
const browserTimeout = 120 * time.Second

// TestBrowserFlow drives headless Chromium through the product as an
// administrator would use it: sign in at the provider, generate a CSR, get
// a certificate from the simulated Apple portal, upload it, see a certificate
// for another topic refused, and finally check what a viewer sees. It saves
// a screenshot of every page it visits.
func TestBrowserFlow(t *testing.T) {
	chromium := browsertest.Path(t)
	app := webtest.New(t, webtest.Options{Dev: true})
	b := startBrowser(t, chromium, screenshotDir(t))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", app.Logs.String())
		}
	})

	// 1. Sign in as the demo admin through the provider's chooser.
	b.do("open pushcert", chromedp.Navigate(app.URL))
	if loc := b.location(); !strings.HasPrefix(loc, app.Provider.Issuer()) {
		t.Fatalf("opening %s signed out: got %s, want the provider's page under %s", app.URL, loc, app.Provider.Issuer())
	}
	b.waitVisible(testID("devlogin-admin"))
	b.screenshot("provider-chooser")
	b.follow("choose the demo admin", testID("devlogin-admin"), 200)
	b.wantLocation(app.URL + "/")
	b.wantState("not-set-up", "Not set up")
	if got := b.text(testID("user-role")); got != "administrator" {
		t.Errorf("role shown: got %q, want %q", got, "administrator")
	}
	b.screenshot("status-not-set-up")

	// 2. Generate the CSR: the answer is the file itself.
	csrName, csrFile := b.download("generate a CSR", chromedp.Click(testID("generate-csr")))
	if !strings.HasSuffix(csrName, ".csr") {
		t.Errorf("CSR file name: got %q, want one ending in .csr", csrName)
	}
	csr1 := parseCSR(t, csrFile.data)
	wantLatestCSR(t, app, csr1)

	// 3. The status page now waits for Apple's certificate.
	b.do("reload the status page", chromedp.Navigate(app.URL+"/"))
	b.wantState("waiting", "CSR downloaded, waiting for Apple's certificate")
	b.waitVisible(testID("pending-csr"))
	b.waitVisible(testID("download-csr"))
	b.screenshot("status-waiting")

	// 4. Play Apple: the dev portal issues a certificate for the CSR.
	b.do("open the Dev Apple page", chromedp.Navigate(app.URL+"/dev/apple"))
	b.waitVisible(testID("dev-pending"))
	b.screenshot("dev-apple-create")
	certName, certFile := b.download("issue a certificate", chromedp.Click(testID("dev-issue")))
	if !strings.HasSuffix(certName, ".pem") {
		t.Errorf("certificate file name: got %q, want one ending in .pem", certName)
	}
	cert1 := parseCert(t, certFile.data)
	if !bytes.Equal(cert1.RawSubjectPublicKeyInfo, csr1.RawSubjectPublicKeyInfo) {
		t.Fatal("the issued certificate's public key is not the CSR's")
	}
	topic1 := certTopic(t, cert1)

	// 5. Upload it with the form.
	const appleID = "push-admin@example.com"
	b.do("open the status page", chromedp.Navigate(app.URL+"/"))
	b.do("fill in the upload form",
		chromedp.SetUploadFiles(chromedp.CSS(`input[name="certificate"]`), []string{certFile.path}),
		chromedp.SendKeys(chromedp.CSS(`input[name="apple_id"]`), appleID),
	)
	b.follow("upload the certificate", testID("upload-submit"), 200)
	b.wantLocation(app.URL + "/?done=uploaded")
	b.waitVisible(testID("confirmation"))
	b.wantState("active", "Active")
	b.wantCertificate(cert1, topic1)
	if got := b.text(testID("apple-id")); got != appleID {
		t.Errorf("Apple ID shown: got %q, want %q", got, appleID)
	}
	b.screenshot("status-active")
	// Dates are written in UTC; a viewer elsewhere also sees local time,
	// added by /static/js/localtime.js.
	b.do("view the page from New York", timezone("America/New_York"), chromedp.Navigate(app.URL+"/"))
	if got := b.text(testID("localtime")); !strings.Contains(got, "your time:") || !strings.ContainsAny(got, "ES") {
		t.Errorf("local time next to the expiry: got %q, want the viewer's time (EST/EDT)", got)
	}
	b.do("back to UTC", timezone("UTC"), chromedp.Navigate(app.URL+"/"))
	if n := b.count(`[data-testid="localtime"]`); n != 0 {
		t.Errorf("a viewer on UTC got %d local times added, want none", n)
	}
	active := activeSerial(t, app)
	if want := serialHex(cert1); active != want {
		t.Fatalf("active certificate after the upload: got serial %s, want %s", active, want)
	}

	// 6. A certificate for a new topic is refused, and nothing changes.
	// The admin comes back to it a while later: a CSR made at the very
	// instant of the upload would not count as newer than it.
	app.Clock.Advance(time.Minute)
	_, csrFile2 := b.download("generate a second CSR", chromedp.Click(testID("generate-csr")))
	csr2 := parseCSR(t, csrFile2.data)
	wantLatestCSR(t, app, csr2)
	if bytes.Equal(csr2.RawSubjectPublicKeyInfo, csr1.RawSubjectPublicKeyInfo) {
		t.Fatal("the second CSR reuses the first CSR's key")
	}
	b.do("open the Dev Apple page", chromedp.Navigate(app.URL+"/dev/apple"))
	b.waitVisible(testID("dev-pending"))
	b.do("choose a new topic", chromedp.Click(chromedp.CSS(`input[name="topic"][value="new"]`)))
	b.screenshot("dev-apple-new-topic")
	_, certFile2 := b.download("issue a certificate for a new topic", chromedp.Click(testID("dev-issue")))
	cert2 := parseCert(t, certFile2.data)
	if topic2 := certTopic(t, cert2); topic2 == topic1 {
		t.Fatalf("the dev portal's new certificate kept the topic %s", topic1)
	}

	const otherAppleID = "someone-else@example.com"
	b.do("open the status page", chromedp.Navigate(app.URL+"/"))
	b.wantState("active", "Active")
	b.wantRenewal()
	b.screenshot("status-waiting-renewal")
	b.do("fill in the upload form",
		chromedp.SetUploadFiles(chromedp.CSS(`input[name="certificate"]`), []string{certFile2.path}),
		// Empty the pre-filled Apple ID as a person would before typing.
		chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
			_, err := chromedp.Evaluate[string](`document.querySelector('input[name="apple_id"]').value = ""`)(ctx, t)
			return err
		}),
		chromedp.SendKeys(chromedp.CSS(`input[name="apple_id"]`), otherAppleID),
	)
	b.follow("upload the certificate for a new topic", testID("upload-submit"), 422)
	refusal := b.text(testID("upload-error"))
	if !strings.Contains(refusal, "re-enroll") && !strings.Contains(refusal, "topic") {
		t.Errorf("refusal: got %q, want it to mention re-enrolling or the topic", refusal)
	}
	b.waitVisible(testID("allow-topic-change"))
	if checked := b.eval(`document.querySelector('[data-testid="allow-topic-change"]').checked`); checked != "false" {
		t.Errorf("topic change confirmation: got checked=%s, want it unchecked until the admin ticks it", checked)
	}
	if got := b.value(chromedp.CSS(`input[name="apple_id"]`)); got != otherAppleID {
		t.Errorf("Apple ID input after the refusal: got %q, want the typed %q", got, otherAppleID)
	}
	b.wantCertificate(cert1, topic1)
	b.screenshot("upload-refused-topic-change")
	if got := activeSerial(t, app); got != active {
		t.Fatalf("active certificate after the refusal: got serial %s, want %s unchanged", got, active)
	}
	if st, err := app.Service.State(context.Background()); err != nil {
		t.Fatalf("state: %v", err)
	} else if st.AppleID != appleID {
		t.Errorf("Apple ID after the refusal: got %q, want %q unchanged", st.AppleID, appleID)
	}

	// 7. Sign out, sign in as the viewer: the status shows, the controls don't.
	b.follow("sign out", testID("signout"), 200)
	b.wantLocation(app.URL + "/signed-out")
	if got := b.text(testID("error-title")); got != "Signed out" {
		t.Errorf("after sign-out: got title %q, want %q", got, "Signed out")
	}
	b.screenshot("signed-out")
	b.follow("sign in again", testID("signin"), 200)
	b.waitVisible(testID("devlogin-viewer"))
	b.screenshot("provider-chooser-viewer")
	b.follow("choose the demo viewer", testID("devlogin-viewer"), 200)
	b.wantLocation(app.URL + "/")
	b.wantState("active", "Active")
	b.wantRenewal()
	b.wantCertificate(cert1, topic1)
	if got := b.text(testID("user-role")); got != "viewer" {
		t.Errorf("role shown: got %q, want %q", got, "viewer")
	}
	b.waitVisible(testID("read-only"))
	for _, sel := range []string{
		`[data-testid="generate-csr"]`,
		`[data-testid="download-csr"]`,
		`[data-testid="upload-form"]`,
		`[data-testid="upload-submit"]`,
		`form[action="/csr"]`,
		`form[action="/certificate"]`,
		`input[name="certificate"]`,
		`input[name="apple_id"]`,
	} {
		if n := b.count(sel); n != 0 {
			t.Errorf("viewer's status page: got %d elements matching %s, want none", n, sel)
		}
	}
	b.screenshot("status-viewer")

	b.do("open the history", chromedp.Navigate(app.URL+"/history"))
	b.waitVisible(testID("history-row"))
	for _, kind := range []string{"csr_generated", "upload_succeeded", "upload_failed"} {
		if n := b.count(`[data-testid="history-row"][data-kind="` + kind + `"]`); n == 0 {
			t.Errorf("history: got no %s row, want at least one", kind)
		}
	}
	b.screenshot("history-viewer")
}

// browserSession is one headless Chromium tab driven by the test. Its
// helpers stop the test at the first failure, naming the step.
type browserSession struct {
	t     *testing.T
	ctx   context.Context
	shots string // folder for the screenshots
	axe   string // axe.min.js, once the first scan has asked for it
}

// downloadedFile is a file the browser saved.
type downloadedFile struct {
	path string
	data []byte
}

// shotCount numbers the screenshots of every browser test in this test
// binary, so that one test's do not overwrite another's.
var shotCount atomic.Int32

// removeOldShots makes the screenshot folder's first use in this test
// binary remove an earlier run's numbered PNGs, and only the first: a
// second browser test must not remove the first one's.
var removeOldShots sync.Once

// screenshotDir is where the screenshots go: PUSHCERT_SCREENSHOTS, or
// artifacts/screenshots. A relative path is taken from the repository root,
// as the README names it; the test itself runs in web/. The numbered PNGs of
// an earlier run are removed when the first browser test asks.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PUSHCERT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("artifacts", "screenshots")
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot folder: %v", err)
	}
	// Screenshots of an earlier run, possibly of pages this run no longer
	// visits, would be mistaken for this run's.
	var err error
	removeOldShots.Do(func() {
		var old []string
		old, err = filepath.Glob(filepath.Join(dir, "[0-9][0-9]-*.png"))
		for _, f := range old {
			if err == nil {
				err = os.Remove(f)
			}
		}
	})
	if err != nil {
		t.Fatalf("screenshot folder: %v", err)
	}
	return dir
}

// startBrowser starts headless Chromium with a fresh profile and opens a
// tab. Only flags that keep it quiet and off the network are passed: the
// test must work without internet.
func startBrowser(t *testing.T, chromium, shots string) *browserSession {
	t.Helper()
	var output webtest.SyncBuffer
	tabCtx := browsertest.Start(t, chromium, browserTimeout, &output)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("chromium output:\n%s", output.String())
		}
	})

	b := &browserSession{t: t, ctx: tabCtx, shots: shots}
	// A fixed, desktop-sized viewport makes the screenshots comparable.
	b.do("start chromium", chromedp.EmulateViewport(1280, 900))
	return b
}

// do runs the actions, stopping the test with what failed.
func (b *browserSession) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// follow clicks an element that leads to another page, waits for that page
// to load and checks its HTTP status (after redirects).
func (b *browserSession) follow(what string, sel chromedp.CSS, wantStatus int64) {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(sel))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if resp == nil {
		b.t.Fatalf("%s: got no response for the new page", what)
	}
	if resp.Status != wantStatus {
		b.t.Fatalf("%s: got status %d at %s, want %d", what, resp.Status, resp.URL, wantStatus)
	}
}

// timezone makes the page's JavaScript see the time zone id.
func timezone(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: id})
		return err
	})
}

// download runs trigger, which must start a download, waits until the
// browser has saved the file, and returns the name the server suggested
// and the file, saved under that name in a folder of its own.
func (b *browserSession) download(what string, trigger chromedp.Action[chromedp.Void]) (string, downloadedFile) {
	b.t.Helper()
	dir := b.t.TempDir()
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	begun := chromedp.Events(ctx, browser.DownloadWillBegin)
	setDir := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
			DownloadPath:  dir,
			EventsEnabled: new(true),
		})
		return err
	})
	finished := func(ev browser.EventDownloadProgress) bool {
		return ev.State != browser.DownloadProgressStateInProgress
	}
	done, err := chromedp.Run(b.ctx, chromedp.WaitEvent(browser.DownloadProgress, finished, chromedp.Steps(setDir, trigger)))
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	if done.State != browser.DownloadProgressStateCompleted {
		b.t.Fatalf("%s: download ended %s, want %s", what, done.State, browser.DownloadProgressStateCompleted)
	}
	// The download began before it finished, so its event is queued.
	var name string
	for ev, err := range begun {
		if err != nil {
			b.t.Fatalf("%s: %v", what, err)
		}
		if ev.GUID == done.GUID {
			name = ev.SuggestedFilename
			break
		}
	}
	base := filepath.Base(name)
	if name == "" || base != name || base == "." || base == ".." {
		b.t.Fatalf("%s: got suggested file name %q, want a plain file name", what, name)
	}
	// allowAndName saves the file under the download's GUID; give it the
	// name a person would see, as the upload form's file picker would.
	path := filepath.Join(dir, base)
	if err := os.Rename(filepath.Join(dir, done.GUID), path); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return name, downloadedFile{path: path, data: data}
}

// screenshot saves the whole page as a numbered PNG, then scans it with
// axe-core (see scanA11y): every page the test visits gets both.
func (b *browserSession) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", shotCount.Add(1), name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	b.scanA11y(name)
}

// a11yViewports are the sizes every page is scanned at: the desktop the
// screenshots use (first, so the page is left at it) and a phone.
var a11yViewports = []struct {
	name          string
	width, height int64
}{
	{"phone 390x844", 390, 844},
	{"desktop 1280x900", 1280, 900},
}

// scanA11y runs axe-core on the page at phone and desktop size and fails
// the test, without stopping it, for each serious or critical violation
// (and the few moderate rules Blocking names): rule, impact, help text and
// the selectors of the elements. Other violations are logged.
func (b *browserSession) scanA11y(name string) {
	b.t.Helper()
	if b.axe == "" {
		b.axe = browsertest.Axe(b.t)
	}
	for _, vp := range a11yViewports {
		b.do("resize to "+vp.name, chromedp.EmulateViewport(vp.width, vp.height))
		vs, err := browsertest.AxeScan(b.ctx, b.axe)
		if err != nil {
			b.t.Fatalf("accessibility scan of %s at %s: %v", name, vp.name, err)
		}
		for _, v := range vs {
			if v.Blocking() {
				b.t.Errorf("accessibility of %s (%s) at %s: got %s, want no serious or critical violation and none of region", name, b.location(), vp.name, v)
			} else {
				b.t.Logf("accessibility of %s at %s, not blocking: %s", name, vp.name, v)
			}
		}
	}
}

// location is the address of the page shown.
func (b *browserSession) location() string {
	b.t.Helper()
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	return loc
}

// wantLocation checks the address of the page shown.
func (b *browserSession) wantLocation(want string) {
	b.t.Helper()
	if got := b.location(); got != want {
		b.t.Fatalf("got page %s, want %s", got, want)
	}
}

// waitVisible waits until an element matching sel is shown.
func (b *browserSession) waitVisible(sel chromedp.CSS) {
	b.t.Helper()
	b.do("wait for "+string(sel), chromedp.WaitVisible(sel))
}

// text is the text of the first element matching sel, with its whitespace
// collapsed. It reads the DOM text, so CSS that changes case does not
// matter.
func (b *browserSession) text(sel chromedp.CSS) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.TextContent(sel))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// attr is the attribute name of the first element matching sel, or "".
func (b *browserSession) attr(sel chromedp.CSS, name string) string {
	b.t.Helper()
	res, err := chromedp.Run(b.ctx, chromedp.AttributeValue(sel, name))
	if err != nil {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return res.Value
}

// value is the current value of the first form field matching sel.
func (b *browserSession) value(sel chromedp.CSS) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Value(sel))
	if err != nil {
		b.t.Fatalf("value of %s: %v", sel, err)
	}
	return v
}

// count is how many elements match the CSS selector now, without waiting:
// the page must have loaded already.
func (b *browserSession) count(sel string) int {
	b.t.Helper()
	n, err := strconv.Atoi(b.eval(`document.querySelectorAll(` + strconv.Quote(sel) + `).length`))
	if err != nil {
		b.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

// eval evaluates a JavaScript expression in the page and returns its value
// as text.
func (b *browserSession) eval(expr string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return fmt.Sprint(v)
}

// wantState checks the status badge: its stable state value and its words.
func (b *browserSession) wantState(state, label string) {
	b.t.Helper()
	sel := testID("status-state")
	b.waitVisible(sel)
	if got := b.attr(sel, "data-state"); got != state {
		b.t.Fatalf("status: got state %q (%q), want %q", got, b.text(sel), state)
	}
	if got := b.text(sel); got != label {
		b.t.Errorf("status: got %q, want %q", got, label)
	}
}

// wantRenewal checks that the status page shows a renewal in progress
// beside the certificate's health.
func (b *browserSession) wantRenewal() {
	b.t.Helper()
	b.waitVisible(testID("renewal-state"))
	if got := b.text(testID("renewal-state")); !strings.Contains(got, "Renewal in progress") || !strings.Contains(got, "waiting for Apple's certificate") {
		b.t.Errorf("renewal shown: got %q, want it to say %q and %q", got, "Renewal in progress", "waiting for Apple's certificate")
	}
}

// wantCertificate checks that the status page shows cert as the active
// certificate: topic, serial and expiry.
func (b *browserSession) wantCertificate(cert *x509.Certificate, topic string) {
	b.t.Helper()
	if got := b.text(testID("topic")); got != topic {
		b.t.Errorf("topic shown: got %q, want %q", got, topic)
	}
	if got, want := b.text(testID("serial")), serialHex(cert); got != want {
		b.t.Errorf("serial shown: got %q, want %q", got, want)
	}
	expiry := testID("expiry")
	if got, want := b.attr(expiry, "datetime"), cert.NotAfter.UTC().Format(time.RFC3339); got != want {
		b.t.Errorf("expiry shown: got datetime %q, want %q", got, want)
	}
	if got, want := b.text(expiry), cert.NotAfter.UTC().Format("2006-01-02 15:04")+" UTC"; got != want {
		b.t.Errorf("expiry shown: got %q, want %q", got, want)
	}
}

// testID selects the element a view marks with data-testid.
func testID(id string) chromedp.CSS {
	return chromedp.CSS(`[data-testid="` + id + `"]`)
}

// parseCSR parses a downloaded CSR file, which must be one PEM CSR with a
// valid self-signature.
func parseCSR(t *testing.T, data []byte) *x509.CertificateRequest {
	t.Helper()
	blk, rest := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("CSR file: got %q, want one PEM CERTIFICATE REQUEST", data)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		t.Fatalf("CSR file: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR file: %v", err)
	}
	return csr
}

// wantLatestCSR checks that csr carries the key of the service's latest
// pending CSR.
func wantLatestCSR(t *testing.T, app *webtest.App, csr *x509.CertificateRequest) {
	t.Helper()
	pk, err := app.Service.LatestCSR(context.Background())
	if err != nil {
		t.Fatalf("latest CSR: %v", err)
	}
	latest, err := x509.ParseCertificateRequest(pk.CSRDER)
	if err != nil {
		t.Fatalf("latest CSR: %v", err)
	}
	if !bytes.Equal(csr.RawSubjectPublicKeyInfo, latest.RawSubjectPublicKeyInfo) {
		t.Fatal("downloaded CSR: its public key is not the one of the service's latest CSR")
	}
}

// parseCert parses a downloaded certificate file, which must be one PEM
// certificate.
func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("certificate file: got %q, want a PEM CERTIFICATE", data)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatalf("certificate file: %v", err)
	}
	return c
}

// oidUID is the subject attribute that holds a push certificate's topic.
var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// certTopic reads the topic from the certificate's subject UID, as Apple
// puts it there.
func certTopic(t *testing.T, c *x509.Certificate) string {
	t.Helper()
	for _, atv := range c.Subject.Names {
		if s, ok := atv.Value.(string); ok && atv.Type.Equal(oidUID) {
			return s
		}
	}
	t.Fatalf("certificate %s has no topic (subject UID)", c.Subject)
	return ""
}

// serialHex writes a serial number the way pages and the service do:
// uppercase hex.
func serialHex(c *x509.Certificate) string {
	return strings.ToUpper(c.SerialNumber.Text(16))
}

// activeSerial is the serial of the service's active certificate.
func activeSerial(t *testing.T, app *webtest.App) string {
	t.Helper()
	st, err := app.Service.State(context.Background())
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	if st.Certificate == nil {
		t.Fatal("state: no active certificate")
	}
	return st.Certificate.SerialNumber
}
