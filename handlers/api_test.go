package handlers

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// The example request and response bodies of the seed pages
// create-applepushnotificationcertificate.md and
// update-applepushnotificationcertificate.md, as written there.
const (
	seedCreateRequest = `{
  "@odata.type": "#microsoft.graph.applePushNotificationCertificate",
  "appleIdentifier": "Apple Identifier value",
  "topicIdentifier": "Topic Identifier value",
  "expirationDateTime": "2017-01-01T00:01:09.280378+03:00",
  "certificateUploadStatus": "Certificate Upload Status value",
  "certificateUploadFailureReason": "Certificate Upload Failure Reason value",
  "certificate": "Certificate value"
}`
	seedCreateResponse = `{
  "@odata.type": "#microsoft.graph.applePushNotificationCertificate",
  "id": "0eaa910c-910c-0eaa-0c91-aa0e0c91aa0e",
  "appleIdentifier": "Apple Identifier value",
  "topicIdentifier": "Topic Identifier value",
  "lastModifiedDateTime": "2016-12-31T23:58:46.8102575+03:00",
  "expirationDateTime": "2017-01-01T00:01:09.280378+03:00",
  "certificateUploadStatus": "Certificate Upload Status value",
  "certificateUploadFailureReason": "Certificate Upload Failure Reason value",
  "certificate": "Certificate value"
}`
	seedUpdateRequest = `{
  "@odata.type": "#microsoft.graph.applePushNotificationCertificate",
  "appleIdentifier": "Apple Identifier value",
  "topicIdentifier": "Topic Identifier value",
  "expirationDateTime": "2017-01-01T00:01:27.2282595+03:00",
  "certificateUploadStatus": "Certificate Upload Status value",
  "certificateUploadFailureReason": "Certificate Upload Failure Reason value",
  "certificate": "Certificate value"
}`
	seedUpdateResponse = `{
  "@odata.type": "#microsoft.graph.applePushNotificationCertificate",
  "id": "6bcc9004-9004-6bcc-0490-cc6b0490cc6b",
  "appleIdentifier": "Apple Identifier value",
  "topicIdentifier": "Topic Identifier value",
  "lastModifiedDateTime": "2016-12-31T23:58:21.1327021+03:00",
  "expirationDateTime": "2017-01-01T00:01:27.2282595+03:00",
  "certificateUploadStatus": "Certificate Upload Status value",
  "certificateUploadFailureReason": "Certificate Upload Failure Reason value",
  "certificate": "Certificate value"
}`
)

// apiExtraProperties are the properties pushcert documents beyond the seed
// responses'.
var apiExtraProperties = []string{"certificateSerialNumber", "@odata.context", "@odata.etag"}

const (
	testBaseURL  = "https://pushcert.example.com"
	testResource = "/v1.0/deviceManagement/applePushNotificationCertificate"
	testAppleID  = "mdm@example.com"
)

var testAPIAdmin = auth.User{Subject: "admin-1", Name: "Ada Admin", Email: "ada@example.com", Role: auth.RoleAdmin}

// apiTestCA is one Apple-named CA for the whole package: making its RSA key
// is the slow part.
var apiTestCA = sync.OnceValues(func() (*applesim.CA, error) {
	return applesim.NewCA(applesim.AppleCAName, testclock.Now)
})

// apiFixture is a real service over SQLite on t.TempDir(), with the API
// mounted the way web/routes.go mounts it. Like env, it runs on a clock of
// its own, starting at the tests' instant: the service and the
// certificates the fixture issues read it.
type apiFixture struct {
	svc   *pushcert.Service
	st    *store.DB
	clk   *testclock.Clock
	ca    *applesim.CA // issues on clk
	h     http.Handler
	reqID atomic.Int64
}

// apiConfig is the fixtures' service configuration: pushcert trusts no CA
// by its name, so the test CA is trusted explicitly.
func apiConfig(t testing.TB, clk *testclock.Clock) pushcert.Config {
	t.Helper()
	return pushcert.Config{Organization: "Example Org", Now: clk.Now, TrustRoots: caOn(t, apiTestCA, clk.Now).Pool()}
}

func newAPIFixture(t testing.TB) *apiFixture {
	t.Helper()
	return newAPIFixtureOver(t, nil)
}

// newAPIFixtureOver is newAPIFixture with wrap, when not nil, standing
// between the service and the real store: a test's way into the calls the
// service makes.
func newAPIFixtureOver(t testing.TB, wrap func(*store.DB) pushcert.Store) *apiFixture {
	t.Helper()
	kr, err := store.NewKeyring(strings.Repeat("k", 32))
	if err != nil {
		t.Fatalf("keyring: %v", err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "p.db"), kr)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	var svcStore pushcert.Store = st
	if wrap != nil {
		svcStore = wrap(st)
	}
	clk := testclock.New(t)
	f := &apiFixture{
		st:  st,
		svc: pushcert.NewService(svcStore, apiConfig(t, clk)),
		clk: clk,
		ca:  caOn(t, apiTestCA, clk.Now),
	}
	api := NewAPI(slog.New(slog.DiscardHandler), f.svc, testBaseURL+"/")
	mux := http.NewServeMux()
	for _, p := range []string{"/v1.0", "/beta"} {
		base := p + "/deviceManagement/applePushNotificationCertificate"
		mux.HandleFunc("GET "+base, api.Get)
		mux.HandleFunc("PATCH "+base, api.Patch)
		mux.HandleFunc("POST "+base, api.Create)
		for _, suffix := range []string{"", "()"} {
			mux.HandleFunc("POST "+base+"/generateApplePushNotificationCertificateSigningRequest"+suffix, api.GenerateCSR)
			mux.HandleFunc("GET "+base+"/downloadApplePushNotificationCertificateSigningRequest"+suffix, api.DownloadCSR)
		}
		mux.HandleFunc(p+"/", api.NotFound)
	}
	f.h = f.middleware(mux)
	return f
}

