package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/delivery"
	"github.com/pushcert/pushcert/web"
)

// settings declares every setting of c, in the order they are read and
// their problems reported. README.md's table lists the same settings.
func (c *config) settings() []setting {
	list := []setting{
		{name: "dev", boolean: true, set: boolean(&c.Dev),
			help: "run on loopback with an embedded OpenID provider, demo users, a local SQLite file and generated secrets"},
		{name: "listen-addr", def: ":8080", devDef: "127.0.0.1:8080", set: c.setListenAddr,
			help: "address to listen on"},
		{name: "dev-provider-addr", set: c.setDevProviderAddr,
			help: "with -dev: loopback address of the embedded OpenID provider (default: the listen port + 1)"},
		{name: "base-url", need: neededToServe, set: c.setBaseURL,
			help: "external URL of pushcert, as users' browsers reach it, e.g. https://pushcert.example.com (with -dev: the listen address)"},
		{name: "data-dir", def: "pushcert-data", set: text(&c.DataDir),
			help: "folder for the SQLite database and dev files"},
		{name: "database-url", derive: func() string { return "sqlite:" + filepath.Join(c.DataDir, "pushcert.db") }, set: c.setDatabaseURL,
			help: "sqlite:PATH (default sqlite:DATA_DIR/pushcert.db) or postgres://... for a shared database"},
		{name: "organization", need: neededAlways, devDef: "Example Organization (development)", set: text(&c.Organization),
			help: "organization name written into the CSR subject"},
		{name: "key-encryption-secret", need: neededAlways, set: secret(&c.KeyEncryptionSecret, 32, "openssl rand -base64 32"),
			help: "secret (at least 32 characters) that encrypts private keys at rest (with -dev: generated)"},
		{name: "key-encryption-secrets-previous", list: true, set: c.setPreviousSecrets,
			help: "comma-separated earlier key-encryption secrets, for reading keys during rotation"},
		{name: "session-secret", need: neededToServe, set: secret(&c.SessionSecret, 32, "openssl rand -base64 32"),
			help: "secret (at least 32 characters) that signs and encrypts session cookies (with -dev: generated)"},
		{name: "session-lifetime", def: durationText(web.DefaultSessionLifetime),
			set:  duration(&c.SessionLifetime, time.Minute, 30*24*time.Hour, "want a duration between 1m and 720h, like 8h"),
			help: "how long a sign-in lasts"},
		{name: "session-idle-timeout", def: durationText(web.DefaultSessionIdleTimeout),
			set:  duration(&c.SessionIdleTimeout, 0, 30*24*time.Hour, "want a duration between 0s (no limit) and 720h, like 1h"),
			help: "how long an unused session lasts (0: until its lifetime ends)"},
		{name: "oidc-issuer", need: neededToServe, set: c.setOIDCIssuer,
			help: "OpenID Connect issuer URL (with -dev: the embedded provider)"},
		{name: "oidc-client-id", need: neededToServe, set: text(&c.OIDCClientID),
			help: "OpenID Connect client ID"},
		{name: "oidc-client-secret", set: text(&c.OIDCClientSecret),
			help: "OpenID Connect client secret (empty for a public client with PKCE)"},
		{name: "oidc-audience", derive: func() string { return c.OIDCClientID }, set: text(&c.OIDCAudience),
			help: "audience API bearer tokens must carry (default the client ID)"},
		{name: "oidc-scopes", list: true, def: "openid,email,profile", set: list(&c.OIDCScopes),
			help: "comma-separated scopes to request at sign-in"},
		{name: "groups-claim", def: web.DefaultGroupsClaim, set: text(&c.GroupsClaim),
			help: "ID-token claim that lists the user's groups"},
		{name: "admin-groups", list: true, need: neededToServe, devDef: "pushcert-admins", set: list(&c.AdminGroups),
			why:  "name at least one group whose members may change the certificate",
			help: "comma-separated groups whose members may generate CSRs and upload certificates"},
		{name: "viewer-groups", list: true, devDef: "pushcert-viewers", set: list(&c.ViewerGroups),
			help: "comma-separated groups whose members may view the certificate"},
		{name: "vendor-cert", set: file(&c.VendorCertFile), check: c.checkVendorPair,
			help: "PEM file: MDM vendor signing certificate (optional)"},
		{name: "vendor-key", set: file(&c.VendorKeyFile),
			help: "PEM file: MDM vendor signing private key (optional)"},
		{name: "vendor-chain", set: file(&c.VendorChainFile), check: c.checkVendorChain,
			help: "PEM file: the vendor certificate's chain up to the root (optional)"},
		{name: "trust-bundle", set: file(&c.TrustBundleFile),
			help: "PEM file: authorities trusted besides Apple's built-in ones; self-signed ones are roots, the others intermediates (optional)"},
		{name: "allow-any-issuer", boolean: true, set: c.setAllowAnyIssuer,
			help: "accept push certificates from any issuer (testing only; never with -dev)"},
	}
	return append(list, c.outboundSettings()...)
}

