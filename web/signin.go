package web

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gorilla/sessions"
	"golang.org/x/oauth2"
)

// The login cookie holds only the short-lived values of one sign-in
// attempt; the session cookie (sessionCookie) holds who the user is.
const (
	loginCookie = "pushcert_login"
	loginMaxAge = 10 * time.Minute
	// maxNextPath bounds the return path kept across sign-in.
	maxNextPath = 1024
)

// login handles GET /login: it starts the authorization code flow with PKCE,
// state and nonce, remembering them in a short-lived cookie. reauth=1 asks
// the provider to sign the user in again, whatever session it holds (see
// startLogin).
func (a *Authenticator) login(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a.startLogin(w, r, localPath(q.Get("next")), q.Get("reauth") == "1", http.StatusFound)
}

// startLogin sends the browser to the provider's sign-in, to come back to
// next, with the given redirect status. With reauth the provider is asked
// to sign the user in afresh (prompt=login) and to refuse a sign-in older
// than the export's limit (max_age); the callback then checks that it did.
func (a *Authenticator) startLogin(w http.ResponseWriter, r *http.Request, next string, reauth bool, status int) {
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	s := sessions.NewSession(a.cookies, loginCookie)
	s.Options = a.loginCookieOptions(int(loginMaxAge.Seconds()))
	s.Values["state"] = state
	s.Values["nonce"] = nonce
	s.Values["verifier"] = verifier
	s.Values["next"] = next
	s.Values["reauth"] = reauth
	if err := s.Save(r, w); err != nil {
		a.serverError(w, r, fmt.Errorf("save login cookie: %w", err))
		return
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if reauth {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"),
			oauth2.SetAuthURLParam("max_age", strconv.Itoa(int(a.exportSignInAge.Seconds()))))
	}
	http.Redirect(w, r, a.oauth.AuthCodeURL(state, opts...), status)
}

// loginCookieOptions are the login cookie's attributes: scoped to the
// callback's path and short-lived; maxAge -1 deletes it.
func (a *Authenticator) loginCookieOptions(maxAge int) *sessions.Options {
	return &sessions.Options{
		Path: "/auth/", MaxAge: maxAge,
		HttpOnly: true, Secure: a.cookies.Options.Secure, SameSite: http.SameSiteLaxMode,
	}
}

// callback handles GET /auth/callback: it checks state, exchanges the code
// with the PKCE verifier, verifies the ID token and its nonce, maps groups to
// a role and starts a fresh session.
func (a *Authenticator) callback(w http.ResponseWriter, r *http.Request) {
	login, err := a.cookies.New(r, loginCookie)
	state, _ := login.Values["state"].(string)
	if err != nil || state == "" {
		a.errorPage(w, r, http.StatusBadRequest, "Sign-in expired",
			"This sign-in link is no longer valid (it expired or was opened in another browser). Start again from the sign-in page.")
		return
	}
	// The login values are single use: clear them whatever happens next.
	// The deletion must carry the cookie's own path, or browsers keep it.
	login.Options = a.loginCookieOptions(-1)
	_ = login.Save(r, w)

	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		a.log.Info("sign-in refused by provider", "error", e)
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in refused",
			"Your identity provider did not sign you in. Try again, or ask your administrator to check that pushcert is registered with the provider.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		a.errorPage(w, r, http.StatusBadRequest, "Sign-in expired",
			"The sign-in response does not belong to this browser's sign-in attempt. Start again from the sign-in page.")
		return
	}
	verifier, _ := login.Values["verifier"].(string)
	nonce, _ := login.Values["nonce"].(string)
	next, _ := login.Values["next"].(string)
	reauth, _ := login.Values["reauth"].(bool)

	ctx := oidc.ClientContext(r.Context(), a.httpClient)
	tok, err := a.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		a.log.Warn("sign-in code exchange refused", "err", err)
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed",
			"The identity provider did not accept this sign-in (the code may have been used already). Start again from the sign-in page.")
		return
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The identity provider returned no ID token.")
		return
	}
	idt, err := a.idVerifier.Verify(ctx, raw)
	if err != nil {
		a.log.Warn("id token rejected", "err", err)
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The identity provider's ID token could not be verified.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The ID token does not belong to this sign-in attempt.")
		return
	}
	u, err := a.userFromToken(idt)
	if err != nil {
		a.errorPage(w, r, http.StatusUnauthorized, "Sign-in failed", "The ID token is missing the claims pushcert needs.")
		return
	}
	// When the user signed in is what the provider's auth_time says, and
	// nothing else: without it, the sign-in may have been a silent single
	// sign-on from long ago, so it never counts as recent (SignedInAt
	// stays zero). A re-authentication asks with max_age, to which OpenID
	// Connect requires the provider to answer with auth_time.
	if reauth {
		next = reauthReturn(next, a.signedInRecently(u))
	}
	if err := a.startSession(w, r, u); err != nil {
		a.serverError(w, r, err)
		return
	}
	a.log.Info("signed in", "user_id", u.Subject, "role", string(u.Role))
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// logout handles POST /logout: it expires the session cookie and continues
// to the provider's end-session endpoint when it publishes one.
func (a *Authenticator) logout(w http.ResponseWriter, r *http.Request) {
	if err := a.expireSession(w, r); err != nil {
		a.serverError(w, r, err)
		return
	}
	target := "/signed-out"
	if a.endSession != "" {
		if u, err := url.Parse(a.endSession); err == nil {
			q := u.Query()
			q.Set("client_id", a.oauth.ClientID)
			q.Set("post_logout_redirect_uri", a.baseURL+"/signed-out")
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// signedOut handles GET /signed-out, where sign-out ends.
func (a *Authenticator) signedOut(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, http.StatusOK, "Signed out", "You have signed out of pushcert. Sign in again to manage the push certificate.")
}

// formTargets are the origins outside pushcert that a form submission may
// end up at: the provider's end-session endpoint after sign-out.
func (a *Authenticator) formTargets() []string {
	if a.endSession == "" {
		return nil
	}
	u, err := url.Parse(a.endSession)
	if err != nil || u.Host == "" {
		return nil
	}
	return []string{u.Scheme + "://" + u.Host}
}

// localPath returns p if it is a path on this site, or "" — so a crafted
// next= parameter cannot send a user elsewhere after sign-in.
func localPath(p string) string {
	// A path longer than maxNextPath is dropped rather than stored: the login
	// cookie that carries it has a size limit.
	if p == "" || len(p) > maxNextPath || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return ""
	}
	if strings.ContainsAny(p, "\r\n\t\\") {
		return ""
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return ""
	}
	return p
}
