package handlers

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"mime"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

const activeTopic = "com.apple.mgmt.External.aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

// withActive starts a test from an installation with an active certificate
// for activeTopic and Apple ID it@example.com, expiring in 60 days.
func withActive(t *testing.T, e *env) {
	t.Helper()
	e.activate(t, "it@example.com", applesim.Request{Topic: activeTopic, NotAfter: e.now().AddDate(0, 0, 60)})
}

func TestCertificateUpload(t *testing.T) {
	type input struct {
		fields map[string]string
		file   []byte // nil: no file chosen
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, e *env)
		input func(t *testing.T, e *env) input

		wantCode     int
		wantLocation string
		// wantTestIDs maps data-testid to text the element must contain.
		wantTestIDs map[string]string
		wantAbsent  []string                                  // data-testids that must not be there
		wantBody    []string                                  // raw markup the page must contain
		wantNot     []string                                  // raw markup the page must not contain
		check       func(t *testing.T, e *env, before active) // the state afterwards
	}{
		{
			name:  "first certificate for the pending key",
			setup: func(*testing.T, *env) {},
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				return input{map[string]string{"apple_id": "it@example.com"}, e.issue(t, pk.CSRDER, applesim.Request{Topic: activeTopic})}
			},
			wantCode:     http.StatusSeeOther,
			wantLocation: "/?done=uploaded",
			check: func(t *testing.T, e *env, _ active) {
				st := e.state(t)
				if st.Certificate == nil || st.Certificate.Topic != activeTopic || st.AppleID != "it@example.com" {
					t.Errorf("got %+v, want the certificate for %s with Apple ID it@example.com active", st, activeTopic)
				}
			},
		},
		{
			name:  "renewal with the same topic, DER file",
			setup: withActive,
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				block, _ := pem.Decode(e.issue(t, pk.CSRDER, applesim.Request{Topic: activeTopic, NotAfter: e.now().AddDate(1, 0, 0)}))
				return input{map[string]string{"apple_id": "it@example.com"}, block.Bytes}
			},
			wantCode:     http.StatusSeeOther,
			wantLocation: "/?done=uploaded",
			check: func(t *testing.T, e *env, before active) {
				if after := e.active(t); after.serial == before.serial || bytes.Equal(after.key, before.key) {
					t.Errorf("got serial %s, want the renewed certificate and its key active", after.serial)
				}
			},
		},
		{
			name:  "Apple ID only",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "mdm@example.com"}, nil}
			},
			wantCode:     http.StatusSeeOther,
			wantLocation: "/?done=appleid",
			check: func(t *testing.T, e *env, before active) {
				e.assertActiveUnchanged(t, before)
				if got := e.state(t).AppleID; got != "mdm@example.com" {
					t.Errorf("got Apple ID %q, want mdm@example.com", got)
				}
			},
		},
		{
			name: "expired certificate",
			setup: func(t *testing.T, e *env) {
				// Uploaded a minute ago: the renewal's CSR is newer.
				e.earlier(time.Minute, func() { withActive(t, e) })
			},
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				return input{map[string]string{"apple_id": "it@example.com"}, e.issue(t, pk.CSRDER, applesim.Request{
					Topic: activeTopic, NotBefore: e.now().AddDate(-1, 0, -2), NotAfter: e.now().AddDate(0, 0, -2),
				})}
			},
			wantCode: http.StatusUnprocessableEntity,
			// The reason is in the form's alert; Details points there
			// rather than repeat it.
			wantTestIDs: map[string]string{"upload-error": "expired", "refusal-banner": "nothing was changed", "upload-status": "Failed", "upload-failure-link": "see the reason below", "renewal-state": "waiting for Apple"},
			wantAbsent:  []string{"allow-topic-change", "confirmation", "upload-failure"},
			wantBody:    []string{`<a href="#upload-error" data-testid="upload-failure-link">`, `id="upload-error"`},
		},
		{
			name: "Apple ID refused after an earlier failed upload",
			setup: func(t *testing.T, e *env) {
				withActive(t, e)
				if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: []byte("not a certificate")}); err == nil {
					t.Fatal("got no error for garbage, want a refusal")
				}
			},
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "not an email"}, nil}
			},
			wantCode: http.StatusUnprocessableEntity,
			// The earlier failure is not the refusal shown, so Details
			// still gives its reason in full.
			wantTestIDs: map[string]string{"upload-error": "Apple ID", "upload-status": "Failed", "upload-failure": "ertificate"},
			wantAbsent:  []string{"upload-failure-link"},
		},
		{
			name:  "not a certificate",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "it@example.com"}, []byte("hello, I am a text file\n")}
			},
			wantCode:    http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{"upload-error": "not a certificate"},
			wantBody:    []string{`aria-invalid="true"`},
		},
		{
			name:  "certificate for a key pushcert did not make",
			setup: withActive,
			input: func(t *testing.T, e *env) input {
				key, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					t.Fatal(err)
				}
				der, err := e.ca.Issue(applesim.Request{PublicKey: &key.PublicKey, Topic: activeTopic})
				if err != nil {
					t.Fatal(err)
				}
				return input{map[string]string{"apple_id": "it@example.com"}, applesim.PEM(der)}
			},
			wantCode:    http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{"upload-error": "did not generate"},
		},
		{
			name:  "topic change refused",
			setup: withActive,
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				return input{map[string]string{"apple_id": "it@example.com"}, e.issue(t, pk.CSRDER, applesim.Request{})}
			},
			wantCode: http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{
				"upload-error":         "topic changed",
				"topic-change-warning": "must enroll again",
				"topic":                activeTopic,
			},
			wantBody: []string{`name="allow_topic_change" value="yes"`, `<label for="allow_topic_change">`},
		},
		{
			name:  "topic change allowed",
			setup: withActive,
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				return input{map[string]string{"apple_id": "it@example.com", "allow_topic_change": "yes"}, e.issue(t, pk.CSRDER, applesim.Request{})}
			},
			wantCode:     http.StatusSeeOther,
			wantLocation: "/?done=uploaded",
			check: func(t *testing.T, e *env, _ active) {
				if got := e.state(t).Certificate.Topic; got == activeTopic {
					t.Errorf("got topic %s, want the new topic", got)
				}
			},
		},
		{
			name:  "invalid Apple ID is kept in the form",
			setup: withActive,
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				return input{map[string]string{"apple_id": "not an email"}, e.issue(t, pk.CSRDER, applesim.Request{Topic: activeTopic})}
			},
			wantCode:    http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{"upload-error": "Apple ID"},
			wantBody:    []string{`value="not an email"`, `aria-invalid="true"`},
		},
		{
			name:  "HTML in the Apple ID is escaped",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": `"><script>alert(1)</script>`}, nil}
			},
			wantCode:    http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{"upload-error": "Apple ID", "apple-id": "it@example.com"},
			wantBody:    []string{`value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"`},
			wantNot:     []string{"<script>alert(1)"},
		},
		{
			name:  "Apple ID before any certificate",
			setup: func(*testing.T, *env) {},
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "it@example.com"}, nil}
			},
			wantCode:    http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{"upload-error": "no push certificate yet", "status-state": "Not set up"},
			wantBody:    []string{`value="it@example.com"`},
		},
		{
			name:  "empty file chosen",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "it@example.com"}, []byte{}}
			},
			wantCode:    http.StatusUnprocessableEntity,
			wantTestIDs: map[string]string{"upload-error": "ertificate"},
		},
		{
			name:  "file larger than 1 MiB",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "it@example.com"}, bytes.Repeat([]byte("A"), pushcert.MaxUploadSize+1)}
			},
			wantCode:    http.StatusRequestEntityTooLarge,
			wantTestIDs: map[string]string{"error-title": "File too large", "error-message": "1 MiB"},
		},
		{
			name:  "body far larger than the limit",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "it@example.com"}, bytes.Repeat([]byte("A"), 3<<20)}
			},
			wantCode:    http.StatusRequestEntityTooLarge,
			wantTestIDs: map[string]string{"error-title": "File too large"},
		},
		{
			name:  "changed by someone else since the page was loaded",
			setup: withActive,
			input: func(t *testing.T, e *env) input {
				pk := e.generateCSR(t)
				stale := strconv.FormatInt(e.state(t).Version-1, 10)
				return input{map[string]string{"apple_id": "it@example.com", "version": stale}, e.issue(t, pk.CSRDER, applesim.Request{Topic: activeTopic, NotAfter: e.now().AddDate(1, 0, 0)})}
			},
			wantCode:    http.StatusConflict,
			wantTestIDs: map[string]string{"error-title": "Changed by someone else", "error-message": "Reload"},
		},
		{
			name:  "version that is not a number",
			setup: withActive,
			input: func(*testing.T, *env) input {
				return input{map[string]string{"apple_id": "it@example.com", "version": "x"}, nil}
			},
			wantCode:    http.StatusBadRequest,
			wantTestIDs: map[string]string{"error-title": "Form not readable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.setup(t, e)
			in := tt.input(t, e)
			before := e.active(t)
			w := httptest.NewRecorder()
			NewCertificate(discardLogger(), e.svc, "Example Corp", false).Upload(w, uploadRequest(t, in.fields, in.file))

			if w.Code != tt.wantCode {
				t.Fatalf("got status %d, want %d; body:\n%s", w.Code, tt.wantCode, w.Body)
			}
			if got := w.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("got Location %q, want %q", got, tt.wantLocation)
			}
			if tt.wantCode != http.StatusSeeOther {
				assertPage(t, w)
				// Every refusal leaves the working certificate as it was.
				e.assertActiveUnchanged(t, before)
			}
			body := w.Body.String()
			for id, want := range tt.wantTestIDs {
				if got := testIDText(t, body, id); !strings.Contains(got, want) {
					t.Errorf("data-testid=%s: got %q, want it to contain %q", id, got, want)
				}
			}
			for _, id := range tt.wantAbsent {
				if n := len(findTestID(t, body, id)); n != 0 {
					t.Errorf("data-testid=%s: got %d elements, want none", id, n)
				}
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("got a page without %q, want it", want)
				}
			}
			for _, bad := range tt.wantNot {
				if strings.Contains(body, bad) {
					t.Errorf("got %q in the page, want it escaped", bad)
				}
			}
			assertSentences(t, body)
			if tt.check != nil {
				tt.check(t, e, before)
			}
		})
	}
}

