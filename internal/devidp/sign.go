package devidp

import (
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// tokenLifetime is how long an ID token is valid.
const tokenLifetime = 10 * time.Minute

// signer signs the provider's tokens with its one RSA key and publishes the
// key's public half.
type signer struct {
	jws  jose.Signer
	jwks []byte // the key set document served at the JWKS endpoint
}

// newSigner prepares RS256 signing with key. The key ID is the key's
// RFC 7638 thumbprint, so it stays the same when the key is loaded again
// after a restart.
func newSigner(key *rsa.PrivateKey) (*signer, error) {
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.RS256), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("key thumbprint: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	jws, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return &signer{jws: jws, jwks: jwks}, nil
}

// sign returns claims as a compact JWT signed RS256.
func (s *signer) sign(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode claims: %w", err)
	}
	obj, err := s.jws.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return obj.CompactSerialize()
}

// signIn is one sign-in of a demo user that an ID token is issued for.
type signIn struct {
	user     User
	scopes   []string
	nonce    string
	authTime time.Time // when the demo user was chosen
}

// idToken issues an ID token for s, dated by the provider's clock now.
// Claims beyond the required ones follow the scopes, as a company
// provider's do: email with "email", the names with "profile", groups with
// "groups".
func (p *Provider) idToken(s signIn) (string, error) {
	now := p.now()
	c := map[string]any{
		"iss": p.issuer, "sub": "dev-" + s.user.Key,
		"aud": []string{ClientID}, "azp": ClientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(tokenLifetime).Unix(),
	}
	if s.nonce != "" {
		c["nonce"] = s.nonce
	}
	if !p.noAuthTime.Load() {
		c["auth_time"] = s.authTime.Unix()
	}
	for _, scope := range s.scopes {
		switch {
		case scope == "email" && s.user.Email != "":
			c["email"], c["email_verified"] = s.user.Email, true
		case scope == "profile":
			c["preferred_username"] = s.user.Key
			if s.user.Label != "" {
				c["name"] = s.user.Label
			}
		case scope == "groups" && len(s.user.Groups) > 0:
			c["groups"] = s.user.Groups
		}
	}
	return p.keys.sign(c)
}
