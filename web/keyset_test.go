package web

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

// jwksServer is a provider's key set endpoint that counts its fetches and
// whose keys a test can replace, as a provider rotating its keys does.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	fail    atomic.Bool
	mu      sync.Mutex
	keys    []jose.JSONWebKey
}

func newJWKSServer(t *testing.T, keys ...jose.JSONWebKey) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fetches.Add(1)
		if s.fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: s.keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) setKeys(keys ...jose.JSONWebKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// signingKey is an RSA key with a key ID, as a provider holds it.
type signingKey struct {
	priv *rsa.PrivateKey
	kid  string
}

func newSigningKey(t *testing.T, kid string) signingKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{priv, kid}
}

func (k signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

// sign makes a JWT of claims signed by k and naming kid in its header.
func (k signingKey) sign(t *testing.T, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.priv, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func randomKID() string { return rand.Text() }

func TestKeySetRefreshesAtMostOncePerInterval(t *testing.T) {
	clk := testclock.New(t)
	old, attacker := newSigningKey(t, "old"), newSigningKey(t, "attacker")
	srv := newJWKSServer(t, old.public())
	ks := newKeySet(srv.URL, srv.Client(), clk.Now, KeyRefreshInterval)
	ctx := t.Context()
	claims := map[string]any{"sub": "s"}

	if _, err := ks.VerifySignature(ctx, old.sign(t, "old", claims)); err != nil {
		t.Fatalf("the provider's token: got %v, want it verified", err)
	}
	// 200 tokens naming key IDs the provider never had, some at once.
	var wg sync.WaitGroup
	for i := range 200 {
		token := attacker.sign(t, randomKID(), claims)
		if i%2 == 0 {
			wg.Go(func() { _, _ = ks.VerifySignature(ctx, token) })
			continue
		}
		if _, err := ks.VerifySignature(ctx, token); err == nil {
			t.Fatal("a token of an unknown key was verified")
		}
	}
	wg.Wait()
	if got := srv.fetches.Load(); got > 2 {
		t.Errorf("fetches for 200 unknown key IDs: got %d, want at most 2", got)
	}

	// The provider rotates to a new key: pushcert takes it up once the
	// interval since the last fetch has passed, with one fetch.
	rotated := newSigningKey(t, "new")
	srv.setKeys(rotated.public())
	token := rotated.sign(t, "new", claims)
	before := srv.fetches.Load()
	if _, err := ks.VerifySignature(ctx, token); err == nil {
		t.Error("a key the provider added was accepted before the interval passed, want refused until then")
	}
	clk.Advance(KeyRefreshInterval)
	if _, err := ks.VerifySignature(ctx, token); err != nil {
		t.Errorf("the provider's new key after the interval: got %v, want verified", err)
	}
	if _, err := ks.VerifySignature(ctx, token); err != nil {
		t.Errorf("the new key again: got %v, want verified", err)
	}
	if got := srv.fetches.Load() - before; got != 1 {
		t.Errorf("fetches for the rotation: got %d, want 1", got)
	}
	if _, err := ks.VerifySignature(ctx, old.sign(t, "old", claims)); err == nil {
		t.Error("the key the provider dropped still verifies, want refused")
	}
}

func TestKeySetProviderDown(t *testing.T) {
	clk := testclock.New(t)
	key := newSigningKey(t, "k")
	srv := newJWKSServer(t, key.public())
	srv.fail.Store(true)
	ks := newKeySet(srv.URL, srv.Client(), clk.Now, KeyRefreshInterval)
	token := key.sign(t, "k", map[string]any{"sub": "s"})
	// A provider that fails is not asked more often either.
	for range 50 {
		if _, err := ks.VerifySignature(t.Context(), token); err == nil {
			t.Fatal("verified without the provider's keys")
		}
	}
	if got := srv.fetches.Load(); got != 1 {
		t.Errorf("fetches while the provider fails: got %d, want 1", got)
	}
	srv.fail.Store(false)
	clk.Advance(KeyRefreshInterval)
	if _, err := ks.VerifySignature(t.Context(), token); err != nil {
		t.Errorf("after the provider is back: got %v, want verified", err)
	}
}

// countingTransport counts the requests for the provider's key set.
type countingTransport struct {
	jwks atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/jwks.json") {
		c.jwks.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestBearerTokensWithUnknownKeyIDs sends the real Authenticator, against
// the development provider, 200 bearer tokens naming key IDs the provider
// does not have, as an unauthenticated client could.
func TestBearerTokensWithUnknownKeyIDs(t *testing.T) {
	ctx := context.Background()
	counter := &countingTransport{}
	authn, provider, clk := newAuthenticatorWith(t, &http.Client{Transport: counter, Timeout: 10 * time.Second})

	claims := func() map[string]any {
		now := clk.Now()
		return map[string]any{"iss": provider.Issuer(), "aud": devidp.ClientID, "sub": "admin",
			"groups": []string{"admins"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text()}
	}
	genuine, err := provider.SignClaims(claims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authn.bearerUser(ctx, "Bearer "+genuine); err != nil {
		t.Fatalf("the provider's token: got %v, want accepted", err)
	}
	forger := newSigningKey(t, "forger")
	for range 200 {
		token := forger.sign(t, randomKID(), claims())
		if _, err := authn.bearerUser(ctx, "Bearer "+token); err == nil {
			t.Fatal("a token of a key the provider does not have was accepted")
		}
	}
	if got := counter.jwks.Load(); got > 2 {
		t.Errorf("key set fetches for 200 tokens with unknown key IDs: got %d, want at most 2", got)
	}
	// The provider's own tokens are still accepted meanwhile.
	again, err := provider.SignClaims(claims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authn.bearerUser(ctx, "Bearer "+again); err != nil {
		t.Errorf("the provider's token after the forgeries: got %v, want accepted", err)
	}
}

// newAuthenticatorWith returns a real Authenticator against the
// development provider, on a clock of its own, reaching the provider with
// client (nil for the default).
func newAuthenticatorWith(t *testing.T, client *http.Client) (*Authenticator, *devidp.Provider, *testclock.Clock) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	clk := testclock.New(t)
	provider, err := devidp.Start(log, "127.0.0.1:0", t.TempDir(), []devidp.User{
		{Key: "admin", Label: "Admin", Email: "admin@example.com", Groups: []string{"admins"}},
	}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = provider.Close() })
	authn, err := NewAuthenticator(context.Background(), log, AuthConfig{
		Issuer:        provider.Issuer(),
		ClientID:      devidp.ClientID,
		ClientSecret:  provider.ClientSecret(),
		BaseURL:       "http://127.0.0.1:1",
		AdminGroups:   []string{"admins"},
		SessionSecret: "test-session-secret-0123456789abcdef",
		Sessions:      openTestStore(t),
		Now:           clk.Now,
		HTTPClient:    client,
	})
	if err != nil {
		t.Fatal(err)
	}
	return authn, provider, clk
}
