package web

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/devidp"
)

// Tokens signed with the development provider's real key, whose "aud"
// and "azp" say who they were issued to (OpenID Connect Core 3.1.3.7).
func TestAuthorizedParty(t *testing.T) {
	authn, provider, clk := newAuthenticatorWith(t, nil)
	const other = "another-client"
	tests := []struct {
		name       string
		aud        any
		azp        string // "" leaves the claim out
		wantAPI    bool   // accepted as an API bearer token
		wantSignIn bool   // accepted as a sign-in ID token
	}{
		{"our client alone", devidp.ClientID, "", true, true},
		{"our client alone, azp ours", devidp.ClientID, devidp.ClientID, true, true},
		// A script's token for pushcert's API names the script's client.
		{"our client alone, azp a script's", []string{devidp.ClientID}, "mdm-host", true, false},
		{"several audiences, azp ours", []string{devidp.ClientID, other}, devidp.ClientID, true, true},
		{"several audiences, no azp", []string{devidp.ClientID, other}, "", false, false},
		{"several audiences, azp another client", []string{other, devidp.ClientID}, other, false, false},
		{"our client twice, azp another client", []string{devidp.ClientID, devidp.ClientID}, other, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := clk.Now()
			claims := map[string]any{"iss": provider.Issuer(), "aud": tt.aud, "sub": "dev-admin",
				"groups": []string{"admins"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			if tt.azp != "" {
				claims["azp"] = tt.azp
			}
			token, err := provider.SignClaims(claims)
			if err != nil {
				t.Fatal(err)
			}
			_, err = authn.bearerUser(context.Background(), "Bearer "+token)
			switch {
			case tt.wantAPI && err != nil:
				t.Errorf("API: got %v, want accepted", err)
			case !tt.wantAPI && !errors.Is(err, errTokenAuthorizedParty):
				t.Errorf("API: got %v, want %v", err, errTokenAuthorizedParty)
			case !tt.wantAPI && tokenProblem(err) != "wrong authorized party":
				t.Errorf("API refusal logged as %q, want %q", tokenProblem(err), "wrong authorized party")
			}
			_, err = authn.idVerifier.Verify(context.Background(), token)
			switch {
			case tt.wantSignIn && err != nil:
				t.Errorf("sign-in: got %v, want accepted", err)
			case !tt.wantSignIn && !errors.Is(err, errTokenAuthorizedParty):
				t.Errorf("sign-in: got %v, want %v", err, errTokenAuthorizedParty)
			}
		})
	}
}
