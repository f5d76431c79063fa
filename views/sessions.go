package views

import "github.com/pushcert/pushcert/internal/auth"

// SessionsView is the admins' list of signed-in sessions, most recently
// seen first.
type SessionsView struct {
	Rows []SessionRow
	// Revoked confirms that the admin just signed a session out.
	Revoked bool
	// Lifetime and IdleTimeout say how long sessions last, in words
	// ("8 hours"); IdleTimeout is empty when there is none.
	Lifetime    string
	IdleTimeout string
	// CacheFor says how soon a signed-out session stops working on every
	// replica ("5 seconds").
	CacheFor string
}

// SessionRow is one session. It never holds the session's token or
// anything that would let someone use it; Handle only names it in the
// revoke form.
type SessionRow struct {
	Handle   string
	Who      string // the user's email, name or subject
	Role     auth.Role
	Since    string // "2027-11-22 05:00 UTC"
	LastSeen string
	Expires  string
	Client   string // the browser's User-Agent, clipped
	Address  string
	// Current marks the session of the admin looking at the page.
	Current bool
}

// sessionTerms says how long sessions last and how soon signing one out
// takes effect.
func sessionTerms(v SessionsView) string {
	t := "Everyone signed in to this console. A session lasts " + v.Lifetime + " from sign-in"
	if v.IdleTimeout != "" {
		t += ", or until it has not been used for " + v.IdleTimeout
	}
	return t + ". Signing a session out ends it on every pushcert server within " + v.CacheFor +
		". A session keeps the role its user had at sign-in: sign out someone whose groups changed."
}
