package devidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
)

// loadSecrets loads or creates the provider's signing key and the client
// secret in dataDir.
func loadSecrets(dataDir string) (*rsa.PrivateKey, string, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", fmt.Errorf("dev provider: create %s: %w", dataDir, err)
	}
	keyPath := filepath.Join(dataDir, "dev-oidc-signing-key.pem")
	var key *rsa.PrivateKey
	if b, err := os.ReadFile(keyPath); err == nil {
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, "", fmt.Errorf("dev provider: %s is not PEM; delete it to start over", keyPath)
		}
		if key, err = x509.ParsePKCS1PrivateKey(blk.Bytes); err != nil {
			return nil, "", fmt.Errorf("dev provider: read %s: %w", keyPath, err)
		}
	} else {
		if key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, "", fmt.Errorf("dev provider: generate key: %w", err)
		}
		b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
		if err := os.WriteFile(keyPath, b, 0o600); err != nil {
			return nil, "", fmt.Errorf("dev provider: write %s: %w", keyPath, err)
		}
	}
	secretPath := filepath.Join(dataDir, "dev-oidc-client-secret")
	if b, err := os.ReadFile(secretPath); err == nil && len(b) >= 32 {
		return key, string(b), nil
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	secret := hex.EncodeToString(raw[:])
	if err := os.WriteFile(secretPath, []byte(secret), 0o600); err != nil {
		return nil, "", fmt.Errorf("dev provider: write %s: %w", secretPath, err)
	}
	return key, secret, nil
}
