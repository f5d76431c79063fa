package store

import (
	"context"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/pushcert"
)

const secretC = "secret-c-0123456789abcdef"

func TestKeyIDs(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			t.Run("random and shared", func(t *testing.T) { testKeyIDsRandom(t, b) })
			t.Run("earlier versions' IDs relabelled", func(t *testing.T) { testKeyIDsLegacy(t, b) })
			t.Run("unreadable keys counted", func(t *testing.T) { testUnreadableKeys(t, b) })
			t.Run("keys stored since are judged", func(t *testing.T) { testUnreadableKeysLater(t, b) })
		})
	}
}

// storeKeys stores an active key, one in history and an unconsumed pending
// key, and returns how many key rows that makes (consumed pending keys
// stay until pruned).
func storeKeys(t *testing.T, db *DB) int {
	t.Helper()
	f := fixtures(t)
	activateNew(t, db, f.keys[0], "")
	activateNew(t, db, f.keys[1], "")
	addPending(t, db, f.keys[2], testNow())
	return 1 + 1 + 3
}

// keyIDCounts counts the stored keys by key ID.
func keyIDCounts(t *testing.T, db *DB) map[string]int {
	t.Helper()
	counts, err := storedKeyIDs(t.Context(), db.sql)
	if err != nil {
		t.Fatal(err)
	}
	return counts
}

func mustUnreadable(t *testing.T, db *DB) int {
	t.Helper()
	n, err := db.UnreadableKeys(t.Context())
	if err != nil {
		t.Fatalf("UnreadableKeys: %v", err)
	}
	return n
}

func testKeyIDsRandom(t *testing.T, b backend) {
	u := b.URL(t)
	one := newKeyring(t, secretA)
	db := open(t, u, one)
	n := storeKeys(t, db)
	id := db.keys.CurrentID()
	if got := keyIDCounts(t, db); len(got) != 1 || got[id] != n {
		t.Errorf("key IDs: got %v, want all %d under %q", got, n, id)
	}
	if len(id) != 32 || id == one.current.legacyID || strings.Contains(id, one.current.legacyID) {
		t.Errorf("key ID %q: want 32 random hex digits, not the key's hash %q", id, one.current.legacyID)
	}
	// Another process with the same secret finds the same ID, whatever it
	// drew itself.
	other := open(t, u, newKeyring(t, secretA))
	if got := other.keys.CurrentID(); got != id {
		t.Errorf("second store's key ID: got %q, want the stored %q", got, id)
	}
	addPending(t, other, fixtures(t).keys[3], testNow())
	if got := keyIDCounts(t, db); len(got) != 1 || got[id] != n+1 {
		t.Errorf("key IDs after the second store wrote: got %v, want all %d under %q", got, n+1, id)
	}
	// History never names a key ID.
	if _, err := db.RotateKeys(t.Context(), pushcert.Event{Kind: pushcert.EventKeysRotated, Actor: admin}); err != nil {
		t.Fatal(err)
	}
	for _, e := range mustEvents(t, db) {
		if strings.Contains(e.Detail, id) || strings.Contains(e.Detail, one.current.legacyID) || strings.Contains(e.Detail, "under key") {
			t.Errorf("event %s detail %q names a key ID", e.Kind, e.Detail)
		}
	}
}

