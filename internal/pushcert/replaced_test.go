package pushcert_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// renew uploads a certificate for a new CSR with topic, valid from now for
// two years (so after the first one), and returns its DER.
func (e *env) renew(t *testing.T, topic string) []byte {
	t.Helper()
	pk := e.csr(t)
	now := e.clock.Now()
	der := e.issue(t, pk.CSRDER, applesim.Request{Topic: topic, NotBefore: now.Add(-time.Minute), NotAfter: now.AddDate(2, 0, 0)})
	if _, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, Certificate: applesim.PEM(der)}); err != nil {
		t.Fatalf("renew: %v", err)
	}
	return der
}

func TestUploadActiveCertificateAgain(t *testing.T) {
	tests := []struct {
		name        string
		appleID     string
		wantAppleID string
		wantEvents  int // new events
		wantBump    bool
	}{
		{"same file, no Apple ID", "", testAppleID, 0, false},
		{"same file, same Apple ID", testAppleID, testAppleID, 0, false},
		{"same file, another Apple ID", "other@example.com", "other@example.com", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			der := e.activate(t, "")
			before, events := e.state(t), len(e.events(t))
			st, out, err := e.svc.UpdateOutcome(context.Background(), pushcert.Update{Actor: admin, AppleID: tt.appleID, Certificate: applesim.PEM(der)})
			if err != nil {
				t.Fatalf("got error %v, want none", err)
			}
			if out != pushcert.AlreadyActive {
				t.Errorf("got outcome %v, want AlreadyActive", out)
			}
			after := e.state(t)
			if (after.Version != before.Version) != tt.wantBump {
				t.Errorf("got version %d after %d, want a bump: %v", after.Version, before.Version, tt.wantBump)
			}
			if st.Version != after.Version {
				t.Errorf("got returned version %d, want the stored %d", st.Version, after.Version)
			}
			if after.AppleID != tt.wantAppleID {
				t.Errorf("got Apple ID %q, want %q", after.AppleID, tt.wantAppleID)
			}
			if after.Certificate.Fingerprint != before.Certificate.Fingerprint || after.UploadStatus != before.UploadStatus {
				t.Errorf("got certificate %s (%s), want %s (%s)", after.Certificate.SerialNumber, after.UploadStatus, before.Certificate.SerialNumber, before.UploadStatus)
			}
			if got := len(e.events(t)) - events; got != tt.wantEvents {
				t.Errorf("got %d new events, want %d", got, tt.wantEvents)
			}
			if _, err := e.db.ReplacedCertificate(context.Background(), before.Certificate.Fingerprint, "", ""); !errors.Is(err, pushcert.ErrNotFound) {
				t.Errorf("got history row (err %v), want none", err)
			}
		})
	}
}

func TestUploadReplacedCertificate(t *testing.T) {
	tests := []struct {
		name     string
		file     func(t *testing.T, e *env, old []byte) []byte
		wantText []string
	}{
		{"the replaced file", func(t *testing.T, e *env, old []byte) []byte { return applesim.PEM(old) },
			[]string{"this is the certificate that was replaced on"}},
		{"a certificate for the replaced key", func(t *testing.T, e *env, old []byte) []byte {
			c := parseCert(t, old)
			return applesim.PEM(issueForKey(t, e.ca, e.clock.Now(), c.PublicKey, applesim.Request{Topic: pushcert.Describe(c).Topic}))
		}, []string{"for the key of the certificate that was replaced on"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			old := e.activate(t, "")
			oldCert := pushcert.Describe(parseCert(t, old))
			e.renew(t, oldCert.Topic)
			before := e.state(t)
			_, err := e.svc.Update(context.Background(), pushcert.Update{Actor: admin, Certificate: tt.file(t, e, old)})
			var ve *pushcert.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a validation error", err)
			}
			if ve.Code != pushcert.CodeReplacedCertificate || ve.Field != "certificate" {
				t.Errorf("got code %q field %q, want %q certificate", ve.Code, ve.Field, pushcert.CodeReplacedCertificate)
			}
			want := append(tt.wantText, oldCert.SerialNumber, oldCert.NotBefore.Format(time.DateOnly), oldCert.NotAfter.Format(time.DateOnly),
				e.clock.Now().UTC().Format(time.DateOnly), before.Certificate.SerialNumber)
			for _, w := range want {
				if !strings.Contains(ve.Message, w) {
					t.Errorf("got %q, want it to contain %q", ve.Message, w)
				}
			}
			if strings.Contains(ve.Message, "did not generate") {
				t.Errorf("got %q, want no blame on the CSR", ve.Message)
			}
			after := e.state(t)
			if after.Certificate.Fingerprint != before.Certificate.Fingerprint {
				t.Errorf("got active %s, want %s unchanged", after.Certificate.SerialNumber, before.Certificate.SerialNumber)
			}
		})
	}
}
