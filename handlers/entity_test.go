package handlers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/store"
	"github.com/pushcert/pushcert/internal/testclock"
)

// entityUncached is the entity as writeEntity encoded it before the cache:
// every property marshalled on every request.
func entityUncached(t *testing.T, baseURL, prefix string, st pushcert.State, sel []string) []byte {
	t.Helper()
	fields := []apiField{
		{"@odata.context", baseURL + prefix + "/$metadata#deviceManagement/applePushNotificationCertificate/$entity"},
		{"@odata.type", apiEntityType},
		{"@odata.etag", apiETag(st)},
	}
	props := entityProperties(st)
	for _, name := range apiProperties {
		if sel == nil || slices.Contains(sel, name) {
			fields = append(fields, apiField{name, props[name]})
		}
	}
	body, err := marshalFields(fields)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestAPIEntityCacheOutput: the cached encoding answers byte for byte what
// encoding every property on each request answered, for every state,
// selection and version prefix, in any order of requests.
func TestAPIEntityCacheOutput(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 891000000, time.UTC)
	cert := &pushcert.Certificate{
		Topic: "com.apple.mgmt.External.0d3e5b4a-0000-4000-8000-000000000001", CommonName: "APSP:0d3e5b4a",
		SerialNumber: "0A1B", Issuer: "Apple Application Integration 2 Certification Authority", Fingerprint: "AB12",
		NotBefore: at, NotAfter: at.AddDate(1, 0, 0),
		PEM: "-----BEGIN CERTIFICATE-----\nMIIB<script>&\"\n-----END CERTIFICATE-----\n",
	}
	by := auth.User{Subject: "sub-ada", Name: "Ada", Email: "ada@example.com"}
	states := []struct {
		name string
		st   pushcert.State
	}{
		{"new", pushcert.State{ID: "id-1", Version: 1, UploadStatus: pushcert.UploadNone}},
		{"failed", pushcert.State{ID: "id-1", Version: 2, UploadStatus: pushcert.UploadFailed, UploadFailureReason: "expired \"quoted\" <b>"}},
		{"active", pushcert.State{ID: "id-1", Version: 3, AppleID: "it@example.com", Certificate: cert, UploadStatus: pushcert.UploadSucceeded,
			LastModified: at, LastModifiedBy: by}},
	}
	sels := [][]string{nil, {"id"}, {"certificate", "appleIdentifier"}, {"expirationDateTime", "lastModifiedDateTime", "topicIdentifier"}}
	h := NewAPI(discardLogger(), nil, testBaseURL)
	// Each state is asked for twice in a row with every root and selection
	// (the second time from what the first kept), then all of it again
	// after the other states.
	for round := range 2 {
		for _, s := range states {
			name, st := s.name, s.st
			for _, prefix := range []string{"/v1.0", "/beta", "/v1.0", "/beta"} {
				for _, sel := range sels {
					t.Run(fmt.Sprintf("%d %s %s %v", round, name, prefix, sel), func(t *testing.T) {
						w := httptest.NewRecorder()
						h.writeEntity(w, httptest.NewRequest(http.MethodGet, prefix+apiResourcePath, nil), http.StatusOK, st, sel)
						if want := entityUncached(t, testBaseURL, prefix, st, sel); !bytes.Equal(w.Body.Bytes(), want) {
							t.Errorf("got %s, want %s", w.Body, want)
						}
						if got, want := w.Header().Get("ETag"), apiETag(st); got != want {
							t.Errorf("ETag: got %q, want %q", got, want)
						}
					})
				}
			}
		}
	}
}