func testKeyIDsLegacy(t *testing.T, b backend) {
	u := b.URL(t)
	kr := newKeyring(t, secretA)
	db := open(t, u, kr)
	n := storeKeys(t, db)
	// Make the database what earlier versions left: keys labelled with
	// the hash of the derived key, and a history naming it.
	legacy := kr.current.legacyID
	for _, q := range []string{
		`UPDATE installation SET key_id = '` + legacy + `' WHERE key_ciphertext IS NOT NULL`,
		`UPDATE pending_keys SET key_id = '` + legacy + `'`,
		`UPDATE certificate_history SET key_id = '` + legacy + `'`,
		`DELETE FROM key_encryption_keys`,
		`INSERT INTO audit_events (at, kind, actor_subject, actor_name, actor_email, serial, topic, detail)
			VALUES ('2025-03-01T10:00:00.000000Z', 'keys_rotated', 's', 'n', 'e', '', '', '5 private keys re-encrypted under key ` + legacy + `')`,
	} {
		if b.Name == "postgres" {
			q = strings.Replace(q, "'2025-03-01T10:00:00.000000Z'", "TIMESTAMPTZ '2025-03-01 10:00:00Z'", 1)
		}
		if _, err := db.sql.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	// Another secret reads nothing and relabels nothing.
	wrong := open(t, u, newKeyring(t, secretB))
	if got := mustUnreadable(t, wrong); got != n {
		t.Errorf("unreadable with another secret: got %d, want %d", got, n)
	}
	if got := keyIDCounts(t, wrong); got[legacy] != n {
		t.Errorf("key IDs after opening with another secret: got %v, want %d under the old %q", got, n, legacy)
	}
	wrong.Close()

	// The right secret relabels every key with its random ID, reads them
	// all, and leaves no trace of the old ID in history.
	db = open(t, u, newKeyring(t, secretA))
	id := db.keys.CurrentID()
	if got := keyIDCounts(t, db); len(got) != 1 || got[id] != n {
		t.Errorf("key IDs after reopening: got %v, want all %d under %q", got, n, id)
	}
	if got := mustUnreadable(t, db); got != 0 {
		t.Errorf("unreadable: got %d, want 0", got)
	}
	mustActiveKey(t, db)
	if got := len(mustPending(t, db, testNow().AddDate(-1, 0, 0))); got != 1 {
		t.Errorf("pending keys: got %d, want 1", got)
	}
	events := mustEvents(t, db)
	for _, e := range events {
		if strings.Contains(e.Detail, legacy) {
			t.Errorf("event %s detail %q still names the old key ID", e.Kind, e.Detail)
		}
	}
	if want := "5 private keys re-encrypted under the current key-encryption secret"; events[0].Detail != want {
		t.Errorf("redacted detail: got %q, want %q", events[0].Detail, want)
	}
}

func testUnreadableKeys(t *testing.T, b backend) {
	u := b.URL(t)
	db := open(t, u, newKeyring(t, secretA))
	if got := mustUnreadable(t, db); got != 0 {
		t.Errorf("empty database: got %d, want 0", got)
	}
	n := storeKeys(t, db)
	db.Close()
	tests := []struct {
		name    string
		keys    *Keyring
		want    int
		wantErr bool
	}{
		{"the secret they were stored with", newKeyring(t, secretA), 0, false},
		{"another secret", newKeyring(t, secretB), n, true},
		{"another secret, theirs as previous", newKeyring(t, secretB, secretA), 0, false},
		{"another secret, a third as previous", newKeyring(t, secretB, secretC), n, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := open(t, u, tt.keys)
			if got := mustUnreadable(t, db); got != tt.want {
				t.Errorf("got %d unreadable, want %d", got, tt.want)
			}
			// Asking again answers from the verdicts kept.
			if got := mustUnreadable(t, db); got != tt.want {
				t.Errorf("asked again: got %d unreadable, want %d", got, tt.want)
			}
			if _, err := db.ActiveKey(t.Context()); (err != nil) != tt.wantErr {
				t.Errorf("ActiveKey: got %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

// testUnreadableKeysLater: a running process sees keys another one stored
// after it started, under a secret it holds or not.
func testUnreadableKeysLater(t *testing.T, b backend) {
	u := b.URL(t)
	onlyA := open(t, u, newKeyring(t, secretA))
	n := storeKeys(t, onlyA)
	aThenC := open(t, u, newKeyring(t, secretA, secretC))
	for _, db := range []*DB{onlyA, aThenC} {
		if got := mustUnreadable(t, db); got != 0 {
			t.Fatalf("before the rotation: got %d unreadable, want 0", got)
		}
	}
	// A third process rotates every key to secret C.
	rotator := open(t, u, newKeyring(t, secretC, secretA))
	if got, err := rotator.RotateKeys(context.Background(), pushcert.Event{Kind: pushcert.EventKeysRotated, Actor: admin}); err != nil || got != n {
		t.Fatalf("RotateKeys: got %d, %v, want %d", got, err, n)
	}
	if got := mustUnreadable(t, onlyA); got != n {
		t.Errorf("process without secret C: got %d unreadable, want %d", got, n)
	}
	if got := mustUnreadable(t, aThenC); got != 0 {
		t.Errorf("process with secret C as previous: got %d unreadable, want 0", got)
	}
	mustActiveKey(t, aThenC)
}
