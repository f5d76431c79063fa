package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/sessions"
	"golang.org/x/oauth2"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/session"
)

// AuthConfig is what the Authenticator needs to know about the provider and
// the organization's groups.
type AuthConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// Audience is what API bearer tokens must carry in "aud"; empty means
	// the client ID.
	Audience     string
	Scopes       []string
	BaseURL      string // external URL of pushcert; the callback is BaseURL+"/auth/callback"
	GroupsClaim  string
	AdminGroups  []string
	ViewerGroups []string
	// ExportGroups grant API bearer tokens the export role, apart from
	// admin and viewer; none by default.
	ExportGroups []string
	// ExportSignInAge is how recent an admin's sign-in at the provider must
	// be to export the private key from the console; zero means
	// DefaultExportSignInAge.
	ExportSignInAge time.Duration
	// SessionSecret signs and encrypts the cookies; every replica must
	// share it.
	SessionSecret   string
	SessionLifetime time.Duration
	// IdleTimeout ends a session unused that long; zero means never.
	IdleTimeout time.Duration
	// Sessions keeps the sessions: pushcert's database, which every
	// replica shares, so that a session ended on one ends on all.
	Sessions session.Store
	// SecureCookies is false only for plain-HTTP loopback in dev mode.
	SecureCookies bool
	// Dev shows the development banner on the pages the Authenticator renders.
	Dev bool
	// Now is the clock for session and token expiry; nil means time.Now.
	Now func() time.Time
	// HTTPClient, when set, is used to reach the provider.
	HTTPClient *http.Client
}

// Authenticator signs users in with OpenID Connect, keeps them in sessions
// stored in pushcert's database, verifies API bearer tokens and enforces roles.
type Authenticator struct {
	log         *slog.Logger
	provider    *oidc.Provider
	oauth       oauth2.Config
	idVerifier  *idTokenVerifier
	apiVerifier *oidc.IDTokenVerifier
	// apiSignature checks only an API token's form and signature, and
	// issuer and audience are what its "iss" and "aud" must be: with them
	// verifyBearer tells each refusal apart before apiVerifier decides.
	apiSignature *oidc.IDTokenVerifier
	issuer       string
	audience     string
	cookies      *sessions.CookieStore
	// sessions are the signed-in sessions, behind their cookies.
	sessions     *sessionStore
	groupsClaim  string
	adminGroups  []string
	viewerGroups []string
	exportGroups []string
	// exportSignInAge is how recent a sign-in must be for a console export.
	exportSignInAge time.Duration
	endSession      string
	baseURL         string
	httpClient      *http.Client
	dev             bool
	// tokens remembers the bearer tokens that passed full verification,
	// so that each is verified once, not on every request.
	tokens *verifiedCache
	// now is the clock for session and token expiry.
	now func() time.Time
}

// NewAuthenticator discovers the provider once and prepares sign-in and
// token verification. It fails when the provider cannot be discovered or the
// configuration is incomplete.
func NewAuthenticator(ctx context.Context, log *slog.Logger, cfg AuthConfig) (*Authenticator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	provider, err := oidc.NewProvider(ctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover openid provider %s: %w", cfg.Issuer, err)
	}
	var meta struct {
		EndSession string `json:"end_session_endpoint"`
		JWKSURL    string `json:"jwks_uri"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("read provider metadata: %w", err)
	}
	cookies, err := newCookieStore(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authenticator{
		log:      log,
		provider: provider,
		oauth: oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     provider.Endpoint(),
			RedirectURL:  strings.TrimSuffix(cfg.BaseURL, "/") + "/auth/callback",
			Scopes:       cfg.Scopes,
		},
		// NewProvider made sure the provider calls itself cfg.Issuer, the
		// issuer its verifiers require.
		issuer:          cfg.Issuer,
		audience:        cfg.Audience,
		cookies:         cookies,
		sessions:        newSessionStore(log, cookies, cfg),
		groupsClaim:     cfg.GroupsClaim,
		adminGroups:     cfg.AdminGroups,
		viewerGroups:    cfg.ViewerGroups,
		exportGroups:    cfg.ExportGroups,
		exportSignInAge: cfg.ExportSignInAge,
		endSession:      meta.EndSession,
		baseURL:         strings.TrimSuffix(cfg.BaseURL, "/"),
		httpClient:      cfg.HTTPClient,
		dev:             cfg.Dev,
		tokens:          newVerifiedCache(verifiedCacheSize),
		now:             cfg.Now,
	}
	// The verifiers read the same clock as the caches, so a token's expiry
	// means the same to both.
	clock := func() time.Time { return a.now() }
	if err := a.makeVerifiers(provider, meta.JWKSURL, cfg.ClientID, clock); err != nil {
		return nil, err
	}
	return a, nil
}

// Defaults of AuthConfig, and so of PUSHCERT_SESSION_LIFETIME and
// PUSHCERT_GROUPS_CLAIM, which take them from here.
const (
	DefaultSessionLifetime = 8 * time.Hour
	// DefaultSessionIdleTimeout is PUSHCERT_SESSION_IDLE_TIMEOUT's
	// default.
	DefaultSessionIdleTimeout = time.Hour
	DefaultGroupsClaim        = "groups"
	// DefaultExportSignInAge is how recent a sign-in must be for a
	// console export when AuthConfig.ExportSignInAge is zero.
	DefaultExportSignInAge = 5 * time.Minute
)

// withDefaults checks cfg and fills in what was left out.
func (cfg AuthConfig) withDefaults() (AuthConfig, error) {
	if len(cfg.AdminGroups) == 0 {
		return cfg, errors.New("no admin group configured: set PUSHCERT_ADMIN_GROUPS")
	}
	if cfg.Sessions == nil {
		return cfg, errors.New("no session store configured")
	}
	if len(cfg.SessionSecret) < 32 {
		return cfg, errors.New("the session secret must be at least 32 characters")
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.ClientID
	}
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = DefaultSessionLifetime
	}
	if cfg.ExportSignInAge <= 0 {
		cfg.ExportSignInAge = DefaultExportSignInAge
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	// Whole seconds, as the cookie's MaxAge is: then a session's stored
	// expiry never outlasts the cookie's own signed timestamp, and
	// checking the expiry (which the session cache does) is checking both.
	cfg.SessionLifetime = max(cfg.SessionLifetime.Truncate(time.Second), time.Second)
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	return cfg, nil
}

// errorPage renders an error in the site's layout.
func (a *Authenticator) errorPage(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	handlers.RenderError(w, r, a.log, a.dev, status, title, message)
}

func (a *Authenticator) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	a.errorPage(w, r, http.StatusInternalServerError, "Something went wrong",
		"pushcert could not complete this request. Nothing was changed. Try again; if it keeps happening, ask your administrator to check pushcert's logs.")
}
