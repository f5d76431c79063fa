package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store/storetest"
)

func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.Name, func(t *testing.T) {
			t.Parallel()
			runSuite(t, b)
		})
	}
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func testFreshState(t *testing.T, b backend) {
	u := b.URL(t)
	db := open(t, u, newKeyring(t, secretA))
	st := mustState(t, db)
	if !uuidPattern.MatchString(st.ID) {
		t.Errorf("ID: got %q, want a version 4 UUID", st.ID)
	}
	want := pushcert.State{ID: st.ID, Version: 1, UploadStatus: pushcert.UploadNone}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("got %+v, want %+v", st, want)
	}
	if _, err := db.ActiveKey(t.Context()); !errors.Is(err, pushcert.ErrNotFound) {
		t.Errorf("ActiveKey: got %v, want ErrNotFound", err)
	}
	if ks := mustPending(t, db, time.Time{}); len(ks) != 0 {
		t.Errorf("pending keys: got %d, want 0", len(ks))
	}
	if es := mustEvents(t, db); len(es) != 0 {
		t.Errorf("events: got %d, want 0", len(es))
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping: got %v, want nil", err)
	}
	db.Close()
	if got := mustState(t, open(t, u, newKeyring(t, secretA))).ID; got != st.ID {
		t.Errorf("ID after reopen: got %q, want %q", got, st.ID)
	}
}

func testPendingKeys(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456789, zone)
	var added []pushcert.PendingKey
	for i := range 3 {
		k := newPending(t, f.keys[i], t0.Add(time.Duration(i)*time.Hour))
		k.VendorSigned = i == 1
		if err := db.AddPendingKey(t.Context(), k, csrEvent(k)); err != nil {
			t.Fatalf("AddPendingKey: %v", err)
		}
		added = append(added, k)
	}
	want := func(i int) pushcert.PendingKey {
		k := added[i]
		k.CreatedAt = utc(k.CreatedAt)
		k.CreatedBy = withoutRole(k.CreatedBy)
		return k
	}

	tests := []struct {
		name  string
		since time.Time
		want  []int
	}{
		{"all", time.Time{}, []int{2, 1, 0}},
		{"since the second, inclusive", t0.Add(time.Hour), []int{2, 1}},
		{"since just after the second", t0.Add(time.Hour + time.Microsecond), []int{2}},
		{"since after all", t0.Add(3 * time.Hour), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustPending(t, db, tt.since)
			var wantKeys []pushcert.PendingKey
			for _, i := range tt.want {
				wantKeys = append(wantKeys, want(i))
			}
			if !reflect.DeepEqual(got, wantKeys) {
				t.Errorf("got %+v, want %+v", got, wantKeys)
			}
		})
	}

	if v := mustState(t, db).Version; v != 1 {
		t.Errorf("version after adding pending keys: got %d, want 1", v)
	}
	es := mustEvents(t, db)
	if len(es) != 3 || es[0].Kind != pushcert.EventCSRGenerated || es[0].Detail != "pending key "+added[2].ID {
		t.Errorf("events: got %+v, want 3 csr_generated, newest for %s", es, added[2].ID)
	}

	n, err := db.PrunePendingKeys(t.Context(), t0.Add(90*time.Minute))
	if err != nil || n != 2 {
		t.Errorf("PrunePendingKeys: got %d, %v, want 2, nil", n, err)
	}
	if got := mustPending(t, db, time.Time{}); !reflect.DeepEqual(got, []pushcert.PendingKey{want(2)}) {
		t.Errorf("after prune: got %+v, want only %s", got, added[2].ID)
	}
	if n, err := db.PrunePendingKeys(t.Context(), t0); err != nil || n != 0 {
		t.Errorf("PrunePendingKeys again: got %d, %v, want 0, nil", n, err)
	}

	dup := added[2]
	if err := db.AddPendingKey(t.Context(), dup, csrEvent(dup)); err == nil {
		t.Errorf("AddPendingKey with a used id: got nil, want error")
	}
	noID := newPending(t, f.keys[0], t0)
	noID.ID = ""
	if err := db.AddPendingKey(t.Context(), noID, csrEvent(noID)); err == nil {
		t.Errorf("AddPendingKey without id: got nil, want error")
	}
	if got := len(mustEvents(t, db)); got != 3 {
		t.Errorf("events after refused adds: got %d, want 3", got)
	}
}

