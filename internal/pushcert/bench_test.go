package pushcert_test

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// BenchmarkGenerateCSR measures a CSR request end to end: RSA 2048 key,
// CSR, pruning and storing the encrypted pending key in SQLite.
func BenchmarkGenerateCSR(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.svc.GenerateCSR(ctx, admin); err != nil {
			b.Fatalf("GenerateCSR: %v", err)
		}
	}
}

// BenchmarkUpdate measures an accepted upload: parsing, every check, the
// key lookup (decrypting the pending and active keys) and the activation
// transaction in SQLite. Each round re-uploads the active certificate.
func BenchmarkUpdate(b *testing.B) {
	e := newEnv(b, nil)
	ctx := context.Background()
	der := e.activate(b, "")
	e.csr(b) // a pending key to look through, as there usually is
	u := pushcert.Update{Actor: admin, Certificate: applesim.PEM(der)}
	for b.Loop() {
		if _, err := e.svc.Update(ctx, u); err != nil {
			b.Fatalf("Update: %v", err)
		}
	}
}

func BenchmarkParseCertificate(b *testing.B) {
	m := newMaterial(b)
	inputs := []struct {
		name string
		data []byte
	}{
		{"PEM", pemBlock("CERTIFICATE", m.certDER)},
		{"DER", m.certDER},
		{"base64", []byte(base64.StdEncoding.EncodeToString(m.certDER))},
		{"PEM bundle with key first", append(pemBlock("PRIVATE KEY", m.keyDER), pemBlock("CERTIFICATE", m.certDER)...)},
		{"refused private key", pemBlock("PRIVATE KEY", m.keyDER)},
	}
	for _, in := range inputs {
		b.Run(in.name, func(b *testing.B) {
			b.SetBytes(int64(len(in.data)))
			for b.Loop() {
				_, _ = pushcert.ParseCertificate(in.data)
			}
		})
	}
}
