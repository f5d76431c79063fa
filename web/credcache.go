package web

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
)

// Limits of the cache of verified bearer tokens (see verifiedCache): how
// many it keeps, and how long a token is trusted before it is verified
// again, whatever its own expiry, so that a token signed with a key the
// provider has withdrawn stops working within minutes.
const (
	verifiedCacheSize   = 1024
	verifiedCacheMaxAge = 5 * time.Minute
)

// verifiedCache remembers credentials (bearer tokens; sessions have a
// cache of their own, see sessionStore) that passed full verification, by
// the SHA-256 of their exact text, with the user each maps to. It is safe
// for concurrent use.
//
// Security rests on three rules: only a credential that was verified is
// added (a changed byte is another key, which misses and is verified in
// full); an entry is used only up to the credential's own expiry and never
// longer than verifiedCacheMaxAge after it was verified; and the cache
// holds at most max entries, so no number of credentials grows it further.
type verifiedCache struct {
	mu      sync.Mutex
	max     int
	entries map[[sha256.Size]byte]verifiedEntry
}

// verifiedEntry is a verified credential's user and the last instant the
// entry may be used.
type verifiedEntry struct {
	user     auth.User
	notAfter time.Time
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{max: max, entries: make(map[[sha256.Size]byte]verifiedEntry, max)}
}

// credentialKey is what the caches key a credential by: its hash, so that
// the cache holds no usable credential.
func credentialKey(raw string) [sha256.Size]byte {
	return sha256.Sum256([]byte(raw))
}

// get returns the user of the credential with key if it was verified and
// is still valid at now. An entry past its time is dropped.
func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) (auth.User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return auth.User{}, false
	}
	if now.After(e.notAfter) {
		delete(c.entries, key)
		return auth.User{}, false
	}
	return e.user, true
}

// add remembers a verified credential, valid up to and including expiry,
// for at most verifiedCacheMaxAge from now. The caller must have verified
// it. When the cache is full, entries past their time go first, then
// arbitrary ones: an evicted credential is simply verified again.
func (c *verifiedCache) add(key [sha256.Size]byte, u auth.User, expiry, now time.Time) {
	notAfter := now.Add(verifiedCacheMaxAge)
	if expiry.Before(notAfter) {
		notAfter = expiry
	}
	if now.After(notAfter) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k, e := range c.entries {
			if now.After(e.notAfter) {
				delete(c.entries, k)
			}
		}
		for k := range c.entries {
			if len(c.entries) < c.max {
				break
			}
			delete(c.entries, k)
		}
	}
	c.entries[key] = verifiedEntry{user: u, notAfter: notAfter}
}

// size returns how many entries the cache holds.
func (c *verifiedCache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