func testLatestPendingKey(t *testing.T, b backend) {
	u := b.URL(t)
	db := open(t, u, newKeyring(t, secretA))
	f := fixtures(t)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)

	if _, err := db.LatestPendingKey(t.Context(), time.Time{}); !errors.Is(err, pushcert.ErrNotFound) {
		t.Fatalf("LatestPendingKey of none: got %v, want ErrNotFound", err)
	}
	var added []pushcert.PendingKey
	for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(time.Hour)} {
		k := newPending(t, f.keys[i], at)
		k.VendorSigned = i == 1
		if err := db.AddPendingKey(t.Context(), k, csrEvent(k)); err != nil {
			t.Fatalf("AddPendingKey: %v", err)
		}
		added = append(added, k)
	}
	// want is added[i] as the store returns it: no private key.
	want := func(i int) pushcert.PendingKey {
		k := added[i]
		k.CreatedAt = utc(k.CreatedAt)
		k.CreatedBy = withoutRole(k.CreatedBy)
		k.KeyDER = nil
		return k
	}
	tests := []struct {
		name  string
		since time.Time
		want  int // index into added; -1 for ErrNotFound
	}{
		// added[1] and added[2] share a time: the one stored later is newer.
		{"all", time.Time{}, 2},
		{"since the newest, inclusive", t0.Add(time.Hour), 2},
		{"since after all", t0.Add(time.Hour + time.Microsecond), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.LatestPendingKey(t.Context(), tt.since)
			if tt.want < 0 {
				if !errors.Is(err, pushcert.ErrNotFound) {
					t.Errorf("got %+v, %v, want ErrNotFound", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, want(tt.want)) {
				t.Errorf("got %+v, %v, want %+v", got, err, want(tt.want))
			}
		})
	}

	// It agrees with the newest of PendingKeys, but for the private key.
	all := mustPending(t, db, time.Time{})
	all[0].KeyDER = nil
	if got, err := db.LatestPendingKey(t.Context(), time.Time{}); err != nil || !reflect.DeepEqual(got, all[0]) {
		t.Errorf("got %+v, %v, want the newest of PendingKeys %+v", got, err, all[0])
	}

	// A consumed key is no longer pending: the next newest is the latest.
	if _, err := db.Activate(t.Context(), activation(0, issue(t, f.ca, f.keys[2], ""), added[2].ID, t0.Add(2*time.Hour))); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if got, err := db.LatestPendingKey(t.Context(), time.Time{}); err != nil || !reflect.DeepEqual(got, want(1)) {
		t.Errorf("after consuming the newest: got %+v, %v, want %+v", got, err, want(1))
	}

	// It decrypts nothing: it works with a keyring that cannot open the
	// stored keys, where PendingKeys cannot.
	db.Close()
	db = open(t, u, newKeyring(t, secretB))
	if _, err := db.PendingKeys(t.Context(), time.Time{}); !errors.Is(err, ErrSecretMismatch) {
		t.Errorf("PendingKeys with another secret: got %v, want ErrSecretMismatch", err)
	}
	if got, err := db.LatestPendingKey(t.Context(), time.Time{}); err != nil || !reflect.DeepEqual(got, want(1)) {
		t.Errorf("with another secret: got %+v, %v, want %+v", got, err, want(1))
	}
}

