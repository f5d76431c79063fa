package target

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestMDMTLS(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(confirmTopic))
	// The refused handshakes are the point: keep them out of the output.
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0)
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	plain := httptest.NewServer(http.HandlerFunc(confirmTopic))
	t.Cleanup(plain.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(tlsSrv.URL, "https://"))
	tests := []struct {
		name   string
		url    string
		caFile string
		want   string // "" for success
	}{
		{"private CA not trusted", tlsSrv.URL, "", "the server's TLS certificate is not trusted: set caFile for this target"},
		{"private CA trusted through caFile", tlsSrv.URL, caFile, ""},
		// httptest's certificate names 127.0.0.1, ::1 and example.com, not localhost.
		{"certificate for another host", "https://localhost:" + port, caFile, "the server's TLS certificate is not for the url's host"},
		{"https to a plain http server", strings.Replace(plain.URL, "http://", "https://", 1), "", "did not answer in TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf := fmt.Sprintf(`{"name": "t", "kind": "nanomdm", "url": %q, "apiKeyEnv": "K"`, tt.url)
			if tt.caFile != "" {
				conf += fmt.Sprintf(`, "caFile": %q`, tt.caFile)
			}
			tg := parseOne(t, conf+"}", map[string]string{"K": "k"})
			err := tg.Deliver(t.Context(), newPair(t, "", rsaKey))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				return
			}
			wantMessage(t, err, tt.want)
		})
	}
}

// TestNetMessage covers the failures a test cannot bring about on a
// loopback address; the others are brought about for real in TestMDMTLS
// and the NanoMDM tests.
func TestNetMessage(t *testing.T) {
	opErr := func(op string, err error) error {
		return &url.Error{Op: "Put", URL: "https://mdm.example.com/v1/pushcert?k=s", Err: &net.OpError{Op: op, Net: "tcp", Err: err}}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"no such host", &net.DNSError{Err: "no such host", Name: "mdm.example.com", IsNotFound: true},
			"no such host mdm.example.com: check the url"},
		{"DNS server failing", &net.DNSError{Err: "server misbehaving", Name: "mdm.example.com", IsTemporary: true},
			"could not look up mdm.example.com: server misbehaving"},
		{"connection refused", opErr("dial", os.NewSyscallError("connect", syscall.ECONNREFUSED)),
			"connection refused by mdm.example.com:443: is NanoMDM running?"},
		{"proxy down", opErr("proxyconnect", os.NewSyscallError("connect", syscall.ECONNREFUSED)),
			"could not reach the proxy set by HTTPS_PROXY"},
		{"no route", opErr("dial", os.NewSyscallError("connect", syscall.EHOSTUNREACH)),
			"mdm.example.com:443 cannot be reached from here"},
		{"connection reset", opErr("read", os.NewSyscallError("read", syscall.ECONNRESET)),
			"mdm.example.com:443 closed the connection before NanoMDM answered"},
		{"closed without an answer", io.EOF, "mdm.example.com:443 closed the connection before NanoMDM answered"},
		{"expired TLS certificate", x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time is after the end"},
			"the server's TLS certificate is not valid: x509: certificate has expired"},
		{"anything else", errors.New("something odd"), "could not reach NanoMDM at mdm.example.com:443: something odd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := netMessage("NanoMDM", "mdm.example.com:443", tt.err)
			if !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want it to hold %q", got, tt.want)
			}
			if strings.Contains(got, "k=s") {
				t.Errorf("got %q, want no query", got)
			}
		})
	}
}

// TestTransportErrorDropsURL checks that a failed request's error, which
// quotes the whole URL, reaches neither the message nor the cause.
func TestTransportErrorDropsURL(t *testing.T) {
	m, err := NewNanoMDM(Options{Name: "t", URL: "https://mdm.example.com/v1/pushcert?secret=s3cret", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Describe(); got != "https://mdm.example.com/v1/pushcert" {
		t.Errorf("got Describe %q, want the URL without query", got)
	}
	e := m.transportError(t.Context(), &url.Error{Op: "Put", URL: m.url.String(), Err: errors.New("boom")})
	if strings.Contains(e.Message, "s3cret") || strings.Contains(e.Err.Error(), "s3cret") {
		t.Errorf("got %q / %q, want no query", e.Message, e.Err)
	}
}
