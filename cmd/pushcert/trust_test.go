package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// testCABundle writes the test CA that plays Apple to a PEM file for
// PUSHCERT_TRUST_BUNDLE: pushcert trusts no CA by its name, so a
// production run that accepts its certificates must be told to.
func testCABundle(t *testing.T) string {
	t.Helper()
	ca, err := appleCA()
	if err != nil {
		t.Fatal(err)
	}
	return trustFile(t, "trust-bundle.pem", ca.CertPEM())
}

func trustFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestTrustBundle: the bundle's self-signed authority becomes a root and
// the other an intermediate, so a certificate its intermediate issued,
// uploaded alone, is accepted; without the bundle it is refused; a bundle
// that is not one stops startup with a line that names the setting.
func TestTrustBundle(t *testing.T) {
	root, err := applesim.NewCA("Example Operator Root", testclock.Now)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := root.NewIntermediate("Example Operator Push CA")
	if err != nil {
		t.Fatal(err)
	}
	bundle := trustFile(t, "bundle.pem", append(issuer.CertPEM(), root.CertPEM()...))
	for _, tt := range []struct {
		name, bundle string
		want         string // "" for accepted, else the validation code
	}{
		{"with the bundle", bundle, ""},
		{"without", "", pushcert.CodeUntrustedIssuer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			cfg := &config{Organization: "Org", TrustBundleFile: tt.bundle}
			s, err := loadSigning(cfg, testclock.Now)
			if err != nil {
				t.Fatal(err)
			}
			svc := newService(cfg, trustTestStore(t), s, nil, testclock.Now)
			admin := auth.User{Subject: "a", Email: "admin@example.com", Role: auth.RoleAdmin}
			pk, err := svc.GenerateCSR(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			der, err := issuer.IssueForCSR(pk.CSRDER, applesim.Request{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.Update(ctx, pushcert.Update{Actor: admin, AppleID: "it@example.com", Certificate: applesim.PEM(der)})
			var ve *pushcert.ValidationError
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want the certificate accepted", err)
			case tt.want != "" && (!errors.As(err, &ve) || ve.Code != tt.want):
				t.Fatalf("got %v, want a %s refusal", err, tt.want)
			}
		})
	}
	t.Run("not a bundle", func(t *testing.T) {
		_, err := loadSigning(&config{TrustBundleFile: trustFile(t, "key.pem", root.KeyPEM())}, testclock.Now)
		if err == nil || !strings.Contains(err.Error(), "PUSHCERT_TRUST_BUNDLE") {
			t.Errorf("got %v, want an error that names PUSHCERT_TRUST_BUNDLE", err)
		}
	})
}

// trustTestStore opens a SQLite store on t.TempDir().
func trustTestStore(t *testing.T) *store.DB {
	t.Helper()
	kr, err := store.NewKeyring(strings.Repeat("k", 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "p.db"), kr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