// TestEntityCacheKey: the encoding is kept per installation id and
// version, which every write bumps: the same pair reuses it, another
// version or installation is encoded anew.
func TestEntityCacheKey(t *testing.T) {
	st := pushcert.State{ID: "id-1", Version: 3, AppleID: "it@example.com", UploadStatus: pushcert.UploadSucceeded}
	var c entityCache
	first, err := c.body(st, "https://x/v1.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.body(st, "https://x/v1.0", nil)
	if err != nil || &again[0] != &first[0] {
		t.Errorf("same id and version: got a new encoding (%v), want the kept one", err)
	}
	for _, next := range []pushcert.State{
		{ID: "id-1", Version: 4, AppleID: "new@example.com", UploadStatus: pushcert.UploadSucceeded},
		{ID: "id-2", Version: 4, AppleID: "other@example.com", UploadStatus: pushcert.UploadSucceeded},
	} {
		got, err := c.body(next, "https://x/v1.0", nil)
		if err != nil || !strings.Contains(string(got), next.AppleID) || !strings.Contains(string(got), `W/\"4\"`) {
			t.Errorf("id %s version %d: got %s (%v), want the new state encoded", next.ID, next.Version, got, err)
		}
	}
}

// TestAPIGetSeesOtherReplicas: two replicas over one database. Each GET
// reads the current state, so a change written through one replica is in
// the other's very next answer, cached encoding or not. Both run on one
// clock, as replicas share the time.
func TestAPIGetSeesOtherReplicas(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "p.db")
	clk := testclock.New(t)
	replica := func() *apiFixture {
		t.Helper()
		kr, err := store.NewKeyring(strings.Repeat("k", 32))
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.Open(context.Background(), dbURL, kr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		f := &apiFixture{
			st:  st,
			svc: pushcert.NewService(st, apiConfig(t, clk)),
			clk: clk,
			ca:  caOn(t, apiTestCA, clk.Now),
		}
		api := NewAPI(slog.New(slog.DiscardHandler), f.svc, testBaseURL)
		mux := http.NewServeMux()
		mux.HandleFunc("GET "+testResource, api.Get)
		mux.HandleFunc("PATCH "+testResource, api.Patch)
		f.h = f.middleware(mux)
		return f
	}
	a, b := replica(), replica()
	a.upload(t, "", a.now().AddDate(1, 0, 0))

	get := func(f *apiFixture) (map[string]any, string) {
		t.Helper()
		w := f.do(t, http.MethodGet, testResource, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("GET: got %d %s, want 200", w.Code, w.Body)
		}
		return decodeAPIObject(t, w), w.Header().Get("ETag")
	}
	for i, appleID := range []string{"first@example.com", "second@example.com", "third@example.com"} {
		writer, reader := a, b
		if i%2 == 1 {
			writer, reader = b, a
		}
		_, before := get(reader) // the reader's cache holds the state before the change
		w := writer.do(t, http.MethodPatch, testResource, jsonBody(t, map[string]string{"appleIdentifier": appleID}))
		if w.Code != http.StatusOK {
			t.Fatalf("PATCH: got %d %s, want 200", w.Code, w.Body)
		}
		got, etag := get(reader)
		if got["appleIdentifier"] != appleID || etag == before || got["@odata.etag"] != etag {
			t.Errorf("change %d: got apple id %v, ETag %q (before %q), want %s and a new ETag", i+1, got["appleIdentifier"], etag, before, appleID)
		}
	}
}

// TestAPIEntityCacheServesKeptBody: the whole entity kept for a root is
// what a GET without $select gets while the state is the same; another
// root, a selection or another state is encoded again.
func TestAPIEntityCacheServesKeptBody(t *testing.T) {
	st := pushcert.State{ID: "id-1", Version: 4, AppleID: "it@example.com", UploadStatus: pushcert.UploadSucceeded}
	h := NewAPI(discardLogger(), nil, testBaseURL)
	get := func(prefix string, sel []string, st pushcert.State) string {
		w := httptest.NewRecorder()
		h.writeEntity(w, httptest.NewRequest(http.MethodGet, prefix+apiResourcePath, nil), http.StatusOK, st, sel)
		return w.Body.String()
	}
	get("/v1.0", nil, st)
	h.entity.mu.Lock()
	h.entity.whole[testBaseURL+"/v1.0"] = []byte(`{"kept":true}`)
	h.entity.mu.Unlock()
	if got := get("/v1.0", nil, st); got != `{"kept":true}` {
		t.Fatalf("the same state and root again: got %s, want the kept body", got)
	}
	if got := get("/beta", nil, st); got != string(entityUncached(t, testBaseURL, "/beta", st, nil)) {
		t.Errorf("/beta: got %s, want its own encoding", got)
	}
	if got := get("/v1.0", []string{"id"}, st); got != string(entityUncached(t, testBaseURL, "/v1.0", st, []string{"id"})) {
		t.Errorf("$select=id: got %s, want the selection encoded", got)
	}
	st.Version++
	if got := get("/v1.0", nil, st); got != string(entityUncached(t, testBaseURL, "/v1.0", st, nil)) {
		t.Errorf("a new version: got %s, want it encoded again", got)
	}
}