// TestCertificateUploadTopicChangeFlow follows the form as a person would:
// the refusal offers the confirmation, and sending the form again from that
// page with the box ticked replaces the topic.
func TestCertificateUploadTopicChangeFlow(t *testing.T) {
	e := newEnv(t)
	withActive(t, e)
	h := NewCertificate(discardLogger(), e.svc, "Example Corp", false)
	pk := e.generateCSR(t)
	cert := e.issue(t, pk.CSRDER, applesim.Request{})
	before := e.active(t)

	w := httptest.NewRecorder()
	h.Upload(w, uploadRequest(t, map[string]string{"apple_id": "it@example.com", "version": strconv.FormatInt(e.state(t).Version, 10)}, cert))
	if w.Code != http.StatusUnprocessableEntity || len(findTestID(t, w.Body.String(), "allow-topic-change")) != 1 {
		t.Fatalf("got %d, want 422 with the topic-change confirmation", w.Code)
	}
	e.assertActiveUnchanged(t, before)

	// The page was made after the refusal was recorded, so its version is current.
	versions := findElements(t, w.Body.String(), func(a map[string]string, name string) bool { return name == "input" && a["name"] == "version" })
	if len(versions) != 1 {
		t.Fatalf("got %d version inputs, want 1", len(versions))
	}
	w = httptest.NewRecorder()
	h.Upload(w, uploadRequest(t, map[string]string{"apple_id": "it@example.com", "version": versions[0].attrs["value"], "allow_topic_change": "yes"}, cert))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/?done=uploaded" {
		t.Fatalf("got %d to %q, want 303 to /?done=uploaded; body:\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if got := e.state(t).Certificate.Topic; got == activeTopic {
		t.Errorf("got topic %s, want the new one", got)
	}
}

