package export_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/export"
	"github.com/pushcert/pushcert/internal/testclock"
)

// pair is a real certificate and its private key in the shapes Encode
// takes them.
type pair struct {
	cert    *x509.Certificate
	certPEM string
	key     crypto.Signer
	keyDER  []byte // PKCS#8
}

var oidUID = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}

// newRSAKey makes an RSA-2048 key, the kind Apple push certificates have.
func newRSAKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newPair makes a self-signed push-style certificate for key with the
// given serial, valid around the tests' clock.
func newPair(t *testing.T, key crypto.Signer, serial *big.Int) pair {
	t.Helper()
	now := testclock.Start(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName: "APSP:6f1c8a52-3a43-4f6e-9d0b-2c6f3e7f1a10",
			ExtraNames: []pkix.AttributeTypeAndValue{{Type: oidUID, Value: "com.apple.mgmt.External.6f1c8a52-3a43-4f6e-9d0b-2c6f3e7f1a10"}},
		},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.AddDate(1, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pair{
		cert:    cert,
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:     key,
		keyDER:  keyDER,
	}
}

func newRSAPair(t *testing.T) pair {
	t.Helper()
	return newPair(t, newRSAKey(t), big.NewInt(0x5E2A7C19D3B4F601))
}

// encode calls Encode and fails the test on an error.
func encode(t *testing.T, f export.Format, p pair, passphrase string) export.File {
	t.Helper()
	file, err := export.Encode(f, p.certPEM, p.keyDER, passphrase)
	if err != nil {
		t.Fatalf("Encode(%s): %v", f, err)
	}
	return file
}

// openssl runs the real openssl command and returns its combined output.
// The tests open every PKCS#12 file with it, so a missing or pre-3.0
// openssl fails them instead of skipping.
func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("the openssl command is not on PATH: these tests open the exported PKCS#12 files with the real OpenSSL 3; install it (Debian/Ubuntu: apt-get install openssl)")
	}
	if v, err := exec.Command(path, "version").Output(); err != nil || !bytes.HasPrefix(v, []byte("OpenSSL 3.")) {
		t.Fatalf("%s version: got %q (%v), want OpenSSL 3.x: these tests need its -legacy option and default algorithms", path, v, err)
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	return string(out), err
}

// writeFile puts f's data in a temporary file and returns its path.
func writeFile(t *testing.T, f export.File) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), f.Name)
	if err := os.WriteFile(path, f.Data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// pemBlocks returns the PEM blocks in text, by type, in order.
func pemBlocks(text []byte) []*pem.Block {
	var blocks []*pem.Block
	for {
		var b *pem.Block
		b, text = pem.Decode(text)
		if b == nil {
			return blocks
		}
		blocks = append(blocks, b)
	}
}

// checkSameKey fails unless got is the private key want.
func checkSameKey(t *testing.T, got any, want crypto.Signer) {
	t.Helper()
	k, ok := got.(interface{ Equal(crypto.PrivateKey) bool })
	if !ok || !k.Equal(want) {
		t.Errorf("got key %T that is not the original, want the original %T", got, want)
	}
}

func blockTypes(blocks []*pem.Block) []string {
	var types []string
	for _, b := range blocks {
		types = append(types, b.Type)
	}
	return types
}
