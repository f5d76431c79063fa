package web_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/web/webtest"
)

// Bounds of the concurrency tests: enough goroutines to make the races
// real, few enough for a busy two-core machine under -race.
const (
	racingPatches   = 20 // API PATCHes with the same If-Match
	racingForms     = 8  // upload forms with the same version
	concurrentCSRs  = 4  // API CSR generations during the PATCHes
	concurrentReads = 12 // page and API reads each during the PATCHes
)

// TestConcurrentPatchSameETag has racingPatches admins PATCH the API at the
// same moment with the same If-Match ETag, each with its own valid renewal
// (a certificate for its own pending CSR, same topic). Meanwhile others
// generate CSRs through the API and read the status page and the API. The
// conditional write must let exactly one through and answer the rest 412;
// everything else must succeed; and afterwards the active certificate is
// one of those sent, matches the active key, and the history records
// exactly what succeeded.
func TestConcurrentPatchSameETag(t *testing.T) {
	ctx := context.Background()
	app := webtest.New(t, webtest.Options{})
	setupConcurrentActive(t, app)
	adminToken, viewerToken := app.Token(t, "admin"), app.Token(t, "viewer")
	viewer := app.LoginAs(t, "viewer")

	before, err := app.Service.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	etag := getETag(t, app, viewerToken)
	if etag != `W/"`+strconv.FormatInt(before.Version, 10)+`"` {
		t.Fatalf("got ETag %s, want the version %d", etag, before.Version)
	}
	certs := renewalsForNewCSRs(t, app, before.Certificate, racingPatches)
	sent := make(map[string]bool, len(certs))
	for _, c := range certs {
		sent[string(c)] = true
	}

	start := make(chan struct{})
	var wg sync.WaitGroup
	patchCodes := make([]int, racingPatches)
	for i, cert := range certs {
		body, err := json.Marshal(map[string]string{"certificate": string(cert)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			<-start
			patchCodes[i] = apiDo(t, app, http.MethodPatch, hostileAPIPath, adminToken, body, "If-Match", etag)
		})
	}
	var (
		mu          sync.Mutex
		otherErrors []string
		csrsMade    int
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		otherErrors = append(otherErrors, fmt.Sprintf(format, args...))
	}
	for range concurrentCSRs {
		wg.Go(func() {
			<-start
			code := apiDo(t, app, http.MethodPost, hostileAPIPath+"/generateApplePushNotificationCertificateSigningRequest", adminToken, nil)
			if code != http.StatusOK {
				fail("generate CSR: got %d, want 200", code)
				return
			}
			mu.Lock()
			csrsMade++
			mu.Unlock()
		})
	}
	wg.Go(func() {
		<-start
		for range concurrentReads {
			if code := apiDo(t, app, http.MethodGet, hostileAPIPath, viewerToken, nil); code != http.StatusOK {
				fail("API GET: got %d, want 200", code)
			}
		}
	})
	wg.Go(func() {
		<-start
		for range concurrentReads {
			resp, err := viewer.Get(app.URL + "/")
			if err != nil {
				fail("GET /: %v", err)
				continue
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Contains(page, []byte(`data-testid="serial"`)) {
				fail("GET / as a viewer: got %d, want 200 showing the certificate", resp.StatusCode)
			}
		}
	})
	close(start)
	wg.Wait()

	for _, e := range otherErrors {
		t.Error(e)
	}
	wins := 0
	for i, code := range patchCodes {
		switch code {
		case http.StatusOK:
			wins++
		case http.StatusPreconditionFailed:
		default:
			t.Errorf("PATCH %d: got %d, want 200 or 412", i, code)
		}
	}
	if wins != 1 {
		t.Errorf("got %d PATCHes through, want exactly 1 (codes %v)", wins, patchCodes)
	}

	after := assertActiveMatchesKey(t, app)
	if !sent[after.Certificate.PEM] {
		t.Errorf("got active certificate %s, want one of those sent", after.Certificate.SerialNumber)
	}
	if after.Version != before.Version+1 {
		t.Errorf("got version %d, want %d: one write, the refused ones recorded nothing", after.Version, before.Version+1)
	}
	// One upload when the test set up, plus the one that won; a CSR for
	// the setup, each renewal and each concurrent generation.
	assertHistory(t, app, 1+wins, 1+racingPatches+csrsMade)
}

// TestConcurrentFormUploadsSameVersion is the same race through the upload
// form: every admin's page showed the same version, so one upload goes
// through and the others are told someone else changed it first.
func TestConcurrentFormUploadsSameVersion(t *testing.T) {
	ctx := context.Background()
	app := webtest.New(t, webtest.Options{})
	setupConcurrentActive(t, app)
	admin := app.LoginAs(t, "admin")
	before, err := app.Service.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	certs := renewalsForNewCSRs(t, app, before.Certificate, racingForms)

	start := make(chan struct{})
	var wg sync.WaitGroup
	codes := make([]int, len(certs))
	for i, cert := range certs {
		body, contentType := uploadFormBody(t, cert, before.Version)
		wg.Go(func() {
			<-start
			req, err := http.NewRequest(http.MethodPost, app.URL+"/certificate?_method=PATCH", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", contentType)
			req.Header.Set("Origin", app.URL)
			resp, err := admin.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()

	wins := 0
	for i, code := range codes {
		switch code {
		case http.StatusSeeOther:
			wins++
		case http.StatusConflict:
		default:
			t.Errorf("upload %d: got %d, want 303 or 409", i, code)
		}
	}
	if wins != 1 {
		t.Errorf("got %d uploads through, want exactly 1 (codes %v)", wins, codes)
	}
	after := assertActiveMatchesKey(t, app)
	if after.Version != before.Version+1 {
		t.Errorf("got version %d, want %d", after.Version, before.Version+1)
	}
	assertHistory(t, app, 1+wins, 1+racingForms)
}

var concurrentActor = auth.User{Subject: "dev-admin", Name: "Test Admin", Email: "admin@example.com", Role: auth.RoleAdmin}

// setupConcurrentActive makes a certificate active through the real flow.
func setupConcurrentActive(t *testing.T, app *webtest.App) {
	t.Helper()
	ctx := context.Background()
	if _, err := app.Service.GenerateCSR(ctx, concurrentActor); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Service.Update(ctx, pushcert.Update{Actor: concurrentActor, AppleID: "admin@example.com", Certificate: app.IssueForLatestCSR(t, "")}); err != nil {
		t.Fatal(err)
	}
}

// renewalsForNewCSRs generates n CSRs and plays Apple for each: a renewal
// of active (same topic, later expiry) for the CSR's key, as PEM.
func renewalsForNewCSRs(t *testing.T, app *webtest.App, active *pushcert.Certificate, n int) [][]byte {
	t.Helper()
	certs := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	// Two at a time: key generation is all CPU, and the machine has two cores.
	sem := make(chan struct{}, 2)
	for i := range certs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pk, err := app.Service.GenerateCSR(context.Background(), concurrentActor)
			if err != nil {
				errs[i] = err
				return
			}
			der, err := app.CA.IssueForCSR(pk.CSRDER, applesim.Request{Topic: active.Topic, NotAfter: active.NotAfter.Add(time.Duration(i+1) * time.Hour)})
			errs[i] = err
			certs[i] = applesim.PEM(der)
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("renewal: %v", err)
		}
	}
	return certs
}

// apiDo sends one API request and returns the status; a transport error
// fails the test and returns 0.
func apiDo(t *testing.T, app *webtest.App, method, path, token string, body []byte, header ...string) int {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, app.URL+path, r)
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", method, path, err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func getETag(t *testing.T, app *webtest.App, token string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, app.URL+hostileAPIPath, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == "" {
		t.Fatalf("GET: got %d with ETag %q, want 200 with one", resp.StatusCode, resp.Header.Get("ETag"))
	}
	return resp.Header.Get("ETag")
}

// uploadFormBody is the upload form a page showing version sends.
func uploadFormBody(t *testing.T, cert []byte, version int64) ([]byte, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("apple_id", "admin@example.com")
	_ = mw.WriteField("version", strconv.FormatInt(version, 10))
	w, err := mw.CreateFormFile("certificate", "MDM_Certificate.pem")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write(cert)
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return body.Bytes(), mw.FormDataContentType()
}

// assertActiveMatchesKey checks that the stored active key is the private
// key of the active certificate, and returns the state.
func assertActiveMatchesKey(t *testing.T, app *webtest.App) pushcert.State {
	t.Helper()
	ctx := context.Background()
	st, err := app.Service.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Certificate == nil {
		t.Fatal("got no active certificate")
	}
	blk, _ := pem.Decode([]byte(st.Certificate.PEM))
	if blk == nil {
		t.Fatal("active certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := app.Store.ActiveKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if pub == nil || !pub.Equal(cert.PublicKey) {
		t.Errorf("active certificate %s does not match the active key", st.Certificate.SerialNumber)
	}
	return st
}

// assertHistory checks the audit history's successful uploads and CSRs,
// and that it records no failed upload.
func assertHistory(t *testing.T, app *webtest.App, wantUploads, wantCSRs int) {
	t.Helper()
	events, err := app.Service.History(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	count := map[pushcert.EventKind]int{}
	for _, e := range events {
		count[e.Kind]++
	}
	if count[pushcert.EventUploadSucceeded] != wantUploads || count[pushcert.EventCSRGenerated] != wantCSRs || count[pushcert.EventUploadFailed] != 0 {
		var kinds []string
		for k, n := range count {
			kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		}
		t.Errorf("got history %s, want %d uploads, %d CSRs and no failure", strings.Join(kinds, " "), wantUploads, wantCSRs)
	}
}