func TestCertificateUploadNotMultipart(t *testing.T) {
	e := newEnv(t)
	r := as(httptest.NewRequest(http.MethodPatch, "/certificate", strings.NewReader("apple_id=it%40example.com")), admin)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	NewCertificate(discardLogger(), e.svc, "Example Corp", false).Upload(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("got %d, want 400", w.Code)
	}
	assertPage(t, w)
}

func TestCertificateGenerateCSR(t *testing.T) {
	tests := []struct {
		name      string
		vendor    bool
		wantName  string // file name after the date-free prefix
		wantType  string
		csrFromIt func(t *testing.T, body []byte) []byte // the CSR DER inside the file
	}{
		{
			name:     "PEM CSR",
			wantName: ".csr",
			wantType: "application/pkcs10",
			csrFromIt: func(t *testing.T, body []byte) []byte {
				block, rest := pem.Decode(body)
				if block == nil || block.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
					t.Fatalf("got %.80q, want one PEM CERTIFICATE REQUEST", body)
				}
				return block.Bytes
			},
		},
		{
			name:     "vendor-signed request",
			vendor:   true,
			wantName: "-signed-request.plist",
			wantType: "application/octet-stream",
			csrFromIt: func(t *testing.T, body []byte) []byte {
				csr, _, _, err := pushcert.ParseVendorRequest(string(body))
				if err != nil {
					t.Fatalf("got %v, want a vendor-signed request", err)
				}
				return csr
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pushcert.Config{Organization: "Example Corp"}
			if tt.vendor {
				ca, err := testCA()
				if err != nil {
					t.Fatal(err)
				}
				// Any RSA identity signs the same way; the test CA will do,
				// checked at the instant the env's clock starts at.
				if cfg.Vendor, err = pushcert.NewVendor(ca.CertPEM(), ca.KeyPEM(), nil, testclock.Start(t)); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnvWith(t, cfg)
			withActive(t, e)
			before := e.active(t)
			h := NewCertificate(discardLogger(), e.svc, "Example Corp", false)

			w := httptest.NewRecorder()
			h.GenerateCSR(w, as(httptest.NewRequest(http.MethodPost, "/csr", nil), admin))
			if w.Code != http.StatusOK {
				t.Fatalf("got status %d, want 200", w.Code)
			}
			wantFile := "pushcert-example-corp-" + e.now().UTC().Format(time.DateOnly) + tt.wantName
			assertDownload(t, w, wantFile, tt.wantType)
			csrDER := tt.csrFromIt(t, w.Body.Bytes())
			csr, err := x509.ParseCertificateRequest(csrDER)
			if err != nil {
				t.Fatalf("got %v, want a CSR", err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Errorf("got %v, want a CSR signed by its key", err)
			}
			e.assertActiveUnchanged(t, before)

			// GET /csr gives the same file again.
			again := httptest.NewRecorder()
			h.DownloadCSR(again, as(httptest.NewRequest(http.MethodGet, "/csr", nil), admin))
			if again.Code != http.StatusOK || !bytes.Equal(again.Body.Bytes(), w.Body.Bytes()) {
				t.Errorf("got %d with another body, want 200 with the same file", again.Code)
			}
			assertDownload(t, again, wantFile, tt.wantType)

			// The certificate Apple issues for it is accepted.
			up := httptest.NewRecorder()
			h.Upload(up, uploadRequest(t, map[string]string{"apple_id": "it@example.com"}, e.issue(t, csrDER, applesim.Request{Topic: activeTopic, NotAfter: e.now().AddDate(1, 0, 0)})))
			if up.Code != http.StatusSeeOther {
				t.Errorf("got %d uploading the certificate for the CSR, want 303; body:\n%s", up.Code, up.Body)
			}
		})
	}
}

func assertDownload(t *testing.T, w *httptest.ResponseRecorder, wantFile, wantType string) {
	t.Helper()
	h := w.Header()
	if got := h.Get("Content-Type"); got != wantType {
		t.Errorf("got Content-Type %q, want %q", got, wantType)
	}
	disp, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != wantFile {
		t.Errorf("got Content-Disposition %q, want attachment named %q", h.Get("Content-Disposition"), wantFile)
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	if got := h.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("got X-Content-Type-Options %q, want nosniff", got)
	}
}

func TestCertificateDownloadCSRNonePending(t *testing.T) {
	e := newEnv(t)
	w := httptest.NewRecorder()
	NewCertificate(discardLogger(), e.svc, "Example Corp", true).DownloadCSR(w, as(httptest.NewRequest(http.MethodGet, "/csr", nil), admin))
	if w.Code != http.StatusNotFound {
		t.Fatalf("got status %d, want 404", w.Code)
	}
	assertPage(t, w)
	if got := testIDText(t, w.Body.String(), "error-message"); !strings.Contains(got, "Generate one") {
		t.Errorf("got %q, want a hint to generate a CSR", got)
	}
	if len(findTestID(t, w.Body.String(), "dev-banner")) != 1 {
		t.Errorf("got no development banner, want one in dev mode")
	}
}

func TestCSRFileName(t *testing.T) {
	at := time.Date(2027, 3, 4, 23, 30, 0, 0, time.FixedZone("east", 3*3600))
	tests := []struct {
		org      string
		vendor   bool
		wantName string
		wantType string
	}{
		{"Example Corp", false, "pushcert-example-corp-2027-03-04.csr", "application/pkcs10"},
		{"Example Corp", true, "pushcert-example-corp-2027-03-04-signed-request.plist", "application/octet-stream"},
		{"", false, "pushcert-2027-03-04.csr", "application/pkcs10"},
		{`  Ärzte & Co. "GmbH"/../x  `, false, "pushcert-rzte-co-gmbh-x-2027-03-04.csr", "application/pkcs10"},
		{strings.Repeat("ab ", 40), false, "pushcert-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-ab-a-2027-03-04.csr", "application/pkcs10"},
	}
	for _, tt := range tests {
		t.Run(tt.wantName, func(t *testing.T) {
			name, typ := csrFileName(slug(tt.org), at, tt.vendor)
			if name != tt.wantName || typ != tt.wantType {
				t.Errorf("got %q %q, want %q %q", name, typ, tt.wantName, tt.wantType)
			}
		})
	}
}

// TestCertificateUploadActiveAgain: the active certificate uploaded again
// is confirmed as already active, and nothing is recorded.
func TestCertificateUploadActiveAgain(t *testing.T) {
	e := newEnv(t)
	withActive(t, e)
	st := e.state(t)
	events, err := e.svc.History(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	h := NewCertificate(discardLogger(), e.svc, "Example Corp", false)

	w := httptest.NewRecorder()
	h.Upload(w, uploadRequest(t, map[string]string{"apple_id": "it@example.com", "version": strconv.FormatInt(st.Version, 10)}, []byte(st.Certificate.PEM)))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/?done=already-active" {
		t.Fatalf("got %d to %q, want 303 to /?done=already-active; body:\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	if after := e.state(t); after.Version != st.Version || after.UploadStatus != st.UploadStatus {
		t.Errorf("got version %d (%s), want %d (%s) unchanged", after.Version, after.UploadStatus, st.Version, st.UploadStatus)
	}
	if got, err := e.svc.History(t.Context(), 0); err != nil || len(got) != len(events) {
		t.Errorf("got %d events (%v), want %d: nothing recorded", len(got), err, len(events))
	}

	page := httptest.NewRecorder()
	NewDashboard(discardLogger(), e.svc, false).Show(page, as(httptest.NewRequest(http.MethodGet, "/?done=already-active", nil), admin))
	if got := testIDText(t, page.Body.String(), "confirmation"); !strings.Contains(got, "already the active push certificate") || strings.Contains(got, "is now the active") {
		t.Errorf("got confirmation %q, want it to say the certificate is already active", got)
	}
}

// TestCertificateUploadReplaced: the certificate that was just replaced,
// uploaded again, is refused as the replaced one, not blamed on the CSR.
func TestCertificateUploadReplaced(t *testing.T) {
	e := newEnv(t)
	e.earlier(time.Hour, func() { withActive(t, e) })
	old := e.state(t).Certificate
	pk := e.generateCSR(t)
	renewed := e.issue(t, pk.CSRDER, applesim.Request{Topic: activeTopic, NotAfter: e.now().AddDate(1, 0, 0)})
	if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: admin, Certificate: renewed}); err != nil {
		t.Fatal(err)
	}
	before := e.active(t)
	h := NewCertificate(discardLogger(), e.svc, "Example Corp", false)

	w := httptest.NewRecorder()
	h.Upload(w, uploadRequest(t, map[string]string{"apple_id": "it@example.com"}, []byte(old.PEM)))
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("got %d, want 422", w.Code)
	}
	got := testIDText(t, w.Body.String(), "upload-error")
	for _, want := range []string{"replaced on " + e.now().UTC().Format(time.DateOnly), old.SerialNumber, old.NotBefore.Format(time.DateOnly), old.NotAfter.Format(time.DateOnly)} {
		if !strings.Contains(got, want) {
			t.Errorf("got %q, want it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "did not generate") {
		t.Errorf("got %q, want no blame on the CSR", got)
	}
	e.assertActiveUnchanged(t, before)
}

// TestCertificateUploadConfirmWithoutFile: ticking "Replace the topic
// anyway" without choosing the file again is refused with what to do, and
// the confirmation is offered again; nothing is saved.
func TestCertificateUploadConfirmWithoutFile(t *testing.T) {
	e := newEnv(t)
	withActive(t, e)
	before, st := e.active(t), e.state(t)
	h := NewCertificate(discardLogger(), e.svc, "Example Corp", false)

	w := httptest.NewRecorder()
	h.Upload(w, uploadRequest(t, map[string]string{"apple_id": "new@example.com", "version": strconv.FormatInt(st.Version, 10), "allow_topic_change": "yes"}, nil))
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("got %d to %q, want 422", w.Code, w.Header().Get("Location"))
	}
	body := w.Body.String()
	if got := testIDText(t, body, "upload-error"); !strings.Contains(got, "choose the certificate file again") {
		t.Errorf("got %q, want it to say the file must be chosen again", got)
	}
	if n := len(findTestID(t, body, "allow-topic-change")); n != 1 {
		t.Errorf("got %d topic-change confirmations, want 1", n)
	}
	if got := testIDText(t, body, "topic-change-warning"); !strings.Contains(got, "choose the certificate file again") {
		t.Errorf("got warning %q, want it to say the file must be chosen again", got)
	}
	files := findElements(t, body, func(a map[string]string, name string) bool { return name == "input" && a["name"] == "certificate" })
	if len(files) != 1 {
		t.Fatalf("got %d file inputs, want 1", len(files))
	}
	if _, ok := files[0].attrs["required"]; !ok {
		t.Errorf("got file input %v, want it required while the topic change is confirmed", files[0].attrs)
	}
	if strings.Contains(body, "The Apple ID was saved") {
		t.Error("got \"The Apple ID was saved\", want a refusal")
	}
	if after := e.state(t); after.AppleID != st.AppleID || after.Version != st.Version {
		t.Errorf("got Apple ID %q version %d, want %q version %d unchanged", after.AppleID, after.Version, st.AppleID, st.Version)
	}
	e.assertActiveUnchanged(t, before)
}

