package main

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// TestProductionNeverTrustsDevCA: a certificate from the development CA is
// accepted in -dev and refused by a production configuration, even one whose
// data folder still holds the development CA's files.
func TestProductionNeverTrustsDevCA(t *testing.T) {
	dir := t.TempDir()
	clk := testclock.New(t)
	ca, err := devCA(dir, clk.Now) // what -dev leaves in the data folder
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		devCA *applesim.CA
		want  string // "" for accepted, else the validation code
	}{
		{"dev", ca, ""},
		{"production", nil, pushcert.CodeUntrustedIssuer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			kr, err := store.NewKeyring(strings.Repeat("k", 32))
			if err != nil {
				t.Fatal(err)
			}
			st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "p.db"), kr)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cfg := &config{Organization: "Org", DataDir: dir}
			svc := newService(cfg, st, &signing{}, tt.devCA, clk.Now)
			admin := auth.User{Subject: "a", Email: "admin@example.com", Role: auth.RoleAdmin}
			pk, err := svc.GenerateCSR(ctx, admin)
			if err != nil {
				t.Fatal(err)
			}
			der, err := ca.IssueForCSR(pk.CSRDER, applesim.Request{})
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
}
