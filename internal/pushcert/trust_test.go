package pushcert_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/testclock"
)

// The authorities of the chain tests, made once per test binary.
var (
	// forgedRoot and forgedAAI2 copy the names of Apple's root and of the
	// intermediate that issues real push certificates.
	forgedRoot = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA("Apple Root CA", testclock.Now) })
	forgedAAI2 = sync.OnceValues(func() (*applesim.CA, error) {
		root, err := forgedRoot()
		if err != nil {
			return nil, err
		}
		return root.NewIntermediate(applesim.AppleCAName)
	})
	// operatorRoot and operatorIssuer are a private chain an operator trusts.
	operatorRoot   = sync.OnceValues(func() (*applesim.CA, error) { return applesim.NewCA("Example Operator Root", testclock.Now) })
	operatorIssuer = sync.OnceValues(func() (*applesim.CA, error) {
		root, err := operatorRoot()
		if err != nil {
			return nil, err
		}
		return root.NewIntermediate("Example Operator Push CA")
	})
)

// production is the configuration pushcert runs with: only Apple's
// embedded authorities are trusted.
func production(cfg *pushcert.Config) { cfg.TrustRoots = nil }

// appleFixture reads the real push certificate Apple issued in 2021. CI
// lays shared/ beside the clone, so there a missing file fails the test.
func appleFixture(t *testing.T) []byte {
	t.Helper()
	const path = "../../../shared/fixtures/apple-issued-push-2021.pem"
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if os.Getenv("CI") != "" {
			t.Fatalf("the fixture %s is missing (CI is set): %v", path, err)
		}
		t.Skipf("the fixture %s is missing: %v", path, err)
	}
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return data
}

// TestAppleCertificateVerifies: the real certificate chains to Apple's
// embedded authorities at a time inside its validity, so the issuer rule
// lets it through and the next rule (the key, which pushcert never had)
// refuses it.
func TestAppleCertificateVerifies(t *testing.T) {
	e := newEnv(t, production)
	e.clock.Set(time.Date(2021, 6, 1, 0, 0, 0, 0, time.UTC))
	e.csr(t)
	_, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: appleFixture(t)})
	var ve *pushcert.ValidationError
	if !errors.As(err, &ve) || ve.Code != pushcert.CodeKeyMismatch {
		t.Fatalf("got %v, want the %s refusal that follows a verified chain", err, pushcert.CodeKeyMismatch)
	}
}

