package apns

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// Defaults of a Checker; CheckerConfig fields of zero take them.
const (
	// DefaultURL is Apple's production push service, the one MDM pushes
	// go to.
	DefaultURL = "https://api.push.apple.com"
	// DefaultTimeout bounds one check, connection and answer together.
	DefaultTimeout = 10 * time.Second
)

// TestDeviceToken is the device token the check pushes to: 32 zero bytes
// in hex. APNs device tokens are random, so no device has it, and a
// certificate Apple accepts gets 400 BadDeviceToken for it.
const TestDeviceToken = "0000000000000000000000000000000000000000000000000000000000000000"

// testPushMagic is the PushMagic of the test push. Only a device that
// enrolled with it would act on the push, and none did.
const testPushMagic = "pushcert-connection-check"

// maxAnswer bounds how much of Apple's answer is read; its JSON is tiny.
const maxAnswer = 64 << 10

// CheckerConfig tunes a Checker. Zero fields take the defaults.
type CheckerConfig struct {
	// URL is the push service, https://host[:port]; "" means DefaultURL.
	URL string
	// Timeout bounds one check; 0 means DefaultTimeout.
	Timeout time.Duration
	// RootCAs verify the push service's TLS certificate; nil means the
	// system's roots, which Apple's certificate chains to. Tests and -dev
	// set it for the fake APNs.
	RootCAs *x509.CertPool
	// Proxy picks the proxy for a request; nil means
	// http.ProxyFromEnvironment (HTTPS_PROXY, NO_PROXY).
	Proxy func(*http.Request) (*url.URL, error)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Checker checks a certificate against Apple's push service. It is safe
// for concurrent use.
type Checker struct {
	url     string // scheme and host, no trailing slash
	server  string // host:port, for messages
	host    string // host alone
	timeout time.Duration
	roots   *x509.CertPool
	proxy   func(*http.Request) (*url.URL, error)
	now     func() time.Time
}

// NewChecker returns a Checker for cfg, or an error a person can act on
// when cfg.URL is not an https URL of a host.
func NewChecker(cfg CheckerConfig) (*Checker, error) {
	raw := cfg.URL
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("the APNs URL must be https://host or https://host:port, such as " + DefaultURL)
	}
	port := u.Port()
	if port == "" {
		port = "443"
	}
	c := &Checker{
		url: "https://" + u.Host, server: net.JoinHostPort(u.Hostname(), port), host: u.Hostname(),
		timeout: cfg.Timeout, roots: cfg.RootCAs, proxy: cfg.Proxy, now: cfg.Now,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.proxy == nil {
		c.proxy = http.ProxyFromEnvironment
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// URL returns the push service the Checker asks, https://host[:port].
func (c *Checker) URL() string { return c.url }

// Timeout returns the longest a check takes.
func (c *Checker) Timeout() time.Duration { return c.timeout }

// Check pushes to TestDeviceToken with cert and its PKCS#8 key and says
// what Apple's answer means. It makes a new connection every time, so the
// TLS handshake, where Apple refuses most bad certificates, is always part
// of it. The result's By is left for the caller to set.
func (c *Checker) Check(ctx context.Context, cert pushcert.Certificate, keyDER []byte) Result {
	res, _ := c.check(ctx, cert, keyDER)
	return res
}

// check is Check, and also reports that the check was canceled: ctx ended
// before Apple answered, so the result says nothing about anything.
func (c *Checker) check(ctx context.Context, cert pushcert.Certificate, keyDER []byte) (Result, bool) {
	res := Result{Serial: cert.SerialNumber, Fingerprint: cert.Fingerprint, Topic: cert.Topic, Server: c.server}
	tlsCert, parsed, msg := clientCertificate(cert, keyDER)
	if msg != "" {
		res.Outcome, res.Message, res.At = OutcomeRejected, msg, c.now()
		return res, false
	}
	// The topic Apple sees is the one in the certificate itself.
	res.Topic = pushcert.Describe(parsed).Topic
	res.NoTopic = res.Topic == ""
	v := c.push(ctx, tlsCert, res.Topic)
	res.Outcome, res.HTTPStatus, res.Reason, res.Message = v.outcome, v.status, v.reason, v.message
	switch {
	case res.NoTopic:
		res.Message += "; note that the certificate has no topic (subject UID), which every MDM push certificate has: devices cannot be pushed with it"
	case cert.Topic != "" && res.Topic != cert.Topic:
		res.Message += fmt.Sprintf("; note that the certificate's topic %s is not the active topic %s", res.Topic, cert.Topic)
	}
	res.At = c.now()
	return res, v.canceled
}

// clientCertificate makes the TLS client certificate of cert and key, or
// says why they cannot be used.
func clientCertificate(cert pushcert.Certificate, keyDER []byte) (tls.Certificate, *x509.Certificate, string) {
	parsed, err := pushcert.ParseCertificate([]byte(cert.PEM))
	if err != nil {
		return tls.Certificate{}, nil, "pushcert could not read the stored certificate, so nothing was sent to Apple: " + err.Error()
	}
	// Neither message says Apple refused anything: Apple was not asked.
	key, err := x509.ParsePKCS8PrivateKey(keyDER)
	signer, ok := key.(crypto.Signer)
	if err != nil || !ok {
		return tls.Certificate{}, nil, "pushcert could not use the stored key: it is not a private key pushcert can read; nothing was sent to Apple"
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(parsed.PublicKey) {
		return tls.Certificate{}, nil, "pushcert could not use the stored key: it does not belong to the certificate, so nothing was sent to Apple; " +
			"upload the certificate Apple issued for pushcert's key"
	}
	return tls.Certificate{Certificate: [][]byte{parsed.Raw}, PrivateKey: signer, Leaf: parsed}, parsed, ""
}

// verdict is what the test push came to.
type verdict struct {
	outcome Outcome
	status  int    // Apple's HTTP status; 0 without an answer
	reason  string // Apple's reason, or the TLS alert ("tls: ...")
	message string
	// canceled: the caller's context ended before Apple answered.
	canceled bool
}

// push sends the test push and classifies what came back.
func (c *Checker) push(ctx context.Context, cert tls.Certificate, topic string) verdict {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var p progress
	ctx = httptrace.WithClientTrace(ctx, p.trace())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/3/device/"+TestDeviceToken,
		strings.NewReader(`{"mdm":"`+testPushMagic+`"}`))
	if err != nil {
		return verdict{outcome: OutcomeUnreachable, message: "pushcert could not make the test push: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if topic != "" {
		req.Header.Set("apns-topic", topic)
	}
	proxy, err := c.proxy(req)
	if err != nil {
		// The error quotes the setting, which may hold the proxy's password.
		return verdict{outcome: OutcomeUnreachable, message: "the proxy setting (HTTPS_PROXY) is not a URL pushcert can use: check it"}
	}
	var conns heldConns
	defer conns.close()
	tr := c.transport(cert, conns.dial, func() { p.set(func(m *milestones) { m.serverTrusted = true }) })
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err == nil {
		defer resp.Body.Close()
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		if err == nil || parent.Err() == nil {
			// A body cut short by anything but the caller is read as far
			// as it goes: a 200 has none, a proxy's page is no JSON.
			var answer struct {
				Reason string `json:"reason"`
			}
			_ = json.Unmarshal(body, &answer)
			outcome, msg := classifyAnswer(c.server, resp.StatusCode, answer.Reason)
			return verdict{outcome: outcome, status: resp.StatusCode, reason: answer.Reason, message: msg}
		}
	}
	f := failure{server: c.server, host: c.host, timeout: c.timeout, proxy: proxy, p: p.snapshot()}
	outcome, reason, msg := f.classify(parent, err)
	return verdict{outcome: outcome, reason: reason, message: msg, canceled: parent.Err() != nil}
}

// transport is a new HTTP/2-only transport that dials with dial and
// presents cert to whatever asks for a client certificate. It calls
// trusted once the server's certificate is verified, before cert goes out.
func (c *Checker) transport(cert tls.Certificate, dial func(ctx context.Context, network, addr string) (net.Conn, error), trusted func()) *http.Transport {
	protocols := new(http.Protocols)
	protocols.SetHTTP2(true)
	return &http.Transport{
		Proxy:       c.proxy,
		DialContext: dial,
		TLSClientConfig: &tls.Config{
			RootCAs:    c.roots,
			MinVersion: tls.VersionTLS12,
			Time:       c.now,
			// Always present the certificate, even when the server names
			// acceptable authorities that do not include its issuer: the
			// check is for Apple to judge it, not for the client.
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
			VerifyConnection: func(tls.ConnectionState) error {
				trusted()
				return nil
			},
		},
		Protocols:         protocols,
		ForceAttemptHTTP2: true,
	}
}

// heldConns are a check's connections. The transport's Close of one
// leaves its socket open until the check ends, so that what the server
// sent last, its TLS alert, can still be read when the transport gave up
// on the connection for a reason of its own (a write that failed because
// the server had closed it).
type heldConns struct {
	mu    sync.Mutex
	conns []net.Conn
}

// heldConn is a connection whose Close waits for heldConns.close.
type heldConn struct{ net.Conn }

func (heldConn) Close() error { return nil }

func (h *heldConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.conns = append(h.conns, conn)
	return heldConn{conn}, nil
}

func (h *heldConns) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.conns {
		c.Close()
	}
}

// progress is how far a check got, from the request's trace: what failed
// is told apart by where it failed.
type progress struct {
	mu   sync.Mutex
	seen milestones
}

type milestones struct {
	connected  bool // a TCP connection (to the proxy, with one) was made
	tlsStarted bool
	// serverTrusted: the server's certificate was verified, so the client
	// certificate went out or was about to.
	serverTrusted bool
	tlsDone       bool // the client's side of the handshake finished
	wroteRequest  bool
	conn          net.Conn // the TLS connection the request went on
}

func (p *progress) set(f func(m *milestones)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.seen)
}

func (p *progress) snapshot() milestones {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

func (p *progress) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		ConnectDone: func(_, _ string, err error) {
			if err == nil {
				p.set(func(m *milestones) { m.connected = true })
			}
		},
		TLSHandshakeStart: func() { p.set(func(m *milestones) { m.connected, m.tlsStarted = true, true }) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			if err == nil {
				p.set(func(m *milestones) { m.tlsDone = true })
			}
		},
		GotConn: func(i httptrace.GotConnInfo) { p.set(func(m *milestones) { m.conn = i.Conn }) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				p.set(func(m *milestones) { m.wroteRequest = true })
			}
		},
	}
}