// middleware stands in for web's: it sets the request-id headers as
// logRequests does and puts the signed-in admin in the context as the
// bearer-token check does.
func (f *apiFixture) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(HeaderRequestID, fmt.Sprintf("test-request-%d", f.reqID.Add(1)))
		if c := r.Header.Get(HeaderClientRequestID); c != "" {
			w.Header().Set(HeaderClientRequestID, c)
		}
		next.ServeHTTP(w, r.WithContext(auth.WithUser(r.Context(), testAPIAdmin)))
	})
}

// do sends a request through the fixture. A body gets Content-Type
// application/json unless the header pairs set one ("" removes it).
func (f *apiFixture) do(t testing.TB, method, target string, body []byte, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			r.Header.Del(header[i])
			continue
		}
		r.Header.Add(header[i], header[i+1])
	}
	if header := r.Header.Values("Content-Type"); len(header) > 1 {
		r.Header.Set("Content-Type", header[len(header)-1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	return w
}

// now is the time on the fixture's clock, the service's "now".
func (f *apiFixture) now() time.Time {
	return f.clk.Now()
}

// issue makes a new CSR through the service and has the test CA issue a
// push certificate for it, valid from an hour before now until notAfter
// (or, when notAfter is already past, for the year up to it); it returns
// the DER.
func (f *apiFixture) issue(t testing.TB, topic string, notAfter time.Time) []byte {
	t.Helper()
	pk, err := f.svc.GenerateCSR(context.Background(), testAPIAdmin)
	if err != nil {
		t.Fatalf("generate csr: %v", err)
	}
	notBefore := f.now().Add(-time.Hour)
	if !notBefore.Before(notAfter) {
		notBefore = notAfter.AddDate(-1, 0, 0)
	}
	der, err := f.ca.IssueForCSR(pk.CSRDER, applesim.Request{Topic: topic, NotBefore: notBefore, NotAfter: notAfter})
	if err != nil {
		t.Fatalf("issue certificate: %v", err)
	}
	return der
}

// upload makes a certificate for topic active through the API and returns
// the response entity.
func (f *apiFixture) upload(t testing.TB, topic string, notAfter time.Time) map[string]any {
	t.Helper()
	cert := applesim.PEM(f.issue(t, topic, notAfter))
	w := f.do(t, http.MethodPatch, testResource, jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": string(cert)}))
	if w.Code != http.StatusOK {
		t.Fatalf("upload: got %d %s, want 200", w.Code, w.Body)
	}
	return decodeAPIObject(t, w)
}

// snapshot is everything a refused write must leave as it was.
type apiSnapshot struct {
	state pushcert.State
	key   []byte
}

func (f *apiFixture) snapshot(t testing.TB) apiSnapshot {
	t.Helper()
	st, err := f.st.State(context.Background())
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	key, err := f.st.ActiveKey(context.Background())
	if err != nil {
		t.Fatalf("active key: %v", err)
	}
	return apiSnapshot{state: st, key: key}
}

// assertCertificateUnchanged checks that the active certificate and key
// are byte for byte those of before.
func (f *apiFixture) assertCertificateUnchanged(t testing.TB, before apiSnapshot) {
	t.Helper()
	after := f.snapshot(t)
	if !reflect.DeepEqual(after.state.Certificate, before.state.Certificate) {
		t.Errorf("active certificate: got %+v, want unchanged %+v", after.state.Certificate, before.state.Certificate)
	}
	if !bytes.Equal(after.key, before.key) {
		t.Errorf("active key changed")
	}
	if after.state.AppleID != before.state.AppleID {
		t.Errorf("apple id: got %q, want unchanged %q", after.state.AppleID, before.state.AppleID)
	}
}

func jsonBody(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal body: %v", err)
	}
	return b
}

// responseBody returns the body, decompressed when it was gzip-encoded.
func responseBody(t testing.TB, w *httptest.ResponseRecorder) []byte {
	t.Helper()
	if w.Header().Get("Content-Encoding") != "gzip" {
		return w.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(w.Body.Bytes()))
	if err != nil {
		t.Fatalf("gzip response: %v", err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip response: %v", err)
	}
	return b
}

func decodeAPIObject(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(responseBody(t, w), &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, w.Body)
	}
	return m
}

// testAPIError is the error shape as a client reads it.
type testAPIError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Date            string `json:"date"`
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// assertAPIError checks the status, the error shape and its code, and that
// the message contains each of texts.
func assertAPIError(t testing.TB, w *httptest.ResponseRecorder, status int, code string, texts ...string) testAPIError {
	t.Helper()
	var e testAPIError
	if err := json.Unmarshal(responseBody(t, w), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, w.Body)
	}
	if w.Code != status || e.Error.Code != code {
		t.Errorf("got %d %q, want %d %q (body %s)", w.Code, e.Error.Code, status, code, w.Body)
	}
	for _, text := range texts {
		if !strings.Contains(e.Error.Message, text) {
			t.Errorf("message %q: want it to contain %q", e.Error.Message, text)
		}
	}
	if got := w.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
		t.Errorf("Content-Type: got %q, want application/json; charset=utf-8", got)
	}
	return e
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestAPIContractSeedExamples(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		request    string
		response   string
		existing   bool // a certificate is active before the request
		wantStatus int
	}{
		{"create", http.MethodPost, seedCreateRequest, seedCreateResponse, false, http.StatusCreated},
		{"update", http.MethodPatch, seedUpdateRequest, seedUpdateResponse, true, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name+" with a real certificate", func(t *testing.T) {
			f := newAPIFixture(t)
			topic := applesim.NewTopic()
			if tt.existing {
				f.upload(t, topic, f.now().AddDate(0, 10, 0))
			}
			cert := string(applesim.PEM(f.issue(t, topic, f.now().AddDate(1, 0, 0))))
			quoted, _ := json.Marshal(cert)
			// Both are placeholders: the Apple ID must be an email address.
			body := strings.Replace(tt.request, `"Certificate value"`, string(quoted), 1)
			body = strings.Replace(body, `"Apple Identifier value"`, `"`+testAppleID+`"`, 1)

			w := f.do(t, tt.method, testResource, []byte(body))
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			var seed map[string]any
			if err := json.Unmarshal([]byte(tt.response), &seed); err != nil {
				t.Fatalf("seed response: %v", err)
			}
			want := append(sortedKeys(seed), apiExtraProperties...)
			slices.Sort(want)
			got := decodeAPIObject(t, w)
			if keys := sortedKeys(got); !slices.Equal(keys, want) {
				t.Errorf("properties: got %v, want %v", keys, want)
			}
			for k, v := range got {
				s, ok := v.(string)
				if !ok {
					t.Errorf("%s: got %T %v, want a JSON string", k, v, v)
					continue
				}
				if strings.HasSuffix(k, "DateTime") {
					if _, err := time.Parse(time.RFC3339, s); err != nil {
						t.Errorf("%s: got %q, want RFC 3339: %v", k, s, err)
					}
				}
			}
			wantValues := map[string]any{
				"@odata.type":                    "#microsoft.graph.applePushNotificationCertificate",
				"@odata.context":                 testBaseURL + "/v1.0/$metadata#deviceManagement/applePushNotificationCertificate/$entity",
				"@odata.etag":                    w.Header().Get("ETag"),
				"appleIdentifier":                testAppleID,
				"topicIdentifier":                topic,
				"certificateUploadStatus":        "succeeded",
				"certificateUploadFailureReason": "",
				"certificate":                    cert,
			}
			for k, v := range wantValues {
				if got[k] != v {
					t.Errorf("%s: got %v, want %v", k, got[k], v)
				}
			}
			if tt.wantStatus == http.StatusCreated {
				if loc := w.Header().Get("Location"); loc != testBaseURL+testResource {
					t.Errorf("Location: got %q, want %q", loc, testBaseURL+testResource)
				}
			}
		})
		t.Run(tt.name+" as written", func(t *testing.T) {
			f := newAPIFixture(t)
			var before apiSnapshot
			if tt.existing {
				f.upload(t, applesim.NewTopic(), f.now().AddDate(1, 0, 0))
				before = f.snapshot(t)
			}
			// Both "Apple Identifier value" and "Certificate value" are
			// invalid; the issue asks that the certificate be named, so the
			// service must judge the certificate before the Apple ID.
			w := f.do(t, tt.method, testResource, []byte(tt.request))
			assertAPIError(t, w, http.StatusBadRequest, pushcert.CodeInvalidCertificate, "certificate: ")
			if tt.existing {
				f.assertCertificateUnchanged(t, before)
			}
		})
	}
}

