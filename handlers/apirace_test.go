package handlers

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"net/http"
	"reflect"
	"sync"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
)

// raceColleague is the other admin whose write slips in.
var raceColleague = auth.User{Subject: "admin-2", Name: "Bo Admin", Email: "bo@example.com", Role: auth.RoleAdmin}

// raceStore is the real store with one hook: armed, it runs right after
// the next State read has returned from the database, before its caller
// sees the state. A test puts another writer's commit there, between a
// read and the write decided on it.
type raceStore struct {
	*store.DB
	mu        sync.Mutex
	afterRead func(read pushcert.State)
}

// arm makes fn run once, after the next successful State read.
func (s *raceStore) arm(fn func(read pushcert.State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.afterRead = fn
}

// State reads the real store's state, then runs the armed hook, if any.
func (s *raceStore) State(ctx context.Context) (pushcert.State, error) {
	st, err := s.DB.State(ctx)
	s.mu.Lock()
	fn := s.afterRead
	if err == nil {
		s.afterRead = nil
	}
	s.mu.Unlock()
	if fn != nil && err == nil {
		fn(st)
	}
	return st, err
}

// apiStored is everything a write can change: the resource, the active
// key (nil when there is none) and the newest audit event.
type apiStored struct {
	state pushcert.State
	key   []byte
	event pushcert.Event
}

func readStored(t *testing.T, db *store.DB) apiStored {
	t.Helper()
	ctx := context.Background()
	st, err := db.State(ctx)
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	key, err := db.ActiveKey(ctx)
	if err != nil && !errors.Is(err, pushcert.ErrNotFound) {
		t.Fatalf("active key: %v", err)
	}
	events, err := db.Events(ctx, 1)
	if err != nil || len(events) != 1 {
		t.Fatalf("newest event: got %d events, %v; want one", len(events), err)
	}
	return apiStored{state: st, key: key, event: events[0]}
}

// ifMatchRace is the API over a store whose State read can be followed by
// another admin's write, made through a second service over the same
// database, as another replica or a page's form would make it.
type ifMatchRace struct {
	f     *apiFixture
	rs    *raceStore
	other *pushcert.Service
}

func newIfMatchRace(t *testing.T) *ifMatchRace {
	t.Helper()
	var rs *raceStore
	f := newAPIFixtureOver(t, func(db *store.DB) pushcert.Store {
		rs = &raceStore{DB: db}
		return rs
	})
	other := pushcert.NewService(f.st, apiConfig(t, f.clk))
	return &ifMatchRace{f: f, rs: rs, other: other}
}

// send reads the ETag with a GET, then sends method with body and
// If-Match: that ETag, while write commits right after the API's read of
// the state, the one If-Match is checked against. It asserts that the
// answer is 412 resourceModified and that what write left is what stays
// stored, and returns it.
func (r *ifMatchRace) send(t *testing.T, method string, body []byte, write func(t *testing.T)) apiStored {
	t.Helper()
	get := r.f.do(t, http.MethodGet, testResource, nil)
	if get.Code != http.StatusOK {
		t.Fatalf("GET: got %d %s, want 200", get.Code, get.Body)
	}
	etag := get.Header().Get("ETag")
	read := readStored(t, r.f.st)
	var left *apiStored
	r.rs.arm(func(seen pushcert.State) {
		if seen.Version != read.state.Version {
			t.Errorf("the API read version %d, want %d, the one its ETag names", seen.Version, read.state.Version)
		}
		write(t)
		s := readStored(t, r.f.st)
		left = &s
	})
	w := r.f.do(t, method, testResource, body, "If-Match", etag)
	if left == nil {
		t.Fatalf("the other write never ran: the API wrote without reading the state first (got %d %s)", w.Code, w.Body)
	}
	if left.state.Version != read.state.Version+1 || left.event.Actor.Subject != raceColleague.Subject {
		t.Fatalf("the other write did not commit: version %d after %d, newest event by %q", left.state.Version, read.state.Version, left.event.Actor.Subject)
	}
	assertAPIError(t, w, http.StatusPreconditionFailed, apiCodeResourceModified, "Nothing was changed")
	after := readStored(t, r.f.st)
	if !reflect.DeepEqual(after, *left) {
		t.Errorf("stored: got %+v, newest event %+v;\nwant what the other write left, %+v, newest event %+v", after.state, after.event, left.state, left.event)
	}
	return after
}

// TestAPIIfMatchRaceWithAnotherWrite: If-Match holds up to the store, not
// only at the API's own read. Another admin's write that commits after the
// API checked If-Match, but before the service wrote, makes the request
// fail with 412 and change nothing: the other write's result stays stored,
// whole. (Checking If-Match against that read and then writing on whatever
// is current would overwrite the other write.)
func TestAPIIfMatchRaceWithAnotherWrite(t *testing.T) {
	ctx := context.Background()

	t.Run("PATCH certificate while another admin uploads a renewal", func(t *testing.T) {
		r := newIfMatchRace(t)
		topic := applesim.NewTopic()
		r.f.upload(t, topic, r.f.now().AddDate(1, 0, 0))
		// The colleague's renewal and the client's, each for a CSR of its
		// own; the client's expires later, so nothing but If-Match stops it.
		pk, err := r.other.GenerateCSR(ctx, raceColleague)
		if err != nil {
			t.Fatal(err)
		}
		renewal, err := r.f.ca.IssueForCSR(pk.CSRDER, applesim.Request{Topic: topic, NotAfter: r.f.now().AddDate(1, 6, 0)})
		if err != nil {
			t.Fatal(err)
		}
		mine := r.f.issue(t, topic, r.f.now().AddDate(2, 0, 0))
		body := jsonBody(t, map[string]string{"appleIdentifier": "client@example.com", "certificate": string(applesim.PEM(mine))})

		stored := r.send(t, http.MethodPatch, body, func(t *testing.T) {
			if _, err := r.other.Update(ctx, pushcert.Update{Actor: raceColleague, AppleID: "bo@example.com", Certificate: applesim.PEM(renewal)}); err != nil {
				t.Errorf("the colleague's renewal: got %v, want it made active", err)
			}
		})
		c := stored.state.Certificate
		if c == nil || stored.state.AppleID != "bo@example.com" {
			t.Fatalf("stored: got Apple ID %q and certificate %+v, want the colleague's renewal and bo@example.com", stored.state.AppleID, c)
		}
		active := parsePEMCertificate(t, []byte(c.PEM))
		if !bytes.Equal(active.Raw, renewal) {
			t.Errorf("active certificate: got serial %s, want the colleague's renewal", c.SerialNumber)
		}
		key, err := x509.ParsePKCS8PrivateKey(stored.key)
		if err != nil {
			t.Fatalf("active key: %v", err)
		}
		if signer, ok := key.(crypto.Signer); !ok || !reflect.DeepEqual(signer.Public(), active.PublicKey) {
			t.Errorf("active key: got another key, want the one of the colleague's CSR")
		}
	})

	t.Run("PATCH Apple ID while another admin changes it", func(t *testing.T) {
		r := newIfMatchRace(t)
		r.f.upload(t, applesim.NewTopic(), r.f.now().AddDate(1, 0, 0))
		before := r.f.snapshot(t)

		stored := r.send(t, http.MethodPatch, []byte(`{"appleIdentifier":"client@example.com"}`), func(t *testing.T) {
			if _, err := r.other.Update(ctx, pushcert.Update{Actor: raceColleague, AppleID: "bo@example.com"}); err != nil {
				t.Errorf("the colleague's Apple ID: got %v, want it saved", err)
			}
		})
		if stored.state.AppleID != "bo@example.com" {
			t.Errorf("Apple ID: got %q, want the colleague's bo@example.com", stored.state.AppleID)
		}
		if !reflect.DeepEqual(stored.state.Certificate, before.state.Certificate) || !reflect.DeepEqual(stored.key, before.key) {
			t.Errorf("active certificate: got %+v, want unchanged %+v", stored.state.Certificate, before.state.Certificate)
		}
	})

	t.Run("POST certificate while another admin's upload is refused", func(t *testing.T) {
		r := newIfMatchRace(t)
		// A refused upload makes the resource exist without a certificate:
		// a create is what comes next, and the ETag names that state.
		w := r.f.do(t, http.MethodPatch, testResource, jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": "not a certificate"}))
		assertAPIError(t, w, http.StatusBadRequest, pushcert.CodeInvalidCertificate)
		mine := r.f.issue(t, applesim.NewTopic(), r.f.now().AddDate(1, 0, 0))
		body := jsonBody(t, map[string]string{"appleIdentifier": testAppleID, "certificate": string(applesim.PEM(mine))})

		var refusal string
		stored := r.send(t, http.MethodPost, body, func(t *testing.T) {
			_, err := r.other.Update(ctx, pushcert.Update{Actor: raceColleague, Certificate: []byte("the colleague's wrong file")})
			var ve *pushcert.ValidationError
			if !errors.As(err, &ve) {
				t.Errorf("the colleague's upload: got %v, want a refusal", err)
				return
			}
			refusal = ve.Message
		})
		if stored.state.Certificate != nil || stored.key != nil {
			t.Errorf("got certificate %+v, want none: the create must not have happened", stored.state.Certificate)
		}
		if stored.state.UploadStatus != pushcert.UploadFailed || stored.state.UploadFailureReason != refusal {
			t.Errorf("upload status: got %s %q, want the colleague's refusal, failed %q", stored.state.UploadStatus, stored.state.UploadFailureReason, refusal)
		}
	})
}
