package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
)

// configMode says what the configuration is for: serving needs everything,
// rotating keys only the database and the key-encryption secrets.
type configMode int

const (
	modeServe configMode = iota
	modeRotate
)

// config is every setting of a pushcert process. Each field is a flag and a
// PUSHCERT_* environment variable; see README.md for the table.
type config struct {
	Dev bool

	ListenAddr string
	// DevProviderAddr is where -dev runs its OpenID provider.
	DevProviderAddr string
	BaseURL         string
	DataDir         string
	DatabaseURL     string

	Organization string

	KeyEncryptionSecret          string
	KeyEncryptionSecretsPrevious []string

	SessionSecret   string
	SessionLifetime time.Duration

	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	OIDCAudience     string
	OIDCScopes       []string
	GroupsClaim      string
	AdminGroups      []string
	ViewerGroups     []string

	VendorCertFile  string
	VendorKeyFile   string
	VendorChainFile string
	TrustBundleFile string
	AllowAnyIssuer  bool

	AlertWebhookURL string
	AlertThresholds []int
	AlertInterval   time.Duration

	MetricsToken    string
	ShutdownTimeout time.Duration
	// PprofAddr is the loopback address that serves net/http/pprof's
	// profiles; empty means off.
	PprofAddr string

	LogFormat string
	LogLevel  string
}