func TestAPIGet(t *testing.T) {
	f := newAPIFixture(t)
	w := f.do(t, http.MethodGet, testResource, nil)
	assertAPIError(t, w, http.StatusNotFound, "notFound", "No push certificate")

	topic := applesim.NewTopic()
	uploaded := f.upload(t, topic, f.now().AddDate(1, 0, 0))
	for _, prefix := range []string{"/v1.0", "/beta"} {
		w = f.do(t, http.MethodGet, prefix+"/deviceManagement/applePushNotificationCertificate", nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: got %d %s, want 200", prefix, w.Code, w.Body)
		}
		got := decodeAPIObject(t, w)
		if got["topicIdentifier"] != topic || got["appleIdentifier"] != testAppleID {
			t.Errorf("got topic %v apple id %v, want %s %s", got["topicIdentifier"], got["appleIdentifier"], topic, testAppleID)
		}
		if got["certificate"] != uploaded["certificate"] || got["certificateSerialNumber"] != uploaded["certificateSerialNumber"] {
			t.Errorf("got certificate %v, want the uploaded one", got["certificateSerialNumber"])
		}
		if want := testBaseURL + prefix + "/$metadata#deviceManagement/applePushNotificationCertificate/$entity"; got["@odata.context"] != want {
			t.Errorf("@odata.context: got %v, want %s", got["@odata.context"], want)
		}
		etag := w.Header().Get("ETag")
		if !strings.HasPrefix(etag, `W/"`) || got["@odata.etag"] != etag {
			t.Errorf("ETag: got header %q and @odata.etag %v, want the same W/\"...\"", etag, got["@odata.etag"])
		}
		for h, want := range map[string]string{
			"Content-Type":  "application/json; charset=utf-8",
			"Cache-Control": "no-store",
		} {
			if w.Header().Get(h) != want {
				t.Errorf("%s: got %q, want %q", h, w.Header().Get(h), want)
			}
		}
	}
}

