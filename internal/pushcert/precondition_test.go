package pushcert_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// TestPrecondition: a write with a Precondition applies only at a version
// it names, or with Any while the resource exists; otherwise it is
// answered with ErrPreconditionFailed and nothing is written.
func TestPrecondition(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		active  bool
		pre     func(cur int64) pushcert.Precondition
		wantErr error
	}{
		{"none", true, func(int64) pushcert.Precondition { return pushcert.Precondition{} }, nil},
		{"the current version", true, func(cur int64) pushcert.Precondition { return pushcert.AtVersion(cur) }, nil},
		{"a list with the current version", true, func(cur int64) pushcert.Precondition {
			return pushcert.Precondition{Versions: []int64{cur - 1, cur, cur + 5}}
		}, nil},
		{"an earlier version", true, func(cur int64) pushcert.Precondition { return pushcert.AtVersion(cur - 1) }, pushcert.ErrPreconditionFailed},
		{"a list without the current version", true, func(cur int64) pushcert.Precondition {
			return pushcert.Precondition{Versions: []int64{cur - 1, cur + 1}}
		}, pushcert.ErrPreconditionFailed},
		{"any, with a certificate", true, func(int64) pushcert.Precondition { return pushcert.Precondition{Any: true} }, nil},
		{"any, before anything was uploaded", false, func(int64) pushcert.Precondition { return pushcert.Precondition{Any: true} }, pushcert.ErrPreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			u := pushcert.Update{Actor: admin, AppleID: "new@example.com"}
			if tt.active {
				e.activate(t, "")
			} else {
				u.Certificate = e.issue(t, e.csr(t).CSRDER, applesim.Request{})
			}
			before := e.state(t)
			u.If = tt.pre(before.Version)

			_, err := e.svc.Update(ctx, u)

			after := e.state(t)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				if !reflect.DeepEqual(after, before) {
					t.Fatalf("got state %+v, want it unchanged %+v", after, before)
				}
				return
			}
			if err != nil || after.AppleID != "new@example.com" {
				t.Fatalf("got %v and Apple ID %q, want the write applied", err, after.AppleID)
			}
		})
	}
}
