package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pushcert/pushcert/internal/auth"
)

// userFromToken maps a verified token's claims to a user and role.
func (a *Authenticator) userFromToken(t *oidc.IDToken) (auth.User, error) {
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return auth.User{}, fmt.Errorf("read claims: %w", err)
	}
	if t.Subject == "" {
		return auth.User{}, errors.New("token has no subject")
	}
	u := auth.User{Subject: t.Subject}
	u.Email, _ = claims["email"].(string)
	u.Name, _ = claims["name"].(string)
	if u.Name == "" {
		u.Name, _ = claims["preferred_username"].(string)
	}
	groups := groupsFrom(claims[a.groupsClaim])
	u.Role = a.roleFor(groups)
	u.CanExport = a.grantsExport(groups)
	u.SignedInAt = a.authTime(claims["auth_time"])
	return u, nil
}

// grantsExport reports whether any of the groups grants the export role.
// It is granted by the export groups alone: the admin and viewer groups
// have no part in it, so a token of either cannot fetch the private key.
func (a *Authenticator) grantsExport(groups []string) bool {
	for _, g := range groups {
		if slices.Contains(a.exportGroups, g) {
			return true
		}
	}
	return false
}

// authTime reads an ID token's auth_time claim (seconds since the epoch)
// as the time of the sign-in; zero when there is none. A time ahead of
// pushcert's clock (the provider's clock runs fast) counts as now, so it
// cannot make a sign-in count as recent for longer than it is.
func (a *Authenticator) authTime(v any) time.Time {
	secs, ok := v.(float64)
	// Past 1e12 seconds (year 33658) it is no time a provider would send.
	if !ok || secs <= 0 || secs >= 1e12 {
		return time.Time{}
	}
	at, now := time.Unix(int64(secs), 0), a.now()
	if at.After(now) {
		return now
	}
	return at
}

// roleFor picks the most privileged role any of the groups grants.
func (a *Authenticator) roleFor(groups []string) auth.Role {
	role := auth.RoleNone
	for _, g := range groups {
		switch {
		case slices.Contains(a.adminGroups, g):
			return auth.RoleAdmin
		case slices.Contains(a.viewerGroups, g):
			role = auth.RoleViewer
		}
	}
	return role
}

// groupsFrom reads a groups claim, which providers send as a JSON array of
// strings or, less often, as one space- or comma-separated string.
func groupsFrom(v any) []string {
	switch g := v.(type) {
	case []any:
		out := make([]string, 0, len(g))
		for _, x := range g {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case string:
		return strings.FieldsFunc(g, func(r rune) bool { return r == ' ' || r == ',' })
	default:
		return nil
	}
}

// viewer lets through signed-in users with at least the viewer role.
func (a *Authenticator) viewer(h http.HandlerFunc) http.Handler {
	return a.require(auth.RoleViewer, h)
}

// admin lets through signed-in admins only.
func (a *Authenticator) admin(h http.HandlerFunc) http.Handler {
	return a.require(auth.RoleAdmin, h)
}

// require sends signed-out browsers to sign in and answers 403 to users
// without the role, naming the groups that would grant it.
func (a *Authenticator) require(role auth.Role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := auth.UserFrom(r.Context())
		if !ok {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			a.errorPage(w, r, http.StatusUnauthorized, "Signed out",
				"Your session has ended, so nothing was changed. Sign in again and repeat the action.")
			return
		}
		if !u.Role.Allows(role) {
			a.errorPage(w, r, http.StatusForbidden, "Access denied", a.forbiddenMessage(u, role))
			return
		}
		h(w, r)
	})
}

// forbiddenMessage tells the user which group membership they lack.
func (a *Authenticator) forbiddenMessage(u auth.User, want auth.Role) string {
	groups := a.adminGroups
	if want == auth.RoleViewer {
		groups = append(slices.Clone(a.viewerGroups), a.adminGroups...)
	}
	who := u.Label()
	if want == auth.RoleAdmin && u.Role == auth.RoleViewer {
		return fmt.Sprintf("%s may view the push certificate but not change it. Changing it needs membership in the group %s (claim %q) at your identity provider.",
			who, joinOr(groups), a.groupsClaim)
	}
	return fmt.Sprintf("%s is signed in but is not a member of %s (claim %q) at your identity provider. Ask your administrator to add you, then sign in again.",
		who, joinOr(groups), a.groupsClaim)
}

func joinOr(groups []string) string {
	q := make([]string, len(groups))
	for i, g := range groups {
		q[i] = "“" + g + "”"
	}
	switch len(q) {
	case 0:
		return "any pushcert group"
	case 1:
		return q[0]
	default:
		return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
	}
}