func TestAPIPatch(t *testing.T) {
	tests := []struct {
		name        string
		existing    bool // a certificate for the topic is active first
		body        func(t *testing.T, f *apiFixture, topic string) []byte
		wantStatus  int
		wantCode    string // for errors
		wantAppleID string // for successes
	}{
		{
			name:     "apple id only",
			existing: true,
			body: func(t *testing.T, _ *apiFixture, _ string) []byte {
				return jsonBody(t, map[string]string{"appleIdentifier": "new-owner@example.com"})
			},
			wantStatus:  http.StatusOK,
			wantAppleID: "new-owner@example.com",
		},
		{
			name: "certificate as PEM",
			body: func(t *testing.T, f *apiFixture, topic string) []byte {
				der := f.issue(t, topic, f.now().AddDate(1, 0, 0))
				return jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": string(applesim.PEM(der))})
			},
			wantStatus:  http.StatusOK,
			wantAppleID: testAppleID,
		},
		{
			name: "certificate as bare base64 DER",
			body: func(t *testing.T, f *apiFixture, topic string) []byte {
				der := f.issue(t, topic, f.now().AddDate(1, 0, 0))
				return jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": base64.StdEncoding.EncodeToString(der)})
			},
			wantStatus:  http.StatusOK,
			wantAppleID: testAppleID,
		},
		{
			name:     "renewal keeps the apple id",
			existing: true,
			body: func(t *testing.T, f *apiFixture, topic string) []byte {
				der := f.issue(t, topic, f.now().AddDate(2, 0, 0))
				return jsonBody(t, map[string]string{"certificate": string(applesim.PEM(der))})
			},
			wantStatus:  http.StatusOK,
			wantAppleID: testAppleID,
		},
		{
			name: "apple id before any certificate",
			body: func(t *testing.T, _ *apiFixture, _ string) []byte {
				return jsonBody(t, map[string]string{"appleIdentifier": testAppleID})
			},
			wantStatus: http.StatusBadRequest,
			wantCode:   pushcert.CodeNoCertificate,
		},
		{
			name: "first certificate without an apple id",
			body: func(t *testing.T, f *apiFixture, topic string) []byte {
				der := f.issue(t, topic, f.now().AddDate(1, 0, 0))
				return jsonBody(t, map[string]string{"certificate": string(applesim.PEM(der))})
			},
			wantStatus: http.StatusBadRequest,
			wantCode:   pushcert.CodeInvalidAppleID,
		},
		{
			// Empty keeps the stored Apple ID, as in the form: with nothing
			// else sent, there is nothing to update.
			name:     "empty apple id",
			existing: true,
			body: func(t *testing.T, _ *apiFixture, _ string) []byte {
				return []byte(`{"appleIdentifier": "  "}`)
			},
			wantStatus: http.StatusBadRequest,
			wantCode:   pushcert.CodeNothingToUpdate,
		},
		{
			name:     "empty apple id with a renewal keeps the stored one",
			existing: true,
			body: func(t *testing.T, f *apiFixture, topic string) []byte {
				der := f.issue(t, topic, f.now().AddDate(2, 0, 0))
				return jsonBody(t, map[string]string{"appleIdentifier": "", "certificate": string(applesim.PEM(der))})
			},
			wantStatus:  http.StatusOK,
			wantAppleID: testAppleID,
		},
		{
			name:     "only derived properties",
			existing: true,
			body: func(t *testing.T, _ *apiFixture, _ string) []byte {
				return []byte(`{"topicIdentifier": "x", "expirationDateTime": null}`)
			},
			wantStatus: http.StatusBadRequest,
			wantCode:   pushcert.CodeNothingToUpdate,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			topic := applesim.NewTopic()
			if tt.existing {
				f.upload(t, topic, f.now().AddDate(1, 0, 0))
			}
			w := f.do(t, http.MethodPatch, testResource, tt.body(t, f, topic))
			if tt.wantStatus != http.StatusOK {
				assertAPIError(t, w, tt.wantStatus, tt.wantCode)
				return
			}
			if w.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", w.Code, w.Body, tt.wantStatus)
			}
			got := decodeAPIObject(t, w)
			if got["appleIdentifier"] != tt.wantAppleID || got["topicIdentifier"] != topic || got["certificateUploadStatus"] != "succeeded" {
				t.Errorf("got apple id %v topic %v status %v, want %s %s succeeded",
					got["appleIdentifier"], got["topicIdentifier"], got["certificateUploadStatus"], tt.wantAppleID, topic)
			}
			st, err := f.svc.State(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.AppleID != tt.wantAppleID || st.Certificate == nil || st.Certificate.Topic != topic {
				t.Errorf("stored: got %q %+v, want %s with topic %s", st.AppleID, st.Certificate, tt.wantAppleID, topic)
			}
			if w.Header().Get("ETag") != apiETag(st) {
				t.Errorf("ETag: got %q, want %q", w.Header().Get("ETag"), apiETag(st))
			}
		})
	}
}

func TestAPICreate(t *testing.T) {
	f := newAPIFixture(t)
	topic := applesim.NewTopic()
	body := func() []byte {
		der := f.issue(t, topic, f.now().AddDate(1, 0, 0))
		return jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": string(applesim.PEM(der))})
	}
	w := f.do(t, http.MethodPost, "/beta/deviceManagement/applePushNotificationCertificate", body())
	if w.Code != http.StatusCreated {
		t.Fatalf("first create: got %d %s, want 201", w.Code, w.Body)
	}
	if want := testBaseURL + "/beta/deviceManagement/applePushNotificationCertificate"; w.Header().Get("Location") != want {
		t.Errorf("Location: got %q, want %q", w.Header().Get("Location"), want)
	}
	if got := decodeAPIObject(t, w); got["topicIdentifier"] != topic {
		t.Errorf("topicIdentifier: got %v, want %s", got["topicIdentifier"], topic)
	}
	before := f.snapshot(t)
	w = f.do(t, http.MethodPost, testResource, body())
	assertAPIError(t, w, http.StatusConflict, "conflict", "already exists", "PATCH")
	f.assertCertificateUnchanged(t, before)
}

func TestAPIGenerateCSR(t *testing.T) {
	f := newAPIFixture(t)
	seen := map[string]bool{}
	for _, path := range []string{
		"/beta/deviceManagement/applePushNotificationCertificate/generateApplePushNotificationCertificateSigningRequest",
		"/v1.0/deviceManagement/applePushNotificationCertificate/generateApplePushNotificationCertificateSigningRequest()",
	} {
		// The seed's example sends a JSON string body; it is ignored.
		w := f.do(t, http.MethodPost, path, []byte(`"String"`))
		if w.Code != http.StatusOK {
			t.Fatalf("%s: got %d %s, want 200", path, w.Code, w.Body)
		}
		got := decodeAPIObject(t, w)
		prefix, _, _ := strings.Cut(path[1:], "/")
		if want := testBaseURL + "/" + prefix + "/$metadata#Edm.String"; got["@odata.context"] != want {
			t.Errorf("@odata.context: got %v, want %s", got["@odata.context"], want)
		}
		value, _ := got["value"].(string)
		assertPEMCSR(t, value)
		if seen[value] {
			t.Errorf("got the same CSR twice, want a new one every call")
		}
		seen[value] = true
		latest, err := f.svc.LatestCSR(context.Background())
		if err != nil || latest.Request != value {
			t.Errorf("latest pending CSR: got %v, want the one returned", err)
		}
	}
}

