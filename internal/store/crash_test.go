package store

import (
	"bufio"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

// Environment of the crash helper process.
const (
	crashEnvHelper = "PUSHCERT_STORE_CRASH_HELPER"
	crashEnvURL    = "PUSHCERT_STORE_CRASH_URL"
	crashEnvDir    = "PUSHCERT_STORE_CRASH_DIR"
	crashSecret    = "crash-test-secret-0123456789"
	crashKills     = 5
)

// testCrash runs a writer in a subprocess and kills it with SIGKILL at
// random moments, checking after each kill that the database is consistent
// and kept everything the writer was told had been stored.
func testCrash(t *testing.T, b backend) {
	u := b.URL(t)
	dir := t.TempDir()
	writeCrashFixtures(t, dir)
	keys := newKeyring(t, crashSecret)

	var lastVersion, acked int64
	activations := 0
	for round := range crashKills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnvHelper+"=1", crashEnvURL+"="+u, crashEnvDir+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start helper: %v", err)
		}
		type progress struct {
			version int64 // of the last acknowledged activation
			n       int   // acknowledged activations
		}
		ready := make(chan struct{})
		done := make(chan progress)
		go func() {
			// The helper prints "ready" once open, then the version each
			// activation it was told succeeded returned.
			var p progress
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				line := sc.Text()
				if line == "ready" {
					close(ready)
					continue
				}
				if v, ok := strings.CutPrefix(line, "version "); ok {
					p.version, _ = strconv.ParseInt(v, 10, 64)
					p.n++
				}
			}
			done <- p
		}()
		select {
		case <-ready:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: helper not ready; stderr: %s", round, stderr.String())
		}
		time.Sleep(time.Duration(100+rand.IntN(700)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill helper: %v", err)
		}
		_ = cmd.Wait()
		if p := <-done; p.n > 0 {
			acked = p.version
			activations += p.n
		}
		if strings.Contains(stderr.String(), "helper error") {
			t.Fatalf("round %d: %s", round, stderr.String())
		}

		db := open(t, u, keys)
		st := checkCrashConsistency(t, db)
		if st.Version < lastVersion {
			t.Errorf("round %d: version went back: got %d, want at least %d", round, st.Version, lastVersion)
		}
		if st.Version < acked {
			t.Errorf("round %d: acknowledged write lost: got version %d, want at least %d", round, st.Version, acked)
		}
		lastVersion = st.Version
		db.Close()
	}
	if activations == 0 {
		t.Errorf("activations acknowledged by the helper: got 0, want some")
	}
	t.Logf("%d activations over %d kills, final version %d", activations, crashKills, lastVersion)
}

