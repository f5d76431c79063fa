// Package views holds the HTML pages of pushcert as templ components. The
// components are pure: everything they show arrives as parameters, already
// computed by the handlers (they never read the clock, a context or a
// service).
package views

import (
	"github.com/a-h/templ"

	"github.com/pushcert/pushcert/internal/auth"
)

// StaticVersion is appended to the URLs of the files under static/ so
// browsers may cache them for a long time. It is the start of the SHA-256 of
// those files; a test in static/ fails, naming the new value, when they
// change without it.
const StaticVersion = "e958b13b"

// Shell is what every page's frame needs: the page title, the signed-in user
// (nil when signed out), whether development mode is on, and the request
// path, to mark the current navigation link.
type Shell struct {
	Title string
	User  *auth.User
	Dev   bool
	Path  string
}

// IsAdmin reports whether the signed-in user may change the certificate.
// Views use it only to hide controls; the server enforces roles anyway.
func (s Shell) IsAdmin() bool {
	return s.User != nil && s.User.Role.Allows(auth.RoleAdmin)
}

// canView reports whether the signed-in user may read the pages, so the
// navigation is worth showing.
func (s Shell) canView() bool {
	return s.User != nil && s.User.Role.Allows(auth.RoleViewer)
}

func roleLabel(r auth.Role) string {
	switch r {
	case auth.RoleAdmin:
		return "administrator"
	case auth.RoleViewer:
		return "viewer"
	default:
		return "no access"
	}
}

// currentPage marks the navigation link of the page being shown, for
// screen readers and for the style.
func currentPage(path, href string) templ.Attributes {
	if path == href {
		return templ.Attributes{"aria-current": "page"}
	}
	return templ.Attributes{}
}
