package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/pushcert/pushcert/views"
)

// DevClientID is the client ID pushcert -dev registers at its embedded provider.
const DevClientID = "pushcert-dev"

// DevUser is a demo account of the embedded development provider.
type DevUser struct {
	Key    string // what the chooser and the token endpoint call it: admin, viewer, outsider
	Label  string
	Email  string
	Groups []string
}

// DevProvider is the OpenID provider pushcert -dev runs on loopback: a real
// OIDC implementation (mockoidc) with a page to choose a demo user, so the
// whole sign-in flow runs as it does against a company's provider.
type DevProvider struct {
	m     *mockoidc.MockOIDC
	users []DevUser
	// now dates the provider's tokens; nil leaves mockoidc on the wall
	// clock.
	now func() time.Time
	// mu serializes every request to the provider: mockoidc keeps its
	// sessions in a plain map, and the chosen user is handed over through a
	// queue that must not be shared between two sign-ins.
	mu sync.Mutex
}

// StartDevProvider starts the development provider on addr (127.0.0.1:0 for
// any free port). Its signing key and client secret are kept in dataDir so
// tokens and settings survive a restart. Its tokens are dated by now (nil
// means time.Now), the clock pushcert checks them with; now is read at
// every request, so a test that moves its clock moves the provider too.
func StartDevProvider(log *slog.Logger, addr, dataDir string, users []DevUser, now func() time.Time) (*DevProvider, error) {
	if len(users) == 0 {
		return nil, errors.New("dev provider: no demo users")
	}
	key, secret, err := devProviderSecrets(dataDir)
	if err != nil {
		return nil, err
	}
	m, err := mockoidc.NewServer(key)
	if err != nil {
		return nil, fmt.Errorf("dev provider: %w", err)
	}
	m.ClientID = DevClientID
	m.ClientSecret = secret
	d := &DevProvider{m: m, users: users, now: now}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev provider: listen on %s: %w", addr, err)
	}
	// mockoidc's own endpoints, plus the chooser in front of authorization,
	// a token shortcut for scripts, and an end-session endpoint, as company
	// providers publish one.
	mux := http.NewServeMux()
	mux.HandleFunc(mockoidc.AuthorizationEndpoint, d.authorize)
	mux.HandleFunc(mockoidc.TokenEndpoint, d.tokenEndpoint)
	mux.HandleFunc(mockoidc.UserinfoEndpoint, m.Userinfo)
	mux.HandleFunc(mockoidc.JWKSEndpoint, m.JWKS)
	mux.HandleFunc(mockoidc.DiscoveryEndpoint, d.discovery)
	mux.HandleFunc(mockoidc.IssuerBase+"/logout", d.logout)
	// mockoidc derives its issuer from Server.Addr, so the server is set
	// before anything asks for it.
	m.Server = &http.Server{Addr: ln.Addr().String(), Handler: d.serialize(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.Server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("development openid provider stopped", "err", err)
		}
	}()
	log.Info("development openid provider started", "issuer", m.Issuer())
	return d, nil
}

// Issuer is the provider's issuer URL.
func (d *DevProvider) Issuer() string { return d.m.Issuer() }

// ClientSecret is the client secret pushcert uses at the provider.
func (d *DevProvider) ClientSecret() string { return d.m.ClientSecret }

// Close stops the provider.
func (d *DevProvider) Close() error { return d.m.Shutdown() }

// serialize runs one request at a time. It also refuses requests whose
// Host is not a loopback name: a web page that rebinds its own host name to
// 127.0.0.1 must not be able to fetch tokens from the provider.
func (d *DevProvider) serialize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !isLoopbackHost(host) {
			http.Error(w, "the development provider answers only on loopback addresses", http.StatusMisdirectedRequest)
			return
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		d.syncClock()
		next.ServeHTTP(w, r)
	})
}

// syncClock puts mockoidc's "now" where d.now stands. mockoidc reads the
// wall clock plus an offset of its own, so an offset set once would let the
// provider drift from a clock that stands still or jumps; it is set again
// before every request instead. The caller holds d.mu, which also guards
// the offset: mockoidc reads it only while serving a request.
func (d *DevProvider) syncClock() {
	if d.now == nil {
		return
	}
	offset := d.m.FastForward(0)
	d.m.FastForward(d.now().Sub(mockoidc.NowFunc()) - offset)
}

// authorize shows the demo-user chooser, or signs the chosen user in and
// continues with mockoidc's authorization endpoint.
func (d *DevProvider) authorize(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("demo_user")
	if key == "" {
		d.chooser(w, r)
		return
	}
	u, ok := d.user(key)
	if !ok {
		http.Error(w, "unknown demo user", http.StatusBadRequest)
		return
	}
	d.m.QueueUser(u)
	d.m.Authorize(w, r)
}

// tokenEndpoint is mockoidc's token endpoint, with the dev_user shortcut.
func (d *DevProvider) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("dev_user") {
		d.token(w, r)
		return
	}
	d.m.Token(w, r)
}

