package web

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

func TestVerifiedCache(t *testing.T) {
	// Off the whole second: the cache compares instants, not Unix seconds.
	t0 := testclock.Start(t).Add(6 * time.Nanosecond)
	ada := auth.User{Subject: "ada", Role: auth.RoleAdmin}
	key := credentialKey("credential")

	t.Run("only what was added", func(t *testing.T) {
		c := newVerifiedCache(8)
		c.add(key, ada, t0.Add(time.Hour), t0)
		if u, ok := c.get(key, t0); !ok || u != ada {
			t.Errorf("got %+v, %v, want %+v, true", u, ok, ada)
		}
		for _, other := range []string{"credentiaL", "credential ", "", "Y3JlZGVudGlhbA"} {
			if u, ok := c.get(credentialKey(other), t0); ok {
				t.Errorf("%q: got %+v, want no entry", other, u)
			}
		}
	})
	t.Run("valid up to and including the expiry", func(t *testing.T) {
		c := newVerifiedCache(8)
		exp := t0.Add(time.Minute)
		c.add(key, ada, exp, t0)
		if _, ok := c.get(key, exp); !ok {
			t.Errorf("at the expiry: got no entry, want one")
		}
		if u, ok := c.get(key, exp.Add(time.Nanosecond)); ok {
			t.Errorf("a nanosecond after the expiry: got %+v, want no entry", u)
		}
		if n := c.size(); n != 0 {
			t.Errorf("after the expiry: got %d entries, want 0 (dropped)", n)
		}
	})
	t.Run("no longer than the maximum age", func(t *testing.T) {
		c := newVerifiedCache(8)
		c.add(key, ada, t0.Add(8*time.Hour), t0)
		if _, ok := c.get(key, t0.Add(verifiedCacheMaxAge)); !ok {
			t.Errorf("at the maximum age: got no entry, want one")
		}
		if _, ok := c.get(key, t0.Add(verifiedCacheMaxAge+time.Nanosecond)); ok {
			t.Errorf("past the maximum age: got an entry, want none")
		}
	})
	t.Run("expired when added", func(t *testing.T) {
		c := newVerifiedCache(8)
		c.add(key, ada, t0.Add(-time.Nanosecond), t0)
		if n := c.size(); n != 0 {
			t.Errorf("got %d entries, want 0", n)
		}
	})
	t.Run("bounded", func(t *testing.T) {
		c := newVerifiedCache(verifiedCacheSize)
		n := verifiedCacheSize + 100
		for i := range n {
			c.add(credentialKey(fmt.Sprint(i)), ada, t0.Add(time.Hour), t0)
			if got := c.size(); got > verifiedCacheSize {
				t.Fatalf("after %d adds: got %d entries, want at most %d", i+1, got, verifiedCacheSize)
			}
		}
		if got := c.size(); got != verifiedCacheSize {
			t.Errorf("got %d entries, want %d", got, verifiedCacheSize)
		}
		if _, ok := c.get(credentialKey(fmt.Sprint(n-1)), t0); !ok {
			t.Errorf("got the newest entry evicted, want it kept")
		}
		// Adding one that is already there evicts nothing.
		c.add(credentialKey(fmt.Sprint(n-1)), ada, t0.Add(time.Hour), t0)
		if got := c.size(); got != verifiedCacheSize {
			t.Errorf("after adding a present key: got %d entries, want %d", got, verifiedCacheSize)
		}
	})
	t.Run("expired entries are evicted first", func(t *testing.T) {
		c := newVerifiedCache(8)
		for i := range 8 {
			exp := t0.Add(time.Hour)
			if i%2 == 0 {
				exp = t0.Add(time.Minute)
			}
			c.add(credentialKey(fmt.Sprint(i)), ada, exp, t0)
		}
		later := t0.Add(2 * time.Minute)
		c.add(key, ada, t0.Add(time.Hour), later)
		if got := c.size(); got != 5 {
			t.Errorf("got %d entries, want 5: the 4 live ones and the new one", got)
		}
		for i := 1; i < 8; i += 2 {
			if _, ok := c.get(credentialKey(fmt.Sprint(i)), later); !ok {
				t.Errorf("live entry %d: got it evicted, want it kept", i)
			}
		}
	})
}

