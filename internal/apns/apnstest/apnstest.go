// Package apnstest is a fake of Apple's push service (APNs) for the tests
// and for pushcert -dev: an HTTP/2 server over TLS that requires a client
// certificate issued by one authority, verifies it as APNs does (expired,
// unknown authority and revoked certificates are refused in the TLS
// handshake with the matching alert), and answers pushes with APNs' status
// codes and reasons. Every device token is unknown to it, so a push with a
// good certificate gets 400 BadDeviceToken, as from Apple.
package apnstest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/guid"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// Server is a running fake APNs. Its settings may be changed while it
// runs; each applies to the pushes and connections that follow.
type Server struct {
	srv  *httptest.Server
	done chan struct{} // closed by Close: pushes held by Hang return
	once sync.Once

	mu      sync.Mutex
	status  int    // every push's answer when not 0
	reason  string // its reason
	hang    bool
	cut     bool            // close connections in the handshake
	revoked map[string]bool // serials, uppercase hex
	pushes  []Push
}

// Push is a push the server received.
type Push struct {
	Method   string
	Path     string
	Proto    string // "HTTP/2.0"
	Topic    string // the apns-topic header
	PushType string // the apns-push-type header
	Body     string
	// The client certificate's serial (uppercase hex) and topic.
	ClientSerial string
	ClientTopic  string
}

// New starts a fake APNs on a loopback port that accepts client
// certificates issued by clientCA, judging their validity at now() (nil
// means time.Now). Call Close when done.
func New(clientCA *x509.Certificate, now func() time.Time) (*Server, error) {
	if clientCA == nil {
		return nil, errors.New("apnstest: no client certificate authority")
	}
	if now == nil {
		now = time.Now
	}
	s := &Server{done: make(chan struct{}), revoked: map[string]bool{}}
	pool := x509.NewCertPool()
	pool.AddCert(clientCA)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	s.srv.EnableHTTP2 = true
	// Refused handshakes are the point of most tests; don't log each.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.TLS = &tls.Config{
		ClientAuth:         tls.RequireAndVerifyClientCert,
		ClientCAs:          pool,
		Time:               now,
		GetConfigForClient: s.configFor,
	}
	s.srv.StartTLS()
	return s, nil
}

// TB is the part of testing.TB Start needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// Start starts a fake APNs for a test (see New) and closes it when the
// test ends.
func Start(t TB, clientCA *x509.Certificate, now func() time.Time) *Server {
	t.Helper()
	s, err := New(clientCA, now)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// URL returns the server's base URL, https://127.0.0.1:port.
func (s *Server) URL() string { return s.srv.URL }

// RootCAs returns a pool that trusts the server's TLS certificate.
func (s *Server) RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.srv.Certificate())
	return pool
}

// CertificatePEM is the server's TLS certificate as PEM, for a client
// that reads its roots from a file (PUSHCERT_APNS_CA_FILE).
func (s *Server) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
}

// Close stops the server, ending pushes held by Hang.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.srv.Close()
	})
}

// Answer makes every push get status and reason, as APNs answers
// ({"reason": reason}); Answer(0, "") restores the usual answers.
func (s *Server) Answer(status int, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.reason = status, reason
}

// Hang makes the server take pushes and never answer them, until Hang(false)
// or Close.
func (s *Server) Hang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = on
}

// Revoke makes the server refuse the certificate with serial (hex, as
// pushcert writes it) in the TLS handshake with a "revoked certificate"
// alert. While any certificate is revoked the server speaks TLS 1.2: in
// TLS 1.3 the client's certificate is judged after the point where an
// alert of the server's own choice can be sent.
func (s *Server) Revoke(serial string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked[strings.ToUpper(serial)] = true
}

// CutHandshakes makes the server close every connection, without an
// alert, once the client has sent its certificate, as APNs does when the
// key does not match; CutHandshakes(false) ends that.
func (s *Server) CutHandshakes(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = on
}

// Pushes returns the pushes received so far.
func (s *Server) Pushes() []Push {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Push(nil), s.pushes...)
}

// configFor returns, while a certificate is revoked or handshakes are
// cut, a config that does so; nil otherwise (the server's own config).
func (s *Server) configFor(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	s.mu.Lock()
	revoking, cut := len(s.revoked) > 0, s.cut
	s.mu.Unlock()
	if !revoking && !cut {
		return nil, nil
	}
	cfg := s.srv.TLS.Clone()
	cfg.GetConfigForClient = nil
	if revoking {
		cfg.MaxVersion = tls.VersionTLS12
	}
	cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if cut {
			hello.Conn.Close()
			return errors.New("handshake cut off")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		serial := strings.ToUpper(leaf.SerialNumber.Text(16))
		s.mu.Lock()
		revoked := s.revoked[serial]
		s.mu.Unlock()
		if !revoked {
			return nil
		}
		// crypto/tls answers a refusal here with "bad certificate". In TLS
		// 1.2 the server's records are still plaintext at this point, so
		// the revoked-certificate alert (fatal, 44) goes out first, as a
		// server that checks revocation sends it; crypto/tls's own alert
		// follows and is never read.
		_, _ = hello.Conn.Write([]byte{21, 3, 3, 0, 2, 2, 44})
		return fmt.Errorf("certificate %s is revoked", serial)
	}
	return cfg, nil
}

// serve answers a push as APNs does.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<10))
	p := Push{Method: r.Method, Path: r.URL.Path, Proto: r.Proto, Topic: r.Header.Get("apns-topic"),
		PushType: r.Header.Get("apns-push-type"), Body: string(body)}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf := pushcert.Describe(r.TLS.PeerCertificates[0])
		p.ClientSerial, p.ClientTopic = leaf.SerialNumber, leaf.Topic
	}
	s.mu.Lock()
	s.pushes = append(s.pushes, p)
	status, reason, hang := s.status, s.reason, s.hang
	s.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if status == 0 {
		status, reason = judge(p)
	}
	id := r.Header.Get("apns-id")
	if id == "" {
		id = strings.ToUpper(guid.New())
	}
	w.Header().Set("apns-id", id)
	if status == http.StatusOK {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"reason": reason})
}

// judge is APNs' answer to a push from a client whose certificate it
// accepted: no device token is known, so a well-formed push gets
// BadDeviceToken.
func judge(p Push) (int, string) {
	var payload map[string]any
	switch {
	case p.Method != http.MethodPost:
		return http.StatusMethodNotAllowed, "MethodNotAllowed"
	case !strings.HasPrefix(p.Path, "/3/device/"):
		return http.StatusNotFound, "BadPath"
	case p.Body == "":
		return http.StatusBadRequest, "PayloadEmpty"
	case json.Unmarshal([]byte(p.Body), &payload) != nil:
		return http.StatusBadRequest, "BadPayload"
	case p.Topic == "" && p.ClientTopic == "":
		return http.StatusBadRequest, "MissingTopic"
	case p.Topic != "" && p.Topic != p.ClientTopic:
		return http.StatusBadRequest, "TopicDisallowed"
	default:
		return http.StatusBadRequest, "BadDeviceToken"
	}
}
