package target

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultTimeout bounds one delivery to an MDM server when the
// configuration sets none.
const DefaultTimeout = 30 * time.Second

// maxResponse caps how much of an MDM server's answer is read.
const maxResponse = 64 << 10

// server is what differs between the kinds of MDM server.
type server struct {
	kind    string
	display string // the product's name in messages
	user    string // the default HTTP Basic user
	path    string // the default endpoint path
}

var servers = map[string]server{
	KindNanoMDM:  {KindNanoMDM, "NanoMDM", "nanomdm", "/v1/pushcert"},
	KindNanoHUB:  {KindNanoHUB, "NanoHUB", "nanohub", "/api/v1/nanomdm/pushcert"},
	KindMicroMDM: {KindMicroMDM, "MicroMDM", "micromdm", "/v1/config/certificate"},
}

// Options configures a target on an MDM server's API.
type Options struct {
	Name string
	// URL is the endpoint. A URL with no path, or "/", gets the kind's
	// default path. It must be https unless its host is a loopback
	// address (127.0.0.0/8, ::1, localhost), and holds no user or password.
	URL string
	// User is the HTTP Basic user; empty means the kind's default
	// (nanomdm, nanohub or micromdm).
	User string
	// APIKey is the HTTP Basic password, the server's API key.
	APIKey string
	// RootCAs verifies the server's TLS certificate; nil means the
	// system's roots.
	RootCAs *x509.CertPool
	// Timeout bounds one delivery; zero means DefaultTimeout.
	Timeout time.Duration
}

// MDM is a target on an MDM server's API: NanoMDM, NanoHUB or MicroMDM.
type MDM struct {
	name     string
	srv      server
	url      *url.URL
	describe string
	hostport string // for messages: where the connection goes
	user     string
	apiKey   string
	timeout  time.Duration
	client   *http.Client
}

// NewNanoMDM returns a target that PUTs the certificate and key, as PEM,
// to NanoMDM's /v1/pushcert.
func NewNanoMDM(o Options) (*MDM, error) { return newMDM(KindNanoMDM, o) }

// NewNanoHUB returns a target that PUTs the certificate and key, as PEM,
// to NanoHUB's /api/v1/nanomdm/pushcert.
func NewNanoHUB(o Options) (*MDM, error) { return newMDM(KindNanoHUB, o) }

// NewMicroMDM returns a target that PUTs the certificate and key, as JSON
// of base64 PEM with the key in PKCS#1, to MicroMDM's
// /v1/config/certificate.
func NewMicroMDM(o Options) (*MDM, error) { return newMDM(KindMicroMDM, o) }