// TestStatusPageVendorSigning: without vendor signing the CSR section says
// that Apple's portal takes only a vendor-signed request, how to configure
// signing and what to do without a vendor account; with it, it says the
// download is that request.
func TestStatusPageVendorSigning(t *testing.T) {
	tests := []struct {
		name       string
		vendor     bool
		wantTestID string
		wantText   []string
		wantAbsent string
	}{
		{"not configured", false, "vendor-signing-needed", []string{
			"accepts only a request signed by an MDM vendor", "A vendor-signed request is",
			"PUSHCERT_VENDOR_CERT", "PUSHCERT_VENDOR_KEY", "PUSHCERT_VENDOR_CHAIN", "README", "Without a vendor account",
		}, "vendor-signing-on"},
		{"configured", true, "vendor-signing-on", []string{"vendor-signed request", "Upload that file there as it is"}, "vendor-signing-needed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := pushcert.Config{Organization: "Example Corp"}
			if tt.vendor {
				ca, err := testCA()
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Vendor, err = pushcert.NewVendor(ca.CertPEM(), ca.KeyPEM(), nil, testclock.Start(t)); err != nil {
					t.Fatal(err)
				}
			}
			e := newEnvWith(t, cfg)
			w := httptest.NewRecorder()
			NewDashboard(discardLogger(), e.svc, false).Show(w, as(httptest.NewRequest(http.MethodGet, "/", nil), admin))
			if w.Code != http.StatusOK {
				t.Fatalf("got %d, want 200", w.Code)
			}
			body := w.Body.String()
			got := testIDText(t, body, tt.wantTestID)
			for _, want := range tt.wantText {
				if !strings.Contains(got, want) {
					t.Errorf("got %q, want it to contain %q", got, want)
				}
			}
			if n := len(findTestID(t, body, tt.wantAbsent)); n != 0 {
				t.Errorf("got %d %s, want none", n, tt.wantAbsent)
			}
		})
	}
}

