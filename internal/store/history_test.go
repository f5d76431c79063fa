package store

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

func TestReplacedCertificate(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			f := fixtures(t)
			db := open(t, b.URL(t), newKeyring(t, secretA))
			ctx := context.Background()
			if _, err := db.ReplacedCertificate(ctx, "AB", "CD", "ef"); !errors.Is(err, pushcert.ErrNotFound) {
				t.Fatalf("empty history: got %v, want ErrNotFound", err)
			}
			_, first := activateNew(t, db, f.keys[0], "")
			replacedAt := testNow().Truncate(time.Microsecond) // the stores keep microseconds
			k := addPending(t, db, f.keys[1], replacedAt)
			second := issue(t, f.ca, f.keys[1], first.Topic)
			if _, err := db.Activate(ctx, activation(0, second, k.ID, replacedAt)); err != nil {
				t.Fatalf("Activate: %v", err)
			}
			b, _ := pem.Decode([]byte(first.PEM))
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			hash, err := pushcert.PublicKeyHash(c.PublicKey)
			if err != nil {
				t.Fatalf("PublicKeyHash: %v", err)
			}
			tests := []struct {
				name                     string
				fingerprint, serial, key string
				wantFound                bool
			}{
				{"by fingerprint", first.Fingerprint, "", "", true},
				{"by serial", "", first.SerialNumber, "", true},
				{"by key", "", "", hash, true},
				{"the active one is not replaced", second.Fingerprint, second.SerialNumber, "", false},
				{"nothing asked", "", "", "", false},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					r, err := db.ReplacedCertificate(ctx, tt.fingerprint, tt.serial, tt.key)
					if !tt.wantFound {
						if !errors.Is(err, pushcert.ErrNotFound) {
							t.Errorf("got %+v, %v, want ErrNotFound", r, err)
						}
						return
					}
					if err != nil {
						t.Fatalf("got %v, want the replaced certificate", err)
					}
					if r.Certificate != first {
						t.Errorf("got %+v, want %+v", r.Certificate, first)
					}
					if !r.ReplacedAt.Equal(replacedAt) {
						t.Errorf("got replaced at %v, want %v", r.ReplacedAt, replacedAt)
					}
				})
			}
		})
	}
}