func assertPEMCSR(t testing.TB, value string) {
	t.Helper()
	b, rest := pem.Decode([]byte(value))
	if b == nil || b.Type != "CERTIFICATE REQUEST" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("value: got %q, want one PEM CERTIFICATE REQUEST", value)
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		t.Fatalf("parse csr: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("csr signature: %v", err)
	}
}

func TestAPIDownloadCSR(t *testing.T) {
	const download = "/deviceManagement/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest"
	tests := []struct {
		name    string
		pending bool // a CSR was generated before
		path    string
	}{
		{"generates one when none is pending", false, "/v1.0" + download},
		{"the latest pending", true, "/v1.0" + download},
		{"with parentheses under beta", true, "/beta" + download + "()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			var want string
			if tt.pending {
				if _, err := f.svc.GenerateCSR(context.Background(), testAPIAdmin); err != nil {
					t.Fatal(err)
				}
				pk, err := f.svc.GenerateCSR(context.Background(), testAPIAdmin)
				if err != nil {
					t.Fatal(err)
				}
				want = pk.Request
			}
			w := f.do(t, http.MethodGet, tt.path, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			value, _ := decodeAPIObject(t, w)["value"].(string)
			assertPEMCSR(t, value)
			latest, err := f.svc.LatestCSR(context.Background())
			if err != nil {
				t.Fatalf("latest csr: %v", err)
			}
			if latest.Request != value || (tt.pending && value != want) {
				t.Errorf("value: got a CSR that is not the latest pending one")
			}
		})
	}
}

