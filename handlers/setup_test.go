package handlers

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// The people in the tests.
var (
	admin  = auth.User{Subject: "sub-ada", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}
	viewer = auth.User{Subject: "sub-vic", Name: "Vic Viewer", Email: "vic@example.com", Role: auth.RoleViewer}
)

// testCA plays Apple in every test. Making an RSA key is slow, so all tests
// share one authority; each still gets its own store and service.
var testCA = sync.OnceValues(func() (*applesim.CA, error) {
	return applesim.NewCA(applesim.AppleCAName, testclock.Now)
})

// caOn returns the authority shared returns, issuing on now: a copy, so
// that every test issues from the one slow-to-make key, each on its own
// clock (a Request without NotBefore is valid from an hour before now()).
func caOn(tb testing.TB, shared func() (*applesim.CA, error), now func() time.Time) *applesim.CA {
	tb.Helper()
	ca, err := shared()
	if err != nil {
		tb.Fatal(err)
	}
	c := *ca
	c.Now = now
	return &c
}

// env is a real service over a real SQLite store on t.TempDir(). Its clock
// starts at the tests' instant (testclock.Start, so PUSHCERT_TEST_NOW sets
// it) and moves only when a test moves it; the service, the handlers built
// on it and the authority's default validity all read it.
type env struct {
	svc *pushcert.Service
	st  *store.DB
	ca  *applesim.CA
	clk *testclock.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, pushcert.Config{Organization: "Example Corp"})
}

