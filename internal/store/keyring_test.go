package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestNewKeyring(t *testing.T) {
	tests := []struct {
		name     string
		current  string
		previous []string
		wantErr  string
	}{
		{"current only", secretA, nil, ""},
		{"with previous", secretB, []string{secretA}, ""},
		{"short current", "x1y2z3", nil, "current key-encryption secret: secret is shorter than 16 bytes"},
		{"short previous", secretA, []string{secretB, "0123456789abcde"}, "previous key-encryption secret 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := NewKeyring(tt.current, tt.previous...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("got %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("got %v, want an error containing %q", err, tt.wantErr)
			case err != nil && containsAny(err.Error(), append([]string{tt.current}, tt.previous...)):
				t.Errorf("error %q contains a secret", err)
			case tt.wantErr == "" && len(k.CurrentID()) != 32:
				t.Errorf("CurrentID: got %q, want 32 hex digits", k.CurrentID())
			}
		})
	}
}

func TestKeyringEncrypt(t *testing.T) {
	a := newKeyring(t, secretA)
	again := newKeyring(t, secretA)
	b := newKeyring(t, secretB, secretA)
	// IDs are random, not derived from the secret: a store tells keyrings
	// of one secret the ID it has (see TestKeyIDs).
	if a.CurrentID() == again.CurrentID() || a.CurrentID() == a.current.legacyID {
		t.Errorf("CurrentID of the same secret: got %q and %q (hash %q), want random IDs", a.CurrentID(), again.CurrentID(), a.current.legacyID)
	}

	plain := []byte("private key bytes")
	ct, id, err := a.encrypt(plain, aadPending("1"))
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	ct2, _, _ := a.encrypt(plain, aadPending("1"))
	if bytes.Equal(ct, ct2) {
		t.Errorf("two encryptions of the same key are equal, want random nonces")
	}

	tests := []struct {
		name    string
		k       *Keyring
		ct      []byte
		id, aad string
		wantErr error
	}{
		{"same keyring", a, ct, id, aadPending("1"), nil},
		{"previous key of another keyring", b, ct, id, aadPending("1"), nil},
		{"same secret, ID not learnt", again, ct, id, aadPending("1"), nil},
		{"unknown key", newKeyring(t, secretB), ct, id, aadPending("1"), ErrSecretMismatch},
		{"other record", a, ct, id, aadPending("2"), errAny},
		{"other kind of record", a, ct, id, aadHistory("1"), errAny},
		{"truncated", a, ct[:10], id, aadPending("1"), errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.k.decrypt(tt.ct, tt.id, tt.aad)
			switch {
			case tt.wantErr == nil && (err != nil || !bytes.Equal(got, plain)):
				t.Errorf("got %q, %v, want %q, nil", got, err, plain)
			case tt.wantErr == errAny && err == nil:
				t.Errorf("got nil error, want one")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
		})
	}

	// Previous keys only decrypt.
	if _, id, _ := b.encrypt(plain, "x"); id != b.CurrentID() {
		t.Errorf("encrypting key: got %q, want the current %q", id, b.CurrentID())
	}
}

var errAny = errors.New("any error")

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
