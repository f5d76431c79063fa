package web

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/auth"
)

// exportPath is the console's export page, where a renewed sign-in
// returns.
const exportPath = "/export"

// exporter lets through API bearer tokens of the export role (the groups
// of AuthConfig.ExportGroups). Being admin is not enough: the role is a
// right of its own, given to the scripts that need the private key.
func (a *Authenticator) exporter(h http.HandlerFunc) http.Handler {
	return a.bearerIf(func(u auth.User) bool { return u.CanExport }, a.exportForbiddenMessage, h)
}

// exportForbiddenMessage tells a token without the export role which
// setting grants it.
func (a *Authenticator) exportForbiddenMessage(u auth.User) string {
	if len(a.exportGroups) == 0 {
		return fmt.Sprintf("%s may not export: no group has the export role on this pushcert. An operator names the groups whose tokens may fetch the certificate and private key in PUSHCERT_EXPORT_GROUPS.",
			u.Label())
	}
	return fmt.Sprintf("%s may not export: fetching the certificate and private key needs a token of the export role, membership in %s (claim %q), set by PUSHCERT_EXPORT_GROUPS. The admin and viewer roles do not grant it.",
		u.Label(), joinOr(a.exportGroups), a.groupsClaim)
}

// recentSignIn lets through users whose sign-in at the provider is at most
// exportSignInAge old. Anyone else is sent straight to the provider to sign
// in again (prompt=login, max_age) and comes back to the export page, which
// asks them to press Download again: the form they sent, passphrase and
// all, is neither read nor carried across the sign-in.
func (a *Authenticator) recentSignIn(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, _ := auth.UserFrom(r.Context())
		if a.signedInRecently(u) {
			h(w, r)
			return
		}
		a.log.Info("sign-in too old to export, asking for a new one", "user_id", u.Subject)
		a.startLogin(w, r, exportPath, true, http.StatusSeeOther)
	}
}

// signedInRecently reports whether u signed in at the provider no longer
// than exportSignInAge ago. An unknown sign-in time is never recent.
func (a *Authenticator) signedInRecently(u auth.User) bool {
	return !u.SignedInAt.IsZero() && a.now().Sub(u.SignedInAt) <= a.exportSignInAge
}

// reauthReturn is where a renewed sign-in returns: next, telling the
// page whether the provider did sign the user in afresh (a provider may
// ignore prompt=login and max_age and send back its old sign-in).
func reauthReturn(next string, renewed bool) string {
	u, err := url.Parse(next)
	if next == "" || err != nil {
		u = &url.URL{Path: exportPath}
	}
	q := u.Query()
	q.Set(handlers.SignInQuery, handlers.SignInRenewed)
	if !renewed {
		q.Set(handlers.SignInQuery, handlers.SignInOld)
	}
	u.RawQuery = q.Encode()
	return u.String()
}