func TestAPISelect(t *testing.T) {
	f := newAPIFixture(t)
	f.upload(t, applesim.NewTopic(), f.now().AddDate(1, 0, 0))
	annotations := []string{"@odata.context", "@odata.etag", "@odata.type"}
	tests := []struct {
		name  string
		query string
		want  []string
	}{
		{"two properties", "?$select=id,appleIdentifier", []string{"appleIdentifier", "id"}},
		{"percent-encoded", "?%24select=topicIdentifier", []string{"topicIdentifier"}},
		{"spaces and case", "?$select=%20ExpirationDateTime%20,certificate", []string{"certificate", "expirationDateTime"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, http.MethodGet, testResource+tt.query, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			want := append(slices.Clone(annotations), tt.want...)
			slices.Sort(want)
			if got := sortedKeys(decodeAPIObject(t, w)); !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	t.Run("unknown property", func(t *testing.T) {
		w := f.do(t, http.MethodGet, testResource+"?$select=id,colour", nil)
		assertAPIError(t, w, http.StatusBadRequest, "invalidRequest", `"colour"`)
	})
}

func TestAPIIfMatch(t *testing.T) {
	tests := []struct {
		name       string
		existing   bool
		ifMatch    func(stale, current string) string
		wantStatus int
	}{
		{"stale", true, func(stale, _ string) string { return stale }, http.StatusPreconditionFailed},
		{"current", true, func(_, current string) string { return current }, http.StatusOK},
		{"current without W/", true, func(_, current string) string { return strings.TrimPrefix(current, "W/") }, http.StatusOK},
		{"star", true, func(_, _ string) string { return "*" }, http.StatusOK},
		{"list with the current", true, func(stale, current string) string { return stale + `, W/"999", ` + current }, http.StatusOK},
		{"star before any certificate", false, func(_, _ string) string { return "*" }, http.StatusPreconditionFailed},
		{"malformed", true, func(_, _ string) string { return "3" }, http.StatusBadRequest},
		// Tags that are no version of ours are well-formed and never match.
		{"a tag that is not ours", true, func(_, _ string) string { return `W/"abc"` }, http.StatusPreconditionFailed},
		{"version zero", true, func(_, _ string) string { return `"0"` }, http.StatusPreconditionFailed},
		{"a negative version", true, func(_, _ string) string { return `W/"-1"` }, http.StatusPreconditionFailed},
		{"a tag that is not ours, then the current", true, func(_, current string) string { return `W/"abc", ` + current }, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			topic := applesim.NewTopic()
			var stale, current string
			var before apiSnapshot
			if tt.existing {
				stale = f.upload(t, topic, f.now().AddDate(1, 0, 0))["@odata.etag"].(string)
				w := f.do(t, http.MethodPatch, testResource, []byte(`{"appleIdentifier":"second@example.com"}`))
				if w.Code != http.StatusOK {
					t.Fatalf("change apple id: got %d %s", w.Code, w.Body)
				}
				current = w.Header().Get("ETag")
				before = f.snapshot(t)
			}
			der := f.issue(t, topic, f.now().AddDate(2, 0, 0))
			body := jsonBody(t, map[string]string{"appleIdentifier": "third@example.com", "certificate": string(applesim.PEM(der))})
			w := f.do(t, http.MethodPatch, testResource, body, "If-Match", tt.ifMatch(stale, current))
			switch tt.wantStatus {
			case http.StatusOK:
				if w.Code != http.StatusOK {
					t.Fatalf("got %d %s, want 200", w.Code, w.Body)
				}
				if got := decodeAPIObject(t, w); got["appleIdentifier"] != "third@example.com" {
					t.Errorf("appleIdentifier: got %v, want third@example.com", got["appleIdentifier"])
				}
			case http.StatusPreconditionFailed:
				assertAPIError(t, w, http.StatusPreconditionFailed, "resourceModified", "Nothing was changed")
			default:
				assertAPIError(t, w, tt.wantStatus, "invalidRequest", "If-Match")
			}
			if tt.wantStatus == http.StatusOK {
				return
			}
			if tt.existing {
				after := f.snapshot(t)
				if !reflect.DeepEqual(after, before) {
					t.Errorf("state: got %+v, want unchanged %+v", after.state, before.state)
				}
				return
			}
			if st, _ := f.svc.State(context.Background()); st.Version != 1 || st.UploadStatus != pushcert.UploadNone {
				t.Errorf("state: got version %d status %s, want untouched", st.Version, st.UploadStatus)
			}
		})
	}
}

// TestAPIConcurrentPatch sends 20 PATCHes made from the same ETag at once:
// exactly one may win, the others must be told the resource changed.
func TestAPIConcurrentPatch(t *testing.T) {
	f := newAPIFixture(t)
	etag := f.upload(t, applesim.NewTopic(), f.now().AddDate(1, 0, 0))["@odata.etag"].(string)
	const n = 20
	codes := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := []byte(fmt.Sprintf(`{"appleIdentifier":"owner%d@example.com"}`, i))
			<-start
			codes[i] = f.do(t, http.MethodPatch, testResource, body, "If-Match", etag).Code
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusOK] != 1 || count[http.StatusPreconditionFailed] != n-1 {
		t.Errorf("got status counts %v, want exactly one 200 and %d 412", count, n-1)
	}
}

func TestAPITopicChange(t *testing.T) {
	tests := []struct {
		name          string
		query         string
		header        []string
		wantStatus    int
		wantPreferred string // Preference-Applied
	}{
		{"refused without opt-in", "", nil, http.StatusConflict, ""},
		{"refused with allowTopicChange=false", "?allowTopicChange=false", nil, http.StatusConflict, ""},
		{"allowed by query parameter", "?allowTopicChange=true", nil, http.StatusOK, ""},
		{"allowed by Prefer header", "", []string{"Prefer", "return=representation, allow-topic-change"}, http.StatusOK, "allow-topic-change"},
		{"bad query value", "?allowTopicChange=yes", nil, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			f.upload(t, applesim.NewTopic(), f.now().AddDate(1, 0, 0))
			before := f.snapshot(t)
			newTopic := applesim.NewTopic()
			der := f.issue(t, newTopic, f.now().AddDate(1, 0, 0))
			body := jsonBody(t, map[string]string{"certificate": string(applesim.PEM(der))})
			w := f.do(t, http.MethodPatch, testResource+tt.query, body, tt.header...)
			if got := w.Header().Get("Preference-Applied"); got != tt.wantPreferred {
				t.Errorf("Preference-Applied: got %q, want %q", got, tt.wantPreferred)
			}
			switch tt.wantStatus {
			case http.StatusOK:
				if w.Code != http.StatusOK {
					t.Fatalf("got %d %s, want 200", w.Code, w.Body)
				}
				if got := decodeAPIObject(t, w)["topicIdentifier"]; got != newTopic {
					t.Errorf("topicIdentifier: got %v, want %s", got, newTopic)
				}
			case http.StatusConflict:
				assertAPIError(t, w, http.StatusConflict, "topicMismatch", "re-enroll", "allowTopicChange=true", "Prefer: allow-topic-change")
				f.assertCertificateUnchanged(t, before)
			default:
				assertAPIError(t, w, tt.wantStatus, "invalidRequest", "allowTopicChange")
				f.assertCertificateUnchanged(t, before)
			}
		})
	}
}

func TestAPIInvalidCertificate(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		existing bool
		cert     func(t *testing.T, f *apiFixture) string
		wantCode string
	}{
		{"not a certificate", true, func(*testing.T, *apiFixture) string { return "not a certificate" }, pushcert.CodeInvalidCertificate},
		{"empty", true, func(*testing.T, *apiFixture) string { return "" }, pushcert.CodeInvalidCertificate},
		{"expired", true, func(t *testing.T, f *apiFixture) string {
			st, _ := f.svc.State(context.Background())
			der := f.issue(t, st.Certificate.Topic, f.now().Add(-time.Hour))
			return string(applesim.PEM(der))
		}, pushcert.CodeExpired},
		{"key pushcert did not make", true, func(t *testing.T, f *apiFixture) string {
			der, err := f.ca.Issue(applesim.Request{PublicKey: ecKey.Public()})
			if err != nil {
				t.Fatal(err)
			}
			return string(applesim.PEM(der))
		}, pushcert.CodeKeyMismatch},
		{"not a certificate before any upload", false, func(*testing.T, *apiFixture) string { return "not a certificate" }, pushcert.CodeInvalidCertificate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			var before apiSnapshot
			if tt.existing {
				f.upload(t, applesim.NewTopic(), f.now().AddDate(1, 0, 0))
				before = f.snapshot(t)
			}
			body := jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": tt.cert(t, f)})
			w := f.do(t, http.MethodPatch, testResource, body)
			e := assertAPIError(t, w, http.StatusBadRequest, tt.wantCode, "certificate: ")
			reason := strings.TrimPrefix(e.Error.Message, "certificate: ")

			w = f.do(t, http.MethodGet, testResource, nil)
			if w.Code != http.StatusOK {
				t.Fatalf("get: got %d %s, want 200", w.Code, w.Body)
			}
			got := decodeAPIObject(t, w)
			if got["certificateUploadStatus"] != "failed" || got["certificateUploadFailureReason"] != reason {
				t.Errorf("got status %v reason %v, want failed %q", got["certificateUploadStatus"], got["certificateUploadFailureReason"], reason)
			}
			if tt.existing {
				f.assertCertificateUnchanged(t, before)
				return
			}
			for _, k := range []string{"certificate", "topicIdentifier", "expirationDateTime", "certificateSerialNumber"} {
				if got[k] != nil {
					t.Errorf("%s: got %v, want null without a certificate", k, got[k])
				}
			}
		})
	}
}