func newMDM(kind string, o Options) (*MDM, error) {
	srv := servers[kind]
	var errs []error
	if err := checkName(o.Name); err != nil {
		errs = append(errs, err)
	}
	u, err := endpoint(o.URL, srv.path)
	if err != nil {
		errs = append(errs, err)
	}
	user := o.User
	if user == "" {
		user = srv.user
	}
	if strings.ContainsAny(user, ":\r\n") {
		errs = append(errs, errors.New("user must not hold a colon or a line break"))
	}
	if o.APIKey == "" {
		errs = append(errs, errors.New("the API key is empty"))
	}
	if o.Timeout < 0 {
		errs = append(errs, errors.New("timeout must be positive"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	return &MDM{
		name:     o.Name,
		srv:      srv,
		url:      u,
		describe: (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String(),
		hostport: hostPort(u),
		user:     user,
		apiKey:   o.APIKey,
		timeout:  timeout,
		client:   newClient(o.RootCAs),
	}, nil
}

// endpoint parses raw and enforces the URL rules of Options.URL.
func endpoint(raw, defaultPath string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return nil, errors.New("url is not a URL: want e.g. https://mdm.example.com")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("url must start with https://")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("url has no host")
	case u.User != nil:
		return nil, errors.New("url must not hold a user or password: set user, and apiKeyEnv or apiKeyFile")
	case u.Fragment != "":
		return nil, errors.New("url must not hold a #fragment")
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return nil, fmt.Errorf("url is plain http to %s, so the private key would cross the network unencrypted: use https (plain http is allowed only to 127.0.0.1, ::1 or localhost)", u.Hostname())
	}
	if u.Path == "" || u.Path == "/" {
		u.Path, u.RawPath = defaultPath, ""
	}
	return u, nil
}

// isLoopback reports whether host names this machine for certain.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// hostPort is u's host with its port, the default one when u has none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// newClient is a target's own client: its own connections and trust, the
// proxy from HTTPS_PROXY and NO_PROXY, and no redirects.
func newClient(roots *x509.CertPool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = http.ProxyFromEnvironment
	tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	return &http.Client{
		Transport: tr,
		// A redirect would carry the key and the API key to an address
		// nobody configured: stop and report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Name returns the operator's name for the target.
func (m *MDM) Name() string { return m.name }

// Kind returns the kind of MDM server.
func (m *MDM) Kind() string { return m.srv.kind }

// Describe returns the endpoint without user or query.
func (m *MDM) Describe() string { return m.describe }

// Deliver checks p and PUTs it to the server.
func (m *MDM) Deliver(ctx context.Context, p Pair) error {
	cert, key, err := checkPair(p)
	if err != nil {
		return err
	}
	body, contentType, err := m.body(cert, key, p.KeyDER)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, m.timeout, errTimedOut)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, m.url.String(), bytes.NewReader(body))
	if err != nil {
		return fail(err, "the request to %s cannot be made", m.describe)
	}
	req.SetBasicAuth(m.user, m.apiKey)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "pushcert")
	resp, err := m.client.Do(req)
	if err != nil {
		return m.transportError(ctx, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil && resp.StatusCode/100 != 2 {
		return m.transportError(ctx, err)
	}
	if err := m.judge(resp, answer); err != nil {
		return err
	}
	return m.confirmed(resp, answer, p.Certificate.Topic)
}

// confirmed checks that a 2xx answer is NanoMDM's (or NanoHUB's) own, which
// names the stored certificate's topic: a proxy's catch-all page, or
// another application at a wrong path, may answer 200 without storing
// anything. MicroMDM's answer names nothing, so it is taken as it is.
func (m *MDM) confirmed(resp *http.Response, answer []byte, topic string) error {
	if m.srv.kind == KindMicroMDM {
		return nil
	}
	var got struct {
		Topic *string `json:"topic"`
	}
	if json.Unmarshal(answer, &got) != nil || got.Topic == nil || (topic != "" && *got.Topic != topic) {
		return fail(fmt.Errorf("%s answered %s without the certificate's topic", m.describe, resp.Status),
			"%s did not confirm the certificate: the answer (%d) does not name its topic, so something other than %s may be at %s; check the url",
			m.srv.display, resp.StatusCode, m.srv.display, m.describe)
	}
	return nil
}

// Timeout is how long one delivery may take.
func (m *MDM) Timeout() time.Duration { return m.timeout }

// Settings names what the target is, without its secret: a change of any
// of them means the target has to be delivered to again.
func (m *MDM) Settings() string {
	return strings.Join([]string{m.srv.kind, m.url.String(), m.user}, "\n")
}

// errTimedOut is the cause of a delivery's own deadline.
var errTimedOut = errors.New("delivery timed out")

// body is the request body for the server's kind.
func (m *MDM) body(cert *x509.Certificate, key crypto.Signer, keyDER []byte) ([]byte, string, error) {
	if m.srv.kind == KindMicroMDM {
		// MicroMDM reads the key only as PKCS#1: a PKCS#8 key is stored
		// without complaint and fails at the first push.
		if _, ok := key.(*rsa.PrivateKey); !ok {
			return nil, "", fail(fmt.Errorf("key is %T", key), "MicroMDM needs a PKCS#1 key, which only an RSA key has; this key is %s", keyType(key))
		}
		k, _ := keyPEM(key, keyDER, FormatPKCS1)
		b, err := json.Marshal(struct {
			Cert []byte `json:"cert"` // base64 of the PEM, as encoding/json writes []byte
			Key  []byte `json:"key"`
		}{certPEM(cert), k})
		if err != nil {
			return nil, "", fail(err, "the request to MicroMDM cannot be encoded")
		}
		return b, "application/json", nil
	}
	// RSA goes as PKCS#1, which every NanoMDM release reads; ECDSA as
	// PKCS#8.
	format := FormatPKCS1
	if _, ok := key.(*rsa.PrivateKey); !ok {
		format = FormatPKCS8
	}
	k, err := keyPEM(key, keyDER, format)
	if err != nil {
		return nil, "", fail(err, "the key cannot be encoded for %s", m.srv.display)
	}
	return append(certPEM(cert), k...), "application/x-pem-file", nil
}

func keyType(key crypto.Signer) string {
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		return "ECDSA"
	}
	return fmt.Sprintf("%T", key)
}

// judge turns the server's answer into success or an *Error.
func (m *MDM) judge(resp *http.Response, answer []byte) error {
	code := resp.StatusCode
	name := m.srv.display
	status := fmt.Errorf("%s answered %s", m.describe, resp.Status)
	switch {
	case code/100 == 2:
		return nil
	case code/100 == 3:
		return fail(status, "the target answered with a redirect to %s; set url to the final address", redirectTarget(resp))
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return fail(status, "%s refused the API key (%d)", name, code)
	case code == http.StatusNotFound, code == http.StatusMethodNotAllowed:
		return fail(status, "%s has no push-certificate endpoint at %s (%d): check the url's path (the default is %s)", name, m.describe, code, m.srv.path)
	}
	msg := m.serverMessage(resp, answer)
	if msg != "" {
		msg = ": " + msg
	}
	switch {
	case code == http.StatusBadRequest:
		return fail(status, "%s refused the certificate (%d)%s", name, code, msg)
	case code >= 500:
		return fail(status, "%s could not store the certificate (%d)%s", name, code, msg)
	default:
		return fail(status, "%s answered %d%s", name, code, msg)
	}
}

// serverMessage is the error the server put in its answer, clipped and
// cleaned: the "error" (or MicroMDM's "err") of a JSON answer, or a short
// plain-text answer.
func (m *MDM) serverMessage(resp *http.Response, answer []byte) string {
	var e struct {
		Error string `json:"error"`
		Err   string `json:"err"`
	}
	msg := ""
	if json.Unmarshal(answer, &e) == nil {
		msg = e.Error
		if msg == "" {
			msg = e.Err
		}
	} else if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		msg = string(answer)
	}
	// A server that echoed the request's credentials must not make them
	// readable to every viewer.
	msg = strings.ReplaceAll(msg, m.apiKey, "[API key]")
	msg = strings.ReplaceAll(msg, base64.StdEncoding.EncodeToString([]byte(m.user+":"+m.apiKey)), "[API key]")
	return clip(msg, 200)
}

// redirectTarget is a redirect's Location without user or query.
func redirectTarget(resp *http.Response) string {
	loc, err := resp.Location()
	if err != nil {
		return "an unreadable address"
	}
	return (&url.URL{Scheme: loc.Scheme, Host: loc.Host, Path: loc.Path}).String()
}

// clip makes s one line of printable text no longer than n runes.
func clip(s string, n int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r < ' ' || r == 0x7f || r == ' '
	}), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
