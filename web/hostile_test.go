package web_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
	"github.com/pushcert/pushcert/web/webtest"
)

// hostileAPIPath is the resource every API row writes to.
const hostileAPIPath = "/v1.0/deviceManagement/applePushNotificationCertificate"

// hostileAppleID is the Apple ID the active certificate is set up with.
const hostileAppleID = "admin@example.com"

// TestHostileInputs sends the running server (pages and API) input meant to
// break it, one row at a time against a fresh installation with an active
// certificate. Every row asserts the status, a message a person can act on,
// that the active certificate, its key and the rest of the resource are
// byte for byte as before (or, for the one row that stores an odd Apple ID,
// that exactly that changed), and that no cookie, token or private key
// reached the response or the server's log.
func TestHostileInputs(t *testing.T) {
	type row struct {
		name     string
		opts     webtest.Options
		send     func(t *testing.T, a *hostileApp) *http.Response
		wantCode int
		wantText string // in the page's message or the API error's code and message, ignoring case
		// storesAppleID, when set, is the Apple ID the row is expected to
		// store verbatim; the certificate and key must still be unchanged.
		storesAppleID string
		check         func(t *testing.T, a *hostileApp, resp *http.Response, body string)
	}
	rows := []row{
		// The upload form, sent by a signed-in admin's browser.
		{
			name:     "page: empty file",
			send:     pageUpload(func(t *testing.T, a *hostileApp) formSpec { return formSpec{file: []byte{}} }),
			wantCode: http.StatusUnprocessableEntity, wantText: "the certificate is empty",
		},
		{
			name: "page: binary garbage",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				junk := make([]byte, 4096)
				_, _ = rand.Read(junk)
				junk[0] = 0x30 // looks like the start of DER
				return formSpec{file: junk}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "not a certificate pushcert can read",
		},
		{
			name: "page: truncated PEM",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				full := a.renewal(t)
				return formSpec{file: full[:len(full)/2]}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "damaged",
		},
		{
			name: "page: PEM with only a key",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				k := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(hostileSpareKey())})
				a.secret(pemBody(k))
				return formSpec{file: k}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "this is a private key, not a certificate",
		},
		{
			name: "page: the active private key pasted as the certificate",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.keyPEM}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "this is a private key, not a certificate",
		},
		{
			name: "page: PKCS 12 bundle",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: hostilePFX(t, a.cert.Raw, a.keyDER), fileName: "MDM_Certificate.p12"}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "PKCS#12",
		},
		{
			name: "page: the CSR instead of the certificate",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				pk, err := a.Service.GenerateCSR(context.Background(), hostileActor)
				if err != nil {
					t.Fatalf("generate csr: %v", err)
				}
				return formSpec{file: []byte(pk.Request), fileName: "pushcert.csr"}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "this is a certificate signing request",
		},
		{
			// The parser takes the first CERTIFICATE block, here the CA's,
			// which carries no topic: refused, even though the leaf after
			// it is a valid renewal.
			name: "page: chain in the wrong order (CA first)",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: append(a.CA.CertPEM(), a.renewal(t)...)}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "not an MDM push certificate",
		},
		{
			name: "page: expired",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				now := a.Clock.Now()
				return formSpec{file: a.issue(t, applesim.Request{Topic: a.topic, NotBefore: now.AddDate(-1, 0, -1), NotAfter: now.AddDate(0, 0, -1)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "this certificate expired on",
		},
		{
			name: "page: not yet valid",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				now := a.Clock.Now()
				return formSpec{file: a.issue(t, applesim.Request{Topic: a.topic, NotBefore: now.AddDate(0, 0, 2), NotAfter: now.AddDate(2, 0, 0)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "this certificate is not valid until",
		},
		{
			name: "page: wrong key",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				der, err := a.CA.Issue(applesim.Request{PublicKey: &hostileSpareKey().PublicKey, Topic: a.topic, NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})
				if err != nil {
					t.Fatalf("issue: %v", err)
				}
				return formSpec{file: applesim.PEM(der)}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "issued for a CSR that pushcert did not generate",
		},
		{
			name: "page: non-MDM topic",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.issue(t, applesim.Request{Topic: "com.example.chat.voip", NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "does not start with com.apple.mgmt.",
		},
		{
			name: "page: no topic at all",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.issue(t, applesim.Request{Topic: applesim.NoTopic, NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "it has no topic",
		},
		{
			name: "page: topic change without confirming it",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.issue(t, applesim.Request{Topic: applesim.NewTopic(), NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "the topic changed from",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) {
				if !strings.Contains(body, `data-testid="allow-topic-change"`) {
					t.Error("refusal does not offer the topic-change confirmation")
				}
			},
		},
		{
			// Text from the certificate is shown in the refusal: escaped.
			name: "page: script in the certificate's topic",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				topic := "com.apple.mgmt.External.<script>alert(document.cookie)</script>"
				return formSpec{file: a.issue(t, applesim.Request{Topic: topic, NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "the topic changed from",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) {
				if !strings.Contains(body, "&lt;script&gt;alert(document.cookie)&lt;/script&gt;") || strings.Contains(body, "<script>alert") {
					t.Error("the topic is not shown escaped")
				}
			},
		},
		{
			name: "page: not issued by Apple",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				der, err := hostileRogueCA(t).Issue(applesim.Request{PublicKey: a.cert.PublicKey, Topic: a.topic, NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})
				if err != nil {
					t.Fatalf("issue: %v", err)
				}
				return formSpec{file: applesim.PEM(der)}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "was not issued by Apple",
		},
		{
			name: "page: older than the active certificate",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.issue(t, applesim.Request{Topic: a.topic, NotAfter: a.cert.NotAfter.AddDate(0, 0, -30)})}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "before the active one",
		},
		{
			name: "page: 10 MiB body",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: bytes.Repeat([]byte("MIIB"), 10<<20/4)}
			}),
			wantCode: http.StatusRequestEntityTooLarge, wantText: "larger than 1 MiB",
		},
		{
			name: "page: path-traversal file name",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: []byte("root:x:0:0:root:/root:/bin/sh\n"), fileName: "../../etc/passwd"}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "not a certificate pushcert can read",
			// The name is only ever shown, as the refused file's base name
			// (issue 15: the status page names the refused file), escaped
			// by templ; never used as a path, never logged.
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) {
				if strings.Contains(body, "etc/passwd") || strings.Contains(body, "../") || strings.Contains(a.Logs.String(), "passwd") {
					t.Error("the file name's path reached the page, or the name reached the log")
				}
			},
		},
		{
			// A raw CR LF inside the quoted file name breaks the part's
			// headers: the form cannot be read and nothing changes.
			name: "page: CRLF in the file name (raw)",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.renewal(t), partHeader: textproto.MIMEHeader{
					"Content-Disposition": {"form-data; name=\"certificate\"; filename=\"MDM.pem\r\nX-Injected: yes\r\n\""},
					"Content-Type":        {"application/x-pem-file"},
				}}
			}),
			wantCode: http.StatusBadRequest, wantText: "could not read the submitted form",
			check: assertNotInjected,
		},
		{
			name: "page: CRLF in the file name (RFC 2231 encoded)",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: []byte("not a certificate"), partHeader: textproto.MIMEHeader{
					"Content-Disposition": {"form-data; name=\"certificate\"; filename*=UTF-8''MDM.pem%0D%0AX-Injected%3A%20yes"},
				}}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "not a certificate pushcert can read",
			check: assertNotInjected,
		},
		{
			// A valid renewal with a script for an Apple ID: the Apple ID is
			// refused, so the valid certificate is not taken either, and the
			// form shows what was typed, escaped.
			name: "page: HTML and script in the Apple ID",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.renewal(t), appleID: `"><script>alert(document.cookie)</script>@example.com`}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "enter the Apple ID",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) {
				if !strings.Contains(body, "&lt;script&gt;alert(document.cookie)&lt;/script&gt;") {
					t.Error("the typed Apple ID is not shown escaped")
				}
				if strings.Contains(body, "<script>alert") || strings.Contains(body, `"><script`) {
					t.Error("the page carries the script unescaped")
				}
			},
		},
		{
			name: "page: SQL metacharacters in the Apple ID",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{appleID: "x'); DROP TABLE installation;--@example.com"}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "enter the Apple ID",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) {
				if !strings.Contains(body, "x&#39;); DROP TABLE installation;--@example.com") {
					t.Error("the typed Apple ID is not kept in the form")
				}
				a.assertStoreWorks(t)
			},
		},
		{
			name: "page: invalid UTF-8 in the Apple ID",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{appleID: "adm\xff\xfein@example.com"}
			}),
			wantCode: http.StatusUnprocessableEntity, wantText: "enter the Apple ID",
		},
		{
			name: "page: version field is not a number",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.renewal(t), version: "1 OR 1=1"}
			}),
			wantCode: http.StatusBadRequest, wantText: "could not read the submitted form",
		},
		{
			name: "page: stale version with a valid renewal",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.renewal(t), version: "1"}
			}),
			wantCode: http.StatusConflict, wantText: "changed by someone else",
		},
		{
			name: "page: multipart body without its boundary",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				req := a.request(t, http.MethodPost, "/certificate?_method=PATCH", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"apple_id\"\r\n\r\na@example.com\r\n--x--\r\n"))
				req.Header.Set("Content-Type", "multipart/form-data")
				return a.do(t, a.admin, req)
			},
			wantCode: http.StatusBadRequest, wantText: "could not read the submitted form",
		},
		{
			name: "page: method override to PUT",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{override: "PUT", file: a.renewal(t)}
			}),
			wantCode: http.StatusBadRequest, wantText: "may only stand in for PATCH or DELETE",
		},
		{
			name: "page: method override to GET",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{override: "GET", file: a.renewal(t)}
			}),
			wantCode: http.StatusBadRequest, wantText: "may only stand in for PATCH or DELETE",
		},
		{
			// DELETE is an allowed override, but nothing is routed to
			// DELETE /certificate: the certificate cannot be deleted.
			name: "page: method override to DELETE",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{override: "DELETE"}
			}),
			wantCode: http.StatusNotFound, wantText: "There is nothing at this address",
		},
		{
			// The override is read from the URL alone: a body is read only
			// by the handler it is routed to, after the role check.
			name: "page: override in the body is ignored",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.postForm(t, a.admin, "/certificate", formSpec{override: "-", bodyMethod: http.MethodPatch, file: a.renewal(t)})
			},
			wantCode: http.StatusNotFound, wantText: "There is nothing at this address",
		},
		{
			name: "page: cross-origin post (Origin)",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.renewal(t), origin: "https://evil.example"}
			}),
			wantCode: http.StatusForbidden, wantText: "sent from another site",
		},
		{
			name: "page: cross-origin post (Sec-Fetch-Site)",
			send: pageUpload(func(t *testing.T, a *hostileApp) formSpec {
				return formSpec{file: a.renewal(t), origin: "-", header: http.Header{"Sec-Fetch-Site": {"cross-site"}}}
			}),
			wantCode: http.StatusForbidden, wantText: "sent from another site",
		},
		{
			// pushcert's own API answers in the API's error shape too.
			name: "pushcert api: cross-origin browser post",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				req := a.request(t, http.MethodPost, "/api/pushcert/deliveries", nil)
				req.Header.Set("Origin", "https://evil.example")
				return a.do(t, a.Client(t), req)
			},
			wantCode: http.StatusForbidden, wantText: "forbidden: Cross-origin browser requests are not accepted",
		},
		{
			name: "page: GET with a 2 MiB query string",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.do(t, a.admin, a.request(t, http.MethodGet, "/?q="+strings.Repeat("%27%3B", 2<<20/6), nil))
			},
			wantCode: http.StatusRequestHeaderFieldsTooLarge, wantText: "Request Header Fields Too Large",
		},
		{
			name: "page: HEAD on the upload",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				req := a.request(t, http.MethodHead, "/certificate", nil)
				req.Header.Set("Origin", a.URL)
				return a.do(t, a.admin, req)
			},
			wantCode: http.StatusNotFound, wantText: "", // a HEAD answer has no body to read
		},
		{
			name: "page: upload by a viewer",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.postForm(t, a.LoginAs(t, "viewer"), "/certificate", formSpec{file: a.renewal(t)})
			},
			wantCode: http.StatusForbidden, wantText: "may view the push certificate but not change it",
		},
		{
			name: "page: upload signed out",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.postForm(t, a.Client(t), "/certificate", formSpec{file: a.renewal(t)})
			},
			wantCode: http.StatusUnauthorized, wantText: "Your session has ended, so nothing was changed",
		},
		{
			name: "page: tampered session cookie",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				b := []byte(a.cookie)
				b[len(b)/2] ^= 0x01
				return a.postForm(t, a.cookieClient(t, a.secret(string(b))), "/certificate", formSpec{file: a.renewal(t)})
			},
			wantCode: http.StatusUnauthorized, wantText: "Your session has ended",
		},
		{
			// As after the operator rotated the session secret: the cookie is
			// genuine, but for the old secret.
			name: "page: session cookie from an old secret",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				old := webtest.New(t, webtest.Options{SessionSecret: "the-old-session-secret-0123456789abcdef"})
				return a.postForm(t, a.cookieClient(t, a.secret(sessionCookieValue(t, old.LoginAs(t, "admin"), old.URL))), "/certificate", formSpec{file: a.renewal(t)})
			},
			wantCode: http.StatusUnauthorized, wantText: "Your session has ended",
		},
		{
			name: "page: expired session cookie",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				file := a.renewal(t)
				// The cookie works until the session's hour is up, so the
				// refusal is its expiry and nothing else.
				a.Clock.Advance(time.Hour - time.Minute)
				resp := a.do(t, a.cookieClient(t, a.cookie), a.request(t, http.MethodGet, "/", nil))
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("a minute before the session's hour is up: got %d, want 200", resp.StatusCode)
				}
				a.Clock.Advance(time.Minute + time.Second)
				return a.postForm(t, a.cookieClient(t, a.cookie), "/certificate", formSpec{file: file})
			},
			wantCode: http.StatusUnauthorized, wantText: "Your session has ended",
		},

		// The JSON API, called with the admin's bearer token.
		{
			name:     "api: empty certificate",
			send:     apiPatch(func(t *testing.T, a *hostileApp) []byte { return hostileJSON(t, map[string]any{"certificate": ""}) }),
			wantCode: http.StatusBadRequest, wantText: "certificate: the certificate is empty",
		},
		{
			name: "api: garbage certificate",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return hostileJSON(t, map[string]any{"certificate": "Certificate value", "appleIdentifier": hostileAppleID})
			}),
			wantCode: http.StatusBadRequest, wantText: "invalidCertificate",
		},
		{
			name: "api: the active private key pasted as the certificate",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return hostileJSON(t, map[string]any{"certificate": string(a.keyPEM)})
			}),
			wantCode: http.StatusBadRequest, wantText: "this is a private key, not a certificate",
		},
		{
			name: "api: the active private key as bare base64 DER",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				b64 := a.secret(base64.StdEncoding.EncodeToString(a.keyDER))
				a.secret(b64[:64]) // a partial echo too
				return hostileJSON(t, map[string]any{"certificate": b64})
			}),
			wantCode: http.StatusBadRequest, wantText: "this is a private key, not a certificate",
		},
		{
			name: "api: PKCS 12 bundle as base64",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return hostileJSON(t, map[string]any{"certificate": base64.StdEncoding.EncodeToString(hostilePFX(t, a.cert.Raw, a.keyDER))})
			}),
			wantCode: http.StatusBadRequest, wantText: "PKCS#12",
		},
		{
			name: "api: expired",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				now := a.Clock.Now()
				c := a.issue(t, applesim.Request{Topic: a.topic, NotBefore: now.AddDate(-1, 0, -1), NotAfter: now.AddDate(0, 0, -1)})
				return hostileJSON(t, map[string]any{"certificate": string(c)})
			}),
			wantCode: http.StatusBadRequest, wantText: "certificateExpired",
		},
		{
			name: "api: topic change without opting in",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				c := a.issue(t, applesim.Request{Topic: applesim.NewTopic(), NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})
				return hostileJSON(t, map[string]any{"certificate": string(c)})
			}),
			wantCode: http.StatusConflict, wantText: "topicMismatch",
		},
		{
			name: "api: 10 MiB body",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte(`{"certificate":"` + strings.Repeat("A", 10<<20) + `"}`)
			}),
			wantCode: http.StatusRequestEntityTooLarge, wantText: "larger than 1 MiB",
		},
		{
			// JSON text must be UTF-8 (RFC 8259, section 8.1). Decoding it
			// anyway would turn the bytes into U+FFFD and store an Apple ID
			// the admin never sent; the upload form refuses the same input.
			name: "api: invalid UTF-8 in the JSON",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte("{\"appleIdentifier\":\"adm\xff\xfein@example.com\"}")
			}),
			wantCode: http.StatusBadRequest, wantText: "not valid UTF-8",
		},
		{
			name: "api: duplicate keys",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte(`{"appleIdentifier":"admin@example.com","appleIdentifier":"attacker@evil.example"}`)
			}),
			wantCode: http.StatusBadRequest, wantText: `the property "appleIdentifier" appears more than once`,
		},
		{
			name: "api: keys that differ only in case",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte(`{"appleIdentifier":"admin@example.com","AppleIdentifier":"attacker@evil.example"}`)
			}),
			wantCode: http.StatusBadRequest, wantText: `the property "AppleIdentifier" is not a property`,
		},
		{
			name: "api: wrong types",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte(`{"certificate":["-----BEGIN CERTIFICATE-----"],"appleIdentifier":42}`)
			}),
			wantCode: http.StatusBadRequest, wantText: `the property "certificate" must be a JSON string`,
		},
		{
			name: "api: unknown property",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte(`{"appleIdentifier":"admin@example.com","isAdmin":true}`)
			}),
			wantCode: http.StatusBadRequest, wantText: `the property "isAdmin" is not a property of applePushNotificationCertificate`,
		},
		{
			name: "api: trailing garbage after the object",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return []byte(`{"appleIdentifier":"someone@example.com"} {"appleIdentifier":"attacker@evil.example"}`)
			}),
			wantCode: http.StatusBadRequest, wantText: "must be a single JSON object",
		},
		{
			name: "api: nesting bomb",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				const depth = 200_000
				return []byte(`{"certificate":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + `}`)
			}),
			wantCode: http.StatusBadRequest, wantText: "must be a single JSON object",
		},
		{
			name: "api: SQL metacharacters in the Apple ID are refused",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return hostileJSON(t, map[string]any{"appleIdentifier": "x'); DROP TABLE installation;--@example.com"})
			}),
			wantCode: http.StatusBadRequest, wantText: "invalidAppleIdentifier",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) { a.assertStoreWorks(t) },
		},
		{
			// A valid address can still carry quotes and SQL comments: it is
			// stored and read back exactly as sent.
			name: "api: SQL metacharacters in a valid Apple ID are stored verbatim",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return hostileJSON(t, map[string]any{"appleIdentifier": "x'OR'1'='1'--/*@example.com"})
			}),
			wantCode: http.StatusOK, wantText: `"appleIdentifier":"x'OR'1'='1'--/*@example.com"`, storesAppleID: "x'OR'1'='1'--/*@example.com",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) { a.assertStoreWorks(t) },
		},
		{
			name: "api: HTML and script in the Apple ID",
			send: apiPatch(func(t *testing.T, a *hostileApp) []byte {
				return hostileJSON(t, map[string]any{"appleIdentifier": "<script>alert(1)</script>@example.com", "certificate": string(a.renewal(t))})
			}),
			wantCode: http.StatusBadRequest, wantText: "invalidAppleIdentifier",
		},
		{
			name: "api: $select of 600 KiB",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.api(t, apiSpec{method: http.MethodGet, query: "$select=" + strings.Repeat("x", 600<<10)})
			},
			wantCode: http.StatusBadRequest, wantText: "$select names",
			check: func(t *testing.T, a *hostileApp, resp *http.Response, body string) {
				if len(body) > 2048 {
					t.Errorf("got a %d-byte error, want the name clipped", len(body))
				}
			},
		},
		{
			name: "api: form body with a method override is not a form to the API",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.api(t, apiSpec{method: http.MethodPost, contentType: "application/x-www-form-urlencoded",
					body: []byte("_method=PATCH&certificate=" + url.QueryEscape(string(a.renewal(t))))})
			},
			wantCode: http.StatusUnsupportedMediaType, wantText: "Content-Type: application/json",
		},
		{
			name: "api: PUT",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.api(t, apiSpec{method: http.MethodPut, body: hostileJSON(t, map[string]any{"certificate": string(a.renewal(t))})})
			},
			wantCode: http.StatusMethodNotAllowed, wantText: "methodNotAllowed",
		},
		{
			name: "api: stale If-Match with a valid renewal",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.api(t, apiSpec{method: http.MethodPatch, header: http.Header{"If-Match": {`W/"1"`}},
					body: hostileJSON(t, map[string]any{"certificate": string(a.renewal(t))})})
			},
			wantCode: http.StatusPreconditionFailed, wantText: "resourceModified",
		},
		{
			name:     "api: upload with a viewer's token",
			send:     apiPatchAs(func(t *testing.T, a *hostileApp) string { return a.secret(a.Token(t, "viewer")) }),
			wantCode: http.StatusForbidden, wantText: "may view the push certificate but not change it",
		},
		{
			name:     "api: upload without a token",
			send:     apiPatchAs(func(t *testing.T, a *hostileApp) string { return "" }),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: expired token",
			send: apiPatchAs(func(t *testing.T, a *hostileApp) string {
				now := a.Clock.Now()
				return a.signed(t, func(c map[string]any) {
					c["iat"], c["nbf"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
				})
			}),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: token for another audience",
			send: apiPatchAs(func(t *testing.T, a *hostileApp) string {
				return a.signed(t, func(c map[string]any) { c["aud"] = "another-app" })
			}),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: token from another issuer",
			send: apiPatchAs(func(t *testing.T, a *hostileApp) string {
				return a.signed(t, func(c map[string]any) { c["iss"] = "https://evil.example/oidc" })
			}),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: token with alg none",
			send: apiPatchAs(func(t *testing.T, a *hostileApp) string {
				s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(a.claims(nil))).SignedString(jwt.UnsafeAllowNoneSignatureType)
				if err != nil {
					t.Fatalf("sign: %v", err)
				}
				return a.secret(s)
			}),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: token signed by an unknown key",
			send: apiPatchAs(func(t *testing.T, a *hostileApp) string {
				s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims(a.claims(nil))).SignedString(hostileSpareKey())
				if err != nil {
					t.Fatalf("sign: %v", err)
				}
				return a.secret(s)
			}),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name:     "api: garbage token",
			send:     apiPatchAs(func(t *testing.T, a *hostileApp) string { return "eyJhbGciOi.'; DROP TABLE installation;--.garbage" }),
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: token in the query string instead of the header",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.api(t, apiSpec{method: http.MethodPatch, noToken: true, query: "access_token=" + url.QueryEscape(a.token),
					body: hostileJSON(t, map[string]any{"certificate": string(a.renewal(t))})})
			},
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
		{
			name: "api: the admin's session cookie instead of a token",
			send: func(t *testing.T, a *hostileApp) *http.Response {
				return a.api(t, apiSpec{method: http.MethodPatch, noToken: true, client: a.admin,
					body: hostileJSON(t, map[string]any{"certificate": string(a.renewal(t))})})
			},
			wantCode: http.StatusUnauthorized, wantText: "InvalidAuthenticationToken",
		},
	}
	if len(rows) < 45 {
		t.Fatalf("got %d rows, want at least 45", len(rows))
	}
	for _, tt := range rows {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each row has its own app; this overlaps their waits for I/O
			a := newHostileApp(t, tt.opts)
			before := a.snapshot(t)

			resp := tt.send(t, a)
			raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			resp.Body.Close()
			if err != nil {
				t.Fatalf("read response: %v", err)
			}
			body := string(raw)
			text := responseText(resp, body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(strings.ToLower(text), strings.ToLower(tt.wantText)) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, clipForMessage(text), tt.wantCode, tt.wantText)
			}
			if resp.StatusCode >= 500 {
				t.Errorf("got server error %d", resp.StatusCode)
			}

			after := a.snapshot(t)
			if tt.storesAppleID != "" {
				if after.appleID != tt.storesAppleID {
					t.Errorf("got Apple ID %q, want %q stored verbatim", after.appleID, tt.storesAppleID)
				}
				after.appleID, after.lastModified, after.lastModifiedBy = before.appleID, before.lastModified, before.lastModifiedBy
			}
			before.assertSame(t, after)
			a.assertNoSecrets(t, resp, body)
			if tt.check != nil {
				tt.check(t, a, resp, body)
			}
		})
	}
}

// hostileActor is who sets up each row's active certificate.
var hostileActor = auth.User{Subject: "dev-admin", Name: "Test Admin", Email: "admin@example.com", Role: auth.RoleAdmin}

// hostileApp is a running pushcert with an active certificate, and what a
// row needs to attack it.
type hostileApp struct {
	*webtest.App
	admin   *http.Client // a signed-in admin's browser
	cookie  string       // its session cookie
	token   string       // an admin bearer token
	cert    *x509.Certificate
	keyDER  []byte // the active private key, PKCS#8
	keyPEM  []byte
	topic   string
	secrets []string // what must never reach a response or the log
}

// newHostileApp starts the app and walks the real flow once: a CSR, Apple's
// certificate for it, the upload.
func newHostileApp(t *testing.T, opts webtest.Options) *hostileApp {
	t.Helper()
	ctx := context.Background()
	app := webtest.New(t, opts)
	if _, err := app.Service.GenerateCSR(ctx, hostileActor); err != nil {
		t.Fatalf("generate csr: %v", err)
	}
	st, err := app.Service.Update(ctx, pushcert.Update{Actor: hostileActor, AppleID: hostileAppleID, Certificate: app.IssueForLatestCSR(t, "")})
	if err != nil {
		t.Fatalf("set up the active certificate: %v", err)
	}
	a := &hostileApp{App: app, topic: st.Certificate.Topic}
	blk, _ := pem.Decode([]byte(st.Certificate.PEM))
	if a.cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatalf("parse active certificate: %v", err)
	}
	if a.keyDER, err = app.Store.ActiveKey(ctx); err != nil {
		t.Fatalf("active key: %v", err)
	}
	a.keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: a.keyDER})
	a.admin = app.LoginAs(t, "admin")
	a.cookie = a.secret(sessionCookieValue(t, a.admin, app.URL))
	a.token = a.secret(app.Token(t, "admin"))
	a.secret(pemBody(a.keyPEM))
	return a
}

// secret registers s as something no response or log line may contain,
// and returns it.
func (a *hostileApp) secret(s string) string {
	a.secrets = append(a.secrets, s)
	return s
}

// hostileSnapshot is what a refused request must leave exactly as it was:
// the resource without the parts every attempt changes (version, upload
// status and reason), and the decrypted active key.
type hostileSnapshot struct {
	id             string
	appleID        string
	cert           *pushcert.Certificate
	lastModified   time.Time
	lastModifiedBy auth.User
	key            []byte
}

func (a *hostileApp) snapshot(t *testing.T) hostileSnapshot {
	t.Helper()
	ctx := context.Background()
	st, err := a.Store.State(ctx)
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	key, err := a.Store.ActiveKey(ctx)
	if err != nil {
		t.Fatalf("active key: %v", err)
	}
	return hostileSnapshot{id: st.ID, appleID: st.AppleID, cert: st.Certificate,
		lastModified: st.LastModified, lastModifiedBy: st.LastModifiedBy, key: key}
}

func (s hostileSnapshot) assertSame(t *testing.T, after hostileSnapshot) {
	t.Helper()
	if after.cert == nil {
		t.Fatal("got no active certificate, want the one from before")
	}
	if after.cert.PEM != s.cert.PEM || after.cert.SerialNumber != s.cert.SerialNumber {
		t.Errorf("got active certificate %s, want %s unchanged", after.cert.SerialNumber, s.cert.SerialNumber)
	}
	if !bytes.Equal(after.key, s.key) {
		t.Error("got a different active key, want it byte for byte unchanged")
	}
	if !reflect.DeepEqual(after, s) {
		t.Errorf("got resource %s, want unchanged %s", after, s)
	}
}

func (s hostileSnapshot) String() string {
	serial := "none"
	if s.cert != nil {
		serial = s.cert.SerialNumber
	}
	return fmt.Sprintf("{id %s, Apple ID %q, certificate %s, modified %s by %s}",
		s.id, s.appleID, serial, s.lastModified.Format(time.RFC3339Nano), s.lastModifiedBy.Subject)
}

// assertNoSecrets checks that no session cookie, token or private key
// reached the response or anything the server logged.
func (a *hostileApp) assertNoSecrets(t *testing.T, resp *http.Response, body string) {
	t.Helper()
	logs := a.Logs.String()
	var headers strings.Builder
	_ = resp.Header.Write(&headers)
	for _, where := range []struct{ name, text string }{{"log", logs}, {"response body", body}, {"response headers", headers.String()}} {
		if strings.Contains(where.text, "PRIVATE KEY") {
			t.Errorf("the %s contains a private key PEM", where.name)
		}
		for _, s := range a.secrets {
			if len(s) >= 16 && strings.Contains(where.text, s) {
				t.Errorf("the %s contains a secret (%s…)", where.name, s[:8])
			}
		}
	}
}

// assertStoreWorks checks that the store still reads and writes after an
// odd input: the API reads the resource back and the history is readable.
func (a *hostileApp) assertStoreWorks(t *testing.T) {
	t.Helper()
	resp := a.api(t, apiSpec{method: http.MethodGet})
	var got map[string]any
	err := json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	st, serr := a.Service.State(context.Background())
	if resp.StatusCode != http.StatusOK || err != nil || serr != nil || got["appleIdentifier"] != st.AppleID {
		t.Errorf("after the request: GET got %d %v (%v), want 200 with Apple ID %q", resp.StatusCode, got["appleIdentifier"], err, st.AppleID)
	}
	if _, err := a.Service.History(context.Background(), 10); err != nil {
		t.Errorf("history: %v", err)
	}
}

// issue plays Apple for the active key: a certificate that passes the key
// check, so that only what the row varies is wrong with it.
func (a *hostileApp) issue(t *testing.T, req applesim.Request) []byte {
	t.Helper()
	req.PublicKey = a.cert.PublicKey
	der, err := a.CA.Issue(req)
	if err != nil {
		t.Fatalf("issue: %v", err)
	}
	return applesim.PEM(der)
}

// renewal is a certificate the service would accept: same key and topic,
// later expiry. Rows send it where something else must stop the upload.
func (a *hostileApp) renewal(t *testing.T) []byte {
	t.Helper()
	return a.issue(t, applesim.Request{Topic: a.topic, NotAfter: a.cert.NotAfter.AddDate(0, 1, 0)})
}

// claims are valid admin token claims, changed by mod.
func (a *hostileApp) claims(mod func(map[string]any)) map[string]any {
	now := a.Clock.Now()
	c := map[string]any{
		"iss": a.Provider.Issuer(), "aud": devidp.ClientID, "sub": "dev-admin",
		"email": "admin@example.com", "groups": []string{webtest.AdminGroup},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// signed is a token with the provider's real key over claims changed by mod.
func (a *hostileApp) signed(t *testing.T, mod func(map[string]any)) string {
	t.Helper()
	s, err := a.Provider.SignClaims(a.claims(mod))
	if err != nil {
		t.Fatalf("sign claims: %v", err)
	}
	return a.secret(s)
}

func (a *hostileApp) request(t *testing.T, method, path string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, a.URL+path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return req
}

func (a *hostileApp) do(t *testing.T, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp
}

// cookieClient is a browser without a jar that sends the given session
// cookie.
func (a *hostileApp) cookieClient(t *testing.T, value string) *http.Client {
	t.Helper()
	c := a.Client(t)
	u, _ := url.Parse(a.URL)
	c.Jar.SetCookies(u, []*http.Cookie{{Name: "pushcert_session", Value: value}})
	return c
}

// formSpec is one submission of the upload form.
type formSpec struct {
	override   string               // ?_method= in the URL, as the form's action has it; "" sends PATCH, "-" none
	bodyMethod string               // a _method field in the body, which nothing reads
	appleID    string               // "" sends the current Apple ID
	file       []byte               // nil: no file part
	fileName   string               // default MDM_Certificate.pem
	partHeader textproto.MIMEHeader // replaces the file part's headers
	version    string               // default the current version, as the page carries it
	origin     string               // default the app's; "-" none
	header     http.Header          // more request headers
}

// postForm sends the upload form to path with c, built as a browser does.
func (a *hostileApp) postForm(t *testing.T, c *http.Client, path string, f formSpec) *http.Response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	field := func(name, value string) {
		if err := mw.WriteField(name, value); err != nil {
			t.Fatalf("write field: %v", err)
		}
	}
	switch f.override {
	case "":
		path += "?_method=" + http.MethodPatch
	case "-":
	default:
		path += "?_method=" + url.QueryEscape(f.override)
	}
	if f.bodyMethod != "" {
		field("_method", f.bodyMethod)
	}
	if f.appleID == "" {
		f.appleID = hostileAppleID
	}
	field("apple_id", f.appleID)
	if f.version == "" {
		st, err := a.Service.State(context.Background())
		if err != nil {
			t.Fatalf("state: %v", err)
		}
		f.version = strconv.FormatInt(st.Version, 10)
	}
	field("version", f.version)
	if f.file != nil || f.partHeader != nil {
		if f.fileName == "" {
			f.fileName = "MDM_Certificate.pem"
		}
		var w io.Writer
		var err error
		if f.partHeader != nil {
			w, err = mw.CreatePart(f.partHeader)
		} else {
			w, err = mw.CreateFormFile("certificate", f.fileName)
		}
		if err != nil {
			t.Fatalf("create part: %v", err)
		}
		_, _ = w.Write(f.file)
	}
	if err := mw.Close(); err != nil {
		t.Fatalf("close form: %v", err)
	}
	req := a.request(t, http.MethodPost, path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	switch f.origin {
	case "":
		req.Header.Set("Origin", a.URL)
	case "-":
	default:
		req.Header.Set("Origin", f.origin)
	}
	for k, vs := range f.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return a.do(t, c, req)
}

// pageUpload is a row that sends the upload form as the signed-in admin.
func pageUpload(spec func(t *testing.T, a *hostileApp) formSpec) func(t *testing.T, a *hostileApp) *http.Response {
	return func(t *testing.T, a *hostileApp) *http.Response {
		return a.postForm(t, a.admin, "/certificate", spec(t, a))
	}
}

// apiSpec is one API request; by default a JSON PATCH of the resource with
// the admin's token.
type apiSpec struct {
	method      string
	query       string
	body        []byte
	contentType string // default application/json when there is a body
	token       string // default the admin's
	noToken     bool
	header      http.Header
	client      *http.Client // default one without cookies
}

func (a *hostileApp) api(t *testing.T, s apiSpec) *http.Response {
	t.Helper()
	path := hostileAPIPath
	if s.query != "" {
		path += "?" + s.query
	}
	var body io.Reader
	if s.body != nil {
		body = bytes.NewReader(s.body)
	}
	req := a.request(t, s.method, path, body)
	if s.body != nil {
		if s.contentType == "" {
			s.contentType = "application/json"
		}
		req.Header.Set("Content-Type", s.contentType)
	}
	if s.token == "" {
		s.token = a.token
	}
	if !s.noToken {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for k, vs := range s.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if s.client == nil {
		s.client = a.Client(t)
		s.client.Jar = nil
	}
	return a.do(t, s.client, req)
}

// apiPatch is a row that PATCHes the resource with body as the admin.
func apiPatch(body func(t *testing.T, a *hostileApp) []byte) func(t *testing.T, a *hostileApp) *http.Response {
	return func(t *testing.T, a *hostileApp) *http.Response {
		return a.api(t, apiSpec{method: http.MethodPatch, body: body(t, a)})
	}
}

// apiPatchAs is a row that PATCHes a valid renewal with the token from
// token ("" for none), so that only the token can stop it.
func apiPatchAs(token func(t *testing.T, a *hostileApp) string) func(t *testing.T, a *hostileApp) *http.Response {
	return func(t *testing.T, a *hostileApp) *http.Response {
		tok := token(t, a)
		return a.api(t, apiSpec{method: http.MethodPatch, token: tok, noToken: tok == "",
			body: hostileJSON(t, map[string]any{"certificate": string(a.renewal(t))})})
	}
}

// responseText is the message a person reads in a response: the upload
// form's refusal or an error page's message as text, or an API error's
// code and message; otherwise the whole body.
func responseText(resp *http.Response, body string) string {
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal([]byte(body), &e) == nil && e.Error.Code != "" {
			return e.Error.Code + ": " + e.Error.Message
		}
		return body
	}
	for _, el := range []struct{ testID, end string }{{"upload-error", "</div>"}, {"error-message", "</p>"}} {
		_, rest, ok := strings.Cut(body, `data-testid="`+el.testID+`">`)
		if !ok {
			continue
		}
		inner, _, _ := strings.Cut(rest, el.end)
		return html.UnescapeString(htmlTag.ReplaceAllString(inner, ""))
	}
	return body
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// clipForMessage shortens a response for a failure message.
func clipForMessage(s string) string {
	if len(s) > 300 {
		return s[:300] + "…"
	}
	return s
}

func assertNotInjected(t *testing.T, a *hostileApp, resp *http.Response, body string) {
	t.Helper()
	if resp.Header.Get("X-Injected") != "" {
		t.Error("a header from the file name reached the response")
	}
	if strings.Contains(a.Logs.String(), "X-Injected") {
		t.Error("the file name reached the log")
	}
}

// sessionCookieValue is the session cookie c holds for base.
func sessionCookieValue(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	u, _ := url.Parse(base)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == "pushcert_session" {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// pemBody is the first line of a PEM block's base64, enough to recognize
// the key in a log or a page.
func pemBody(p []byte) string {
	lines := strings.Split(string(p), "\n")
	if len(lines) < 2 {
		return string(p)
	}
	return lines[1]
}

func hostileJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return b
}

// hostileSpareKey is a key pushcert never saw: for a certificate issued
// for the wrong key, a token signed by an unknown key, a pasted key.
var hostileSpareKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

var hostileRogue = sync.OnceValues(func() (*applesim.CA, error) {
	return applesim.NewCA("Totally Legit Push CA", testclock.Now)
})

// hostileRogueCA is an authority that is not Apple's.
func hostileRogueCA(t *testing.T) *applesim.CA {
	t.Helper()
	ca, err := hostileRogue()
	if err != nil {
		t.Fatalf("rogue ca: %v", err)
	}
	return ca
}

// hostilePFX builds a PKCS#12 file (RFC 7292) as key-chain tools export
// it, holding the certificate and its private key, with an integrity MAC
// (HMAC-SHA-256) under the empty password. x/crypto/pkcs12 only decodes,
// so the ASN.1 is assembled here.
func hostilePFX(t *testing.T, certDER, keyDER []byte) []byte {
	t.Helper()
	var (
		oidData     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
		oidKeyBag   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 1}
		oidCertBag  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
		oidX509Cert = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
		oidSHA256   = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	)
	type contentInfo struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue
	}
	type safeBag struct {
		ID    asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	type certBag struct {
		ID   asn1.ObjectIdentifier
		Cert []byte `asn1:"explicit,tag:0"`
	}
	type algorithm struct {
		ID     asn1.ObjectIdentifier
		Params asn1.RawValue
	}
	type digestInfo struct {
		Algorithm algorithm
		Digest    []byte
	}
	type macData struct {
		Mac        digestInfo
		Salt       []byte
		Iterations int
	}
	type pfx struct {
		Version  int
		AuthSafe contentInfo
		MacData  macData
	}
	must := func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("asn1: %v", err)
		}
		return b
	}
	// encoding/asn1 writes a RawValue as it is, so the [0] EXPLICIT
	// wrappers are made here.
	explicit := func(inner []byte) asn1.RawValue {
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
	}
	data := func(content []byte) contentInfo {
		return contentInfo{Type: oidData, Content: explicit(must(asn1.Marshal(content)))}
	}
	bags := must(asn1.Marshal([]safeBag{
		{ID: oidCertBag, Value: explicit(must(asn1.Marshal(certBag{ID: oidX509Cert, Cert: certDER})))},
		{ID: oidKeyBag, Value: explicit(keyDER)},
	}))
	authSafe := must(asn1.Marshal([]contentInfo{data(bags)}))

	salt := make([]byte, 8)
	_, _ = rand.Read(salt)
	const iterations = 2048
	mac := hmac.New(sha256.New, pkcs12MacKey(salt, iterations))
	mac.Write(authSafe)
	return must(asn1.Marshal(pfx{
		Version:  3,
		AuthSafe: data(authSafe),
		MacData: macData{
			Mac:        digestInfo{Algorithm: algorithm{ID: oidSHA256, Params: asn1.NullRawValue}, Digest: mac.Sum(nil)},
			Salt:       salt,
			Iterations: iterations,
		},
	}))
}

// pkcs12MacKey derives the MAC key for the empty password with SHA-256,
// as RFC 7292 appendix B.2 describes (ID 3, v = 64). The key is 32 bytes,
// one hash output, so only the first block A1 is needed.
func pkcs12MacKey(salt []byte, iterations int) []byte {
	const v = 64
	fill := func(b []byte) []byte { // b repeated to a multiple of v bytes
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := bytes.Repeat([]byte{3}, v)
	i := append(fill(salt), fill([]byte{0, 0})...) // the empty password as a BMPString with its terminator
	h := sha256.Sum256(append(d, i...))
	for range iterations - 1 {
		h = sha256.Sum256(h[:])
	}
	return h[:]
}
