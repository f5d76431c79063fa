package target

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// request is what a recording server saw.
type request struct {
	method, path, contentType string
	user, password            string
	basic                     bool
	body                      []byte
}

// recorder is an MDM server's API that records each request and answers
// with h (when nil, 200 naming the topic of the certificate sent, as
// NanoMDM does).
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []request
}

func newRecorder(t *testing.T, h http.HandlerFunc) *recorder {
	t.Helper()
	rc := &recorder{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		rc.mu.Lock()
		rc.seen = append(rc.seen, request{r.Method, r.URL.Path, r.Header.Get("Content-Type"), user, pass, ok, body})
		rc.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		if h == nil {
			h = confirmTopic
		}
		h(w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// only returns the one request the server saw.
func (rc *recorder) only(t *testing.T) request {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.seen) != 1 {
		t.Fatalf("got %d requests, want 1", len(rc.seen))
	}
	return rc.seen[0]
}

// parseOne configures one target from a JSON object, the operator's way.
func parseOne(t *testing.T, target string, env map[string]string) Target {
	t.Helper()
	targets, err := Parse("delivery.json", []byte(`{"targets": [`+target+`]}`), getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	return targets[0]
}

func wantAuth(t *testing.T, r request, user, password string) {
	t.Helper()
	if r.method != http.MethodPut || !r.basic || r.user != user || r.password != password {
		t.Errorf("got %s with Basic %v user %q password %q, want PUT with Basic user %q password %q",
			r.method, r.basic, r.user, r.password, user, password)
	}
}

func TestNanoHUBRequest(t *testing.T) {
	for _, kind := range []string{rsaKey, ecdsaKey} {
		t.Run(kind, func(t *testing.T) {
			rc := newRecorder(t, nil)
			tg := parseOne(t, fmt.Sprintf(`{"name": "hub", "kind": "nanohub", "url": %q, "apiKeyEnv": "HUB_KEY"}`, rc.URL), map[string]string{"HUB_KEY": "hub-secret"})
			p := newPair(t, "", kind)
			if err := tg.Deliver(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			r := rc.only(t)
			wantAuth(t, r, "nanohub", "hub-secret")
			if r.path != "/api/v1/nanomdm/pushcert" {
				t.Errorf("got path %q, want /api/v1/nanomdm/pushcert", r.path)
			}
			// The body is the certificate's PEM followed by the key's.
			certEnd := bytes.Index(r.body, []byte("-----END CERTIFICATE-----\n")) + len("-----END CERTIFICATE-----\n")
			if !bytes.Equal(r.body[:certEnd], []byte(p.Certificate.PEM)) {
				t.Errorf("got body starting %q, want the certificate's PEM", r.body[:certEnd])
			}
			_, pub, block := parseStored(t, r.body[:certEnd], r.body[certEnd:])
			wantBlock := map[string]string{rsaKey: "RSA PRIVATE KEY", ecdsaKey: "PRIVATE KEY"}[kind]
			if block != wantBlock || !samePublicKey(t, p, pub) {
				t.Errorf("got key block %q (matching: %v), want %q of the pair's key", block, samePublicKey(t, p, pub), wantBlock)
			}
		})
	}
}

func TestMicroMDMRequest(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := parseOne(t, fmt.Sprintf(`{"name": "micro", "kind": "micromdm", "url": %q, "apiKeyEnv": "MICRO_KEY"}`, rc.URL+"/"), map[string]string{"MICRO_KEY": "micro-secret"})
	p := newPair(t, "", rsaKey)
	if err := tg.Deliver(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	r := rc.only(t)
	wantAuth(t, r, "micromdm", "micro-secret")
	if r.path != "/v1/config/certificate" || r.contentType != "application/json" {
		t.Errorf("got path %q type %q, want /v1/config/certificate application/json", r.path, r.contentType)
	}
	var body map[string]string
	if err := json.Unmarshal(r.body, &body); err != nil || len(body) != 2 {
		t.Fatalf("got body %s, want JSON with cert and key alone", r.body)
	}
	certPEM, cerr := base64.StdEncoding.DecodeString(body["cert"])
	keyPEM, kerr := base64.StdEncoding.DecodeString(body["key"])
	if cerr != nil || kerr != nil {
		t.Fatalf("got cert and key that are not base64: %v %v", cerr, kerr)
	}
	if string(certPEM) != p.Certificate.PEM {
		t.Errorf("got cert %q, want the certificate's PEM", certPEM)
	}
	_, pub, block := parseStored(t, certPEM, keyPEM)
	if block != "RSA PRIVATE KEY" || !samePublicKey(t, p, pub) {
		t.Errorf("got key block %q, want the pair's key as RSA PRIVATE KEY (PKCS#1)", block)
	}
}

func TestMicroMDMRefusesECDSA(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := parseOne(t, fmt.Sprintf(`{"name": "micro", "kind": "micromdm", "url": %q, "apiKeyEnv": "K"}`, rc.URL), map[string]string{"K": "k"})
	err := tg.Deliver(t.Context(), newPair(t, "", ecdsaKey))
	wantMessage(t, err, "MicroMDM needs a PKCS#1 key")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.seen) != 0 {
		t.Errorf("got %d requests, want none", len(rc.seen))
	}
}

// answer is a handler that writes status, content type and body.
func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func TestMDMAnswers(t *testing.T) {
	long := strings.Repeat("x", 500)
	tests := []struct {
		name    string
		kind    string
		h       http.HandlerFunc
		timeout string
		want    string
		notWant string
	}{
		{"success", "nanomdm", confirmTopic, "", "", ""},
		{"200 naming another topic", "nanomdm", answer(200, "application/json", `{"topic": "com.apple.mgmt.External.other"}`), "",
			"NanoMDM did not confirm the certificate", ""},
		{"200 from something else", "nanohub", answer(200, "text/html", "<html>welcome</html>"), "",
			"NanoHUB did not confirm the certificate: the answer (200) does not name its topic", "html"},
		{"wrong API key", "nanomdm", answer(401, "", ""), "", "NanoMDM refused the API key (401)", ""},
		{"forbidden", "nanohub", answer(403, "", ""), "", "NanoHUB refused the API key (403)", ""},
		{"wrong path", "micromdm", answer(404, "text/plain", "404 page not found"), "", "MicroMDM has no push-certificate endpoint at", ""},
		{"wrong method", "nanomdm", answer(405, "", ""), "", "NanoMDM has no push-certificate endpoint at", ""},
		{"refusal with NanoMDM's error", "nanomdm", answer(400, "application/json", `{"error": "parse X509 key pair: tls: private key does not match public key"}`), "",
			"NanoMDM refused the certificate (400): parse X509 key pair: tls: private key does not match public key", ""},
		{"long error clipped", "nanomdm", answer(400, "application/json", `{"error": "`+long+`"}`), "",
			"NanoMDM refused the certificate (400): " + strings.Repeat("x", 199) + "…", strings.Repeat("x", 200)},
		{"MicroMDM's err field", "micromdm", answer(500, "application/json", `{"err": "save push certificate: disk full"}`), "",
			"MicroMDM could not store the certificate (500): save push certificate: disk full", ""},
		{"plain-text gateway error", "nanomdm", answer(502, "text/plain; charset=utf-8", "bad gateway\n"), "",
			"NanoMDM could not store the certificate (502): bad gateway", ""},
		{"HTML error page not quoted", "nanomdm", answer(503, "text/html", "<html>maintenance</html>"), "",
			"NanoMDM could not store the certificate (503)", "html"},
		{"other status", "nanomdm", answer(409, "", ""), "", "NanoMDM answered 409", ""},
		{"API key echoed back", "nanomdm", answer(400, "application/json", `{"error": "bad password the-api-key"}`), "",
			"(400): bad password [API key]", "the-api-key"},
		{"redirect not followed", "nanomdm", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://other.example.com/v1/pushcert?token=s3cret", http.StatusFound)
		}, "", "the target answered with a redirect to https://other.example.com/v1/pushcert; set url to the final address", "s3cret"},
		{"timeout", "nanomdm", func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, "50ms", "timed out after 50ms waiting for NanoMDM at 127.0.0.1:", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newRecorder(t, tt.h)
			conf := fmt.Sprintf(`{"name": "t", "kind": %q, "url": %q, "apiKeyEnv": "K"`, tt.kind, rc.URL)
			if tt.timeout != "" {
				conf += fmt.Sprintf(`, "timeout": %q`, tt.timeout)
			}
			tg := parseOne(t, conf+"}", map[string]string{"K": "the-api-key"})
			err := tg.Deliver(t.Context(), newPair(t, "", rsaKey))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			e := wantMessage(t, err, tt.want)
			if tt.notWant != "" && (strings.Contains(e.Message, tt.notWant) || strings.Contains(fmt.Sprint(e.Err), tt.notWant)) {
				t.Errorf("got message %q (cause %v), want neither to hold %q", e.Message, e.Err, tt.notWant)
			}
			if strings.Contains(e.Message, "the-api-key") || strings.Contains(fmt.Sprint(e.Err), "the-api-key") {
				t.Errorf("got the API key in %q / %v", e.Message, e.Err)
			}
		})
	}
}

func TestMDMRefusesMismatchedPair(t *testing.T) {
	rc := newRecorder(t, nil)
	tg := parseOne(t, fmt.Sprintf(`{"name": "t", "kind": "nanomdm", "url": %q, "apiKeyEnv": "K"}`, rc.URL), map[string]string{"K": "k"})
	p := pairFor(t, "", newKey(t, rsaKey), newKey(t, rsaKey))
	wantMessage(t, tg.Deliver(t.Context(), p), "the pair cannot be delivered: the certificate's public key does not match the private key")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.seen) != 0 {
		t.Errorf("got %d requests, want none", len(rc.seen))
	}
}
