package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// fuzzAdmin is who sends every fuzzed request.
var fuzzAdmin = auth.User{Subject: "fuzz-admin", Name: "Fuzz Admin", Email: "fuzz@example.com", Role: auth.RoleAdmin}

// fuzzService is a real service over SQLite with an active certificate,
// made once per fuzz worker, so that an Apple ID alone is a change it
// can make. The service and its authority share a clock standing at the
// tests' instant.
func fuzzService(f *testing.F) *pushcert.Service {
	f.Helper()
	ctx := context.Background()
	kr, err := store.NewKeyring(strings.Repeat("fuzz-kek-", 4))
	if err != nil {
		f.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(fuzzDBDir(f), "fuzz.db"), kr)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	clk := testclock.New(f)
	ca, err := applesim.NewCA(applesim.AppleCAName, clk.Now)
	if err != nil {
		f.Fatal(err)
	}
	svc := pushcert.NewService(st, pushcert.Config{Organization: "Fuzz Org", Now: clk.Now, TrustRoots: ca.Pool()})
	pk, err := svc.GenerateCSR(ctx, fuzzAdmin)
	if err != nil {
		f.Fatal(err)
	}
	der, err := ca.IssueForCSR(pk.CSRDER, applesim.Request{})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.Update(ctx, pushcert.Update{Actor: fuzzAdmin, AppleID: "fuzz@example.com", Certificate: applesim.PEM(der)}); err != nil {
		f.Fatal(err)
	}
	return svc
}

// fuzzCert stands in for a certificate in seeds. Real ones are about 2 KiB,
// and the fuzzer minimizes every new input in time quadratic in its
// length, so seeds stay short; certificates themselves are
// FuzzParseCertificate's.
const fuzzCert = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"

// fuzzRequest is r as web's middleware hands it on: with a request ID and
// the signed-in admin.
func fuzzRequest(r *http.Request, w http.ResponseWriter) *http.Request {
	w.Header().Set(HeaderRequestID, "fuzz-request")
	return r.WithContext(auth.WithUser(r.Context(), fuzzAdmin))
}

