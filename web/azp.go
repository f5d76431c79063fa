package web

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/coreos/go-oidc/v3/oidc"
)

// errTokenAuthorizedParty refuses a token with several audiences that was
// not issued to pushcert's client (OpenID Connect Core 3.1.3.7): a token
// another client obtained for itself, which also names pushcert, is not one
// to sign in or call the API with.
var errTokenAuthorizedParty = errors.New("token with several audiences not issued to pushcert's client")

// checkAuthorizedParty checks a verified token's azp claim: when "aud"
// holds several audiences, azp must be clientID. With strict (sign-in ID
// tokens), an azp present must be clientID whatever the audience; API
// tokens with pushcert as their only audience keep whatever azp the
// provider gives them, the client of the script that asked for them.
func checkAuthorizedParty(t *oidc.IDToken, clientID string, strict bool) error {
	var c struct {
		AZP *string `json:"azp"`
	}
	if err := t.Claims(&c); err != nil {
		return fmt.Errorf("read azp claim: %w", err)
	}
	multi := len(slices.Compact(slices.Sorted(slices.Values(t.Audience)))) > 1
	switch {
	case multi && (c.AZP == nil || *c.AZP != clientID):
		return errTokenAuthorizedParty
	case strict && c.AZP != nil && *c.AZP != clientID:
		return errTokenAuthorizedParty
	}
	return nil
}

// idTokenVerifier verifies sign-in ID tokens as go-oidc does, and adds the
// authorized-party check of OpenID Connect Core 3.1.3.7, which go-oidc
// leaves to its callers.
type idTokenVerifier struct {
	verifier *oidc.IDTokenVerifier
	clientID string
}

// Verify verifies an ID token returned to pushcert's sign-in.
func (v *idTokenVerifier) Verify(ctx context.Context, raw string) (*oidc.IDToken, error) {
	t, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if err := checkAuthorizedParty(t, v.clientID, true); err != nil {
		return nil, err
	}
	return t, nil
}