// newEnvWith builds an env whose service has cfg. cfg.Now must be nil: the
// service runs on the env's clock, so that the certificates a test makes
// and the service's checks agree on the time.
func newEnvWith(t *testing.T, cfg pushcert.Config) *env {
	t.Helper()
	if cfg.Now != nil {
		t.Fatal("newEnvWith: cfg.Now is set; the service runs on the env's clock (move it with e.clk)")
	}
	clk := testclock.New(t)
	cfg.Now = clk.Now
	if cfg.TrustRoots == nil {
		cfg.TrustRoots = caOn(t, testCA, clk.Now).Pool() // pushcert trusts no CA by its name
	}
	kr, err := store.NewKeyring(strings.Repeat("k", 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "p.db"), kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &env{svc: pushcert.NewService(st, cfg), st: st, ca: caOn(t, testCA, clk.Now), clk: clk}
}

// now is the time on the env's clock, the service's "now".
func (e *env) now() time.Time {
	return e.clk.Now()
}

// earlier runs fn on the clock d back, then puts the clock back: what fn
// does happened d ago, so what the test does next comes after it, while
// "now", and the day pages count from, stays where it was. (Moving the
// clock forward instead could cross midnight.)
func (e *env) earlier(d time.Duration, fn func()) {
	now := e.clk.Now()
	e.clk.Set(now.Add(-d))
	defer e.clk.Set(now)
	fn()
}

func discardLogger() *slog.Logger {
	return slog.New(slog.DiscardHandler)
}

// generateCSR hands out a CSR as an admin would.
func (e *env) generateCSR(t *testing.T) pushcert.PendingKey {
	t.Helper()
	pk, err := e.svc.GenerateCSR(context.Background(), admin)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// issue plays Apple: a PEM push certificate for the CSR's key.
func (e *env) issue(t *testing.T, csrDER []byte, req applesim.Request) []byte {
	t.Helper()
	der, err := e.ca.IssueForCSR(csrDER, req)
	if err != nil {
		t.Fatal(err)
	}
	return applesim.PEM(der)
}

// activate walks the whole flow once: a CSR, Apple's certificate for it,
// the upload. It returns the active state.
func (e *env) activate(t *testing.T, appleID string, req applesim.Request) pushcert.State {
	t.Helper()
	pk := e.generateCSR(t)
	st, err := e.svc.Update(context.Background(), pushcert.Update{
		Actor:       admin,
		AppleID:     appleID,
		Certificate: e.issue(t, pk.CSRDER, req),
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *env) state(t *testing.T) pushcert.State {
	t.Helper()
	st, err := e.svc.State(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// active is what must survive a failed write: the active certificate's
// serial and its private key.
type active struct {
	serial string
	key    []byte
}

func (e *env) active(t *testing.T) active {
	t.Helper()
	var a active
	if c := e.state(t).Certificate; c != nil {
		a.serial = c.SerialNumber
	}
	key, err := e.st.ActiveKey(context.Background())
	if err != nil && !errors.Is(err, pushcert.ErrNotFound) {
		t.Fatal(err)
	}
	a.key = key
	return a
}

func (e *env) assertActiveUnchanged(t *testing.T, before active) {
	t.Helper()
	after := e.active(t)
	if after.serial != before.serial || !bytes.Equal(after.key, before.key) {
		t.Errorf("got active certificate %q (key changed: %v), want %q unchanged", after.serial, !bytes.Equal(after.key, before.key), before.serial)
	}
}

// as returns r sent by u, as web's middleware would hand it on.
func as(r *http.Request, u auth.User) *http.Request {
	return r.WithContext(auth.WithUser(r.Context(), u))
}

// uploadRequest builds the upload form as a browser sends it: multipart,
// with _method=PATCH and, when file is not nil, a certificate file.
func uploadRequest(t *testing.T, fields map[string]string, file []byte) *http.Request {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("_method", "PATCH"); err != nil {
		t.Fatal(err)
	}
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	name := ""
	if file != nil {
		name = "push.pem"
	}
	fw, err := mw.CreateFormFile("certificate", name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(file); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPatch, "/certificate", &body)
	r.Header.Set("Content-Type", mw.FormDataContentType())
	return as(r, admin)
}

// node is an element found by its data-testid.
type node struct {
	attrs map[string]string
	text  string // all text inside, spaces collapsed
}

// findTestID returns the elements with data-testid=id in an HTML page.
func findTestID(t *testing.T, page, id string) []node {
	t.Helper()
	return findElements(t, page, func(attrs map[string]string, _ string) bool {
		return attrs["data-testid"] == id
	})
}

// findElements walks an HTML page (templ writes well-formed markup, so the
// lenient XML decoder reads it) and returns the elements match accepts.
func findElements(t *testing.T, page string, match func(attrs map[string]string, name string) bool) []node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(page))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	type open struct {
		n     *node
		depth int
		text  strings.Builder
	}
	var (
		found []node
		stack []*open
		depth int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("page is not well-formed: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			// Element boundaries separate words, as they do on screen
			// (templ drops the whitespace between elements).
			for _, o := range stack {
				o.text.WriteByte(' ')
			}
			depth++
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Name.Local] = a.Value
			}
			if match(attrs, tok.Name.Local) {
				stack = append(stack, &open{n: &node{attrs: attrs}, depth: depth})
			}
		case xml.EndElement:
			for _, o := range stack {
				o.text.WriteByte(' ')
			}
			if n := len(stack); n > 0 && stack[n-1].depth == depth {
				o := stack[n-1]
				stack = stack[:n-1]
				o.n.text = strings.Join(strings.Fields(o.text.String()), " ")
				found = append(found, *o.n)
			}
			depth--
		case xml.CharData:
			for _, o := range stack {
				o.text.Write(tok)
			}
		}
	}
	return found
}

// testIDText returns the text of the only element with data-testid=id.
func testIDText(t *testing.T, page, id string) string {
	t.Helper()
	nodes := findTestID(t, page, id)
	if len(nodes) != 1 {
		t.Fatalf("got %d elements with data-testid=%q, want 1", len(nodes), id)
	}
	return nodes[0].text
}

// assertPage checks what every page must be: a full page in the layout and
// nothing the Content-Security-Policy would block (inline script or style).
func assertPage(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("got Content-Type %q, want text/html; charset=utf-8", ct)
	}
	body := w.Body.String()
	if !strings.HasPrefix(body, "<!doctype html>") && !strings.HasPrefix(body, "<!DOCTYPE html>") {
		t.Errorf("got a body starting %.40q, want a whole page", body)
	}
	for _, bad := range []string{" style=", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("got %q in the page, want none (the CSP forbids inline code)", bad)
		}
	}
	// A script may only be a file from /static/js/, never inline code.
	scripts := findElements(t, body, func(_ map[string]string, name string) bool { return name == "script" })
	if n := strings.Count(body, "<script"); n != len(scripts) {
		t.Errorf("got %d \"<script\" in the page but %d script elements, want every one a whole element", n, len(scripts))
	}
	for _, sc := range scripts {
		if !strings.HasPrefix(sc.attrs["src"], "/static/js/") || sc.text != "" {
			t.Errorf("got script %+v, want only src=/static/js/… and no inline code (the CSP forbids it)", sc)
		}
	}
	// Every visible input has a label.
	labels := map[string]bool{}
	for _, l := range findElements(t, body, func(_ map[string]string, name string) bool { return name == "label" }) {
		labels[l.attrs["for"]] = true
	}
	inputs := findElements(t, body, func(a map[string]string, name string) bool { return name == "input" && a["type"] != "hidden" })
	for _, in := range inputs {
		if id := in.attrs["id"]; id == "" || !labels[id] {
			t.Errorf("got input %q without a <label for>, want one", in.attrs["name"])
		}
	}
}

// parsePEMCertificate reads a PEM certificate a handler answered with.
func parsePEMCertificate(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("got %.60q, want a PEM certificate", data)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// endOfDay is the last whole second of t's UTC date: certificates keep
// whole seconds, so it is the latest expiry that is still "today".
func endOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 23, 59, 59, 0, time.UTC)
}
