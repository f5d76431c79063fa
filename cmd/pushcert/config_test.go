package main

import (
	"bytes"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/devidp"
	"github.com/pushcert/pushcert/internal/testclock"
)

// TestREADMEListsEverySetting: README.md's table of settings and the
// settings pushcert declares are the same list.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(PUSHCERT_[A-Z_]+)` \\|").FindAllSubmatch(readme, -1) {
		documented = append(documented, string(m[1]))
	}
	var declared []string
	for _, s := range (&config{}).settings() {
		declared = append(declared, envName(s.name))
	}
	for _, d := range declared {
		if !slices.Contains(documented, d) {
			t.Errorf("%s is a setting but not in README.md's table", d)
		}
	}
	for _, d := range documented {
		if !slices.Contains(declared, d) {
			t.Errorf("README.md's table lists %s, which is no setting", d)
		}
	}
}

// TestConfigDevDefaults: -dev fills in what it provides, and what is set
// still wins; allow-any-issuer is never on in -dev.
func TestConfigDevDefaults(t *testing.T) {
	c, err := parseConfig("pushcert", modeServe, []string{"-dev", "-allow-any-issuer"}, env(map[string]string{"PUSHCERT_VIEWER_GROUPS": "readers"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"listen", c.ListenAddr, "127.0.0.1:8080"},
		{"data dir", c.DataDir, "pushcert-data"},
		{"database", c.DatabaseURL, "sqlite:pushcert-data/pushcert.db"},
		{"organization", c.Organization, "Example Organization (development)"},
		{"admin groups", strings.Join(c.AdminGroups, "|"), "pushcert-admins"},
		{"viewer groups", strings.Join(c.ViewerGroups, "|"), "readers"},
		{"log format", c.LogFormat, "text"},
		{"base url", c.BaseURL, ""},
		{"issuer", c.OIDCIssuer, ""},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.AllowAnyIssuer {
		t.Error("allow-any-issuer: got on with -dev, want off")
	}
}

// TestConfigFlagsAndVariables: a flag given beats its variable, even when
// empty (then the default applies); a list of only commas is unset; a bad
// switch in a variable is a problem naming it.
func TestConfigFlagsAndVariables(t *testing.T) {
	c, err := parseConfig("pushcert", modeServe, []string{"-dev", "-log-format=", "-admin-groups= , "},
		env(map[string]string{"PUSHCERT_LOG_FORMAT": "xml", "PUSHCERT_SESSION_LIFETIME": "2h"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.LogFormat != "text" || strings.Join(c.AdminGroups, "|") != "pushcert-admins" || c.SessionLifetime.String() != "2h0m0s" {
		t.Errorf("got log format %q, admin groups %v, lifetime %s; want text, [pushcert-admins], 2h", c.LogFormat, c.AdminGroups, c.SessionLifetime)
	}
	_, err = parseConfig("pushcert", modeServe, []string{"-dev"}, env(map[string]string{"PUSHCERT_ALLOW_ANY_ISSUER": "sometimes"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PUSHCERT_ALLOW_ANY_ISSUER (-allow-any-issuer): want true or false") {
		t.Errorf("got %v, want a problem naming PUSHCERT_ALLOW_ANY_ISSUER", err)
	}
	if _, err := parseConfig("pushcert", modeServe, []string{"-dev=sometimes"}, env(nil), io.Discard); err == nil {
		t.Error("-dev=sometimes: got nil, want an error")
	}
}

// TestConfigRotateNeedsLess: rotate-key needs the organization and the
// key-encryption secret, not the server's settings.
func TestConfigRotateNeedsLess(t *testing.T) {
	_, err := parseConfig("pushcert rotate-key", modeRotate, nil, env(nil), io.Discard)
	if err == nil {
		t.Fatal("got nil, want the missing settings")
	}
	for _, want := range []string{"PUSHCERT_ORGANIZATION (-organization): required", "PUSHCERT_KEY_ENCRYPTION_SECRET (-key-encryption-secret): required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want %q", err, want)
		}
	}
	for _, notWant := range []string{"PUSHCERT_BASE_URL", "PUSHCERT_SESSION_SECRET", "PUSHCERT_OIDC_ISSUER", "PUSHCERT_ADMIN_GROUPS"} {
		if strings.Contains(err.Error(), notWant) {
			t.Errorf("got %q, want nothing about %s", err, notWant)
		}
	}
}

// TestConfigProblemLines: each problem is one line naming its setting's
// variable and flag; the vendor files are judged together.
func TestConfigProblemLines(t *testing.T) {
	dir := t.TempDir()
	key := dir + "/vendor-key.pem"
	if err := os.WriteFile(key, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := parseConfig("pushcert", modeServe, []string{"-dev", "-vendor-key=" + key, "-vendor-chain=" + key, "-dev-provider-addr=0.0.0.0:8081"}, env(nil), io.Discard)
	if err == nil {
		t.Fatal("got nil, want problems")
	}
	want := []string{
		"configuration has 3 problems:",
		"  PUSHCERT_DEV_PROVIDER_ADDR (-dev-provider-addr): the development provider only listens on loopback, like 127.0.0.1:8081",
		"  PUSHCERT_VENDOR_CERT (-vendor-cert): set the vendor certificate and the vendor key together",
		"  PUSHCERT_VENDOR_CHAIN (-vendor-chain): a chain needs the vendor certificate and key too",
	}
	if got := strings.Split(err.Error(), "\n"); !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestHelpShowsNoSecret: -help shows each setting's variable and default,
// but not the values the environment holds.
func TestHelpShowsNoSecret(t *testing.T) {
	var out bytes.Buffer
	const secret = "a-session-secret-from-the-environment"
	if err := run(t.Context(), []string{"-help"}, env(map[string]string{"PUSHCERT_SESSION_SECRET": secret}), &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PUSHCERT_SESSION_SECRET", "-listen-addr", "(default :8080, or 127.0.0.1:8080 with -dev)", "(default 8h)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help: want %q in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), secret) {
		t.Error("help shows the session secret from the environment")
	}
}

// TestDevConfigIsACopy: development mode completes a copy of the validated
// configuration and leaves the original as it was.
func TestDevConfigIsACopy(t *testing.T) {
	dir := t.TempDir()
	cfg, err := parseConfig("pushcert", modeServe, []string{"-dev", "-data-dir=" + dir, "-dev-provider-addr=127.0.0.1:0", "-oidc-scopes=openid,email,profile,extra"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg.OIDCScopes = cfg.OIDCScopes[:3:4] // room to grow into, as append may leave
	before := *cfg
	beforeScopes := slices.Clone(cfg.OIDCScopes[:4])
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	dev, setup, err := devConfig(*cfg, discard(), addr, testclock.New(t).Now)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	if cfg.BaseURL != before.BaseURL || cfg.SessionSecret != "" || cfg.KeyEncryptionSecret != "" || cfg.OIDCIssuer != "" || cfg.OIDCClientID != "" {
		t.Errorf("the validated configuration changed: got %+v", *cfg)
	}
	if !slices.Equal(cfg.OIDCScopes[:4], beforeScopes) {
		t.Errorf("the validated configuration's scopes changed: got %v, want %v", cfg.OIDCScopes[:4], beforeScopes)
	}
	checks := []struct{ name, got, want string }{
		{"base url", dev.BaseURL, "http://127.0.0.1:8080"},
		{"issuer", dev.OIDCIssuer, setup.provider.Issuer()},
		{"client id", dev.OIDCClientID, devidp.ClientID},
		{"audience", dev.OIDCAudience, devidp.ClientID},
		{"scopes", strings.Join(dev.OIDCScopes, ","), "openid,email,profile,groups"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s: got %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if len(dev.SessionSecret) < 32 || len(dev.KeyEncryptionSecret) < 32 || setup.ca == nil {
		t.Error("got no generated secrets or no development CA, want both")
	}
}
