package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/guid"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

const (
	secretStored  = "stored-kek-0123456789abcdefghijklmn"
	secretOther   = "other-kek-0123456789abcdefghijklmno"
	secretRotated = "rotated-kek-0123456789abcdefghijklm"
)

// storePendingKeys stores n pending keys under secret, as a pushcert
// started with it would have.
func storePendingKeys(t *testing.T, dbURL, secret string, n int) {
	t.Helper()
	kr, err := store.NewKeyring(secret)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), dbURL, kr)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for range n {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		k := pushcert.PendingKey{ID: guid.New(), CreatedAt: testclock.Now(), KeyDER: der}
		if err := st.AddPendingKey(t.Context(), k, pushcert.Event{At: k.CreatedAt, Kind: pushcert.EventCSRGenerated}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStartRefusesWrongKeyEncryptionSecret(t *testing.T) {
	provider := startProvider(t)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "pushcert.db")
	storePendingKeys(t, dbURL, secretStored, 2)

	tests := []struct {
		name     string
		current  string
		previous string
		wantErr  string // "" when it starts
	}{
		{"another secret", secretOther, "", "2 stored private keys do not open with PUSHCERT_KEY_ENCRYPTION_SECRET or PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS"},
		{"another secret, a third as previous", secretOther, secretRotated, "2 stored private keys do not open"},
		{"another secret, theirs as previous", secretOther, secretStored, ""},
		{"their secret", secretStored, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listen := freeAddr(t)
			e := prodEnv(t, provider, listen, map[string]string{
				"PUSHCERT_DATABASE_URL":                    dbURL,
				"PUSHCERT_KEY_ENCRYPTION_SECRET":           tt.current,
				"PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS": tt.previous,
			})
			if tt.wantErr != "" {
				out := &syncBuffer{}
				err := runRefused(t, listen, env(e), out)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %v, want one line containing %q", err, tt.wantErr)
				}
				for _, s := range []string{secretStored, secretOther, secretRotated} {
					if strings.Contains(err.Error(), s) || strings.Contains(out.String(), s) {
						t.Errorf("error or log names a secret: %v\n%s", err, out.String())
					}
				}
				return
			}
			addr, _ := startRun(t, nil, env(e))
			if code, body := getReady(t, addr); code != http.StatusOK {
				t.Errorf("/readyz: got %d %q, want 200", code, body)
			}
		})
	}
}

// A replica running while another rotates the keys to a secret it lacks
// stops being ready, and says why without naming a secret.
func TestReadyzRefusesKeysItCannotOpen(t *testing.T) {
	provider := startProvider(t)
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "pushcert.db")
	storePendingKeys(t, dbURL, secretStored, 1)
	listen := freeAddr(t)
	e := prodEnv(t, provider, listen, map[string]string{
		"PUSHCERT_DATABASE_URL":          dbURL,
		"PUSHCERT_KEY_ENCRYPTION_SECRET": secretStored,
	})
	addr, _ := startRun(t, nil, env(e))
	if code, body := getReady(t, addr); code != http.StatusOK {
		t.Fatalf("/readyz before the rotation: got %d %q, want 200", code, body)
	}

	rotate := map[string]string{
		"PUSHCERT_DATABASE_URL": dbURL, "PUSHCERT_ORGANIZATION": "Ops Test Org",
		"PUSHCERT_KEY_ENCRYPTION_SECRET": secretRotated, "PUSHCERT_KEY_ENCRYPTION_SECRETS_PREVIOUS": secretStored,
	}
	if err := runAt(context.Background(), []string{"rotate-key"}, env(rotate), io.Discard, serverClock(t)); err != nil {
		t.Fatalf("rotate-key: %v", err)
	}
	code, body := getReady(t, addr)
	if want := "not ready: 1 stored private key does not open with the configured key-encryption secrets"; code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz after the rotation: got %d %q, want 503 %q", code, body, want)
	}
}

// runRefused runs run() and returns its error; should it start serving
// instead, the test fails and the server is stopped.
func runRefused(t *testing.T, listen string, getenv func(string) string, out io.Writer) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runAt(ctx, nil, getenv, out, serverClock(t)) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(50 * time.Millisecond):
		}
		if resp, err := http.Get("http://" + listen + "/healthz"); err == nil {
			resp.Body.Close()
			cancel()
			<-done
			t.Fatal("run started serving, want it to refuse")
		}
		if time.Now().After(deadline) {
			t.Fatal("run neither refused nor served within 30 s")
		}
	}
}

func getReady(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
