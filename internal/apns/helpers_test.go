package apns_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/apns/apnstest"
	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

// deadProxy is where HTTPS_PROXY points for the whole test binary: a
// loopback port nothing listens on. Requests to loopback, where the fake
// APNs listens, never go through a proxy; anything else would, so no test
// reaches the internet, and one checks the proxy's failure.
var deadProxy string

func TestMain(m *testing.M) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	deadProxy = l.Addr().String()
	l.Close()
	// Set before anything reads it: net/http reads the proxy variables once.
	os.Setenv("HTTPS_PROXY", "http://"+deadProxy)
	os.Unsetenv("https_proxy")
	os.Unsetenv("NO_PROXY")
	os.Unsetenv("no_proxy")
	os.Exit(m.Run())
}

// The authorities: one plays Apple, the other is anyone else.
var (
	appleCA = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA(applesim.AppleCAName, testclock.Now) })
	otherCA = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA("Some Other CA", testclock.Now) })
)

func ca(t *testing.T, get func() (*applesim.CA, error)) *applesim.CA {
	t.Helper()
	c, err := get()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pair is a certificate and its PKCS#8 key, as the store returns them.
type pair struct {
	cert pushcert.Certificate
	key  []byte
}

// keys are made once: RSA keys are slow to make.
var keys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var out []*rsa.PrivateKey
	for range 3 {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
})

// issue makes a push certificate from issuer for key number k with req's
// topic and validity (defaults from the test clock).
func issue(t *testing.T, issuer *applesim.CA, k int, req applesim.Request) pair {
	t.Helper()
	ks, err := keys()
	if err != nil {
		t.Fatal(err)
	}
	req.PublicKey = &ks[k].PublicKey
	der, err := issuer.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(ks[k])
	if err != nil {
		t.Fatal(err)
	}
	return pair{cert: pushcert.Describe(parsed), key: keyDER}
}

// startAPNs starts a fake APNs trusting the Apple stand-in, on the test
// clock.
func startAPNs(t *testing.T) *apnstest.Server {
	t.Helper()
	return apnstest.Start(t, ca(t, appleCA).Cert, testclock.Now)
}

// checker returns a Checker of srv with cfg's other settings; srv may be
// nil when cfg names the URL and roots.
func checker(t *testing.T, srv *apnstest.Server, cfg apns.CheckerConfig) *apns.Checker {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = srv.URL()
	}
	if cfg.RootCAs == nil {
		cfg.RootCAs = srv.RootCAs()
	}
	if cfg.Now == nil {
		cfg.Now = testclock.Now
	}
	c, err := apns.NewChecker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// year is a validity that starts before the test clock and ends a year on.
func year(t *testing.T) (time.Time, time.Time) {
	now := testclock.Start(t)
	return now.Add(-time.Hour), now.Add(365 * 24 * time.Hour)
}

// pool is a pool of one authority.
func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	return port
}

// alertingServer is a TLS middlebox on loopback that answers every
// client's hello with the fatal TLS alert numbered alert, before any
// certificate is exchanged; it returns its https URL.
func alertingServer(t *testing.T, alert byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = conn.Read(make([]byte, 4096)) // the client's hello
				_, _ = conn.Write([]byte{21, 3, 3, 0, 2, 2, alert})
				_, _ = io.Copy(io.Discard, conn)
			}()
		}
	}()
	return "https://" + l.Addr().String()
}
