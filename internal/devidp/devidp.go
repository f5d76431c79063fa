// Package devidp is the OpenID provider pushcert -dev runs on loopback: the
// authorization code flow with PKCE, discovery, a key set and ID tokens
// signed RS256, with a page to choose a demo user, so the whole sign-in flow
// runs as it does against a company's provider. The tests use it as their
// provider too. It is written on the modules pushcert already uses
// (go-jose, through go-oidc), so -dev adds nothing to the production
// binary's dependencies.
package devidp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// ClientID is the client ID pushcert -dev registers at the provider.
const ClientID = "pushcert-dev"

// User is a demo account of the provider.
type User struct {
	Key    string // what the chooser and the token endpoint call it: admin, viewer, outsider
	Label  string
	Email  string
	Groups []string
}

// Provider is a running development OpenID provider.
type Provider struct {
	users        []User
	issuer       string
	clientSecret string
	keys         *signer
	codes        *codeStore
	srv          *http.Server
	// now dates the provider's tokens and codes; it is read at every
	// request, never once.
	now func() time.Time
	// noAuthTime makes ID tokens leave out auth_time, as some providers'
	// do (see OmitAuthTime).
	noAuthTime atomic.Bool
}

// OmitAuthTime makes the provider's ID tokens leave out auth_time, as a
// provider that does not say when the user signed in would, or put it
// back. For tests of how pushcert copes.
func (p *Provider) OmitAuthTime(omit bool) { p.noAuthTime.Store(omit) }

// Start starts the provider on addr (127.0.0.1:0 for any free port). Its
// signing key and client secret are kept in dataDir so tokens and settings
// survive a restart. Its tokens are dated by now (nil means time.Now), the
// clock pushcert checks them with; now is read at every request, so a test
// that moves its clock moves the provider too.
func Start(log *slog.Logger, addr, dataDir string, users []User, now func() time.Time) (*Provider, error) {
	if len(users) == 0 {
		return nil, errors.New("dev provider: no demo users")
	}
	key, secret, err := loadSecrets(dataDir)
	if err != nil {
		return nil, err
	}
	keys, err := newSigner(key)
	if err != nil {
		return nil, fmt.Errorf("dev provider: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev provider: listen on %s: %w", addr, err)
	}
	p := &Provider{
		users:        users,
		issuer:       "http://" + ln.Addr().String() + issuerPath,
		clientSecret: secret,
		keys:         keys,
		codes:        newCodeStore(),
		now:          now,
	}
	p.srv = &http.Server{Handler: loopbackOnly(p.routes()), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("development openid provider stopped", "err", err)
		}
	}()
	log.Info("development openid provider started", "issuer", p.issuer)
	return p, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// ClientSecret is the client secret pushcert uses at the provider.
func (p *Provider) ClientSecret() string { return p.clientSecret }

// Close stops the provider, waiting a few seconds for requests in flight.
func (p *Provider) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		return p.srv.Close()
	}
	return nil
}

// SignClaims signs arbitrary claims with the provider's real signing key.
// Tests use it for tokens the provider would not issue on its own (expired,
// for another audience) that must still carry a valid signature.
func (p *Provider) SignClaims(claims map[string]any) (string, error) {
	return p.keys.sign(claims)
}

// loopbackOnly refuses requests whose Host is not a loopback name: a web
// page that rebinds its own host name to 127.0.0.1 must not be able to
// fetch tokens from the provider.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !isLoopbackHost(host) {
			http.Error(w, "the development provider answers only on loopback addresses", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// user is the demo user called key.
func (p *Provider) user(key string) (User, bool) {
	for _, u := range p.users {
		if u.Key == key {
			return u, true
		}
	}
	return User{}, false
}
