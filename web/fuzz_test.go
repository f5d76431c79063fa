package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// fuzzPaths are the paths a fuzzed request goes to: the upload, pages, the
// sign-out, the API and paths nothing serves. Paths whose handlers make a
// key pair (POST /csr, the API's generate) are left out: an RSA key per
// input would leave no time for fuzzing.
var fuzzPaths = []string{
	"/certificate",
	"/",
	"/history",
	"/logout",
	"/v1.0/deviceManagement/applePushNotificationCertificate",
	"/beta/deviceManagement/applePushNotificationCertificate/nothing",
	"/static/css/app.css",
	"/no/such/page",
}

// FuzzMethodOverride sends requests with random methods, _method values
// (in the URL, as the upload form's action carries it, and in the body,
// where nothing reads it), content types and bodies, as a signed-in
// admin's same-origin browser would. Through the middleware before routing
// (cross-origin protection and method override) to a handler that records
// what reaches it: a non-API POST may arrive only as POST, PATCH or
// DELETE, any other request arrives with its method unchanged, and not a
// byte of the body has been read. Through the whole server from NewServer:
// never a 5xx.
func FuzzMethodOverride(f *testing.F) {
	log := slog.New(slog.DiscardHandler)
	base, server, cookie := fuzzServer(f, log)

	var reached string // the method the recording handler saw; "" when not reached
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = r.Method
		w.WriteHeader(http.StatusNoContent)
	})
	chain := recoverPanics(log, false, crossOriginProtection(log, false, methodOverride(log, false, nil, record)))

	for _, s := range []struct {
		method, override, contentType string
		path                          uint8
		raw                           string
	}{
		{"POST", "PATCH", "multipart/form-data; boundary=b", 0, ""},
		{"POST", "patch", "application/x-www-form-urlencoded", 0, ""},
		{"POST", "DELETE", "multipart/form-data; boundary=b", 0, ""},
		{"POST", "PUT", "multipart/form-data; boundary=b", 0, ""},
		{"POST", "GET", "application/x-www-form-urlencoded", 1, ""},
		{"POST", "CONNECT", "application/x-www-form-urlencoded; charset=utf-8", 3, ""},
		{"POST", "PATCH\r\n", "multipart/form-data; boundary=\"a b\"", 0, ""},
		{"POST", "PATCH", "application/json", 4, ""},
		{"POST", "PATCH", "text/plain", 0, ""},
		{"POST", "", "multipart/form-data", 0, "--x\r\n\r\n"},
		{"POST", "", "application/x-www-form-urlencoded", 0, "_method=PATCH&_method=PUT"},
		{"POST", "", "application/x-www-form-urlencoded", 0, "_method=%zz"},
		{"PUT", "PATCH", "application/x-www-form-urlencoded", 0, ""},
		{"GET", "DELETE", "application/x-www-form-urlencoded", 2, ""},
		{"PATCH", "GET", "multipart/form-data; boundary=b", 0, ""},
		{"DELETE", "", "", 0, ""},
		{"HEAD", "PATCH", "application/x-www-form-urlencoded", 0, ""},
		{"OPTIONS", "", "", 5, ""},
		{"post", "PATCH", "application/x-www-form-urlencoded", 0, ""},
		{"X-UNKNOWN", "PATCH", "multipart/form-data; boundary=b", 7, ""},
	} {
		f.Add(s.method, s.override, s.contentType, s.path, []byte(s.raw))
	}

	f.Fuzz(func(t *testing.T, method, override, contentType string, pathIndex uint8, raw []byte) {
		if method == "" {
			method = http.MethodGet
		}
		path := fuzzPaths[int(pathIndex)%len(fuzzPaths)]
		if override != "" {
			path += "?_method=" + url.QueryEscape(override)
		}
		body := fuzzFormBody(contentType, override, raw)
		var bodyRead int
		newRequest := func() *http.Request {
			bodyRead = 0
			r := httptest.NewRequest(http.MethodPost, base+path, countReads{bytes.NewReader(body), &bodyRead})
			r.Method = method
			if contentType != "" {
				r.Header.Set("Content-Type", contentType)
			}
			r.Header.Set("Origin", base)
			r.AddCookie(cookie)
			return r
		}

		reached = ""
		w := httptest.NewRecorder()
		chain.ServeHTTP(w, newRequest())
		if w.Code >= 500 {
			t.Fatalf("middleware: got %d, want no server error", w.Code)
		}
		if bodyRead > 0 {
			t.Fatalf("middleware: got %d bytes of the body read before routing, want none", bodyRead)
		}
		switch {
		case reached == "":
			if w.Code != http.StatusBadRequest && w.Code != http.StatusRequestEntityTooLarge && w.Code != http.StatusForbidden {
				t.Fatalf("got %d without reaching the handler, want 400, 403 or 413", w.Code)
			}
		case method == http.MethodPost && !isAPIPath(path):
			if reached != http.MethodPost && reached != http.MethodPatch && reached != http.MethodDelete {
				t.Fatalf("a POST reached the handler as %q, want POST, PATCH or DELETE", reached)
			}
		case reached != method:
			t.Fatalf("a %q request reached the handler as %q, want it unchanged", method, reached)
		}

		w = httptest.NewRecorder()
		server.ServeHTTP(w, newRequest())
		if w.Code >= 500 {
			t.Fatalf("server: %s %s with _method %q and Content-Type %q: got %d, want no server error", method, path, override, contentType, w.Code)
		}
	})
}