// TestIssuerChain uploads certificates for the pending CSR from several
// authorities and checks that only a chain to a trusted root is accepted,
// whatever the authorities are called.
func TestIssuerChain(t *testing.T) {
	leafFrom := func(ca func() (*applesim.CA, error)) func(t *testing.T, e *env, csr []byte) []byte {
		return func(t *testing.T, e *env, csr []byte) []byte {
			return applesim.PEM(issueWith(t, mustCA(t, ca), e.clock.Now(), csr, applesim.Request{}))
		}
	}
	withChain := func(ca func() (*applesim.CA, error), chain ...func() (*applesim.CA, error)) func(t *testing.T, e *env, csr []byte) []byte {
		return func(t *testing.T, e *env, csr []byte) []byte {
			out := leafFrom(ca)(t, e, csr)
			for _, c := range chain {
				out = append(out, mustCA(t, c).CertPEM()...)
			}
			return out
		}
	}
	operator := func(t *testing.T, cfg *pushcert.Config) {
		cfg.TrustRoots = mustCA(t, operatorRoot).Pool()
	}
	operatorWithIntermediate := func(t *testing.T, cfg *pushcert.Config) {
		operator(t, cfg)
		cfg.TrustIntermediates = mustCA(t, operatorIssuer).Pool()
	}
	tests := []struct {
		name      string
		configure func(t *testing.T, cfg *pushcert.Config)
		upload    func(t *testing.T, e *env, csr []byte) []byte
		wantCode  string // "" when accepted
	}{
		{"a CA with Apple's names", nil, leafFrom(appleCA), pushcert.CodeUntrustedIssuer},
		{"a chain with Apple's names, root included", nil, withChain(forgedAAI2, forgedAAI2, forgedRoot), pushcert.CodeUntrustedIssuer},
		{"the issuing CA itself in the bundle", nil, withChain(appleCA, appleCA), pushcert.CodeUntrustedIssuer},
		{"an operator root's leaf without its intermediate", operator, leafFrom(operatorIssuer), pushcert.CodeUntrustedIssuer},
		{"an operator root's leaf with its intermediate in the bundle", operator, withChain(operatorIssuer, operatorIssuer), ""},
		{"an operator root's leaf with its intermediate in the trust bundle", operatorWithIntermediate, leafFrom(operatorIssuer), ""},
		{"an operator intermediate without its root", func(t *testing.T, cfg *pushcert.Config) {
			cfg.TrustIntermediates = mustCA(t, operatorIssuer).Pool()
		}, leafFrom(operatorIssuer), pushcert.CodeUntrustedIssuer},
		{"any issuer allowed (testing only)", func(_ *testing.T, cfg *pushcert.Config) { cfg.AllowAnyIssuer = true }, leafFrom(forgedAAI2), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(cfg *pushcert.Config) {
				production(cfg)
				if tt.configure != nil {
					tt.configure(t, cfg)
				}
			})
			pk := e.csr(t)
			file := tt.upload(t, e, pk.CSRDER)
			_, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, AppleID: testAppleID, Certificate: file})
			var ve *pushcert.ValidationError
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("got %v, want the certificate accepted", err)
			case tt.wantCode == "":
				if st := e.state(t); st.Certificate == nil || !bytes.Contains(file, []byte(strings.TrimSpace(st.Certificate.PEM))) {
					t.Fatalf("got active certificate %+v, want the uploaded leaf", st.Certificate)
				}
				return
			case !errors.As(err, &ve) || ve.Code != tt.wantCode:
				t.Fatalf("got %v, want a %s refusal", err, tt.wantCode)
			}
			st := e.state(t)
			if st.Certificate != nil || st.UploadStatus != pushcert.UploadFailed || st.UploadFailureReason != ve.Message {
				t.Errorf("got certificate %v, status %s, reason %q; want none, failed, the refusal", st.Certificate, st.UploadStatus, st.UploadFailureReason)
			}
			for _, want := range []string{`issuer "` + pushcert.Describe(parseCert(t, firstDER(t, file))).Issuer + `"`, "identity.apple.com", "PUSHCERT_TRUST_BUNDLE"} {
				if !strings.Contains(ve.Message, want) {
					t.Errorf("got message %q, want it to contain %q", ve.Message, want)
				}
			}
		})
	}
}

// TestSplitTrustBundle: self-signed authorities are roots, the others
// intermediates, and a bundle without certificates or with a key is refused.
func TestSplitTrustBundle(t *testing.T) {
	root, inter := mustCA(t, operatorRoot), mustCA(t, operatorIssuer)
	bundle := append(append([]byte("operator authorities\n"), inter.CertPEM()...), root.CertPEM()...)
	roots, intermediates, err := pushcert.SplitTrustBundle(bundle)
	if err != nil || len(roots) != 1 || !roots[0].Equal(root.Cert) || len(intermediates) != 1 || !intermediates[0].Equal(inter.Cert) {
		t.Errorf("got %d roots, %d intermediates, %v; want the root and the intermediate sorted", len(roots), len(intermediates), err)
	}
	for name, data := range map[string][]byte{
		"empty":        nil,
		"no PEM":       []byte("not a bundle"),
		"with a key":   append(root.CertPEM(), root.KeyPEM()...),
		"damaged cert": pemBlock("CERTIFICATE", []byte{0x30, 0x03, 0x02, 0x01, 0x01}),
	} {
		if _, _, err := pushcert.SplitTrustBundle(data); err == nil {
			t.Errorf("%s: got nil, want an error", name)
		}
	}
}

// firstDER is the DER of a PEM file's first block.
func firstDER(t *testing.T, file []byte) []byte {
	t.Helper()
	b, _ := pem.Decode(file)
	if b == nil {
		t.Fatalf("got no PEM block, want the uploaded certificate")
	}
	return b.Bytes
}