// TestAPIPatchActiveAgain: the API answers the active certificate uploaded
// again with 200 and the entity unchanged (same ETag), recording nothing;
// the certificate that was replaced is a 400 replacedCertificate.
func TestAPIPatchActiveAgain(t *testing.T) {
	f := newAPIFixture(t)
	f.upload(t, activeTopic, f.now().AddDate(0, 0, 60))
	first := f.snapshot(t)
	f.upload(t, activeTopic, f.now().AddDate(1, 0, 0))
	before := f.snapshot(t)
	events, err := f.svc.History(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	etag := f.do(t, http.MethodGet, testResource, nil).Header().Get("ETag")

	w := f.do(t, http.MethodPatch, testResource, jsonBody(t, map[string]string{"certificate": before.state.Certificate.PEM}))
	if w.Code != http.StatusOK || w.Header().Get("ETag") != etag {
		t.Fatalf("got %d with ETag %q, want 200 with %q; body:\n%s", w.Code, w.Header().Get("ETag"), etag, w.Body)
	}
	if after := f.snapshot(t); after.state.Version != before.state.Version {
		t.Errorf("got version %d, want %d unchanged", after.state.Version, before.state.Version)
	}
	if got, err := f.svc.History(t.Context(), 0); err != nil || len(got) != len(events) {
		t.Errorf("got %d events (%v), want %d: nothing recorded", len(got), err, len(events))
	}

	w = f.do(t, http.MethodPatch, testResource, jsonBody(t, map[string]string{"certificate": first.state.Certificate.PEM}))
	assertAPIError(t, w, http.StatusBadRequest, pushcert.CodeReplacedCertificate, "replaced on", first.state.Certificate.SerialNumber)
	f.assertCertificateUnchanged(t, before)
}

// A refused upload names the file it came in on the status page and in the
// history.
func TestRefusedUploadNamesItsFile(t *testing.T) {
	e := newEnv(t)
	e.activate(t, "it@example.com", applesim.Request{})
	w := httptest.NewRecorder()
	NewCertificate(discardLogger(), e.svc, "Example Corp", false).Upload(w, uploadRequest(t, map[string]string{"apple_id": "it@example.com"}, []byte("not a certificate")))
	if w.Code != http.StatusUnprocessableEntity {
		t.Fatalf("got %d, want 422", w.Code)
	}
	sw := httptest.NewRecorder()
	NewDashboard(discardLogger(), e.svc, false).Show(sw, as(httptest.NewRequest(http.MethodGet, "/", nil), admin))
	if got := testIDText(t, sw.Body.String(), "upload-failure-file"); got != "push.pem" {
		t.Errorf("status page names the refused file %q, want push.pem", got)
	}
	events, err := e.svc.History(t.Context(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if events[0].Kind != pushcert.EventUploadFailed || events[0].FileName != "push.pem" {
		t.Errorf("newest event: got %s with file %q, want the refusal of push.pem", events[0].Kind, events[0].FileName)
	}
	if got := historyRow(events[0]).Detail; !strings.Contains(got, "File: push.pem.") {
		t.Errorf("history detail %q does not name the file", got)
	}
}