func testPendingKeysByHash(t *testing.T, b backend) {
	u := b.URL(t)
	f := fixtures(t)
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 123456789, time.UTC)

	// The first key is stored under a secret the store is then reopened
	// without: it can no longer be decrypted, and finding the others must
	// not try to.
	db := open(t, u, newKeyring(t, secretB))
	unreadable := addPending(t, db, f.keys[0], t0)
	db.Close()
	db = open(t, u, newKeyring(t, secretA))
	older := addPending(t, db, f.keys[1], t0)
	newer := addPending(t, db, f.keys[2], t0.Add(time.Hour))
	consumed := addPending(t, db, f.keys[3], t0.Add(time.Hour))
	if _, err := db.Activate(t.Context(), activation(0, issue(t, f.ca, f.keys[3], ""), consumed.ID, t0.Add(2*time.Hour))); err != nil {
		t.Fatalf("Activate: %v", err)
	}
	stored := func(k pushcert.PendingKey) []pushcert.PendingKey {
		k.CreatedAt = utc(k.CreatedAt)
		k.CreatedBy = withoutRole(k.CreatedBy)
		return []pushcert.PendingKey{k}
	}

	tests := []struct {
		name  string
		hash  string
		since time.Time
		want  []pushcert.PendingKey
	}{
		{"the older key", older.PublicKeyHash, time.Time{}, stored(older)},
		{"the newer key", newer.PublicKeyHash, time.Time{}, stored(newer)},
		{"since its time, inclusive", newer.PublicKeyHash, t0.Add(time.Hour), stored(newer)},
		{"created before since", older.PublicKeyHash, t0.Add(time.Microsecond), nil},
		{"consumed", consumed.PublicKeyHash, time.Time{}, nil},
		{"no such hash", strings.Repeat("0", 64), time.Time{}, nil},
		{"empty hash", "", time.Time{}, nil},
		{"hash in SQL", "' OR '1'='1", time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.PendingKeysByHash(t.Context(), tt.hash, tt.since)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %d keys %+v, %v; want %d keys %+v", len(got), got, err, len(tt.want), tt.want)
			}
		})
	}
	if _, err := db.PendingKeys(t.Context(), time.Time{}); !errors.Is(err, ErrSecretMismatch) {
		t.Errorf("PendingKeys with an unreadable key: got %v, want ErrSecretMismatch", err)
	}
	_, err := db.PendingKeysByHash(t.Context(), unreadable.PublicKeyHash, time.Time{})
	assertMismatch(t, "PendingKeysByHash of the unreadable key", err)

	// The lookup is indexed (migration 0003).
	q := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'pending_keys_public_key_hash'`
	if b.Name == "postgres" {
		q = `SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'pending_keys_public_key_hash'`
	}
	if got := count(t, db, q); got != 1 {
		t.Errorf("index on public_key_hash: got %d, want 1", got)
	}
}

func testActivateWithPending(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	topic := "com.apple.mgmt.External.4a7c1d2e-0000-4000-8000-000000000001"
	at := time.Date(2025, 4, 2, 8, 30, 0, 987654321, time.Local)

	k1 := addPending(t, db, f.keys[0], at.Add(-time.Hour))
	other := addPending(t, db, f.keys[2], at.Add(-time.Hour))
	c1 := issue(t, f.ca, f.keys[0], topic)
	a1 := activation(1, c1, k1.ID, at)
	st, err := db.Activate(t.Context(), a1)
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	wantCert := c1
	wantCert.NotBefore, wantCert.NotAfter = utc(c1.NotBefore), utc(c1.NotAfter)
	want := pushcert.State{
		ID: st.ID, Version: 2, AppleID: "it@example.com", Certificate: &wantCert,
		UploadStatus: pushcert.UploadSucceeded, LastModified: utc(at), LastModifiedBy: withoutRole(admin),
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("returned state: got %+v, want %+v", st, want)
	}
	if got := mustState(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("State: got %+v, want %+v", got, want)
	}
	if got := mustActiveKey(t, db); !bytes.Equal(got, k1.KeyDER) {
		t.Errorf("active key is not the pending key's")
	}
	if got := mustPending(t, db, time.Time{}); len(got) != 1 || got[0].ID != other.ID {
		t.Errorf("pending after activation: got %d keys, want only %s", len(got), other.ID)
	}
	if got := count(t, db, `SELECT COUNT(*) FROM pending_keys WHERE consumed_at IS NOT NULL`); got != 1 {
		t.Errorf("consumed pending keys: got %d, want 1", got)
	}
	if hs := mustHistory(t, db); len(hs) != 0 {
		t.Errorf("history after first activation: got %d rows, want 0", len(hs))
	}
	es := mustEvents(t, db)
	wantEvent := a1.Event
	wantEvent.ID, wantEvent.At, wantEvent.NotAfter, wantEvent.Actor = es[0].ID, utc(at), utc(c1.NotAfter), withoutRole(admin)
	if len(es) != 3 || !reflect.DeepEqual(es[0], wantEvent) {
		t.Errorf("events: got %+v, want 3 with newest %+v", es, wantEvent)
	}

	// Renewal with a new key: the first certificate and key go to history.
	k2 := addPending(t, db, f.keys[1], at)
	c2 := issue(t, f.ca, f.keys[1], topic)
	at2 := at.Add(time.Minute)
	a2 := activation(2, c2, k2.ID, at2)
	a2.AppleID = "it2@example.com"
	st2, err := db.Activate(t.Context(), a2)
	if err != nil {
		t.Fatalf("second Activate: %v", err)
	}
	if st2.Version != 3 || st2.Certificate.SerialNumber != c2.SerialNumber || st2.AppleID != "it2@example.com" {
		t.Errorf("second activation: got version %d serial %s apple id %s, want 3 %s it2@example.com",
			st2.Version, st2.Certificate.SerialNumber, st2.AppleID, c2.SerialNumber)
	}
	if got := mustActiveKey(t, db); !bytes.Equal(got, k2.KeyDER) {
		t.Errorf("active key after renewal is not the second pending key's")
	}
	hs := mustHistory(t, db)
	wantHist := []historyRow{{ID: hs[0].ID, ReplacedAt: utc(at2), AppleID: "it@example.com", Cert: wantCert, KeyDER: k1.KeyDER}}
	if !reflect.DeepEqual(hs, wantHist) {
		t.Errorf("history: got %+v, want %+v", hs, wantHist)
	}
	assertActiveMatchesKey(t, db)
}

func testActivateKeepsActiveKey(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	st, c1 := activateNew(t, db, f.keys[0], "")
	pend := addPending(t, db, f.keys[1], testNow())

	c2 := issue(t, f.ca, f.keys[0], c1.Topic)
	st2, err := db.Activate(t.Context(), activation(st.Version, c2, "", testNow()))
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if st2.Version != st.Version+1 || st2.Certificate.SerialNumber != c2.SerialNumber {
		t.Errorf("got version %d serial %s, want %d %s", st2.Version, st2.Certificate.SerialNumber, st.Version+1, c2.SerialNumber)
	}
	if got := mustActiveKey(t, db); !bytes.Equal(got, keyDER(t, f.keys[0])) {
		t.Errorf("active key changed, want it kept")
	}
	if hs := mustHistory(t, db); len(hs) != 1 || hs[0].Cert.SerialNumber != c1.SerialNumber || !bytes.Equal(hs[0].KeyDER, keyDER(t, f.keys[0])) {
		t.Errorf("history: got %d rows, want the first certificate with its key", len(hs))
	}
	if got := mustPending(t, db, time.Time{}); len(got) != 1 || got[0].ID != pend.ID {
		t.Errorf("pending keys: got %d, want %s untouched", len(got), pend.ID)
	}
	assertActiveMatchesKey(t, db)
}

func testActivateErrors(t *testing.T, b backend) {
	f := fixtures(t)
	tests := []struct {
		name   string
		setup  func(t *testing.T, db *DB) pushcert.Activation
		wantIs error
	}{
		{"no active key to keep", func(t *testing.T, db *DB) pushcert.Activation {
			return activation(0, issue(t, f.ca, f.keys[0], ""), "", testNow())
		}, pushcert.ErrNotFound},
		{"unknown pending key", func(t *testing.T, db *DB) pushcert.Activation {
			activateNew(t, db, f.keys[0], "")
			return activation(0, issue(t, f.ca, f.keys[1], ""), "no-such-key", testNow())
		}, pushcert.ErrNotFound},
		{"consumed pending key", func(t *testing.T, db *DB) pushcert.Activation {
			k := addPending(t, db, f.keys[1], testNow())
			if _, err := db.Activate(t.Context(), activation(0, issue(t, f.ca, f.keys[1], ""), k.ID, testNow())); err != nil {
				t.Fatalf("Activate: %v", err)
			}
			return activation(0, issue(t, f.ca, f.keys[1], ""), k.ID, testNow())
		}, pushcert.ErrNotFound},
		{"no certificate", func(t *testing.T, db *DB) pushcert.Activation {
			k := addPending(t, db, f.keys[1], testNow())
			return activation(0, pushcert.Certificate{}, k.ID, testNow())
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := open(t, b.URL(t), newKeyring(t, secretA))
			a := tt.setup(t, db)
			before := takeSnapshot(t, db)
			_, err := db.Activate(t.Context(), a)
			if err == nil || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Errorf("got %v, want an error matching %v", err, tt.wantIs)
			}
			assertUnchanged(t, db, before)
		})
	}
}

func testStaleVersion(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	st, c1 := activateNew(t, db, f.keys[0], "")
	k := addPending(t, db, f.keys[1], testNow())
	stale := st.Version - 1
	writes := []struct {
		name string
		do   func() error
	}{
		{"activate", func() error {
			_, err := db.Activate(t.Context(), activation(stale, issue(t, f.ca, f.keys[1], c1.Topic), k.ID, testNow()))
			return err
		}},
		{"activate ahead", func() error {
			_, err := db.Activate(t.Context(), activation(st.Version+1, issue(t, f.ca, f.keys[1], c1.Topic), k.ID, testNow()))
			return err
		}},
		{"record upload failure", func() error {
			_, err := db.RecordUploadFailure(t.Context(), stale, "expired", pushcert.Event{Kind: pushcert.EventUploadFailed})
			return err
		}},
		{"set apple id", func() error {
			_, err := db.SetAppleID(t.Context(), stale, "new@example.com", pushcert.Event{Kind: pushcert.EventAppleIDChanged})
			return err
		}},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			before := takeSnapshot(t, db)
			if err := w.do(); !errors.Is(err, pushcert.ErrConflict) {
				t.Errorf("got %v, want ErrConflict", err)
			}
			assertUnchanged(t, db, before)
		})
	}
}

func testConcurrentWriters(t *testing.T, b backend) {
	const writers = 20
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	certs := make([]pushcert.Certificate, len(f.keys))
	for i, k := range f.keys {
		certs[i] = issue(t, f.ca, k, "")
	}
	pending := make([]pushcert.PendingKey, writers)
	for i := range pending {
		pending[i] = addPending(t, db, f.keys[i%len(f.keys)], testNow())
	}

	race := func(do func(i int) error) (wins []int) {
		t.Helper()
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range writers {
			wg.Go(func() {
				<-start
				err := do(i)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins = append(wins, i)
				case !errors.Is(err, pushcert.ErrConflict):
					t.Errorf("writer %d: got %v, want nil or ErrConflict", i, err)
				}
			})
		}
		close(start)
		wg.Wait()
		return wins
	}

	wins := race(func(i int) error {
		_, err := db.Activate(t.Context(), activation(1, certs[i%len(certs)], pending[i].ID, testNow()))
		return err
	})
	if len(wins) != 1 {
		t.Fatalf("Activate winners: got %d, want 1", len(wins))
	}
	st := mustState(t, db)
	if st.Version != 2 || st.Certificate.SerialNumber != certs[wins[0]%len(certs)].SerialNumber {
		t.Errorf("state: got version %d, want 2 with the winner's certificate", st.Version)
	}
	if got := len(mustPending(t, db, time.Time{})); got != writers-1 {
		t.Errorf("unconsumed pending keys: got %d, want %d", got, writers-1)
	}
	assertActiveMatchesKey(t, db)

	wins = race(func(i int) error {
		_, err := db.SetAppleID(t.Context(), 2, fmt.Sprintf("it%d@example.com", i), pushcert.Event{Kind: pushcert.EventAppleIDChanged, Actor: admin})
		return err
	})
	if len(wins) != 1 {
		t.Fatalf("SetAppleID winners: got %d, want 1", len(wins))
	}
	st = mustState(t, db)
	if want := fmt.Sprintf("it%d@example.com", wins[0]); st.Version != 3 || st.AppleID != want {
		t.Errorf("state: got version %d apple id %s, want 3 %s", st.Version, st.AppleID, want)
	}
	if got := len(mustEvents(t, db)); got != writers+2 {
		t.Errorf("events: got %d, want %d", got, writers+2)
	}

	// Writers that expect no particular version all succeed, one after another.
	wins = race(func(i int) error {
		_, err := db.RecordUploadFailure(t.Context(), 0, fmt.Sprint("attempt ", i), pushcert.Event{Kind: pushcert.EventUploadFailed})
		return err
	})
	if got := mustState(t, db).Version; len(wins) != writers || got != 3+writers {
		t.Errorf("unchecked writers: got %d wins, version %d, want %d, %d", len(wins), got, writers, 3+writers)
	}
}

func testUploadFailure(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	st, _ := activateNew(t, db, f.keys[0], "")
	key := mustActiveKey(t, db)
	e := pushcert.Event{At: testNow(), Kind: pushcert.EventUploadFailed, Actor: admin, Detail: "the certificate has expired"}
	got, err := db.RecordUploadFailure(t.Context(), st.Version, "the certificate has expired", e)
	if err != nil {
		t.Fatalf("RecordUploadFailure: %v", err)
	}
	want := st
	want.Version++
	want.UploadStatus = pushcert.UploadFailed
	want.UploadFailureReason = "the certificate has expired"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if !bytes.Equal(mustActiveKey(t, db), key) {
		t.Errorf("active key changed")
	}
	if es := mustEvents(t, db); es[0].Kind != pushcert.EventUploadFailed || es[0].Detail != e.Detail {
		t.Errorf("newest event: got %+v, want the failure", es[0])
	}

	// The next success clears the reason.
	st2, _ := activateNew(t, db, f.keys[1], st.Certificate.Topic)
	if st2.UploadStatus != pushcert.UploadSucceeded || st2.UploadFailureReason != "" {
		t.Errorf("after success: got %q %q, want succeeded with no reason", st2.UploadStatus, st2.UploadFailureReason)
	}
}

func testAppleID(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	st, _ := activateNew(t, db, f.keys[0], "")
	editor := auth.User{Subject: "sub-bob", Name: "Bob", Email: "bob@example.com", Role: auth.RoleAdmin}
	at := testNow().Add(time.Minute)
	got, err := db.SetAppleID(t.Context(), st.Version, "new@example.com",
		pushcert.Event{At: at, Kind: pushcert.EventAppleIDChanged, Actor: editor, Detail: "from it@example.com"})
	if err != nil {
		t.Fatalf("SetAppleID: %v", err)
	}
	want := st
	want.Version++
	want.AppleID = "new@example.com"
	want.LastModified = utc(at)
	want.LastModifiedBy = withoutRole(editor)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := mustState(t, db); !reflect.DeepEqual(got, want) {
		t.Errorf("State: got %+v, want %+v", got, want)
	}
	es := mustEvents(t, db)
	if es[0].Kind != pushcert.EventAppleIDChanged || es[0].Actor != withoutRole(editor) || es[0].Detail != "from it@example.com" {
		t.Errorf("newest event: got %+v, want the apple id change", es[0])
	}
}

func testEvents(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	at := time.Date(2025, 5, 6, 7, 8, 9, 1000, time.UTC)
	notAfter := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	var want []pushcert.Event
	for i := range 5 {
		e := pushcert.Event{At: at.Add(time.Duration(i) * time.Second), Kind: pushcert.EventUploadFailed, Actor: admin,
			Serial: fmt.Sprint("SERIAL", i), Topic: "topic", Detail: fmt.Sprint("attempt ", i)}
		if i%2 == 0 {
			e.NotAfter = notAfter
		}
		if _, err := db.RecordUploadFailure(t.Context(), 0, "reason", e); err != nil {
			t.Fatalf("RecordUploadFailure: %v", err)
		}
		e.Actor = withoutRole(admin)
		want = append([]pushcert.Event{e}, want...)
	}
	got := mustEvents(t, db)
	for i := range got {
		if i > 0 && got[i].ID >= got[i-1].ID {
			t.Errorf("event ids: got %d after %d, want descending", got[i].ID, got[i-1].ID)
		}
		want[i].ID = got[i].ID
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	two, err := db.Events(t.Context(), 2)
	if err != nil || !reflect.DeepEqual(two, want[:2]) {
		t.Errorf("Events(2): got %+v, %v, want %+v", two, err, want[:2])
	}
}

func testTimePrecision(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	times := []time.Time{
		time.Date(2025, 1, 2, 3, 4, 5, 999999999, time.FixedZone("", -7*3600)),
		time.Date(1999, 12, 31, 23, 59, 59, 1, time.UTC),
		time.Date(2100, 6, 1, 0, 0, 0, 500, time.Local),
		testNow(),
	}
	for _, at := range times {
		st, err := db.SetAppleID(t.Context(), 0, "x@example.com", pushcert.Event{At: at, Kind: pushcert.EventAppleIDChanged})
		if err != nil {
			t.Fatalf("SetAppleID: %v", err)
		}
		got := mustState(t, db).LastModified
		if got != utc(at) || st.LastModified != utc(at) {
			t.Errorf("got %v (returned %v), want %v", got, st.LastModified, utc(at))
		}
		if e := mustEvents(t, db)[0]; e.At != utc(at) || !e.NotAfter.IsZero() {
			t.Errorf("event: got at %v not after %v, want %v and zero", e.At, e.NotAfter, utc(at))
		}
	}
}

func testKeysEncrypted(t *testing.T, b backend) {
	u := b.URL(t)
	db := open(t, u, newKeyring(t, secretA))
	f := fixtures(t)
	activateNew(t, db, f.keys[0], "")
	activateNew(t, db, f.keys[1], "")
	addPending(t, db, f.keys[2], testNow())

	var secrets [][]byte
	for _, k := range f.keys[:3] {
		// Only the private parts: the modulus is public and is rightly in
		// the certificates and CSRs.
		der := keyDER(t, k)
		d, p := k.D.Bytes(), k.Primes[0].Bytes()
		secrets = append(secrets, der, d[:32], p[:32], []byte(base64.StdEncoding.EncodeToString(der)))
	}
	check := func(where string, raw []byte) {
		t.Helper()
		for _, s := range secrets {
			if bytes.Contains(raw, s) {
				t.Errorf("%s contains private key bytes", where)
			}
		}
	}
	var rows int
	for _, table := range []string{"installation", "pending_keys", "certificate_history"} {
		r, err := db.sql.QueryContext(t.Context(), `SELECT key_ciphertext, key_id FROM `+table+` WHERE key_ciphertext IS NOT NULL`)
		if err != nil {
			t.Fatalf("query %s: %v", table, err)
		}
		for r.Next() {
			var ct []byte
			var keyID string
			if err := r.Scan(&ct, &keyID); err != nil {
				t.Fatalf("scan %s: %v", table, err)
			}
			rows++
			check(table, ct)
			if keyID != db.keys.CurrentID() {
				t.Errorf("%s key id: got %q, want %q", table, keyID, db.keys.CurrentID())
			}
		}
		r.Close()
	}
	if rows != 5 {
		t.Errorf("encrypted keys: got %d, want 5 (1 active, 1 history, 3 pending)", rows)
	}
	if path, ok := strings.CutPrefix(u, "sqlite:"); ok {
		for _, name := range []string{path, path + "-wal"} {
			raw, err := os.ReadFile(name)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("read database file: %v", err)
			}
			check(name, raw)
		}
	}
}

func testWrongKeyring(t *testing.T, b backend) {
	u := b.URL(t)
	db := open(t, u, newKeyring(t, secretA))
	f := fixtures(t)
	activateNew(t, db, f.keys[0], "")
	k := addPending(t, db, f.keys[1], testNow())
	db.Close()

	db = open(t, u, newKeyring(t, secretB))
	before := takeSnapshotWithoutKeys(t, db)
	_, err := db.ActiveKey(t.Context())
	assertMismatch(t, "ActiveKey", err)
	_, err = db.PendingKeys(t.Context(), time.Time{})
	assertMismatch(t, "PendingKeys", err)
	_, err = db.Activate(t.Context(), activation(0, issue(t, f.ca, f.keys[1], ""), k.ID, testNow()))
	assertMismatch(t, "Activate", err)
	_, err = db.RotateKeys(t.Context(), pushcert.Event{Kind: pushcert.EventKeysRotated})
	assertMismatch(t, "RotateKeys", err)
	if after := takeSnapshotWithoutKeys(t, db); !reflect.DeepEqual(after, before) {
		t.Errorf("state after refused writes: got %+v, want %+v", after, before)
	}
}

func assertMismatch(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, ErrSecretMismatch) || !strings.Contains(err.Error(), "key-encryption secret does not match") {
		t.Errorf("%s: got %v, want ErrSecretMismatch", op, err)
	}
	if err != nil && (strings.Contains(err.Error(), secretA) || strings.Contains(err.Error(), secretB)) {
		t.Errorf("%s: error %q contains a secret", op, err)
	}
}

// takeSnapshotWithoutKeys is the part of a snapshot readable without the
// right keyring.
func takeSnapshotWithoutKeys(tb testing.TB, db *DB) []any {
	tb.Helper()
	return []any{mustState(tb, db), mustEvents(tb, db),
		count(tb, db, `SELECT COUNT(*) FROM pending_keys WHERE consumed_at IS NULL`),
		count(tb, db, `SELECT COUNT(*) FROM certificate_history`)}
}

func testAADBinding(t *testing.T, b backend) {
	db := open(t, b.URL(t), newKeyring(t, secretA))
	f := fixtures(t)
	activateNew(t, db, f.keys[0], "")
	k1 := addPending(t, db, f.keys[1], testNow())
	k2 := addPending(t, db, f.keys[2], testNow())
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.sql.ExecContext(t.Context(), db.d.rebind(q), args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var ct []byte
	var keyID string
	if err := db.sql.QueryRowContext(t.Context(), db.d.rebind(`SELECT key_ciphertext, key_id FROM pending_keys WHERE id = ?`), k1.ID).Scan(&ct, &keyID); err != nil {
		t.Fatalf("read pending: %v", err)
	}

	exec(`UPDATE pending_keys SET key_ciphertext = ?, key_id = ? WHERE id = ?`, ct, keyID, k2.ID)
	if _, err := db.PendingKeys(t.Context(), time.Time{}); err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Errorf("PendingKeys with a moved ciphertext: got %v, want an authentication error", err)
	}
	if _, err := db.PendingKeysByHash(t.Context(), k2.PublicKeyHash, time.Time{}); err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Errorf("PendingKeysByHash with a moved ciphertext: got %v, want an authentication error", err)
	}
	exec(`UPDATE installation SET key_ciphertext = ?, key_id = ?`, ct, keyID)
	if _, err := db.ActiveKey(t.Context()); err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Errorf("ActiveKey with a moved ciphertext: got %v, want an authentication error", err)
	}
	// A flipped bit fails too.
	ct[len(ct)-1] ^= 1
	exec(`UPDATE pending_keys SET key_ciphertext = ? WHERE id = ?`, ct, k1.ID)
	_, err := db.Activate(t.Context(), activation(0, issue(t, f.ca, f.keys[1], ""), k1.ID, testNow()))
	if err == nil || !strings.Contains(err.Error(), "does not authenticate") {
		t.Errorf("Activate with a tampered key: got %v, want an authentication error", err)
	}
}

func testRotateKeys(t *testing.T, b backend) {
	u := b.URL(t)
	db := open(t, u, newKeyring(t, secretA))
	f := fixtures(t)
	activateNew(t, db, f.keys[0], "")
	activateNew(t, db, f.keys[1], "")
	pend := addPending(t, db, f.keys[2], testNow())
	before := takeSnapshot(t, db)
	db.Close()

	rotated := newKeyring(t, secretB, secretA)
	db = open(t, u, rotated)
	n, err := db.RotateKeys(t.Context(), pushcert.Event{Kind: pushcert.EventKeysRotated, Actor: auth.System})
	if err != nil || n != 5 {
		t.Fatalf("RotateKeys: got %d, %v, want 5 (active, history, 3 pending of which 2 consumed), nil", n, err)
	}
	es := mustEvents(t, db)
	if es[0].Kind != pushcert.EventKeysRotated || !strings.Contains(es[0].Detail, "5 private keys") || es[0].Actor != auth.System {
		t.Errorf("newest event: got %+v, want keys_rotated for 5 keys by the system", es[0])
	}
	if got := mustState(t, db); !reflect.DeepEqual(got, before.State) {
		t.Errorf("state after rotation: got %+v, want %+v", got, before.State)
	}
	if n, err := db.RotateKeys(t.Context(), pushcert.Event{Kind: pushcert.EventKeysRotated}); err != nil || n != 0 {
		t.Errorf("second RotateKeys: got %d, %v, want 0, nil", n, err)
	}
	db.Close()

	db = open(t, u, newKeyring(t, secretB))
	after := takeSnapshot(t, db)
	if !bytes.Equal(after.ActiveKey, before.ActiveKey) || !reflect.DeepEqual(after.Pending, before.Pending) ||
		!reflect.DeepEqual(after.History, before.History) {
		t.Errorf("keys under the new secret differ from the originals")
	}
	if len(after.Pending) != 1 || after.Pending[0].ID != pend.ID {
		t.Errorf("pending: got %d keys, want %s", len(after.Pending), pend.ID)
	}
	db.Close()

	db = open(t, u, newKeyring(t, secretA))
	_, err = db.ActiveKey(t.Context())
	assertMismatch(t, "ActiveKey with only the old secret", err)
}

func testConcurrentOpen(t *testing.T, b backend) {
	u := b.URL(t)
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = Open(context.Background(), u, newKeyring(t, secretA))
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	id := mustState(t, dbs[0]).ID
	for i := range n {
		if got := mustState(t, dbs[i]).ID; got != id {
			t.Errorf("store %d ID: got %q, want %q", i, got, id)
		}
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if got := count(t, dbs[0], `SELECT COUNT(*) FROM schema_migrations`); got != len(ms) {
		t.Errorf("schema_migrations rows: got %d, want %d", got, len(ms))
	}
	if got := count(t, dbs[0], `SELECT COUNT(*) FROM installation`); got != 1 {
		t.Errorf("installation rows: got %d, want 1", got)
	}
}

func testReopen(t *testing.T, b backend) {
	u := b.URL(t)
	keys := newKeyring(t, secretA)
	db := open(t, u, keys)
	f := fixtures(t)
	activateNew(t, db, f.keys[0], "")
	activateNew(t, db, f.keys[1], "")
	addPending(t, db, f.keys[2], testNow())
	if _, err := db.RecordUploadFailure(t.Context(), 0, "bad file", pushcert.Event{Kind: pushcert.EventUploadFailed}); err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, db)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	assertUnchanged(t, open(t, u, keys), before)
}

var errInjected = errors.New("injected failure")

// testFailureInjection fails each statement of Activate in turn and checks
// that every failure leaves everything as it was.
func testFailureInjection(t *testing.T, b backend) {
	f := fixtures(t)
	tests := []struct {
		name    string
		prepare func(t *testing.T, db *DB) pushcert.Activation
	}{
		{"first certificate", func(t *testing.T, db *DB) pushcert.Activation {
			k := addPending(t, db, f.keys[0], testNow())
			return activation(1, issue(t, f.ca, f.keys[0], ""), k.ID, testNow())
		}},
		{"renewal with a pending key", func(t *testing.T, db *DB) pushcert.Activation {
			st, c := activateNew(t, db, f.keys[0], "")
			k := addPending(t, db, f.keys[1], testNow())
			return activation(st.Version, issue(t, f.ca, f.keys[1], c.Topic), k.ID, testNow())
		}},
		{"renewal keeping the key", func(t *testing.T, db *DB) pushcert.Activation {
			st, c := activateNew(t, db, f.keys[0], "")
			addPending(t, db, f.keys[1], testNow())
			return activation(st.Version, issue(t, f.ca, f.keys[0], c.Topic), "", testNow())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := open(t, b.URL(t), newKeyring(t, secretA))
			a := tt.prepare(t, db)
			before := takeSnapshot(t, db)
			for n := 1; ; n++ {
				if n > 30 {
					t.Fatalf("Activate still failing after %d statements", n)
				}
				db.beforeStmt = func(i int) error {
					if i == n {
						return errInjected
					}
					return nil
				}
				st, err := db.Activate(t.Context(), a)
				db.beforeStmt = nil
				if err == nil {
					if n < 5 {
						t.Errorf("Activate succeeded with statement %d failing", n)
					}
					if st.Version != before.State.Version+1 || st.Certificate.SerialNumber != a.Certificate.SerialNumber {
						t.Errorf("after success: got version %d serial %s, want %d %s",
							st.Version, st.Certificate.SerialNumber, before.State.Version+1, a.Certificate.SerialNumber)
					}
					assertActiveMatchesKey(t, db)
					break
				}
				if !errors.Is(err, errInjected) {
					t.Fatalf("statement %d: got %v, want the injected failure", n, err)
				}
				assertUnchanged(t, db, before)
			}
		})
	}
}

func TestOpenURL(t *testing.T) {
	keys := newKeyring(t, secretA)
	tests := []struct {
		url      string
		wantText string
	}{
		{"mysql://u:hunter2@host/db", "sqlite:"},
		{"/var/lib/pushcert.db", "postgres://"},
		{"sqlite:", "names no file"},
		{"sqlite://x.db", "not sqlite://"},
		{"sqlite:x.db?mode=ro", "a plain file path"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := Open(t.Context(), tt.url, keys)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("got %v, want an error containing %q", err, tt.wantText)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
	t.Run("relative sqlite path", func(t *testing.T) {
		t.Chdir(t.TempDir())
		db := open(t, "sqlite:relative.db", keys)
		mustState(t, db)
		if _, err := os.Stat("relative.db"); err != nil {
			t.Errorf("database file: got %v, want it in the working directory", err)
		}
	})
	t.Run("no keyring", func(t *testing.T) {
		if _, err := Open(t.Context(), storetest.SQLiteURL(t), nil); err == nil {
			t.Errorf("got nil, want an error")
		}
	})
}

func TestOpenBadURLHidesPassword(t *testing.T) {
	kr, err := NewKeyring(secretA)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{
		"host=db user=x password=s3cret",
		"u:s3cret@h/db",
		"postgres//u:s3cret@h/db",
		"mysql://u:s3cret@h/db?password=s3cret",
	} {
		_, err := Open(t.Context(), u, kr)
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "database url") {
			t.Errorf("Open(%q): got %v, want an error about the database url without the password", "…", err)
		}
	}
}