// newTestAuthenticator returns an Authenticator against a development
// provider, both on a clock the test sets. The clock stands at the tests'
// start, on a whole second as token and session expiries are.
func newTestAuthenticator(t *testing.T, secret string) (*Authenticator, *devidp.Provider, *testclock.Clock) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	clk := testclock.At(testclock.Start(t).Truncate(time.Second))
	provider, err := devidp.Start(log, "127.0.0.1:0", t.TempDir(), []devidp.User{
		{Key: "admin", Label: "Cache Admin", Email: "admin@example.com", Groups: []string{"cache-admins"}},
	}, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = provider.Close() })
	a, err := NewAuthenticator(context.Background(), log, AuthConfig{
		Sessions:        openTestStore(t),
		Issuer:          provider.Issuer(),
		ClientID:        devidp.ClientID,
		ClientSecret:    provider.ClientSecret(),
		BaseURL:         "http://127.0.0.1:1",
		AdminGroups:     []string{"cache-admins"},
		ViewerGroups:    []string{"cache-viewers"},
		SessionSecret:   secret,
		SessionLifetime: time.Hour,
		Now:             clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a, provider, clk
}

func TestBearerTokenCache(t *testing.T) {
	a, provider, clk := newTestAuthenticator(t, "cache-test-session-secret-0123456789")
	t0 := clk.Now()
	sign := func(t *testing.T, mod func(map[string]any)) string {
		t.Helper()
		c := map[string]any{
			"iss": provider.Issuer(), "aud": devidp.ClientID, "sub": "dev-admin", "email": "admin@example.com",
			"groups": []string{"cache-admins"}, "iat": t0.Unix(), "exp": t0.Add(time.Minute).Unix(),
		}
		mod(c)
		tok, err := provider.SignClaims(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	bearer := func(tok string) (auth.User, error) {
		return a.bearerUser(context.Background(), "Bearer "+tok)
	}
	tok := sign(t, func(map[string]any) {})
	want := auth.User{Subject: "dev-admin", Email: "admin@example.com", Role: auth.RoleAdmin}

	if u, err := bearer(tok); err != nil || u != want {
		t.Fatalf("first use: got %+v, %v, want %+v", u, err, want)
	}
	if n := a.tokens.size(); n != 1 {
		t.Fatalf("after a verified token: got %d cached, want 1", n)
	}

	// Nothing that was not verified is accepted or cached: a changed
	// signature, payload or audience goes through full verification.
	parts := strings.Split(tok, ".")
	flipped := []byte(parts[2])
	flipped[len(flipped)/2] ^= 1
	refused := map[string]string{
		"changed signature":        parts[0] + "." + parts[1] + "." + string(flipped),
		"payload of another token": parts[0] + "." + strings.Split(sign(t, func(c map[string]any) { c["sub"] = "someone-else" }), ".")[1] + "." + parts[2],
		"wrong audience":           sign(t, func(c map[string]any) { c["aud"] = "another-app" }),
		"truncated":                tok[:len(tok)-1],
	}
	for name, bad := range refused {
		if u, err := bearer(bad); err == nil {
			t.Errorf("%s: got %+v, want refused", name, u)
		}
	}
	if n := a.tokens.size(); n != 1 {
		t.Errorf("after refused tokens: got %d cached, want 1", n)
	}

	// Expiry is respected exactly, cached or not.
	clk.Set(t0.Add(time.Minute))
	if _, err := bearer(tok); err != nil {
		t.Errorf("at the token's exp: got %v, want accepted", err)
	}
	clk.Set(t0.Add(time.Minute + time.Nanosecond))
	if u, err := bearer(tok); err == nil || tokenProblem(err) != "expired" {
		t.Errorf("past the token's exp: got %+v, %v, want refused as expired", u, err)
	}
	if n := a.tokens.size(); n != 0 {
		t.Errorf("after the token expired: got %d cached, want 0", n)
	}

	// A long-lived token is verified again after the cache's maximum age.
	clk.Set(t0)
	long := sign(t, func(c map[string]any) { c["exp"] = t0.Add(time.Hour).Unix() })
	if _, err := bearer(long); err != nil {
		t.Fatalf("long-lived token: %v", err)
	}
	if e := a.tokens.entries[credentialKey(long)]; !e.notAfter.Equal(t0.Add(verifiedCacheMaxAge)) {
		t.Errorf("long-lived token cached until %v, want %v", e.notAfter, t0.Add(verifiedCacheMaxAge))
	}
	clk.Set(t0.Add(verifiedCacheMaxAge + time.Second))
	if _, err := bearer(long); err != nil {
		t.Fatalf("long-lived token after the maximum age: %v", err)
	}
	if e := a.tokens.entries[credentialKey(long)]; !e.notAfter.Equal(clk.Now().Add(verifiedCacheMaxAge)) {
		t.Errorf("long-lived token cached until %v, want %v (verified again)", e.notAfter, clk.Now().Add(verifiedCacheMaxAge))
	}
}
