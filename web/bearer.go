package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/pushcert/pushcert/internal/auth"
)

// Why an API bearer token was refused. An expired token is told by the
// provider library's own *oidc.TokenExpiredError; the library describes its
// other refusals only in text, which quotes claims the token's sender chose,
// so verifyBearer makes those checks itself and answers with these.
var (
	errNoBearerToken  = errors.New("no bearer token")
	errTokenMalformed = errors.New("bearer token is not a signed JWT")
	errTokenSignature = errors.New("bearer token signature not verified")
	errTokenIssuer    = errors.New("bearer token from another issuer")
	errTokenAudience  = errors.New("bearer token for another audience")
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
		return auth.User{}, errNoBearerToken
	}
	// A token verified before is taken from the cache while it is still
	// valid: the RSA signature check and claims parsing run once per token.
	now := a.now()
	key := credentialKey(token)
	if u, ok := a.tokens.get(key, now); ok {
		return u, nil
	}
	ctx = oidc.ClientContext(ctx, a.httpClient)
	t, err := a.verifyBearer(ctx, token)
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

// verifyBearer verifies an API token and wraps a refusal in the error of
// the check that refused it. The checks run in the provider library's own
// order (form and signature, issuer, audience, then expiry), with the
// authorized party (checkAuthorizedParty) after the audience, so a token
// that fails several is refused for the first, and apiVerifier, which
// repeats them all and adds expiry and not-before, has the last word: the
// checks made here can refuse a token but never let one through.
func (a *Authenticator) verifyBearer(ctx context.Context, token string) (*oidc.IDToken, error) {
	t, err := a.apiSignature.Verify(ctx, token)
	if err != nil {
		if !isJWT(token) {
			return nil, fmt.Errorf("%w: %w", errTokenMalformed, err)
		}
		return nil, fmt.Errorf("%w: %w", errTokenSignature, err)
	}
	if t.Issuer != a.issuer {
		return nil, errTokenIssuer
	}
	if !slices.Contains(t.Audience, a.audience) {
		return nil, errTokenAudience
	}
	if err := checkAuthorizedParty(t, a.oauth.ClientID, false); err != nil {
		return nil, err
	}
	return a.apiVerifier.Verify(ctx, token)
}

// isJWT reports whether token has the form of a signed JWT, whatever its
// signature says: three base64url parts, the first two JSON objects.
func isJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for i, p := range parts {
		b, err := base64.RawURLEncoding.DecodeString(p)
		if err != nil {
			return false
		}
		var obj map[string]json.RawMessage
		if i < 2 && (json.Unmarshal(b, &obj) != nil || obj == nil) {
			return false
		}
	}
	return true
}

// tokenProblem is a short, secret-free description of why a token failed.
// It goes by the error's identity, never its text.
func tokenProblem(err error) string {
	var expired *oidc.TokenExpiredError
	switch {
	case errors.Is(err, errNoBearerToken):
		return "missing"
	case errors.As(err, &expired):
		return "expired"
	case errors.Is(err, errTokenAudience):
		return "wrong audience"
	case errors.Is(err, errTokenAuthorizedParty):
		return "wrong authorized party"
	case errors.Is(err, errTokenIssuer):
		return "wrong issuer"
	case errors.Is(err, errTokenSignature):
		return "bad signature"
	default:
		return "malformed"
	}
}