// FuzzAPIPatchBody sends arbitrary bytes as the JSON body of a PATCH. The
// decoder must never panic, must refuse with a 4xx request error whose
// message is short and valid UTF-8, and must agree with encoding/json on
// what a body it accepts says. The whole PATCH handler, over a real
// service, must answer 2xx or 4xx only, and the decoder's refusal as it is.
func FuzzAPIPatchBody(f *testing.F) {
	svc := fuzzService(f)
	api := NewAPI(slog.New(slog.DiscardHandler), svc, "https://pushcert.example.com")
	for _, seed := range []string{
		`{"appleIdentifier":"fuzz@example.com"}`,
		`{"appleIdentifier":"fuzz@example.com","certificate":` + jsonQuote(fuzzCert) + `}`,
		`{"certificate":"MIIBszCCAVmgAwIBAgIU"}`,
		`{"@odata.type":"#microsoft.graph.applePushNotificationCertificate","id":null,"topicIdentifier":"x","appleIdentifier":"a@example.com"}`,
		`{"appleIdentifier":"a@example.com","appleIdentifier":"b@example.com"}`,
		`{"appleIdentifier":"a@example.com","AppleIdentifier":"b@example.com"}`,
		`{"apple\u0049dentifier":"a@example.com"}`,
		`{"certificate":12}`,
		`{"certificate":null}`,
		`{"appleIdentifier":"  "}`,
		`{"isAdmin":true}`,
		`{"appleIdentifier":"a@example.com"} {}`,
		`{"certificate":[[[[[[[[[[]]]]]]]]]]}`,
		`[{"appleIdentifier":"a@example.com"}]`,
		"{\"appleIdentifier\":\"adm\xffin@example.com\"}",
		"\xef\xbb\xbf{}",
		`{}`,
		``,
		`null`,
		`{"certificate":""}`,
		`{"@odata.etag":"W/\"1\"","certificate":"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeAPIBody(data)
		if err != nil {
			var re *apiRequestError
			if !errors.As(err, &re) {
				t.Fatalf("got error %v (%T), want *apiRequestError", err, err)
			}
			if re.status < 400 || re.status > 499 || re.code == "" || re.message == "" {
				t.Fatalf("got refusal %d %q %q, want a 4xx with a code and a message", re.status, re.code, re.message)
			}
			if len(re.message) > 512 || !utf8.ValidString(re.message) {
				t.Fatalf("got a %d-byte message %q, want a short, valid UTF-8 one", len(re.message), re.message)
			}
		} else {
			// What the decoder accepted, encoding/json must read the same
			// way: one object whose appleIdentifier and certificate are
			// the values decoded.
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatalf("decoder accepted %q, which encoding/json refuses: %v", data, err)
			}
			if want, _ := m["appleIdentifier"].(string); b.appleID != want {
				t.Fatalf("got Apple ID %q, want %q", b.appleID, want)
			}
			want, sent := m["certificate"].(string)
			if (b.certificate != nil) != sent || string(b.certificate) != want {
				t.Fatalf("got certificate %q (sent %v), want %q", b.certificate, b.certificate != nil, want)
			}
		}

		// A body with a certificate goes on to the certificate parser,
		// which FuzzParseCertificate covers, and costs a database write
		// each: minimizing a new input runs the function thousands of
		// times, so those stop at the decoder. Everything else goes
		// through the whole handler.
		if err == nil && b.certificate != nil {
			return
		}
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPatch, "/v1.0/deviceManagement/applePushNotificationCertificate", bytes.NewReader(data))
		r.Header.Set("Content-Type", "application/json")
		api.Patch(w, fuzzRequest(r, w))
		if w.Code >= 300 && w.Code < 400 || w.Code >= 500 {
			t.Fatalf("got status %d (%s), want 2xx or 4xx", w.Code, w.Body)
		}
		// The request carries nothing else to refuse, so the handler
		// answers the decoder's refusal as it is, and never refuses a body
		// the decoder accepted as malformed.
		var re *apiRequestError
		if errors.As(err, &re) && (w.Code != re.status || !strings.Contains(w.Body.String(), `"code":"`+re.code+`"`)) {
			t.Fatalf("decoder refused with %d %s, handler answered %d %s", re.status, re.code, w.Code, w.Body)
		}
		if err == nil && strings.Contains(w.Body.String(), `"code":"`+apiCodeInvalidRequest+`"`) {
			t.Fatalf("decoder accepted the body, handler answered %d %s", w.Code, w.Body)
		}
	})
}

// FuzzUploadForm sends arbitrary multipart bodies, with an arbitrary
// boundary, to the upload form's parser and handler. The parser must
// never panic, must refuse only with its two errors, and must never hand
// on more than 1 MiB; the handler must answer only what the form's
// outcomes are: 303, 400, 409, 413 or 422.
func FuzzUploadForm(f *testing.F) {
	svc := fuzzService(f)
	h := NewCertificate(slog.New(slog.DiscardHandler), svc, "Fuzz Org", false)
	form := func(parts ...func(mw *multipart.Writer)) (string, []byte) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, p := range parts {
			p(mw)
		}
		if err := mw.Close(); err != nil {
			f.Fatal(err)
		}
		return mw.Boundary(), body.Bytes()
	}
	field := func(name, value string) func(mw *multipart.Writer) {
		return func(mw *multipart.Writer) { _ = mw.WriteField(name, value) }
	}
	file := func(name string, data []byte) func(mw *multipart.Writer) {
		return func(mw *multipart.Writer) {
			w, _ := mw.CreateFormFile("certificate", name)
			_, _ = w.Write(data)
		}
	}
	rawPart := func(disposition string, data []byte) func(mw *multipart.Writer) {
		return func(mw *multipart.Writer) {
			w, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Disposition": {disposition}})
			_, _ = w.Write(data)
		}
	}
	for _, seed := range [][]func(mw *multipart.Writer){
		{field("_method", "PATCH"), field("apple_id", "fuzz@example.com"), field("version", "3"), file("MDM.pem", []byte(fuzzCert))},
		{field("apple_id", "new@example.com")},
		{field("apple_id", " fuzz@example.com "), field("allow_topic_change", "yes"), file("", nil)},
		{file("empty.pem", []byte{})},
		{field("version", "-1"), file("MDM.pem", []byte(fuzzCert))},
		{field("version", "99999999999999999999")},
		{file("../../etc/passwd", []byte("root:x:0:0"))},
		{rawPart("form-data; name=\"certificate\"; filename*=UTF-8''a%0D%0Ab.pem", []byte("x"))},
		{rawPart("form-data; name=\"certificate\"; filename=\"a\r\nb.pem\"", []byte(fuzzCert))},
		{rawPart("form-data", []byte("no name"))},
		{file("a.pem", []byte(fuzzCert)), file("b.pem", []byte("second file"))},
		{field("apple_id", "<script>alert(1)</script>@example.com"), file("MDM.pem", []byte(fuzzCert))},
		{field("apple_id", "adm\xffin@example.com")},
		{},
	} {
		boundary, body := form(seed...)
		f.Add(boundary, body)
	}
	f.Add("x", []byte("--x\r\nContent-Disposition: form-data; name=\"apple_id\"\r\n\r\na@example.com\r\n--x"))
	f.Add("x", []byte("--x\r\nContent-Disposition: form-data; name=\"certificate\"; filename=\"a\"\r\n\r\n"))
	f.Add("", []byte(""))
	f.Add("\"", []byte("--\"\r\n\r\n--\"--"))

	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		contentType := "multipart/form-data; boundary=" + boundary
		r := httptest.NewRequest(http.MethodPatch, "/certificate", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		in, err := parseUploadForm(w, r)
		if r.MultipartForm != nil {
			defer r.MultipartForm.RemoveAll()
		}
		tooLarge := false
		if ve, ok := errors.AsType[*pushcert.ValidationError](err); ok {
			tooLarge = ve.Code == pushcert.CodeTooLarge
		}
		switch {
		case tooLarge, errors.Is(err, errFormUnreadable):
		case err != nil:
			t.Fatalf("got error %v, want pushcert.TooLarge or errFormUnreadable", err)
		case len(in.Certificate) > pushcert.MaxUploadSize+1:
			t.Fatalf("got a %d-byte certificate, want at most one byte over %d for the service to refuse", len(in.Certificate), pushcert.MaxUploadSize)
		case len(in.If.Versions) > 1 || len(in.If.Versions) == 1 && in.If.Versions[0] < 1:
			t.Fatalf("got precondition %+v, want at most one version of 1 or more", in.If)
		}

		// As in FuzzAPIPatchBody, a certificate stops at the parser: the
		// rest is the certificate parser's and costs a database write.
		if in.Certificate != nil {
			return
		}
		r = httptest.NewRequest(http.MethodPatch, "/certificate", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w = httptest.NewRecorder()
		h.Upload(w, fuzzRequest(r, w))
		if r.MultipartForm != nil {
			_ = r.MultipartForm.RemoveAll()
		}
		switch w.Code {
		case http.StatusSeeOther, http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("got status %d, want 303, 400, 409, 413 or 422", w.Code)
		}
		// The parser's refusals are the handler's 400 and 413, and only they.
		if errors.Is(err, errFormUnreadable) != (w.Code == http.StatusBadRequest) || tooLarge != (w.Code == http.StatusRequestEntityTooLarge) {
			t.Fatalf("parser said %v, handler answered %d", err, w.Code)
		}
	})
}

func jsonQuote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// fuzzDBDir is where a fuzz target keeps its database: in memory under
// /dev/shm where the system has it, because a database on disk syncs every
// write, and a refused upload is a write: thousands of fsyncs a second
// would leave no time for fuzzing.
func fuzzDBDir(f *testing.F) string {
	f.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "pushcert-fuzz-"); err == nil {
			f.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}
