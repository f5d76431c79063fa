// Package nanomdmtest runs a real NanoMDM for tests: the nanomdm binary
// as a child process on a loopback port, with its API on, a random API
// key, and filekv storage in a temporary folder the tests can read.
//
// The binary is $PUSHCERT_NANOMDM when set, else nanomdm on PATH, else
// the one in $(go env GOBIN) or $(go env GOPATH)/bin; failing all of them
// the harness runs `go install` of Module into the user's cache folder,
// once per test binary and under a lock file. It never skips: a test that
// cannot get NanoMDM fails and says why.
package nanomdmtest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/testclock"
)

// Server is a running (or stopped) NanoMDM.
type Server struct {
	t      testing.TB
	bin    string
	addr   string // 127.0.0.1:PORT, kept across Stop and Start
	apiKey string
	caFile string
	dir    string // filekv storage
	logs   *tail

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a NanoMDM on a free loopback port and stops it when the test
// ends. Its log is shown if the test fails.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := binary()
	if err != nil {
		t.Fatalf("nanomdmtest: no nanomdm binary to run: %v\nInstall it with `go install %s`, or set %s to its path.", err, Module, BinaryEnv)
	}
	tmp := t.TempDir()
	s := &Server{
		t: t, bin: bin, apiKey: randomHex(16),
		caFile: filepath.Join(tmp, "ca.pem"), dir: filepath.Join(tmp, "db"),
		logs: &tail{max: 64 << 10},
	}
	if err := os.WriteFile(s.caFile, caPEM(t), 0o644); err != nil {
		t.Fatalf("nanomdmtest: write CA: %v", err)
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("nanomdm's log:\n%s", s.logs)
		}
	})
	// The free port is found by listening and closing; another process
	// may take it before NanoMDM does, so try a few.
	for attempt := 1; ; attempt++ {
		s.addr = freeAddr(t)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("nanomdmtest: start %s: %v\n%s", bin, err, s.logs)
		}
	}
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return "http://" + s.addr }

// APIKey is the server's API key, the password of HTTP Basic user nanomdm.
func (s *Server) APIKey() string { return s.apiKey }

// Start runs the server again on the same port and storage, after Stop.
func (s *Server) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("nanomdmtest: restart on %s: %v\n%s", s.addr, err, s.logs)
	}
}

// start launches nanomdm and waits until it answers.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("already running")
	}
	cmd := exec.Command(s.bin,
		"-ca", s.caFile, "-api", s.apiKey,
		"-storage", "filekv", "-storage-dsn", s.dir,
		"-listen", s.addr)
	cmd.Env = environ()
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	if err := waitReady(s.URL(), done); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return err
	}
	s.cmd, s.done = cmd, done
	return nil
}

// Stop ends the server; the port and storage stay for Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd, s.done = nil, nil
}

// environ is this process's environment without NANOMDM_ variables,
// which nanomdm would read as flags.
func environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NANOMDM_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls base's /version until NanoMDM answers, the process
// exits, or 30 seconds pass.
func waitReady(base string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			return errors.New("nanomdm exited before it answered")
		default:
		}
		if resp, err := client.Get(base + "/version"); err == nil {
			var v struct {
				Version *string `json:"version"`
			}
			err := json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && err == nil && v.Version != nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("nanomdm did not answer /version within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StoredPair returns the certificate and key NanoMDM stored, as PEM, with
// ok false when it stored none. It fails the test if NanoMDM holds pairs
// for more than one topic; use StoredPairFor then.
func (s *Server) StoredPair(t testing.TB) (certPEM, keyPEM []byte, ok bool) {
	t.Helper()
	var topics []string
	root := filepath.Join(s.dir, "push_cert")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, isPEM := strings.CutSuffix(d.Name(), ".pem"); isPEM && !d.IsDir() {
			topics = append(topics, name)
		}
		return nil
	})
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil, false
	case err != nil:
		t.Fatalf("nanomdmtest: read storage: %v", err)
	case len(topics) == 0:
		return nil, nil, false
	case len(topics) > 1:
		t.Fatalf("nanomdmtest: NanoMDM holds push certificates for %d topics (%v): use StoredPairFor", len(topics), topics)
	}
	return s.StoredPairFor(t, topics[0])
}

// StoredPairFor returns the certificate and key NanoMDM stored for topic.
//
// NanoMDM's filekv keeps the push certificates in the bucket push_cert
// (storage/diskv): the key "<topic>.pem" or "<topic>.key" is stored in
// the file of that name, in folders made of the first two and next two
// characters of the topic without its "com.apple.mgmt.External." prefix
// (left-padded with zeros to four characters).
func (s *Server) StoredPairFor(t testing.TB, topic string) (certPEM, keyPEM []byte, ok bool) {
	t.Helper()
	id := strings.TrimPrefix(topic, "com.apple.mgmt.External.")
	if len(id) < 4 {
		id = strings.Repeat("0", 4-len(id)) + id
	}
	dir := filepath.Join(s.dir, "push_cert", id[0:2], id[2:4])
	certPEM, cerr := os.ReadFile(filepath.Join(dir, topic+".pem"))
	keyPEM, kerr := os.ReadFile(filepath.Join(dir, topic+".key"))
	switch {
	case errors.Is(cerr, os.ErrNotExist) && errors.Is(kerr, os.ErrNotExist):
		return nil, nil, false
	case cerr != nil || kerr != nil:
		t.Fatalf("nanomdmtest: read the stored pair of %s: %v", topic, errors.Join(cerr, kerr))
	}
	return certPEM, keyPEM, true
}

// caPEM is a throwaway CA certificate for nanomdm's -ca, which it needs to
// start; the tests never enroll a device.
func caPEM(t testing.TB) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := testclock.Start(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nanomdmtest device CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// freeAddr returns a loopback address no one listened on a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("nanomdmtest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// tail keeps the last max bytes written to it; safe for concurrent use.
type tail struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (l *tail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if over := l.buf.Len() - l.max; over > 0 {
		l.buf.Next(over)
	}
	return len(p), nil
}

func (l *tail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
