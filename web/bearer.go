package web

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pushcert/pushcert/internal/auth"
)

// bearerToken reads the token of an "Authorization: Bearer <token>" header.
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// bearerUser verifies an API bearer token against the provider's keys,
// issuer, expiry and the configured audience, and maps it to a user.
func (a *Authenticator) bearerUser(ctx context.Context, header string) (auth.User, error) {
	token, ok := bearerToken(header)
	if !ok {
		return auth.User{}, errors.New("no bearer token")
	}
	// A token verified before is taken from the cache while it is still
	// valid: the RSA signature check and claims parsing run once per token.
	now := a.now()
	key := credentialKey(token)
	if u, ok := a.tokens.get(key, now); ok {
		return u, nil
	}
	ctx = oidc.ClientContext(ctx, a.httpClient)
	t, err := a.apiVerifier.Verify(ctx, token)
	if err != nil {
		return auth.User{}, fmt.Errorf("verify bearer token: %w", err)
	}
	u, err := a.userFromToken(t)
	if err != nil {
		return auth.User{}, err
	}
	// The verifier refuses a token once its expiry is before now, so the
	// token is valid up to and including t.Expiry.
	a.tokens.add(key, u, t.Expiry, now)
	return u, nil
}
