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
	"slices"
	"strings"
)

// ErrSecretMismatch means a stored private key was encrypted under a
// key-encryption secret that the keyring does not hold: pushcert was started
// with a different secret than the one the keys were stored with.
var ErrSecretMismatch = errors.New("the key-encryption secret does not match the one the keys were stored with")

const (
	// minSecretLen is the shortest key-encryption secret accepted.
	minSecretLen = 16
	// kekInfo binds derived keys to this use; changing it changes every key ID.
	kekInfo = "pushcert private-key encryption v1"
	// nonceSize is the AES-GCM nonce length, stored as the ciphertext's prefix.
	nonceSize = 12
)

// Keyring holds the key-encryption keys. The current one encrypts; the
// previous ones only decrypt, so that keys stored under an older secret can
// be read and re-encrypted with RotateKeys.
type Keyring struct {
	current kek
	byID    map[string]kek // every key, the current one included
}

// kek is one key-encryption key.
type kek struct {
	id   string
	aead cipher.AEAD
}

// NewKeyring derives the key-encryption keys from secrets of at least 16
// bytes: current encrypts and decrypts, previous only decrypt.
func NewKeyring(current string, previous ...string) (*Keyring, error) {
	cur, err := deriveKEK(current)
	if err != nil {
		return nil, fmt.Errorf("current key-encryption secret: %w", err)
	}
	k := &Keyring{current: cur, byID: map[string]kek{cur.id: cur}}
	for i, p := range previous {
		prev, err := deriveKEK(p)
		if err != nil {
			return nil, fmt.Errorf("previous key-encryption secret %d: %w", i+1, err)
		}
		k.byID[prev.id] = prev
	}
	return k, nil
}

// CurrentID returns the ID of the key that encrypts new ciphertexts. IDs are
// a short hash of the derived key, safe to store and show.
func (k *Keyring) CurrentID() string { return k.current.id }

func deriveKEK(secret string) (kek, error) {
	if len(secret) < minSecretLen {
		return kek{}, fmt.Errorf("secret is shorter than %d bytes", minSecretLen)
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, kekInfo, 32)
	if err != nil {
		return kek{}, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return kek{}, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return kek{}, fmt.Errorf("gcm: %w", err)
	}
	sum := sha256.Sum256(key)
	return kek{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// encrypt seals plaintext under the current key with aad, the identity of
// the record it is stored in, so the ciphertext only opens in that record.
// It returns the nonce-prefixed ciphertext and the ID of the key used.
func (k *Keyring) encrypt(plaintext []byte, aad string) ([]byte, string, error) {
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+k.current.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, "", fmt.Errorf("nonce: %w", err)
	}
	return k.current.aead.Seal(nonce, nonce, plaintext, []byte(aad)), k.current.id, nil
}

// decrypt opens a ciphertext made by encrypt with the key named keyID.
func (k *Keyring) decrypt(ciphertext []byte, keyID, aad string) ([]byte, error) {
	kk, ok := k.byID[keyID]
	if !ok {
		return nil, fmt.Errorf("%w (stored under key %s, configured keys %s)", ErrSecretMismatch, keyID, k.ids())
	}
	if len(ciphertext) < nonceSize+kk.aead.Overhead() {
		return nil, errors.New("stored ciphertext is truncated")
	}
	plaintext, err := kk.aead.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], []byte(aad))
	if err != nil {
		// The key ID matched, so the bytes were altered or belong to another record.
		return nil, errors.New("stored ciphertext does not authenticate: it was altered or moved from another record")
	}
	return plaintext, nil
}

func (k *Keyring) ids() string {
	ids := make([]string, 0, len(k.byID))
	for id := range k.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return strings.Join(ids, ", ")
}

// Associated data naming the record a ciphertext belongs to.
func aadPending(id string) string          { return "pending:" + id }
func aadActive(installation string) string { return "active:" + installation }
func aadHistory(id string) string          { return "history:" + id }

// reencrypt opens a ciphertext and seals it again under the current key.
func (k *Keyring) reencrypt(ct []byte, keyID, aad string) ([]byte, string, error) {
	der, err := k.decrypt(ct, keyID, aad)
	if err != nil {
		return nil, "", err
	}
	defer clear(der)
	return k.encrypt(der, aad)
}