// outboundSettings declare what pushcert sends out (alerts, deliveries,
// exports) and how it is operated; they follow settings' own.
func (c *config) outboundSettings() []setting {
	return []setting{
		{name: "alert-webhook-url", set: httpURL(&c.AlertWebhookURL, "want an absolute http(s) URL"),
			help: "URL that receives expiry and upload-failure alerts as JSON (optional)"},
		{name: "alert-thresholds", def: alert.DefaultThresholds, set: c.setAlertThresholds,
			help: "comma-separated days before expiry at which an alert is sent"},
		{name: "alert-interval", def: "1h",
			set:  duration(&c.AlertInterval, 100*time.Millisecond, 24*time.Hour, "want a duration between 100ms and 24h, like 1h"),
			help: "how often the certificate is checked for alerts"},
		{name: "delivery-config", set: file(&c.DeliveryConfigFile),
			help: "JSON file listing the MDM servers and folders the certificate and key are delivered to (optional; see docs/delivery.md)"},
		{name: "delivery-interval", def: durationText(delivery.DefaultInterval),
			set:  duration(&c.DeliveryInterval, time.Second, 24*time.Hour, "want a duration between 1s and 24h, like 5m"),
			help: "how often every delivery target is checked for the active certificate"},
		{name: "delivery-alert-after", def: durationText(delivery.DefaultAlertAfter),
			set:  duration(&c.DeliveryAlertAfter, 0, 30*24*time.Hour, "want a duration between 0s and 720h, like 1h"),
			help: "how long a delivery target may lack the active certificate before an alert is sent (0: never)"},
		{name: "disable-export", boolean: true, set: boolean(&c.ExportDisabled),
			help: "turn off every export of the private key, from the console and the API"},
		{name: "export-groups", list: true, devDef: "pushcert-admins", set: list(&c.ExportGroups),
			help: "comma-separated groups whose API tokens may fetch the certificate and private key (optional)"},
		{name: "export-sign-in-age", def: "5m",
			set:  duration(&c.ExportSignInAge, 30*time.Second, time.Hour, "want a duration between 30s and 1h, like 5m"),
			help: "how recent an admin's sign-in must be to export the private key from the console"},
		{name: "apns-url", def: apns.DefaultURL, set: c.setAPNSURL,
			help: "Apple's push service, which the connection check asks (with -dev: a fake one on loopback)"},
		{name: "apns-ca-file", set: file(&c.APNSCAFile),
			help: "PEM file: extra roots to verify the push service's certificate with, for a private test service (optional; a TLS-inspecting proxy cannot work)"},
		{name: "apns-check-interval", def: durationText(apns.DefaultInterval), set: checkInterval(&c.APNSCheckInterval),
			help: "how often the active certificate is checked against Apple's push service: 0 (only after uploads and on demand) or 1h to 720h"},
		{name: "apns-unreachable-alert-after", def: durationText(apns.DefaultUnreachableAlertAfter),
			set:  duration(&c.APNSUnreachableAlertAfter, 0, 30*24*time.Hour, "want a duration between 0s and 720h, like 1h"),
			help: "how long Apple's push service may stay out of reach before an alert is sent (0: never)"},
		{name: "metrics-token", set: secret(&c.MetricsToken, 16, "openssl rand -hex 32"),
			help: "bearer token /metrics requires (optional; open when empty)"},
		{name: "shutdown-timeout", def: "20s",
			set:  duration(&c.ShutdownTimeout, 0, 10*time.Minute, "want a duration between 0s and 10m, like 20s"),
			help: "how long in-flight requests may take to finish after SIGTERM"},
		{name: "pprof-addr", set: c.setPprofAddr,
			help: "loopback address that serves net/http/pprof's profiles under /debug/pprof/, like 127.0.0.1:6060 (optional; off when empty)"},
		{name: "log-format", def: "json", devDef: "text", set: oneOf(&c.LogFormat, "want json or text", "json", "text"),
			help: "json or text"},
		{name: "log-level", def: "info", set: oneOf(&c.LogLevel, "want debug, info, warn or error", "debug", "info", "warn", "error"),
			help: "debug, info, warn or error"},
	}
}

// The readers below take a setting's text, its default filled in, into a
// field of the config; their error is what is wrong with it.

func text(p *string) func(string) error {
	return func(v string) error {
		*p = v
		return nil
	}
}

func list(p *[]string) func(string) error {
	return func(v string) error {
		*p = splitList(v)
		return nil
	}
}

func boolean(p *bool) func(string) error {
	return func(v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("want true or false")
		}
		*p = b
		return nil
	}
}