func envName(flagName string) string {
	return "PUSHCERT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags from args with defaults taken from getenv, then
// validates every setting at once. A usage or validation error names every
// bad setting; secret values never appear in it.
func parseConfig(name string, mode configMode, args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)

	str := func(p *string, flagName, def, help string) {
		v := getenv(envName(flagName))
		if v == "" {
			v = def
		}
		fs.StringVar(p, flagName, v, help+" ("+envName(flagName)+")")
	}
	var problems []string
	bad := func(flagName, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("%s (-%s): %s", envName(flagName), flagName, fmt.Sprintf(format, a...)))
	}
	boolean := func(p *bool, flagName, help string) {
		def := false
		if v := getenv(envName(flagName)); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad(flagName, "want true or false")
			}
			def = b
		}
		fs.BoolVar(p, flagName, def, help+" ("+envName(flagName)+")")
	}
	var previous, scopes, admins, viewers, lifetime, thresholds, alertInterval, shutdown string
	boolean(&c.Dev, "dev", "run on loopback with an embedded OpenID provider, demo users, a local SQLite file and generated secrets")
	str(&c.ListenAddr, "listen-addr", "", "address to listen on (default :8080, or 127.0.0.1:8080 with -dev)")
	str(&c.DevProviderAddr, "dev-provider-addr", "", "with -dev: loopback address of the embedded OpenID provider (default: the listen port + 1)")
	str(&c.BaseURL, "base-url", "", "external URL of pushcert, as users' browsers reach it, e.g. https://pushcert.example.com")
	str(&c.DataDir, "data-dir", "", "folder for the SQLite database and dev files (default ./pushcert-data)")
	str(&c.DatabaseURL, "database-url", "", "sqlite:PATH (default sqlite:DATA_DIR/pushcert.db) or postgres://... for a shared database")
	str(&c.Organization, "organization", "", "organization name written into the CSR subject")
	str(&c.KeyEncryptionSecret, "key-encryption-secret", "", "secret (at least 32 characters) that encrypts private keys at rest")
	str(&previous, "key-encryption-secrets-previous", "", "comma-separated earlier key-encryption secrets, for reading keys during rotation")
	str(&c.SessionSecret, "session-secret", "", "secret (at least 32 characters) that signs and encrypts session cookies")
	str(&lifetime, "session-lifetime", "8h", "how long a sign-in lasts")
	str(&c.OIDCIssuer, "oidc-issuer", "", "OpenID Connect issuer URL")
	str(&c.OIDCClientID, "oidc-client-id", "", "OpenID Connect client ID")
	str(&c.OIDCClientSecret, "oidc-client-secret", "", "OpenID Connect client secret (empty for a public client with PKCE)")
	str(&c.OIDCAudience, "oidc-audience", "", "audience API bearer tokens must carry (default the client ID)")
	str(&scopes, "oidc-scopes", "openid,email,profile", "comma-separated scopes to request at sign-in")
	str(&c.GroupsClaim, "groups-claim", "groups", "ID-token claim that lists the user's groups")
	str(&admins, "admin-groups", "", "comma-separated groups whose members may generate CSRs and upload certificates")
	str(&viewers, "viewer-groups", "", "comma-separated groups whose members may view the certificate")
	str(&c.VendorCertFile, "vendor-cert", "", "PEM file: MDM vendor signing certificate (optional)")
	str(&c.VendorKeyFile, "vendor-key", "", "PEM file: MDM vendor signing private key (optional)")
	str(&c.VendorChainFile, "vendor-chain", "", "PEM file: the vendor certificate's chain up to the root (optional)")
	str(&c.TrustBundleFile, "trust-bundle", "", "PEM file: extra certificate authorities whose push certificates are accepted (optional)")
	boolean(&c.AllowAnyIssuer, "allow-any-issuer", "accept push certificates from any issuer (testing only)")
	str(&c.AlertWebhookURL, "alert-webhook-url", "", "URL that receives expiry and upload-failure alerts as JSON (optional)")
	str(&thresholds, "alert-thresholds", "30,14,7,3,1", "comma-separated days before expiry at which an alert is sent")
	str(&alertInterval, "alert-interval", "1h", "how often the certificate is checked for alerts")
	str(&c.MetricsToken, "metrics-token", "", "bearer token /metrics requires (optional; open when empty)")
	str(&shutdown, "shutdown-timeout", "20s", "how long in-flight requests may take to finish after SIGTERM")
	str(&c.PprofAddr, "pprof-addr", "", "loopback address that serves net/http/pprof's profiles under /debug/pprof/, like 127.0.0.1:6060 (optional; off when empty)")
	str(&c.LogFormat, "log-format", "", "json or text (default json, text with -dev)")
	str(&c.LogLevel, "log-level", "info", "debug, info, warn or error")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	c.KeyEncryptionSecretsPrevious = splitList(previous)
	c.OIDCScopes = splitList(scopes)
	c.AdminGroups = splitList(admins)
	c.ViewerGroups = splitList(viewers)
	if d, err := time.ParseDuration(lifetime); err != nil || d < time.Minute || d > 30*24*time.Hour {
		bad("session-lifetime", "want a duration between 1m and 720h, like 8h")
	} else {
		c.SessionLifetime = d
	}

	if t, err := alert.ParseThresholds(thresholds); err != nil {
		bad("alert-thresholds", "%v, like 30,14,7,3,1", err)
	} else {
		c.AlertThresholds = t
	}
	if d, err := time.ParseDuration(alertInterval); err != nil || d < 100*time.Millisecond || d > 24*time.Hour {
		bad("alert-interval", "want a duration between 100ms and 24h, like 1h")
	} else {
		c.AlertInterval = d
	}
	if d, err := time.ParseDuration(shutdown); err != nil || d < 0 || d > 10*time.Minute {
		bad("shutdown-timeout", "want a duration between 0s and 10m, like 20s")
	} else {
		c.ShutdownTimeout = d
	}
	if c.MetricsToken != "" && len(c.MetricsToken) < 16 {
		bad("metrics-token", "too short: use at least 16 characters, e.g. from `openssl rand -hex 32`")
	}

	if c.Dev {
		c.applyDevDefaults()
	}
	if c.ListenAddr == "" {
		c.ListenAddr = ":8080"
	}
	if c.DataDir == "" {
		c.DataDir = "pushcert-data"
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "sqlite:" + filepath.Join(c.DataDir, "pushcert.db")
	}
	if c.OIDCAudience == "" {
		c.OIDCAudience = c.OIDCClientID
	}
	if c.LogFormat == "" {
		c.LogFormat = "json"
		if c.Dev {
			c.LogFormat = "text"
		}
	}

	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("listen-addr", "want host:port, like :8080")
	} else if c.Dev && !isLoopbackAddr(c.ListenAddr) {
		bad("listen-addr", "dev mode only listens on a loopback address, like 127.0.0.1:8080")
	}
	// Profiles have no sign-in and tell a lot about the process: the
	// command line (flags may carry secrets), its code, where its memory
	// goes and every goroutine's stack. So they are served on loopback
	// only, in production and -dev alike.
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			bad("pprof-addr", "want host:port, like 127.0.0.1:6060")
		} else if !isLoopbackAddr(c.PprofAddr) {
			bad("pprof-addr", "profiles are served without sign-in, so only on a loopback address, like 127.0.0.1:6060")
		}
	}
	if !c.Dev {
		required := []struct{ flag, value string }{
			{"organization", c.Organization},
			{"key-encryption-secret", c.KeyEncryptionSecret},
		}
		if mode == modeServe {
			required = append(required, []struct{ flag, value string }{
				{"base-url", c.BaseURL},
				{"session-secret", c.SessionSecret},
				{"oidc-issuer", c.OIDCIssuer},
				{"oidc-client-id", c.OIDCClientID},
			}...)
		}
		for _, r := range required {
			if strings.TrimSpace(r.value) == "" {
				bad(r.flag, "required")
			}
		}
		if mode == modeServe && len(c.AdminGroups) == 0 {
			bad("admin-groups", "required: name at least one group whose members may change the certificate")
		}
	}
	if c.BaseURL != "" {
		if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("base-url", "want an absolute http(s) URL, like https://pushcert.example.com")
		} else {
			c.BaseURL = strings.TrimSuffix(c.BaseURL, "/")
		}
	}
	if c.OIDCIssuer != "" && !c.Dev {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("oidc-issuer", "want an absolute http(s) URL")
		}
	}
	if c.KeyEncryptionSecret != "" && len(c.KeyEncryptionSecret) < 32 {
		bad("key-encryption-secret", "too short: use at least 32 characters, e.g. from `openssl rand -base64 32`")
	}
	for _, p := range c.KeyEncryptionSecretsPrevious {
		if len(p) < 16 {
			bad("key-encryption-secrets-previous", "an entry is too short to be a key-encryption secret")
		}
	}
	if c.SessionSecret != "" && len(c.SessionSecret) < 32 {
		bad("session-secret", "too short: use at least 32 characters, e.g. from `openssl rand -base64 32`")
	}
	if !strings.HasPrefix(c.DatabaseURL, "sqlite:") && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("database-url", "want sqlite:PATH or postgres://USER@HOST/DB")
	}
	if (c.VendorCertFile == "") != (c.VendorKeyFile == "") {
		bad("vendor-cert", "set the vendor certificate and the vendor key together")
	}
	if c.VendorChainFile != "" && c.VendorCertFile == "" {
		bad("vendor-chain", "a chain needs the vendor certificate and key too")
	}
	for _, f := range []struct{ flag, path string }{
		{"vendor-cert", c.VendorCertFile}, {"vendor-key", c.VendorKeyFile},
		{"vendor-chain", c.VendorChainFile}, {"trust-bundle", c.TrustBundleFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.flag, "cannot read %s", f.path)
		}
	}
	if c.AlertWebhookURL != "" {
		if u, err := url.Parse(c.AlertWebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("alert-webhook-url", "want an absolute http(s) URL")
		}
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log-format", "want json or text")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "want debug, info, warn or error")
	}
	if c.GroupsClaim == "" {
		bad("groups-claim", "required")
	}
	if len(problems) > 0 {
		return nil, &configError{problems: problems}
	}
	return c, nil
}

// applyDevDefaults fills what -dev provides: loopback, a local data folder,
// demo groups. The OIDC provider and secrets are set up by run.
func (c *config) applyDevDefaults() {
	if c.ListenAddr == "" {
		c.ListenAddr = "127.0.0.1:8080"
	}
	if c.DataDir == "" {
		c.DataDir = "pushcert-data"
	}
	if c.Organization == "" {
		c.Organization = "Example Organization (development)"
	}
	if len(c.AdminGroups) == 0 {
		c.AdminGroups = []string{"pushcert-admins"}
	}
	if len(c.ViewerGroups) == 0 {
		c.ViewerGroups = []string{"pushcert-viewers"}
	}
	c.AllowAnyIssuer = false
}

// configError lists every bad setting, one per line.
type configError struct{ problems []string }

func (e *configError) Error() string {
	if len(e.problems) == 1 {
		return "configuration: " + e.problems[0]
	}
	return "configuration has " + strconv.Itoa(len(e.problems)) + " problems:\n  " + strings.Join(e.problems, "\n  ")
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

var errHelp = flag.ErrHelp

func isHelp(err error) bool { return errors.Is(err, errHelp) }
