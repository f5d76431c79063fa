package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// configMode says what the configuration is for: serving needs everything,
// rotating keys only the database and the key-encryption secrets.
type configMode int

const (
	modeServe configMode = iota
	modeRotate
)

// config is every setting of a pushcert process, as settings declares
// them: each is a flag and a PUSHCERT_* environment variable (README.md
// has the table). parseConfig fills it and checks it; nothing changes it
// afterwards, and development mode makes a completed copy (devConfig).
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
	// SessionIdleTimeout ends a session unused that long; 0 means never.
	SessionIdleTimeout time.Duration

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

	// DeliveryConfigFile names the delivery targets' configuration
	// (package target); empty means no targets.
	DeliveryConfigFile string
	DeliveryInterval   time.Duration
	// DeliveryAlertAfter is how long a target may be out of sync before
	// an alert; 0 means never.
	DeliveryAlertAfter time.Duration
	// ExportDisabled turns off every export of the private key.
	ExportDisabled bool
	ExportGroups   []string
	// ExportSignInAge is how recent an admin's sign-in must be to export
	// the private key from the console.
	ExportSignInAge time.Duration

	// APNSURL is Apple's push service, which the connection check asks;
	// APNSCAFile adds roots to verify it with (a private test service,
	// a test's fake). APNSCheckInterval 0 turns the periodic check off;
	// APNSUnreachableAlertAfter 0 never alerts an unreachable Apple.
	APNSURL                   string
	APNSCAFile                string
	APNSCheckInterval         time.Duration
	APNSUnreachableAlertAfter time.Duration

	MetricsToken    string
	ShutdownTimeout time.Duration
	// PprofAddr is the loopback address that serves net/http/pprof's
	// profiles; empty means off.
	PprofAddr string

	LogFormat string
	LogLevel  string
}

// setting declares one setting: its flag, its variable, its defaults, when
// it is required, and how its text is read into the config.
type setting struct {
	name string // the flag's name; the variable is envName(name)
	help string
	// def is the default, devDef the default with -dev where it differs;
	// derive computes a default from the settings declared before it.
	def, devDef string
	derive      func() string
	need        need
	why         string // said after "required" when the setting is missing
	boolean     bool   // a switch: -dev means -dev=true
	list        bool   // comma-separated: set means with at least one entry
	// set reads a value that is not blank into the config; its error is
	// the problem reported for the setting.
	set func(v string) error
	// check, run once every setting is read, compares the setting with
	// those declared after it.
	check func() error
}

// need says when a setting must not be blank. -dev provides every
// setting itself.
type need int

const (
	optional      need = iota
	neededAlways       // outside -dev, by every command
	neededToServe      // outside -dev, by the server
)

func envName(flagName string) string {
	return "PUSHCERT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads every setting from its flag in args or else from its
// variable through getenv, fills in the defaults, then checks every setting
// at once. A usage or validation error names every bad setting; secret
// values never appear in it.
func parseConfig(name string, mode configMode, args []string, getenv func(string) string, usage io.Writer) (*config, error) {
	c := &config{}
	settings := c.settings()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(usage)
	flags := make([]flagValue, len(settings))
	for i, s := range settings {
		flags[i].boolean = s.boolean
		fs.Var(&flags[i], s.name, s.usage())
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var problems []string
	// Settings are read in the order they are declared: -dev first, as the
	// others' defaults and rules depend on it.
	for i, s := range settings {
		v := flags[i].text
		if !flags[i].given {
			v = getenv(envName(s.name))
		}
		if err := s.read(c.Dev, mode, v); err != nil {
			problems = append(problems, s.problem(err))
		}
	}
	for _, s := range settings {
		if s.check == nil {
			continue
		}
		if err := s.check(); err != nil {
			problems = append(problems, s.problem(err))
		}
	}
	if len(problems) > 0 {
		return nil, &configError{problems: problems}
	}
	return c, nil
}

// read fills in the default when v is blank, then sets the value.
func (s setting) read(dev bool, mode configMode, v string) error {
	if s.blank(v) {
		v = s.defaultValue(dev)
	}
	if !s.blank(v) {
		return s.set(v)
	}
	if !dev && (s.need == neededAlways || s.need == neededToServe && mode == modeServe) {
		if s.why != "" {
			return errors.New("required: " + s.why)
		}
		return errors.New("required")
	}
	return nil
}

func (s setting) blank(v string) bool {
	if s.list {
		return len(splitList(v)) == 0
	}
	return strings.TrimSpace(v) == ""
}

func (s setting) defaultValue(dev bool) string {
	switch {
	case dev && s.devDef != "":
		return s.devDef
	case s.derive != nil:
		return s.derive()
	}
	return s.def
}

// usage is the flag's help: what it is for, its defaults and its variable.
func (s setting) usage() string {
	u := s.help
	switch {
	case s.def != "" && s.devDef != "":
		u += fmt.Sprintf(" (default %s, or %s with -dev)", s.def, s.devDef)
	case s.def != "":
		u += " (default " + s.def + ")"
	case s.devDef != "":
		u += " (with -dev: default " + s.devDef + ")"
	}
	return u + " (" + envName(s.name) + ")"
}

// problem is one line of a configError: the setting's variable and flag,
// then what is wrong.
func (s setting) problem(err error) string {
	return fmt.Sprintf("%s (-%s): %v", envName(s.name), s.name, err)
}

// flagValue is a setting's text as given on the command line. Its flag
// has no default of its own: the variable is read when the flag is not
// given, so that -help never prints a secret taken from the environment.
type flagValue struct {
	text    string
	given   bool
	boolean bool
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.text
}

func (f *flagValue) Set(v string) error {
	if f.boolean {
		if _, err := strconv.ParseBool(v); err != nil {
			return errors.New("want true or false")
		}
	}
	f.text, f.given = v, true
	return nil
}

// IsBoolFlag lets a switch be given without a value.
func (f *flagValue) IsBoolFlag() bool { return f.boolean }

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