// duration reads a duration from lo to hi; problem says so.
func duration(p *time.Duration, lo, hi time.Duration, problem string) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < lo || d > hi {
			return errors.New(problem)
		}
		*p = d
		return nil
	}
}

// secret reads a secret of at least minLen characters; the problem
// suggests a command that makes one, and never shows the value.
func secret(p *string, minLen int, command string) func(string) error {
	return func(v string) error {
		if len(v) < minLen {
			return fmt.Errorf("too short: use at least %d characters, e.g. from `%s`", minLen, command)
		}
		*p = v
		return nil
	}
}

func httpURL(p *string, problem string) func(string) error {
	return func(v string) error {
		if !isHTTPURL(v) {
			return errors.New(problem)
		}
		*p = v
		return nil
	}
}

func isHTTPURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// file reads the path of a file that must exist when pushcert starts. The
// path is kept even when the file is missing, so that the checks of the
// settings that go with it judge what was set.
func file(p *string) func(string) error {
	return func(v string) error {
		*p = v
		if _, err := os.Stat(v); err != nil {
			return fmt.Errorf("cannot read %s", v)
		}
		return nil
	}
}

func oneOf(p *string, problem string, allowed ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(allowed, v) {
			return errors.New(problem)
		}
		*p = v
		return nil
	}
}

func (c *config) setListenAddr(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return errors.New("want host:port, like :8080")
	}
	if c.Dev && !isLoopbackAddr(v) {
		return errors.New("dev mode only listens on a loopback address, like 127.0.0.1:8080")
	}
	c.ListenAddr = v
	return nil
}

func (c *config) setDevProviderAddr(v string) error {
	if c.Dev && !isLoopbackAddr(v) {
		return errors.New("the development provider only listens on loopback, like 127.0.0.1:8081")
	}
	c.DevProviderAddr = v
	return nil
}

func (c *config) setBaseURL(v string) error {
	if !isHTTPURL(v) {
		return errors.New("want an absolute http(s) URL, like https://pushcert.example.com")
	}
	c.BaseURL = strings.TrimSuffix(v, "/")
	return nil
}

func (c *config) setDatabaseURL(v string) error {
	if !strings.HasPrefix(v, "sqlite:") && !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
		return errors.New("want sqlite:PATH or postgres://USER@HOST/DB")
	}
	c.DatabaseURL = v
	return nil
}

func (c *config) setPreviousSecrets(v string) error {
	c.KeyEncryptionSecretsPrevious = splitList(v)
	for _, p := range c.KeyEncryptionSecretsPrevious {
		if len(p) < 16 {
			return errors.New("an entry is too short to be a key-encryption secret")
		}
	}
	return nil
}

// setOIDCIssuer checks the issuer's form only outside -dev, where the
// embedded provider's is used unless one is given.
func (c *config) setOIDCIssuer(v string) error {
	if !c.Dev && !isHTTPURL(v) {
		return errors.New("want an absolute http(s) URL")
	}
	c.OIDCIssuer = v
	return nil
}

// setAPNSURL takes the push service's address as the check wants it.
func (c *config) setAPNSURL(v string) error {
	if _, err := apns.NewChecker(apns.CheckerConfig{URL: v}); err != nil {
		return err
	}
	c.APNSURL = v
	return nil
}

// setAllowAnyIssuer never allows any issuer with -dev: development mode
// trusts Apple and its own CA that plays Apple, and checks issuers as
// production does.
func (c *config) setAllowAnyIssuer(v string) error {
	if err := boolean(&c.AllowAnyIssuer)(v); err != nil {
		return err
	}
	c.AllowAnyIssuer = c.AllowAnyIssuer && !c.Dev
	return nil
}

func (c *config) setAlertThresholds(v string) error {
	t, err := alert.ParseThresholds(v)
	if err != nil {
		return fmt.Errorf("%v, like 30,14,7,3,1", err)
	}
	c.AlertThresholds = t
	return nil
}

// setPprofAddr keeps profiles on loopback, in production and -dev alike:
// they have no sign-in and tell a lot about the process: the command line
// (flags may carry secrets), its code, where its memory goes and every
// goroutine's stack.
func (c *config) setPprofAddr(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return errors.New("want host:port, like 127.0.0.1:6060")
	}
	if !isLoopbackAddr(v) {
		return errors.New("profiles are served without sign-in, so only on a loopback address, like 127.0.0.1:6060")
	}
	c.PprofAddr = v
	return nil
}

func (c *config) checkVendorPair() error {
	if (c.VendorCertFile == "") != (c.VendorKeyFile == "") {
		return errors.New("set the vendor certificate and the vendor key together")
	}
	return nil
}

func (c *config) checkVendorChain() error {
	if c.VendorChainFile != "" && c.VendorCertFile == "" {
		return errors.New("a chain needs the vendor certificate and key too")
	}
	return nil
}

// durationText writes d as a person would type it: 8h, 90m, 1h30m, 45s.
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