// checkCrashConsistency checks what the crash helper's writes must keep true
// whatever moment it died at.
func checkCrashConsistency(t *testing.T, db *DB) pushcert.State {
	t.Helper()
	st := mustState(t, db)
	assertActiveMatchesKey(t, db)
	hs := mustHistory(t, db)
	for _, h := range hs {
		if err := certMatchesKey(h.Cert.PEM, h.KeyDER); err != nil {
			t.Errorf("history %s: %v", h.Cert.SerialNumber, err)
		}
	}
	succeeded, withPending := 0, 0
	for _, e := range mustEvents(t, db) {
		if e.Kind == pushcert.EventUploadSucceeded {
			succeeded++
			if e.Detail == "pending" {
				withPending++
			}
		}
	}
	// The helper only activates, so each version step is one activation,
	// each with its event; all but the first moved a certificate to history.
	if want := int(st.Version - 1); succeeded != want {
		t.Errorf("upload events: got %d, want %d (version %d)", succeeded, want, st.Version)
	}
	if want := max(succeeded-1, 0); len(hs) != want {
		t.Errorf("history rows: got %d, want %d", len(hs), want)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM pending_keys WHERE consumed_at IS NOT NULL`); got != withPending {
		t.Errorf("consumed pending keys: got %d, want %d", got, withPending)
	}
	csr := count(t, db, `SELECT COUNT(*) FROM audit_events WHERE kind = 'csr_generated'`)
	if got := count(t, db, `SELECT COUNT(*) FROM pending_keys`); got != csr {
		t.Errorf("pending keys: got %d, want %d, one per csr event", got, csr)
	}
	if (st.Certificate == nil) != (st.Version == 1) {
		t.Errorf("certificate present: got %v at version %d", st.Certificate != nil, st.Version)
	}
	return st
}

// writeCrashFixtures stores the CA and keys for the helper, which cannot
// afford to generate RSA keys itself.
func writeCrashFixtures(t *testing.T, dir string) {
	t.Helper()
	f := fixtures(t)
	var keys []byte
	for _, k := range f.keys {
		keys = append(keys, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER(t, k)})...)
	}
	for name, data := range map[string][]byte{"ca.pem": f.ca.CertPEM(), "ca-key.pem": f.ca.KeyPEM(), "keys.pem": keys} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCrashHelperProcess is the writer testCrash kills; it does nothing
// unless started by testCrash.
func TestCrashHelperProcess(t *testing.T) {
	if os.Getenv(crashEnvHelper) != "1" {
		return
	}
	if err := crashWriter(os.Getenv(crashEnvURL), os.Getenv(crashEnvDir)); err != nil {
		fmt.Fprintln(os.Stderr, "helper error:", err)
		os.Exit(2)
	}
}

// crashWriter adds pending keys and activates certificates in a loop, for
// at most a minute in case nobody kills it.
func crashWriter(dbURL, dir string) error {
	ctx := context.Background()
	caCert, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return err
	}
	caKey, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return err
	}
	ca, err := applesim.LoadCA(caCert, caKey, testclock.Now)
	if err != nil {
		return err
	}
	keys, err := loadKeys(filepath.Join(dir, "keys.pem"))
	if err != nil {
		return err
	}
	kr, err := NewKeyring(crashSecret)
	if err != nil {
		return err
	}
	db, err := Open(ctx, dbURL, kr)
	if err != nil {
		return err
	}
	defer db.Close()
	fmt.Println("ready")
	topic := applesim.NewTopic()
	deadline := time.Now().Add(time.Minute)
	for i := 0; time.Now().Before(deadline); i++ {
		st, err := db.State(ctx)
		if err != nil {
			return err
		}
		if st.Certificate != nil {
			topic = st.Certificate.Topic
		}
		key := keys[i%len(keys)]
		pendingID, detail := "", "renewal"
		if st.Certificate == nil || i%3 != 0 {
			id := fmt.Sprintf("crash-%d-%d", os.Getpid(), i)
			der, err := x509.MarshalPKCS8PrivateKey(key)
			if err != nil {
				return err
			}
			k := pushcert.PendingKey{ID: id, CreatedAt: testNow(), KeyDER: der, Request: "csr"}
			if err := db.AddPendingKey(ctx, k, pushcert.Event{Kind: pushcert.EventCSRGenerated}); err != nil {
				return err
			}
			pendingID, detail = id, "pending"
		} else {
			der, err := db.ActiveKey(ctx)
			if err != nil {
				return err
			}
			k, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil {
				return err
			}
			key = k.(*rsa.PrivateKey)
		}
		certDER, err := ca.Issue(applesim.Request{PublicKey: &key.PublicKey, Topic: topic})
		if err != nil {
			return err
		}
		cert, err := x509.ParseCertificate(certDER)
		if err != nil {
			return err
		}
		c := pushcert.Certificate{
			Topic: topic, SerialNumber: strings.ToUpper(cert.SerialNumber.Text(16)),
			NotBefore: cert.NotBefore, NotAfter: cert.NotAfter, PEM: string(applesim.PEM(certDER)),
		}
		a := activation(st.Version, c, pendingID, testNow())
		a.Event.Detail = detail
		st, err = db.Activate(ctx, a)
		if err != nil {
			return err
		}
		fmt.Println("version", st.Version)
	}
	return nil
}

func loadKeys(path string) ([]*rsa.PrivateKey, error) {
	rest, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []*rsa.PrivateKey
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an RSA key")
		}
		keys = append(keys, rk)
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return keys, nil
}
