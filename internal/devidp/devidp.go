// Package devidp is the OpenID provider pushcert -dev runs on loopback: a
// real OIDC implementation (mockoidc) with a page to choose a demo user, so
// the whole sign-in flow runs as it does against a company's provider. The
// tests use it as their provider too.
package devidp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
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
	m     *mockoidc.MockOIDC
	users []User
	// now dates the provider's tokens; nil leaves mockoidc on the wall
	// clock.
	now func() time.Time
	// mu serializes every request to the provider: mockoidc keeps its
	// sessions in a plain map, and the chosen user is handed over through a
	// queue that must not be shared between two sign-ins.
	mu sync.Mutex
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
	m, err := mockoidc.NewServer(key)
	if err != nil {
		return nil, fmt.Errorf("dev provider: %w", err)
	}
	m.ClientID = ClientID
	m.ClientSecret = secret
	p := &Provider{m: m, users: users, now: now}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev provider: listen on %s: %w", addr, err)
	}
	// mockoidc derives its issuer from Server.Addr, so the server is set
	// before anything asks for it.
	m.Server = &http.Server{Addr: ln.Addr().String(), Handler: p.serialize(p.routes()), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := m.Server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("development openid provider stopped", "err", err)
		}
	}()
	log.Info("development openid provider started", "issuer", m.Issuer())
	return p, nil
}

// Issuer is the provider's issuer URL.
func (p *Provider) Issuer() string { return p.m.Issuer() }

// ClientSecret is the client secret pushcert uses at the provider.
func (p *Provider) ClientSecret() string { return p.m.ClientSecret }

// Close stops the provider.
func (p *Provider) Close() error { return p.m.Shutdown() }

// SignClaims signs arbitrary claims with the provider's real signing key.
// Tests use it for tokens the provider would not issue on its own (expired,
// for another audience) that must still carry a valid signature.
func (p *Provider) SignClaims(claims map[string]any) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.m.Keypair.SignJWT(jwt.MapClaims(claims))
}

// serialize runs one request at a time. It also refuses requests whose
// Host is not a loopback name: a web page that rebinds its own host name to
// 127.0.0.1 must not be able to fetch tokens from the provider.
func (p *Provider) serialize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		if !isLoopbackHost(host) {
			http.Error(w, "the development provider answers only on loopback addresses", http.StatusMisdirectedRequest)
			return
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		p.syncClock()
		next.ServeHTTP(w, r)
	})
}

// syncClock puts mockoidc's "now" where p.now stands. mockoidc reads the
// wall clock plus an offset of its own, so an offset set once would let the
// provider drift from a clock that stands still or jumps; it is set again
// before every request instead. The caller holds p.mu, which also guards
// the offset: mockoidc reads it only while serving a request.
func (p *Provider) syncClock() {
	if p.now == nil {
		return
	}
	offset := p.m.FastForward(0)
	p.m.FastForward(p.now().Sub(mockoidc.NowFunc()) - offset)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
