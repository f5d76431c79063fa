package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/web/webtest"
)

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestSignInRoundTrip(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	c := app.Client(t)

	// A signed-out visit to a page is sent to sign in, remembering the page.
	resp, _ := get(t, c, app.URL+"/history")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login?next=%2Fhistory" {
		t.Fatalf("got %d %q, want 303 to /login?next=%%2Fhistory", resp.StatusCode, resp.Header.Get("Location"))
	}
	// /login redirects to the provider with PKCE S256, state and nonce.
	resp, _ = get(t, c, app.URL+"/login?next=%2Fhistory")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("login: got %d, want 302", resp.StatusCode)
	}
	auth, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := auth.Query()
	for _, k := range []string{"state", "nonce", "code_challenge", "redirect_uri", "client_id"} {
		if q.Get(k) == "" {
			t.Errorf("authorization request has no %s", k)
		}
	}
	if q.Get("code_challenge_method") != "S256" {
		t.Errorf("got code_challenge_method %q, want S256", q.Get("code_challenge_method"))
	}
	if !strings.HasPrefix(auth.String(), app.Provider.Issuer()) {
		t.Errorf("got authorization URL %s, want one at %s", auth, app.Provider.Issuer())
	}
	// The provider signs the admin in and sends the browser back.
	q.Set("demo_user", "admin")
	auth.RawQuery = q.Encode()
	resp, _ = get(t, c, auth.String())
	callback := resp.Header.Get("Location")
	if !strings.HasPrefix(callback, app.URL+"/auth/callback?") {
		t.Fatalf("provider redirected to %q, want the callback", callback)
	}
	resp, _ = get(t, c, callback)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/history" {
		t.Fatalf("callback: got %d %q, want 303 to /history", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The login values are single use: the browser no longer holds them.
	cbURL, _ := url.Parse(callback)
	for _, ck := range c.Jar.Cookies(cbURL) {
		if ck.Name == "pushcert_login" {
			t.Error("the login cookie survived the callback")
		}
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "pushcert_session" {
			session = ck
		}
	}
	if session == nil {
		t.Fatal("callback set no session cookie")
	}
	if !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.MaxAge <= 0 {
		t.Errorf("session cookie HttpOnly=%v SameSite=%v MaxAge=%d, want HttpOnly, Lax, bounded", session.HttpOnly, session.SameSite, session.MaxAge)
	}
	if strings.Contains(session.Value, "admin@example.com") {
		t.Error("session cookie is readable; want it encrypted")
	}
	resp, body := get(t, c, app.URL+"/history")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "admin@example.com") {
		t.Fatalf("after sign-in: got %d, want 200 showing the user", resp.StatusCode)
	}
	// Replaying the same callback is refused and signs nobody in.
	fresh := app.Client(t)
	resp, _ = get(t, fresh, callback)
	if resp.StatusCode < 400 {
		t.Errorf("replayed callback: got %d, want a 4xx", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if ck.Name == "pushcert_session" && ck.MaxAge >= 0 {
			t.Error("replayed callback set a session cookie")
		}
	}
	// Sign-out is POST only and expires the cookie.
	resp, _ = get(t, c, app.URL+"/logout")
	if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /logout: got %d, want 405 or 404", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/logout", nil)
	req.Header.Set("Origin", app.URL)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	end, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || end == nil || !strings.HasPrefix(end.String(), app.Provider.Issuer()+"/logout?") ||
		end.Query().Get("post_logout_redirect_uri") != app.URL+"/signed-out" {
		t.Fatalf("logout: got %d %q, want 303 to the provider's end-session endpoint returning to /signed-out", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self' "+strings.TrimSuffix(app.Provider.Issuer(), "/oidc")) {
		t.Errorf("CSP %q does not let the sign-out form continue to the provider", resp.Header.Get("Content-Security-Policy"))
	}
	resp, _ = get(t, c, end.String())
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != app.URL+"/signed-out" {
		t.Errorf("provider end-session: got %d %q, want 302 back to /signed-out", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body = get(t, c, app.URL+"/signed-out")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
		t.Errorf("signed-out page: got %d, want 200 saying so", resp.StatusCode)
	}
	resp, _ = get(t, c, app.URL+"/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("after logout: got %d %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// startLogin begins a sign-in with c and returns the callback URL the
// provider sends the browser to.
func startLogin(t *testing.T, app *webtest.App, c *http.Client, user, next string) string {
	t.Helper()
	resp, _ := get(t, c, app.URL+"/login?next="+url.QueryEscape(next))
	auth, _ := url.Parse(resp.Header.Get("Location"))
	q := auth.Query()
	q.Set("demo_user", user)
	auth.RawQuery = q.Encode()
	resp, _ = get(t, c, auth.String())
	return resp.Header.Get("Location")
}

func TestCallbackRefusals(t *testing.T) {
	tests := []struct {
		name     string
		callback func(t *testing.T, app *webtest.App, c *http.Client) string
		wantCode int
		wantText string
	}{
		{"wrong state", func(t *testing.T, app *webtest.App, c *http.Client) string {
			cb, _ := url.Parse(startLogin(t, app, c, "admin", "/"))
			q := cb.Query()
			q.Set("state", "forged-state")
			cb.RawQuery = q.Encode()
			return cb.String()
		}, http.StatusBadRequest, "does not belong to this browser"},
		{"no login cookie", func(t *testing.T, app *webtest.App, c *http.Client) string {
			cb := startLogin(t, app, c, "admin", "/")
			c.Jar = nil // a browser that never started this sign-in
			return cb
		}, http.StatusBadRequest, "no longer valid"},
		{"code from another sign-in", func(t *testing.T, app *webtest.App, c *http.Client) string {
			other := app.Client(t)
			stolen, _ := url.Parse(startLogin(t, app, other, "admin", "/"))
			mine, _ := url.Parse(startLogin(t, app, c, "viewer", "/"))
			q := mine.Query()
			q.Set("code", stolen.Query().Get("code"))
			mine.RawQuery = q.Encode()
			return mine.String() // right state, wrong code: PKCE verifier does not match
		}, http.StatusUnauthorized, "did not accept"},
		{"provider error", func(t *testing.T, app *webtest.App, c *http.Client) string {
			cb, _ := url.Parse(startLogin(t, app, c, "admin", "/"))
			q := cb.Query()
			q.Del("code")
			q.Set("error", "access_denied")
			cb.RawQuery = q.Encode()
			return cb.String()
		}, http.StatusUnauthorized, "did not sign you in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := webtest.New(t, webtest.Options{})
			c := app.Client(t)
			cb := tt.callback(t, app, c)
			resp, body := get(t, c, cb)
			if resp.StatusCode != tt.wantCode || !strings.Contains(body, tt.wantText) {
				t.Fatalf("got %d (%s), want %d containing %q", resp.StatusCode, excerpt(body), tt.wantCode, tt.wantText)
			}
			for _, ck := range resp.Cookies() {
				if ck.Name == "pushcert_session" && ck.MaxAge >= 0 {
					t.Error("a refused callback set a session cookie")
				}
			}
		})
	}
}

func TestOpenRedirectRefused(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	for _, next := range []string{
		"https://evil.example/", "//evil.example/", "/\\evil.example", "http:/evil.example",
		"javascript:alert(1)", "/\t/evil.example", "evil.example",
	} {
		t.Run(next, func(t *testing.T) {
			c := app.Client(t)
			cb := startLogin(t, app, c, "admin", next)
			resp, _ := get(t, c, cb)
			if got := resp.Header.Get("Location"); got != "/" {
				t.Errorf("got redirect to %q, want /", got)
			}
		})
	}
	t.Run("overlong path dropped", func(t *testing.T) {
		c := app.Client(t)
		resp, _ := get(t, c, startLogin(t, app, c, "admin", "/history?pad="+strings.Repeat("x", 6000)))
		if got := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || got != "/" {
			t.Errorf("got %d %q, want 303 to /", resp.StatusCode, got)
		}
	})
	t.Run("local path kept", func(t *testing.T) {
		c := app.Client(t)
		resp, _ := get(t, c, startLogin(t, app, c, "admin", "/history?x=1"))
		if got := resp.Header.Get("Location"); got != "/history?x=1" {
			t.Errorf("got redirect to %q, want /history?x=1", got)
		}
	})
}

func TestSessionCookieRefusals(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	other := webtest.New(t, webtest.Options{SessionSecret: "a-different-session-secret-0123456789"})
	expiring := webtest.New(t, webtest.Options{}) // its clock is moved past the session lifetime

	sessionOf := func(c *http.Client, base string) *http.Cookie {
		u, _ := url.Parse(base)
		for _, ck := range c.Jar.Cookies(u) {
			if ck.Name == "pushcert_session" {
				return ck
			}
		}
		t.Fatal("no session cookie")
		return nil
	}
	tests := []struct {
		name   string
		cookie func(t *testing.T) *http.Cookie
	}{
		{"tampered", func(t *testing.T) *http.Cookie {
			ck := sessionOf(app.LoginAs(t, "admin"), app.URL)
			b := []byte(ck.Value)
			b[len(b)/2] ^= 1
			return &http.Cookie{Name: ck.Name, Value: string(b)}
		}},
		{"from another secret", func(t *testing.T) *http.Cookie {
			ck := sessionOf(other.LoginAs(t, "admin"), other.URL)
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}},
		{"expired", func(t *testing.T) *http.Cookie {
			c := expiring.LoginAs(t, "admin")
			ck := sessionOf(c, expiring.URL)
			// The same cookie works until the lifetime has passed, so the
			// refusal below is its expiry and nothing else.
			expiring.Clock.Advance(time.Hour - time.Minute)
			if resp, _ := get(t, c, expiring.URL+"/"); resp.StatusCode != http.StatusOK {
				t.Fatalf("a minute before the session's hour is up: got %d, want 200", resp.StatusCode)
			}
			expiring.Clock.Advance(time.Minute + time.Second)
			return &http.Cookie{Name: ck.Name, Value: ck.Value}
		}},
		{"garbage", func(t *testing.T) *http.Cookie {
			return &http.Cookie{Name: "pushcert_session", Value: "not-a-session"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := tt.cookie(t)
			target := app
			if tt.name == "expired" {
				target = expiring
			}
			req, _ := http.NewRequest(http.MethodGet, target.URL+"/", nil)
			req.AddCookie(ck)
			resp, err := target.Client(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
				t.Errorf("got %d %q, want 303 to sign in", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
}

// adminRoutes are every page route that changes something or hands out a CSR.
var adminRoutes = []struct{ method, path string }{
	{http.MethodPost, "/csr"},
	{http.MethodGet, "/csr"},
	{http.MethodPatch, "/certificate"},
}

func TestRoles(t *testing.T) {
	app := webtest.New(t, webtest.Options{Dev: true})
	admin, viewer, outsider := app.LoginAs(t, "admin"), app.LoginAs(t, "viewer"), app.LoginAs(t, "outsider")

	do := func(c *http.Client, method, path string) (int, string) {
		req, _ := http.NewRequest(method, app.URL+path, strings.NewReader(""))
		req.Header.Set("Origin", app.URL)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	routes := append(adminRoutes, struct{ method, path string }{http.MethodGet, "/dev/apple"}, struct{ method, path string }{http.MethodPost, "/dev/apple/issue"})
	for _, rt := range routes {
		t.Run("viewer "+rt.method+" "+rt.path, func(t *testing.T) {
			code, body := do(viewer, rt.method, rt.path)
			if code != http.StatusForbidden || !strings.Contains(body, webtest.AdminGroup) {
				t.Errorf("got %d, want 403 naming %s", code, webtest.AdminGroup)
			}
		})
	}
	t.Run("viewer reads", func(t *testing.T) {
		for _, p := range []string{"/", "/history"} {
			if code, _ := do(viewer, http.MethodGet, p); code != http.StatusOK {
				t.Errorf("GET %s: got %d, want 200", p, code)
			}
		}
	})
	t.Run("viewer sees no admin controls", func(t *testing.T) {
		_, body := do(viewer, http.MethodGet, "/")
		for _, id := range []string{`data-testid="generate-csr"`, `data-testid="upload-form"`} {
			if strings.Contains(body, id) {
				t.Errorf("viewer page has %s", id)
			}
		}
	})
	t.Run("admin sees admin controls", func(t *testing.T) {
		_, body := do(admin, http.MethodGet, "/")
		for _, id := range []string{`data-testid="generate-csr"`, `data-testid="upload-form"`} {
			if !strings.Contains(body, id) {
				t.Errorf("admin page lacks %s", id)
			}
		}
	})
	t.Run("outsider gets a clear 403, not a sign-in loop", func(t *testing.T) {
		code, body := do(outsider, http.MethodGet, "/")
		if code != http.StatusForbidden || !strings.Contains(body, webtest.ViewerGroup) || !strings.Contains(body, webtest.AdminGroup) {
			t.Errorf("got %d, want 403 naming both groups", code)
		}
	})
}

func TestCrossOriginFormRefused(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin := app.LoginAs(t, "admin")
	for _, h := range []struct{ name, value string }{
		{"Origin", "https://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
	} {
		t.Run(h.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, app.URL+"/csr", strings.NewReader("a=b"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(h.name, h.value)
			resp, err := admin.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "another site") {
				t.Errorf("got %d, want 403 explaining the refusal", resp.StatusCode)
			}
			if _, err := app.Service.LatestCSR(context.Background()); err == nil {
				t.Error("a cross-origin post generated a CSR")
			}
		})
	}
}

func TestMethodOverride(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin := app.LoginAs(t, "admin")
	post := func(method string) int {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("apple_id", "admin@example.com")
		_ = mw.Close()
		req, _ := http.NewRequest(http.MethodPost, app.URL+"/certificate?_method="+url.QueryEscape(method), &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Origin", app.URL)
		resp, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("PUT"); got != http.StatusBadRequest {
		t.Errorf("override to PUT: got %d, want 400", got)
	}
	if got := post("GET"); got != http.StatusBadRequest {
		t.Errorf("override to GET: got %d, want 400", got)
	}
	// An oversized form, refused by the upload handler after the role
	// check, shows who is signed in.
	var big bytes.Buffer
	mw := multipart.NewWriter(&big)
	fw, _ := mw.CreateFormFile("certificate", "huge.pem")
	_, _ = fw.Write(bytes.Repeat([]byte("A"), 2<<20))
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, app.URL+"/certificate?_method=PATCH", &big)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", app.URL)
	resp, err := admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(page), "admin@example.com") {
		t.Errorf("oversized upload: got %d, want 413 in the signed-in layout naming the admin", resp.StatusCode)
	}
	// PATCH reaches the upload handler, which refuses an empty upload with 422.
	if got := post("PATCH"); got != http.StatusUnprocessableEntity {
		t.Errorf("override to PATCH: got %d, want 422 from the upload handler", got)
	}
}

func TestSecurityHeaders(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	resp, body := get(t, app.LoginAs(t, "viewer"), app.URL+"/")
	want := map[string]string{
		"X-Frame-Options":        "DENY",
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "same-origin",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: got %q, want %q", k, got, v)
		}
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, part := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, part) {
			t.Errorf("CSP %q lacks %q", csp, part)
		}
	}
	if strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q allows inline code", csp)
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " style=\"") {
		t.Error("page has inline script or style, which the CSP would block")
	}
	resp, _ = get(t, app.Client(t), app.URL+"/no/such/page")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: got %d, want 404", resp.StatusCode)
	}
}

// apiEndpoints are every API route with the role it needs.
var apiEndpoints = []struct {
	method, path string
	admin        bool
}{
	{http.MethodGet, "/deviceManagement/applePushNotificationCertificate", false},
	{http.MethodPatch, "/deviceManagement/applePushNotificationCertificate", true},
	{http.MethodPost, "/deviceManagement/applePushNotificationCertificate", true},
	{http.MethodPost, "/deviceManagement/applePushNotificationCertificate/generateApplePushNotificationCertificateSigningRequest", true},
	{http.MethodGet, "/deviceManagement/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest", true},
	{http.MethodGet, "/deviceManagement/applePushNotificationCertificate/downloadApplePushNotificationCertificateSigningRequest()", true},
}

func apiCall(t *testing.T, app *webtest.App, method, path, token string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, app.URL+path, strings.NewReader(`{"appleIdentifier":"admin@example.com"}`))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp, body
}

func TestAPIRoles(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin, viewer, outsider := app.Token(t, "admin"), app.Token(t, "viewer"), app.Token(t, "outsider")
	for _, prefix := range []string{"/v1.0", "/beta"} {
		for _, ep := range apiEndpoints {
			t.Run(prefix+" "+ep.method+" "+ep.path, func(t *testing.T) {
				resp, body := apiCall(t, app, ep.method, prefix+ep.path, viewer)
				if ep.admin && resp.StatusCode != http.StatusForbidden {
					t.Errorf("viewer: got %d, want 403", resp.StatusCode)
				}
				if !ep.admin && resp.StatusCode == http.StatusForbidden {
					t.Errorf("viewer: got 403, want access")
				}
				if ep.admin {
					assertErrorShape(t, resp, body, "Forbidden")
				}
				resp, body = apiCall(t, app, ep.method, prefix+ep.path, outsider)
				if resp.StatusCode != http.StatusForbidden {
					t.Errorf("outsider: got %d, want 403", resp.StatusCode)
				}
				assertErrorShape(t, resp, body, "Forbidden")
				resp, _ = apiCall(t, app, ep.method, prefix+ep.path, admin)
				if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized || resp.StatusCode >= 500 {
					t.Errorf("admin: got %d, want access and an answer", resp.StatusCode)
				}
				resp, body = apiCall(t, app, ep.method, prefix+ep.path, "")
				if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("no token: got %d %q, want 401 with WWW-Authenticate: Bearer", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
				}
				assertErrorShape(t, resp, body, "InvalidAuthenticationToken")
			})
		}
	}
}

func TestAPIIgnoresCookies(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin := app.LoginAs(t, "admin")
	resp, _ := get(t, admin, app.URL+"/v1.0/deviceManagement/applePushNotificationCertificate")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with only a session cookie: got %d, want 401", resp.StatusCode)
	}
}

// TestAPITokenRefusals sends tokens that fail each of the verifier's checks:
// every one gets the same 401 answer, and the log line names the check it
// failed, so an operator can tell an expired token from one minted for
// another application.
func TestAPITokenRefusals(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	foreign := webtest.New(t, webtest.Options{}) // another provider: another issuer and key
	now := app.Clock.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{
			"iss": app.Provider.Issuer(), "aud": "pushcert-dev", "sub": "dev-admin",
			"email": "admin@example.com", "groups": []string{webtest.AdminGroup},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		}
		mod(c)
		return c
	}
	sign := func(t *testing.T, c map[string]any) string {
		tok, err := app.Provider.SignClaims(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name       string
		token      func(t *testing.T) string
		wantReason string // the reason the refusal is logged with
	}{
		{"no token", func(t *testing.T) string { return "" }, "missing"},
		{"expired", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix(); c["iat"] = now.Add(-time.Hour).Unix() }))
		}, "expired"},
		{"wrong audience", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["aud"] = "some-other-app" }))
		}, "wrong audience"},
		{"wrong issuer", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["iss"] = "https://evil.example/oidc" }))
		}, "wrong issuer"},
		// A token that fails several checks is refused for the first, in
		// the verifier's order: signature, issuer, audience, expiry.
		{"expired and for another audience", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["aud"] = "some-other-app"; c["exp"] = now.Add(-time.Minute).Unix() }))
		}, "wrong audience"},
		// The claims' own text must not decide the reason.
		{"wrong audience named like another problem", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["aud"] = "expired-issuer-signature" }))
		}, "wrong audience"},
		{"wrong issuer named like another problem", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["iss"] = "https://expired.example/audience" }))
		}, "wrong issuer"},
		{"not valid yet", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }))
		}, "malformed"},
		{"no subject", func(t *testing.T) string {
			return sign(t, claims(func(c map[string]any) { delete(c, "sub") }))
		}, "malformed"},
		{"from another provider", func(t *testing.T) string { return foreign.Token(t, "admin") }, "bad signature"},
		{"signed by an unknown key", func(t *testing.T) string {
			key, _ := rsa.GenerateKey(rand.Reader, 2048)
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(claims(func(map[string]any) {})))
			s, err := tok.SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "bad signature"},
		{"alg none", func(t *testing.T) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims(func(map[string]any) {})))
			s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, "bad signature"},
		{"signature stripped", func(t *testing.T) string {
			s := sign(t, claims(func(map[string]any) {}))
			return s[:strings.LastIndex(s, ".")+1]
		}, "bad signature"},
		{"payload swapped", func(t *testing.T) string {
			viewer := strings.Split(app.Token(t, "viewer"), ".")
			admin := base64.RawURLEncoding.EncodeToString(mustJSON(claims(func(map[string]any) {})))
			return viewer[0] + "." + admin + "." + viewer[2]
		}, "bad signature"},
		{"garbage", func(t *testing.T) string { return "not.a.token" }, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logged := len(app.Logs.String())
			resp, body := apiCall(t, app, http.MethodGet, "/v1.0/deviceManagement/applePushNotificationCertificate", tt.token(t))
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %d, want 401", resp.StatusCode)
			}
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
				t.Errorf("got WWW-Authenticate %q, want %q", got, `Bearer error="invalid_token"`)
			}
			assertErrorShape(t, resp, body, "InvalidAuthenticationToken")
			if got := refusalReasons(t, app.Logs.String()[logged:]); len(got) != 1 || got[0] != tt.wantReason {
				t.Errorf("got refusals logged with reasons %q, want one with %q", got, tt.wantReason)
			}
		})
	}
	t.Run("valid token accepted", func(t *testing.T) {
		resp, _ := apiCall(t, app, http.MethodGet, "/v1.0/deviceManagement/applePushNotificationCertificate", sign(t, claims(func(map[string]any) {})))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			t.Fatalf("got %d, want access", resp.StatusCode)
		}
	})
}