// countReads counts the bytes read from a request body.
type countReads struct {
	r *bytes.Reader
	n *int
}

func (c countReads) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += n
	return n, err
}

// fuzzFormBody is raw when given; otherwise a form of the content type's
// kind that carries override as _method.
func fuzzFormBody(contentType, override string, raw []byte) []byte {
	if len(raw) > 0 {
		return raw
	}
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt == "multipart/form-data" {
		b := params["boundary"]
		return []byte("--" + b + "\r\nContent-Disposition: form-data; name=\"_method\"\r\n\r\n" + override +
			"\r\n--" + b + "\r\nContent-Disposition: form-data; name=\"apple_id\"\r\n\r\nfuzz@example.com\r\n--" + b + "--\r\n")
	}
	return []byte("_method=" + url.QueryEscape(override) + "&apple_id=fuzz%40example.com")
}

// fuzzServer starts the whole application once for a fuzz target: the
// development provider, a SQLite store, NewServer on a loopback listener.
// It signs an admin in through the real flow and returns the base URL, the
// server's handler (for calling in process) and the session cookie.
func fuzzServer(f *testing.F, log *slog.Logger) (string, http.Handler, *http.Cookie) {
	f.Helper()
	ctx := context.Background()
	// One clock for the provider, the service and the sessions, standing
	// at the tests' start.
	clk := testclock.New(f)
	provider, err := devidp.Start(log, "127.0.0.1:0", f.TempDir(), []devidp.User{
		{Key: "admin", Label: "Fuzz Admin", Email: "admin@example.com", Groups: []string{"fuzz-admins"}},
	}, clk.Now)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = provider.Close() })
	kr, err := store.NewKeyring(strings.Repeat("fuzz-kek-", 4))
	if err != nil {
		f.Fatal(err)
	}
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(fuzzDBDir(f), "fuzz.db"), kr)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	svc := pushcert.NewService(st, pushcert.Config{Organization: "Fuzz Org", Now: clk.Now})

	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	authn, err := NewAuthenticator(ctx, log, AuthConfig{
		Issuer:          provider.Issuer(),
		ClientID:        devidp.ClientID,
		ClientSecret:    provider.ClientSecret(),
		Scopes:          []string{"openid", "email", "profile", "groups"},
		BaseURL:         base,
		GroupsClaim:     "groups",
		AdminGroups:     []string{"fuzz-admins"},
		SessionSecret:   "fuzz-session-secret-0123456789abcdef",
		SessionLifetime: time.Hour,
		Sessions:        st,
		Now:             clk.Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	handler := NewServer(log, authn, svc, nil, nil, NewOps(log, st, ""), base, "Fuzz Org", nil)
	srv.Config.Handler = handler
	srv.Start()
	f.Cleanup(srv.Close)

	jar, err := cookiejar.New(nil)
	if err != nil {
		f.Fatal(err)
	}
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := base + "/login"
	for range 10 {
		resp, err := c.Get(next)
		if err != nil {
			f.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			break
		}
		if strings.HasSuffix(loc.Path, "/authorize") {
			q := loc.Query()
			q.Set("demo_user", "admin")
			loc.RawQuery = q.Encode()
		}
		next = loc.String()
	}
	u, _ := url.Parse(base)
	for _, ck := range jar.Cookies(u) {
		if ck.Name != sessionCookie {
			continue
		}
		r := httptest.NewRequest(http.MethodGet, base+"/", nil)
		r.AddCookie(ck)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `data-testid="upload-form"`) {
			f.Fatalf("signed-in admin: got %d without the upload form, want 200 with it", w.Code)
		}
		return base, handler, ck
	}
	f.Fatal("signing in the fuzz admin set no session cookie")
	return "", nil, nil
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
