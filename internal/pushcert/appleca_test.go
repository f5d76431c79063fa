package pushcert

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"io/fs"
	"testing"
)

// TestEmbeddedAppleAuthorities checks every embedded authority against the
// SHA-256 fingerprint of its DER that Apple publishes
// (https://www.apple.com/certificateauthority/), and that nothing else is
// embedded: a file that is not Apple's, or a changed one, fails here.
func TestEmbeddedAppleAuthorities(t *testing.T) {
	published := map[string]struct{ subject, sha256 string }{
		"AppleIncRootCertificate.pem":          {"Apple Root CA", "b0b1730ecbc7ff4505142c49f1295e6eda6bcaed7e2c68c5be91b5a11001f024"},
		"AppleRootCA-G2.pem":                   {"Apple Root CA - G2", "c2b9b042dd57830e7d117dac55ac8ae19407d38e41d88f3215bc3a890444a050"},
		"AppleRootCA-G3.pem":                   {"Apple Root CA - G3", "63343abfb89a6a03ebb57e9b3f5fa7be7c4f5c756f3017b3a8c488c3653e9179"},
		"AppleAAI2CA.pem":                      {"Apple Application Integration 2 Certification Authority", "d3496f4b73cd67aab9f2fcb1d5aa41f8dc457769c455c792b70ddb19e92023d6"},
		"AppleAAICAG3.pem":                     {"Apple Application Integration CA - G3", "a64b099dbd73ebb036b4204e1675e8aa821637d09b84980899104ad59d664a3b"},
		"AppleApplicationIntegrationCA5G1.pem": {"Apple Application Integration CA 5 - G1", "c0d8efbea821079d1b8a98e1198bfcc669331fa7a9c14f09b969f0af08ce4a43"},
	}
	files, err := fs.Glob(appleCAFiles, "appleca/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(published) {
		t.Errorf("got %d embedded files %v, want the %d Apple publishes", len(files), files, len(published))
	}
	for _, path := range files {
		name := path[len("appleca/"):]
		t.Run(name, func(t *testing.T) {
			want, ok := published[name]
			if !ok {
				t.Fatalf("got %s embedded, want only files with a published fingerprint", name)
			}
			data, err := appleCAFiles.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b, rest := pem.Decode(data)
			if b == nil || b.Type != "CERTIFICATE" || len(rest) != 0 {
				t.Fatalf("got %d bytes that are not one PEM certificate, want exactly one", len(data))
			}
			sum := sha256.Sum256(b.Bytes)
			if got := hex.EncodeToString(sum[:]); got != want.sha256 {
				t.Errorf("got SHA-256 %s, want the published %s", got, want.sha256)
			}
		})
	}
	roots, intermediates := appleCAs()
	if len(roots) != 3 || len(intermediates) != 3 {
		t.Errorf("got %d roots and %d intermediates, want 3 and 3", len(roots), len(intermediates))
	}
	for _, c := range append(roots, intermediates...) {
		found := false
		for _, p := range published {
			found = found || p.subject == c.Subject.CommonName
		}
		if !found {
			t.Errorf("got an authority named %q, want only the published ones", c.Subject.CommonName)
		}
	}
}