// gzipped compresses b.
func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAPIRequestBodyRefused(t *testing.T) {
	big := []byte(`{"certificate":"` + strings.Repeat("A", maxAPIBody) + `"}`)
	tests := []struct {
		name       string
		body       []byte
		header     []string
		wantStatus int
		wantCode   string
		wantText   string
	}{
		{"unknown property", []byte(`{"appleIdentifier":"a@example.com","colour":"blue"}`), nil, 400, "invalidRequest", `"colour"`},
		{"case-changed property", []byte(`{"AppleIdentifier":"a@example.com"}`), nil, 400, "invalidRequest", `"AppleIdentifier"`},
		{"wrong type", []byte(`{"appleIdentifier":42}`), nil, 400, "invalidRequest", `"appleIdentifier" must be a JSON string`},
		{"null apple id", []byte(`{"appleIdentifier":null}`), nil, 400, "invalidRequest", `"appleIdentifier"`},
		{"wrong type of an ignored property", []byte(`{"expirationDateTime":20170101}`), nil, 400, "invalidRequest", `"expirationDateTime" must be a JSON string or null`},
		{"object certificate", []byte(`{"certificate":{"pem":"x"}}`), nil, 400, "invalidRequest", `"certificate"`},
		{"other odata type", []byte(`{"@odata.type":"#microsoft.graph.user","appleIdentifier":"a@example.com"}`), nil, 400, "invalidRequest", "@odata.type"},
		{"duplicate keys", []byte(`{"appleIdentifier":"a@example.com","appleIdentifier":"b@example.com"}`), nil, 400, "invalidRequest", `"appleIdentifier" appears more than once`},
		{"array", []byte(`[{"appleIdentifier":"a@example.com"}]`), nil, 400, "invalidRequest", "single JSON object"},
		{"two objects", []byte(`{"appleIdentifier":"a@example.com"}{}`), nil, 400, "invalidRequest", "single JSON object"},
		{"truncated", []byte(`{"appleIdentifier":"a@example.com"`), nil, 400, "invalidRequest", "single JSON object"},
		{"not JSON text", []byte(`appleIdentifier=a@example.com`), nil, 400, "invalidRequest", "single JSON object"},
		{"empty body", []byte{}, nil, 400, "invalidRequest", "empty"},
		{"form content type", []byte(`appleIdentifier=a@example.com`), []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupportedMediaType", "application/json"},
		{"no content type", []byte(`{"appleIdentifier":"a@example.com"}`), []string{"Content-Type", ""}, 415, "unsupportedMediaType", "application/json"},
		{"latin-1 charset", []byte(`{"appleIdentifier":"a@example.com"}`), []string{"Content-Type", "application/json; charset=iso-8859-1"}, 415, "unsupportedMediaType", "application/json"},
		{"brotli", []byte(`{"appleIdentifier":"a@example.com"}`), []string{"Content-Encoding", "br"}, 415, "unsupportedMediaType", `"br"`},
		{"broken gzip", []byte(`{"appleIdentifier":"a@example.com"}`), []string{"Content-Encoding", "gzip"}, 400, "invalidRequest", "gzip"},
		{"over 1 MiB", big, nil, 413, "requestTooLarge", "1 MiB"},
		{"over 1 MiB after gzip", gzipped(t, big), []string{"Content-Encoding", "gzip"}, 413, "requestTooLarge", "1 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			w := f.do(t, http.MethodPatch, testResource, tt.body, tt.header...)
			assertAPIError(t, w, tt.wantStatus, tt.wantCode, tt.wantText)
			if st, _ := f.svc.State(context.Background()); st.Version != 1 {
				t.Errorf("version: got %d, want 1 (nothing recorded)", st.Version)
			}
		})
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestAPIGzipBomb sends 50 MiB of zeros gzip-compressed: the handler must
// stop decompressing at the 1 MiB limit, having read only the start of the
// compressed body. The bomb is 50 gzip members of 1 MiB each, which a
// reader decodes as one stream, so the test need not compress 50 MiB.
func TestAPIGzipBomb(t *testing.T) {
	bomb := bytes.Repeat(gzipped(t, make([]byte, 1<<20)), 50)
	f := newAPIFixture(t)
	body := &countingReader{r: bytes.NewReader(bomb)}
	r := httptest.NewRequest(http.MethodPatch, testResource, body)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Encoding", "gzip")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	assertAPIError(t, w, http.StatusRequestEntityTooLarge, "requestTooLarge")
	if body.n > int64(len(bomb))/4 {
		t.Errorf("read %d of %d compressed bytes, want decompression cut off near 1 MiB", body.n, len(bomb))
	}
}

func TestAPIGzip(t *testing.T) {
	f := newAPIFixture(t)
	topic := applesim.NewTopic()
	der := f.issue(t, topic, f.now().AddDate(1, 0, 0))
	body := gzipped(t, jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": string(applesim.PEM(der))}))
	w := f.do(t, http.MethodPatch, testResource, body, "Content-Encoding", "gzip")
	if w.Code != http.StatusOK {
		t.Fatalf("gzip request: got %d %s, want 200", w.Code, w.Body)
	}
	tests := []struct {
		name           string
		acceptEncoding string
		wantGzip       bool
	}{
		{"asked", "gzip, deflate, br", true},
		{"star", "*", true},
		{"not asked", "", false},
		{"refused", "gzip;q=0, identity", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := f.do(t, http.MethodGet, testResource, nil, "Accept-Encoding", tt.acceptEncoding)
			if w.Code != http.StatusOK {
				t.Fatalf("got %d %s, want 200", w.Code, w.Body)
			}
			if got := w.Header().Get("Content-Encoding") == "gzip"; got != tt.wantGzip {
				t.Errorf("gzip: got %v, want %v", got, tt.wantGzip)
			}
			if !slices.Contains(w.Header().Values("Vary"), "Accept-Encoding") {
				t.Errorf("Vary: got %q, want Accept-Encoding", w.Header().Values("Vary"))
			}
			if n, _ := strconv.Atoi(w.Header().Get("Content-Length")); n != w.Body.Len() {
				t.Errorf("Content-Length: got %d, want %d", n, w.Body.Len())
			}
			if got := decodeAPIObject(t, w); got["topicIdentifier"] != topic {
				t.Errorf("topicIdentifier: got %v, want %s", got["topicIdentifier"], topic)
			}
		})
	}
}

func TestAPIErrorShape(t *testing.T) {
	f := newAPIFixture(t)
	w := f.do(t, http.MethodGet, testResource, nil, HeaderClientRequestID, "client-42")
	e := assertAPIError(t, w, http.StatusNotFound, "notFound")
	in := e.Error.InnerError
	if in.RequestID == "" || in.RequestID != w.Header().Get(HeaderRequestID) {
		t.Errorf("request-id: got %q, want the header's %q", in.RequestID, w.Header().Get(HeaderRequestID))
	}
	if in.ClientRequestID != "client-42" || w.Header().Get(HeaderClientRequestID) != "client-42" {
		t.Errorf("client-request-id: got %q and header %q, want client-42", in.ClientRequestID, w.Header().Get(HeaderClientRequestID))
	}
	if d, err := time.Parse("2006-01-02T15:04:05", in.Date); err != nil || time.Since(d) > time.Minute {
		t.Errorf("date: got %q (%v), want now", in.Date, err)
	}
	if e.Error.Message == "" {
		t.Errorf("message: got empty, want a message")
	}
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control: got %q, want no-store", w.Header().Get("Cache-Control"))
	}
}

// TestAPIServerError checks that a failure the client cannot act on gives
// a generic 500 without the internal error's text.
func TestAPIServerError(t *testing.T) {
	f := newAPIFixture(t)
	f.st.Close()
	for _, tt := range []struct{ method, path string }{
		{http.MethodGet, testResource},
		{http.MethodPost, testResource + "/generateApplePushNotificationCertificateSigningRequest"},
	} {
		w := f.do(t, tt.method, tt.path, nil)
		e := assertAPIError(t, w, http.StatusInternalServerError, "internalServerError")
		if strings.Contains(strings.ToLower(e.Error.Message), "sql") || strings.Contains(e.Error.Message, "closed") {
			t.Errorf("message: got %q, want no internal detail", e.Error.Message)
		}
	}
}

func TestAPIRouting(t *testing.T) {
	const base = "/deviceManagement/applePushNotificationCertificate"
	tests := []struct {
		method     string
		path       string
		wantStatus int
		wantAllow  string
	}{
		{http.MethodDelete, "/v1.0" + base, 405, "GET, HEAD, PATCH, POST"},
		{http.MethodPut, "/beta" + base, 405, "GET, HEAD, PATCH, POST"},
		{http.MethodGet, "/v1.0" + base + "/generateApplePushNotificationCertificateSigningRequest", 405, "POST"},
		{http.MethodPatch, "/beta" + base + "/generateApplePushNotificationCertificateSigningRequest()", 405, "POST"},
		{http.MethodPost, "/v1.0" + base + "/downloadApplePushNotificationCertificateSigningRequest()", 405, "GET, HEAD"},
		{http.MethodGet, "/v1.0/deviceManagement/managedDevices", 404, ""},
		{http.MethodGet, "/v1.0" + base + "/extra", 404, ""},
		{http.MethodGet, "/v1.0" + base + "/", 404, ""},
		{http.MethodDelete, "/beta/", 404, ""},
	}
	f := newAPIFixture(t)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			w := f.do(t, tt.method, tt.path, nil)
			code := "notFound"
			if tt.wantStatus == http.StatusMethodNotAllowed {
				code = "methodNotAllowed"
			}
			assertAPIError(t, w, tt.wantStatus, code)
			if got := w.Header().Get("Allow"); got != tt.wantAllow {
				t.Errorf("Allow: got %q, want %q", got, tt.wantAllow)
			}
		})
	}
}

