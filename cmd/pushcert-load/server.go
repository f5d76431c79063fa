package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/devidp"
)

// apiPath is the resource's path in pushcert's JSON API.
const apiPath = "/v1.0/deviceManagement/applePushNotificationCertificate"

// appleID is the Apple ID the benchmark's uploads name.
const appleID = "admin@example.com"

// buildPushcert builds the pushcert binary into dir.
func buildPushcert(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pushcert")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pushcert/pushcert/cmd/pushcert").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build pushcert: %w\n%s", err, out)
	}
	return bin, nil
}

// child is a process the benchmark started, in a process group of its own
// so that stopping it stops everything it started.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error
}

// startChild starts cmd in its own process group.
func startChild(cmd *exec.Cmd) (*child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop ends the process group: SIGTERM first, SIGKILL after a grace period.
func (c *child) stop() {
	select {
	case <-c.exited:
		return
	default:
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.exited
	}
}

// server is a running pushcert -dev.
type server struct {
	*child
	base    string // pushcert
	issuer  string // its development OpenID provider
	dataDir string
	logPath string
	client  *http.Client
	// pprofBase is http://HOST:PORT of pushcert's pprof listener, or ""
	// when it has none.
	pprofBase string
}

// startServer runs pushcert -dev on a free loopback port with SQLite and
// its data in dir, logging JSON (the production format) to a file, and
// waits for /healthz. With pprof, pushcert also serves its profiles
// (PUSHCERT_PPROF_ADDR) on another free loopback port.
func startServer(ctx context.Context, bin, dir string, pprof bool) (*server, error) {
	port, err := freePortPair()
	if err != nil {
		return nil, err
	}
	dataDir := filepath.Join(dir, "data")
	args := []string{"-dev", fmt.Sprintf("-listen-addr=127.0.0.1:%d", port), "-data-dir=" + dataDir, "-log-format=json"}
	pprofBase := ""
	if pprof {
		pp, err := freePort(port, port+1)
		if err != nil {
			return nil, err
		}
		args = append(args, fmt.Sprintf("-pprof-addr=127.0.0.1:%d", pp))
		pprofBase = fmt.Sprintf("http://127.0.0.1:%d", pp)
	}
	logPath := filepath.Join(dir, "pushcert.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = withoutPushcertEnv(os.Environ())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	c, err := startChild(cmd)
	if err != nil {
		return nil, err
	}
	s := &server{
		child:     c,
		base:      fmt.Sprintf("http://127.0.0.1:%d", port),
		issuer:    fmt.Sprintf("http://127.0.0.1:%d/oidc", port+1),
		dataDir:   dataDir,
		logPath:   logPath,
		client:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}},
		pprofBase: pprofBase,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.client.Get(s.base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-c.exited:
			return nil, fmt.Errorf("pushcert exited at startup (%v); see %s", c.err, logPath)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			c.stop()
			return nil, fmt.Errorf("pushcert did not answer /healthz within 30 s; see %s", logPath)
		}
	}
}

// withoutPushcertEnv drops PUSHCERT_* variables, so the caller's settings
// cannot change what is measured.
func withoutPushcertEnv(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PUSHCERT_") {
			out = append(out, kv)
		}
	}
	return out
}

// freePortPair finds a loopback port whose next port is free too: -dev
// runs its OpenID provider on the port after pushcert's.
func freePortPair() (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		ln.Close()
		if err == nil {
			ln2.Close()
			return port, nil
		}
	}
	return 0, errors.New("no two adjacent free loopback ports")
}

// freePort finds a free loopback port other than the ports in taken, which
// were found free but are not held.
func freePort(taken ...int) (int, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !slices.Contains(taken, port) {
			return port, nil
		}
	}
	return 0, errors.New("no free loopback port")
}

// signIn signs the demo admin in through the real flow (pushcert's /login,
// the provider's authorization endpoint with the demo user chosen, the
// callback) and returns the Cookie header that carries the session.
func (s *server) signIn(ctx context.Context) (string, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	c := &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	next := s.base + "/login"
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", err
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", fmt.Errorf("sign in: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("sign in: got status %d at %s, want 200 after the redirects", resp.StatusCode, next)
			}
			break
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return "", fmt.Errorf("sign in: bad redirect %q", loc)
		}
		if strings.HasSuffix(u.Path, "/oidc/authorize") {
			q := u.Query()
			q.Set("demo_user", "admin")
			u.RawQuery = q.Encode()
		}
		next = u.String()
	}
	base, _ := url.Parse(s.base + "/")
	var parts []string
	for _, ck := range jar.Cookies(base) {
		parts = append(parts, ck.Name+"="+ck.Value)
	}
	if len(parts) == 0 {
		return "", errors.New("sign in: no session cookie was set")
	}
	return strings.Join(parts, "; "), nil
}

// token gets an admin bearer token from the development provider.
func (s *server) token(ctx context.Context) (string, error) {
	return devidp.Token(ctx, s.client, s.issuer, "admin")
}

// get fetches path with the given header and returns the status and body.
func (s *server) get(ctx context.Context, path, header, value string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set(header, value)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// api sends an API request with the bearer token and returns the status
// and body.
func (s *server) api(ctx context.Context, token, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// generateCSR asks the API for a new CSR and returns its DER.
func (s *server) generateCSR(ctx context.Context, token string) ([]byte, error) {
	code, body, err := s.api(ctx, token, http.MethodPost, apiPath+"/generateApplePushNotificationCertificateSigningRequest", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("generate CSR: status %d: %s", code, clip(body))
	}
	var out struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("generate CSR: %w", err)
	}
	blk, _ := pem.Decode([]byte(out.Value))
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("generate CSR: the answer holds no PEM CSR")
	}
	return blk.Bytes, nil
}

// upload sends a certificate with PATCH and returns the status.
func (s *server) upload(ctx context.Context, token string, certPEM []byte) (int, error) {
	body, err := json.Marshal(map[string]string{"appleIdentifier": appleID, "certificate": string(certPEM)})
	if err != nil {
		return 0, err
	}
	code, resp, err := s.api(ctx, token, http.MethodPatch, apiPath, body)
	if err == nil && code != http.StatusOK {
		err = fmt.Errorf("upload: status %d: %s", code, clip(resp))
	}
	return code, err
}

// devCA loads the CA that pushcert -dev trusts, to play Apple.
func (s *server) devCA() (*applesim.CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(s.dataDir, "dev-ca.pem"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(s.dataDir, "dev-ca-key.pem"))
	if err != nil {
		return nil, err
	}
	return applesim.LoadCA(certPEM, keyPEM, nil)
}

// activeTopic returns the active certificate's topic from the API.
func (s *server) activeTopic(ctx context.Context, token string) (string, error) {
	code, body, err := s.api(ctx, token, http.MethodGet, apiPath, nil)
	if err != nil {
		return "", err
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("get certificate: status %d", code)
	}
	var ent struct {
		Topic *string `json:"topicIdentifier"`
	}
	if err := json.Unmarshal(body, &ent); err != nil || ent.Topic == nil {
		return "", fmt.Errorf("get certificate: no topic (%v)", err)
	}
	return *ent.Topic, nil
}

// issue plays Apple: a push certificate for the CSR with the given topic.
func issue(ca *applesim.CA, csrDER []byte, topic string) ([]byte, error) {
	der, err := ca.IssueForCSR(csrDER, applesim.Request{Topic: topic})
	if err != nil {
		return nil, err
	}
	return applesim.PEM(der), nil
}

// clip shortens a response body for an error message.
func clip(b []byte) string {
	const n = 300
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
