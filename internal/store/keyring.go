package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
)

// ErrSecretMismatch means a stored private key was encrypted under a
// key-encryption secret that the keyring does not hold: pushcert was started
// with a different secret than the one the keys were stored with.
var ErrSecretMismatch = errors.New("the key-encryption secret does not match the one the keys were stored with")

const (
	// minSecretLen is the shortest key-encryption secret accepted.
	minSecretLen = 16
	// kekInfo binds derived keys to this use.
	kekInfo = "pushcert private-key encryption v1"
	// nonceSize is the AES-GCM nonce length, stored as the ciphertext's prefix.
	nonceSize = 12
)

// Keyring holds the key-encryption keys. The current one encrypts; the
// previous ones only decrypt, so that keys stored under an older secret can
// be read and re-encrypted with RotateKeys.
//
// Each key has a random ID, stored with every ciphertext it seals. The ID
// says nothing about the secret: the database's key_encryption_keys table
// (see bindKeyIDs) tells which configured key an ID names, by a check text
// only that key opens. Until a store binds the keyring, the current key has
// the ID drawn by NewKeyring.
type Keyring struct {
	mu      sync.RWMutex
	current *kek
	all     []*kek          // the current key first, then the previous ones
	byID    map[string]*kek // every ID known to name one of the keys
}

// kek is one key-encryption key.
type kek struct {
	id   string // the random ID it stores with ciphertexts; "" until known
	aead cipher.AEAD
	// legacyID is the ID earlier versions stored: a hash of the derived
	// key. Ciphertexts labelled with it still open; a store that binds
	// the keyring relabels them with id.
	legacyID string
}

// NewKeyring derives the key-encryption keys from secrets of at least 16
// bytes: current encrypts and decrypts, previous only decrypt.
func NewKeyring(current string, previous ...string) (*Keyring, error) {
	cur, err := deriveKEK(current)
	if err != nil {
		return nil, fmt.Errorf("current key-encryption secret: %w", err)
	}
	cur.id = newKeyID()
	k := &Keyring{current: cur, all: []*kek{cur}, byID: map[string]*kek{cur.id: cur, cur.legacyID: cur}}
	for i, p := range previous {
		prev, err := deriveKEK(p)
		if err != nil {
			return nil, fmt.Errorf("previous key-encryption secret %d: %w", i+1, err)
		}
		k.all = append(k.all, prev)
		k.byID[prev.legacyID] = prev
	}
	return k, nil
}

// CurrentID returns the ID of the key that encrypts new ciphertexts: a
// random one, derived from nothing, safe to store.
func (k *Keyring) CurrentID() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current.id
}

// newKeyID returns a random key ID of 32 hex digits.
func newKeyID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails
	return hex.EncodeToString(b[:])
}

// learn records that id names kk; the first ID learnt for a previous key
// is the one it is known by.
func (k *Keyring) learn(id string, kk *kek) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.byID[id] = kk
	if kk.id == "" {
		kk.id = id
	}
}

// setCurrentID makes id the ID the current key stores with ciphertexts.
func (k *Keyring) setCurrentID(id string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.current.id = id
	k.byID[id] = k.current
}

// lookup returns the key id names, if the keyring knows it.
func (k *Keyring) lookup(id string) (*kek, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	kk, ok := k.byID[id]
	return kk, ok
}

func deriveKEK(secret string) (*kek, error) {
	if len(secret) < minSecretLen {
		return nil, fmt.Errorf("secret is shorter than %d bytes", minSecretLen)
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, kekInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	sum := sha256.Sum256(key)
	return &kek{aead: aead, legacyID: hex.EncodeToString(sum[:8])}, nil
}

// encrypt seals plaintext under the current key with aad, the identity of
// the record it is stored in, so the ciphertext only opens in that record.
// It returns the nonce-prefixed ciphertext and the ID of the key used.
func (k *Keyring) encrypt(plaintext []byte, aad string) ([]byte, string, error) {
	k.mu.RLock()
	cur, id := k.current, k.current.id
	k.mu.RUnlock()
	ct, err := cur.seal(plaintext, aad)
	return ct, id, err
}

// seal seals plaintext under kk with aad, behind a random nonce.
func (kk *kek) seal(plaintext []byte, aad string) ([]byte, error) {
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+kk.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return kk.aead.Seal(nonce, nonce, plaintext, []byte(aad)), nil
}

// open opens a ciphertext made by seal.
func (kk *kek) open(ciphertext []byte, aad string) ([]byte, error) {
	if len(ciphertext) < nonceSize+kk.aead.Overhead() {
		return nil, errors.New("stored ciphertext is truncated")
	}
	plaintext, err := kk.aead.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], []byte(aad))
	if err != nil {
		return nil, errors.New("stored ciphertext does not authenticate: it was altered or moved from another record")
	}
	return plaintext, nil
}

// decrypt opens a ciphertext made by encrypt with the key named keyID. An
// ID the keyring has not learnt (one another replica stored after this one
// bound its keys) is tried against every key: GCM tells the right one.
// Errors never name key IDs.
func (k *Keyring) decrypt(ciphertext []byte, keyID, aad string) ([]byte, error) {
	if kk, ok := k.lookup(keyID); ok {
		// When the key ID matches, a failure means the bytes were altered
		// or belong to another record.
		return kk.open(ciphertext, aad)
	}
	for _, kk := range k.all {
		if plaintext, err := kk.open(ciphertext, aad); err == nil {
			k.learn(keyID, kk)
			return plaintext, nil
		}
	}
	return nil, ErrSecretMismatch
}

// Associated data naming the record a ciphertext belongs to.
func aadPending(id string) string          { return "pending:" + id }
func aadActive(installation string) string { return "active:" + installation }
func aadHistory(id string) string          { return "history:" + id }
func aadKeyCheck(id string) string         { return "key-check:" + id }

// reencrypt opens a ciphertext and seals it again under the current key.
func (k *Keyring) reencrypt(ct []byte, keyID, aad string) ([]byte, string, error) {
	der, err := k.decrypt(ct, keyID, aad)
	if err != nil {
		return nil, "", err
	}
	defer clear(der)
	return k.encrypt(der, aad)
}