func TestAPIIgnoresDerivedProperties(t *testing.T) {
	f := newAPIFixture(t)
	topic := applesim.NewTopic()
	got := f.upload(t, topic, f.now().AddDate(1, 0, 0))
	// A client that GETs, edits and PATCHes back the whole entity sends
	// every property and annotation; only appleIdentifier changes.
	got["appleIdentifier"] = "edited@example.com"
	got["topicIdentifier"] = "com.apple.mgmt.External.forged"
	got["certificateUploadStatus"] = nil
	delete(got, "certificate")
	w := f.do(t, http.MethodPatch, testResource, jsonBody(t, got))
	if w.Code != http.StatusOK {
		t.Fatalf("got %d %s, want 200", w.Code, w.Body)
	}
	after := decodeAPIObject(t, w)
	if after["appleIdentifier"] != "edited@example.com" || after["topicIdentifier"] != topic || after["certificateUploadStatus"] != "succeeded" {
		t.Errorf("got %v %v %v, want the edit applied and derived properties kept", after["appleIdentifier"], after["topicIdentifier"], after["certificateUploadStatus"])
	}
}

func BenchmarkAPIGet(b *testing.B) {
	f := newAPIFixture(b)
	f.upload(b, applesim.NewTopic(), f.now().AddDate(1, 0, 0))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodGet, testResource, nil)
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("got %d, want 200", w.Code)
		}
	}
}
