package pushcert_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
)

// pruneBeforeActivate is a store whose pending keys all vanish just before
// an activation, as when another admin's CSR generation prunes a key at the
// end of its lifetime between an upload's check and its write.
type pruneBeforeActivate struct{ *store.DB }

func (p pruneBeforeActivate) Activate(ctx context.Context, a pushcert.Activation) (pushcert.State, error) {
	if _, err := p.PrunePendingKeys(ctx, a.At.AddDate(10, 0, 0)); err != nil {
		return pushcert.State{}, err
	}
	return p.DB.Activate(ctx, a)
}

func TestPendingKeyGoneBeforeActivation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	e.activate(t, "")
	before, keyBefore := e.state(t), e.activeKey(t)

	svc := pushcert.NewService(pruneBeforeActivate{e.db}, testConfig(t, e.clock.Now))
	pk, err := svc.GenerateCSR(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	cert := applesim.PEM(e.issue(t, pk.CSRDER, applesim.Request{Topic: before.Certificate.Topic}))
	_, err = svc.Update(ctx, pushcert.Update{Actor: admin, Certificate: cert})
	var ve *pushcert.ValidationError
	if !errors.As(err, &ve) || ve.Code != pushcert.CodeKeyMismatch {
		t.Fatalf("got %v, want a %s refusal", err, pushcert.CodeKeyMismatch)
	}
	after := e.state(t)
	if after.Certificate.SerialNumber != before.Certificate.SerialNumber || string(e.activeKey(t)) != string(keyBefore) {
		t.Error("the active certificate or its key changed")
	}
	if after.UploadStatus != pushcert.UploadFailed || after.UploadFailureReason != ve.Message {
		t.Errorf("got status %s %q, want the failure recorded", after.UploadStatus, after.UploadFailureReason)
	}
}
