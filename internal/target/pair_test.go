package target

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
)

func TestPairCheck(t *testing.T) {
	tests := []struct {
		name string
		pair func(t *testing.T) Pair
		want string // "" when the pair holds
	}{
		{"RSA pair", func(t *testing.T) Pair { return newPair(t, "", rsaKey) }, ""},
		{"ECDSA pair", func(t *testing.T) Pair { return newPair(t, "", ecdsaKey) }, ""},
		{"another key", func(t *testing.T) Pair {
			return pairFor(t, "", newKey(t, rsaKey), newKey(t, rsaKey))
		}, "the certificate's public key does not match the private key"},
		{"a key of another kind", func(t *testing.T) Pair {
			return pairFor(t, "", newKey(t, rsaKey), newKey(t, ecdsaKey))
		}, "the certificate's public key does not match the private key"},
		{"no certificate", func(t *testing.T) Pair {
			p := newPair(t, "", rsaKey)
			p.Certificate.PEM = ""
			return p
		}, "the pair has no PEM certificate"},
		{"damaged certificate", func(t *testing.T) Pair {
			p := newPair(t, "", rsaKey)
			p.Certificate.PEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
			return p
		}, "the pair's certificate is damaged"},
		{"no key", func(t *testing.T) Pair {
			p := newPair(t, "", rsaKey)
			p.KeyDER = nil
			return p
		}, "the pair has no private key"},
		{"key not PKCS#8", func(t *testing.T) Pair {
			p := newPair(t, "", rsaKey)
			p.KeyDER = []byte("not a key")
			return p
		}, "the private key is not readable PKCS#8"},
		{"Ed25519 key", func(t *testing.T) Pair {
			p := newPair(t, "", rsaKey)
			_, k, _ := ed25519.GenerateKey(rand.Reader)
			p.KeyDER, _ = x509.MarshalPKCS8PrivateKey(k)
			return p
		}, "pushcert delivers RSA and ECDSA keys only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.pair(t).Check()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want the pair to hold", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error holding %q", err, tt.want)
			}
		})
	}
}
