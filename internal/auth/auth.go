// Package auth carries the signed-in user and their role through a request's
// context. It knows nothing of HTTP, cookies or tokens.
package auth

import (
	"context"
	"time"
)

// Role is what a user may do in pushcert.
type Role string

// The roles, from least to most privileged.
const (
	RoleNone   Role = ""
	RoleViewer Role = "viewer"
	RoleAdmin  Role = "admin"
)

// Allows reports whether r grants everything want grants.
func (r Role) Allows(want Role) bool {
	return rank(r) >= rank(want)
}

func rank(r Role) int {
	switch r {
	case RoleAdmin:
		return 2
	case RoleViewer:
		return 1
	default:
		return 0
	}
}

// User is the person (or API client) behind a request.
type User struct {
	Subject string // the provider's stable subject identifier
	Name    string
	Email   string
	Role    Role
	// CanExport is the export role: the right to fetch the certificate and
	// its private key through the API. It is granted by groups of its own,
	// apart from Role (an admin does not have it by being admin), and only
	// to API bearer tokens: sessions never carry it.
	CanExport bool
	// SignedInAt is when the user last signed in at the identity provider
	// (the ID token's auth_time, else when pushcert received the sign-in).
	// It is zero when unknown. Only the console's export asks for it.
	SignedInAt time.Time
}

// Label is how the user is shown to people: email, then name, then subject.
func (u User) Label() string {
	switch {
	case u.Email != "":
		return u.Email
	case u.Name != "":
		return u.Name
	default:
		return u.Subject
	}
}

// System is the actor for changes pushcert makes by itself (key rotation
// from the command line, pruning).
var System = User{Subject: "pushcert", Name: "pushcert"}

type ctxKey struct{}

// WithUser returns a copy of ctx that carries u.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, ctxKey{}, u)
}

// UserFrom returns the user carried by ctx and whether there is one.
func UserFrom(ctx context.Context) (User, bool) {
	u, ok := ctx.Value(ctxKey{}).(User)
	return u, ok
}
