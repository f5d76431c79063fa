package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// KeyRefreshInterval is the least time between two fetches of the
// provider's key set made because a token named a key ID pushcert does not
// hold. The provider's keys are fetched at the first token; a token signed
// with a key the provider added since is accepted at most this long after
// the last fetch.
const KeyRefreshInterval = 30 * time.Second

// maxKeySetBytes bounds the provider's key set document.
const maxKeySetBytes = 1 << 20

// signingAlgs are the signature algorithms go-oidc verifies; the
// provider's discovery document narrows them.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512, jose.EdDSA,
}

// keySet is the provider's JSON Web Key Set, an oidc.KeySet like
// oidc.RemoteKeySet with one difference: RemoteKeySet fetches the set again
// for every token whose key ID it does not hold, so anyone could make
// pushcert call the provider once per request by sending tokens with
// made-up key IDs. keySet fetches again at most once per interval, whatever
// the tokens say; a token signed with a key it does not hold is refused
// meanwhile.
type keySet struct {
	url      string
	client   *http.Client
	now      func() time.Time
	interval time.Duration

	mu   sync.Mutex
	keys []jose.JSONWebKey
	// fetched is when the last fetch began, whether it succeeded or not:
	// a provider that fails is not asked more often either. Zero before
	// the first.
	fetched time.Time
	// fetching is closed when the fetch in flight ends; nil when there is
	// none. Tokens that arrive meanwhile wait for it instead of fetching.
	fetching chan struct{}
	fetchErr error // the result of the last fetch
}

var _ oidc.KeySet = (*keySet)(nil)

func newKeySet(url string, client *http.Client, now func() time.Time, interval time.Duration) *keySet {
	return &keySet{url: url, client: client, now: now, interval: interval}
}

// VerifySignature returns the payload of jwt when one of the provider's
// keys signed it. The verifier that calls it has checked the algorithm.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(jwt, signingAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.Lock()
	keys := k.keys
	k.mu.Unlock()
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	keys, err = k.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWith(jws, kid, keys); ok {
		return payload, nil
	}
	return nil, errors.New("no key of the provider verifies the signature")
}

// verifyWith verifies jws with the keys of ID kid, or with every key when
// the token names none.
func verifyWith(jws *jose.JSONWebSignature, kid string, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, key := range keys {
		if kid != "" && key.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(&key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh fetches the key set unless the last fetch began less than an
// interval ago, and returns the keys held then. Concurrent callers share
// one fetch.
func (k *keySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	if k.fetching == nil && !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.interval {
		keys := k.keys
		k.mu.Unlock()
		return keys, nil
	}
	done := k.fetching
	if done == nil {
		done = make(chan struct{})
		k.fetching, k.fetched = done, k.now()
		// The fetch outlives the request that began it: others wait for
		// it too.
		go k.fetch(context.WithoutCancel(ctx), done)
	}
	k.mu.Unlock()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-done:
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys, k.fetchErr
}

// fetch reads the key set, keeps it when it could be read, and closes done.
func (k *keySet) fetch(ctx context.Context, done chan struct{}) {
	keys, err := k.get(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fetchErr = err
	if err == nil {
		k.keys = keys
	}
	k.fetching = nil
	close(done)
}

// get fetches and parses the key set, skipping keys of types it does not
// know, as RFC 7517 section 5 asks.
func (k *keySet) get(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("provider key set: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the provider's key set: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetBytes))
	if err != nil {
		return nil, fmt.Errorf("read the provider's key set: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch the provider's key set: %s", resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parse the provider's key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	return keys, nil
}

// newVerifier returns a verifier of the provider's tokens over keys that
// accepts the algorithms the provider announces (RS256 when it announces
// none that go-oidc knows), as provider.Verifier would.
func newVerifier(provider *oidc.Provider, issuer string, keys oidc.KeySet, config oidc.Config) (*oidc.IDTokenVerifier, error) {
	if len(config.SupportedSigningAlgs) == 0 {
		var meta struct {
			Algs []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := provider.Claims(&meta); err != nil {
			return nil, fmt.Errorf("read provider metadata: %w", err)
		}
		for _, a := range meta.Algs {
			for _, known := range signingAlgs {
				if a == string(known) {
					config.SupportedSigningAlgs = append(config.SupportedSigningAlgs, a)
				}
			}
		}
	}
	return oidc.NewVerifier(issuer, keys, &config), nil
}

// makeVerifiers gives a its verifiers, all over one key set of the
// provider's that is fetched again at most once per KeyRefreshInterval.
func (a *Authenticator) makeVerifiers(provider *oidc.Provider, jwksURL, clientID string, clock func() time.Time) error {
	if jwksURL == "" {
		return errors.New("the openid provider's discovery document names no jwks_uri")
	}
	keys := newKeySet(jwksURL, a.httpClient, clock, KeyRefreshInterval)
	a.idVerifier = &idTokenVerifier{clientID: clientID}
	for _, v := range []struct {
		dst **oidc.IDTokenVerifier
		cfg oidc.Config
	}{
		{&a.idVerifier.verifier, oidc.Config{ClientID: clientID, Now: clock}},
		{&a.apiVerifier, oidc.Config{ClientID: a.audience, Now: clock}},
		{&a.apiSignature, oidc.Config{SkipClientIDCheck: true, SkipIssuerCheck: true, SkipExpiryCheck: true}},
	} {
		var err error
		if *v.dst, err = newVerifier(provider, a.issuer, keys, v.cfg); err != nil {
			return err
		}
	}
	return nil
}
