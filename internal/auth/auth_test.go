package auth

import (
	"context"
	"testing"
)

func TestRoleAllows(t *testing.T) {
	tests := []struct {
		have, want Role
		ok         bool
	}{
		{RoleAdmin, RoleAdmin, true},
		{RoleAdmin, RoleViewer, true},
		{RoleViewer, RoleViewer, true},
		{RoleViewer, RoleAdmin, false},
		{RoleNone, RoleViewer, false},
		{Role("superuser"), RoleViewer, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.have)+"→"+string(tt.want), func(t *testing.T) {
			if got := tt.have.Allows(tt.want); got != tt.ok {
				t.Errorf("got %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestUserContext(t *testing.T) {
	if _, ok := UserFrom(context.Background()); ok {
		t.Fatal("empty context: got a user, want none")
	}
	u := User{Subject: "s1", Email: "a@example.com", Role: RoleAdmin}
	got, ok := UserFrom(WithUser(context.Background(), u))
	if !ok || got != u {
		t.Fatalf("got %+v %v, want %+v", got, ok, u)
	}
}

func TestLabel(t *testing.T) {
	for _, tt := range []struct {
		u    User
		want string
	}{
		{User{Subject: "s", Name: "n", Email: "e@example.com"}, "e@example.com"},
		{User{Subject: "s", Name: "n"}, "n"},
		{User{Subject: "s"}, "s"},
	} {
		if got := tt.u.Label(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