// refusalReasons returns the reasons of the "bearer token refused" lines in
// a JSON log.
func refusalReasons(t *testing.T, logs string) []string {
	t.Helper()
	var reasons []string
	for line := range strings.Lines(logs) {
		var rec struct{ Msg, Reason string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "bearer token refused" {
			reasons = append(reasons, rec.Reason)
		}
	}
	return reasons
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// assertErrorShape checks the API's error body and its request-id header.
func assertErrorShape(t *testing.T, resp *http.Response, body map[string]any, wantCode string) {
	t.Helper()
	e, ok := body["error"].(map[string]any)
	if !ok {
		t.Fatalf("body has no error object: %v", body)
	}
	if e["code"] != wantCode {
		t.Errorf("got code %v, want %s", e["code"], wantCode)
	}
	if m, _ := e["message"].(string); m == "" {
		t.Error("error has no message")
	}
	inner, _ := e["innerError"].(map[string]any)
	if inner == nil || inner["request-id"] == "" || inner["request-id"] != resp.Header.Get("request-id") || inner["date"] == "" {
		t.Errorf("got innerError %v, want date and the request-id header %q", inner, resp.Header.Get("request-id"))
	}
}

func excerpt(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func TestDevPagesOnlyInDevMode(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	admin := app.LoginAs(t, "admin")
	for _, rt := range []struct{ method, path string }{{http.MethodGet, "/dev/apple"}, {http.MethodPost, "/dev/apple/issue"}} {
		req, _ := http.NewRequest(rt.method, app.URL+rt.path, strings.NewReader("topic=renew"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", app.URL)
		resp, err := admin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s outside dev mode: got %d, want 404", rt.method, rt.path, resp.StatusCode)
		}
	}
}

func TestAPILogNamesOnlyTheTokenUser(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	browser := app.LoginAs(t, "admin")
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/v1.0/deviceManagement/applePushNotificationCertificate", nil)
	resp, err := browser.Do(req) // cookie only, no token: refused
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("got %d, want 401", resp.StatusCode)
	}
	for _, line := range strings.Split(app.Logs.String(), "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"path":"/v1.0/`) && strings.Contains(line, `"user_id":"dev-admin"`) {
			t.Errorf("a refused API request was logged as the cookie's user: %s", line)
		}
	}
}

// TestDevToken: the client of the dev_user shortcut gets a token the API
// accepts, and an unknown demo user is an error naming the status.
func TestDevToken(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	token, err := devidp.Token(t.Context(), http.DefaultClient, app.Provider.Issuer(), "viewer")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/v1.0/deviceManagement/applePushNotificationCertificate", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Errorf("API GET with the viewer's token: got %d, want it accepted", resp.StatusCode)
	}
	if _, err := devidp.Token(t.Context(), http.DefaultClient, app.Provider.Issuer(), "nobody"); err == nil || !strings.Contains(err.Error(), "status 400") {
		t.Errorf("unknown demo user: got %v, want an error with status 400", err)
	}
}

// TestDevProviderFollowsClock: the provider dates its tokens by the app's
// clock wherever a test moves it. A token fetched after the clock jumped a
// day is issued then and accepted; one fetched before has expired by then;
// signing in still works.
func TestDevProviderFollowsClock(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	const api = "/v1.0/deviceManagement/applePushNotificationCertificate"
	before := app.Token(t, "viewer")
	app.Clock.Advance(24 * time.Hour)
	after := app.Token(t, "viewer")

	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(after, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		IssuedAt int64 `json:"iat"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	// Whole seconds, and the provider's clock is the app's plus the
	// microseconds between reading it and signing.
	if now := app.Clock.Now().Unix(); claims.IssuedAt < now || claims.IssuedAt > now+1 {
		t.Errorf("token fetched a day later: got iat %d, want %d", claims.IssuedAt, now)
	}
	if resp, _ := apiCall(t, app, http.MethodGet, api, after); resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		t.Errorf("token fetched a day later: got %d, want access", resp.StatusCode)
	}
	if resp, _ := apiCall(t, app, http.MethodGet, api, before); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token fetched a day earlier: got %d, want 401", resp.StatusCode)
	}
	if resp, _ := get(t, app.LoginAs(t, "admin"), app.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Errorf("signing in a day later: got %d, want 200", resp.StatusCode)
	}
}