// discovery is mockoidc's discovery document plus end_session_endpoint.
func (d *DevProvider) discovery(w http.ResponseWriter, r *http.Request) {
	rec := httptest.NewRecorder()
	d.m.Discovery(rec, r)
	var doc map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &doc) != nil {
		http.Error(w, "discovery failed", http.StatusInternalServerError)
		return
	}
	doc["end_session_endpoint"] = d.m.Issuer() + "/logout"
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// logout ends the provider-side session (mockoidc keeps none) and returns
// the browser to a loopback post_logout_redirect_uri, the only kind a
// development provider should send anyone to.
func (d *DevProvider) logout(w http.ResponseWriter, r *http.Request) {
	target, err := url.Parse(r.URL.Query().Get("post_logout_redirect_uri"))
	if err != nil || target.Scheme != "http" || !isLoopbackHost(target.Hostname()) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "Signed out of the development identity provider.\n")
		return
	}
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (d *DevProvider) user(key string) (*mockoidc.MockUser, bool) {
	for _, u := range d.users {
		if u.Key == key {
			return &mockoidc.MockUser{
				Subject:           "dev-" + u.Key,
				Email:             u.Email,
				EmailVerified:     true,
				PreferredUsername: u.Label,
				Groups:            u.Groups,
			}, true
		}
	}
	return nil, false
}

// chooser shows the demo users; each choice continues the authorization
// request with that user signed in.
func (d *DevProvider) chooser(w http.ResponseWriter, r *http.Request) {
	choices := make([]views.DevLoginChoice, 0, len(d.users))
	for _, u := range d.users {
		q := r.URL.Query()
		q.Set("demo_user", u.Key)
		choices = append(choices, views.DevLoginChoice{
			Key: u.Key, Label: u.Label, Email: u.Email, Groups: u.Groups,
			URL: r.URL.Path + "?" + q.Encode(),
		})
	}
	var buf bytes.Buffer
	if err := views.DevLoginPage(choices).Render(r.Context(), &buf); err != nil {
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// token issues an ID token for a demo user without a browser, for trying the
// API with curl: POST /oidc/token?dev_user=admin. Its audience is the client
// ID, pushcert's default API audience.
func (d *DevProvider) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	u, ok := d.user(r.URL.Query().Get("dev_user"))
	if !ok {
		http.Error(w, "unknown demo user: use ?dev_user=admin or ?dev_user=viewer", http.StatusBadRequest)
		return
	}
	s, err := d.m.SessionStore.NewSession("openid email profile groups", "", u, "", "")
	if err != nil {
		http.Error(w, "session failed", http.StatusInternalServerError)
		return
	}
	tok, err := s.IDToken(d.m.Config(), d.m.Keypair, d.m.Now())
	if err != nil {
		http.Error(w, "token failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": tok, "token_type": "Bearer", "expires_in": int(d.m.AccessTTL.Seconds()),
	})
}

// devProviderSecrets loads or creates the provider's signing key and the
// client secret in dataDir.
func devProviderSecrets(dataDir string) (*rsa.PrivateKey, string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("dev provider: create %s: %w", dataDir, err)
	}
	keyPath := filepath.Join(dataDir, "dev-oidc-signing-key.pem")
	var key *rsa.PrivateKey
	if b, err := os.ReadFile(keyPath); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, "", fmt.Errorf("dev provider: %s is not PEM; delete it to start over", keyPath)
		}
		if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
			return nil, "", fmt.Errorf("dev provider: read %s: %w", keyPath, err)
		}
	} else {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, "", fmt.Errorf("dev provider: generate key: %w", err)
		}
		b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(keyPath, b, 0o600); err != nil {
			return nil, "", fmt.Errorf("dev provider: write %s: %w", keyPath, err)
		}
	}
	secretPath := filepath.Join(dataDir, "dev-oidc-client-secret")
	if b, err := os.ReadFile(secretPath); err == nil && len(b) >= 32 {
		return key, string(b), nil
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	if err := os.WriteFile(secretPath, []byte(secret), 0o600); err != nil {
		return nil, "", fmt.Errorf("dev provider: write %s: %w", secretPath, err)
	}
	return key, secret, nil
}

// SignClaims signs arbitrary claims with the provider's real signing key.
// Tests use it for tokens the provider would not issue on its own (expired,
// for another audience) that must still carry a valid signature.
func (d *DevProvider) SignClaims(claims map[string]any) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m.Keypair.SignJWT(jwt.MapClaims(claims))
}

// DevToken gets an access token for the demo user (admin, viewer, outsider)
// from the development provider at issuer, through the dev_user shortcut
// of its token endpoint: what a developer does with curl, for tests and
// the load benchmark.
func DevToken(ctx context.Context, client *http.Client, issuer, user string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/token?dev_user="+url.QueryEscape(user), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token for %s: status %d, %v", user, resp.StatusCode, err)
	}
	return body.AccessToken, nil
}
