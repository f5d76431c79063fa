package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/pushcert/pushcert/internal/alert"
)

// webhookSecret is the secret part of the receiver's URL, which must never
// reach a log.
const webhookSecret = "T000/B000/XXXXsecretXXXX"

// receiver is an incoming webhook on loopback that records what it gets.
type receiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	posts int              // every POST, failed or not
	got   []alert.Alert    // alerts answered with 200
	raw   []map[string]any // their JSON, as sent
	fail  []int            // statuses to answer the next posts with, in order
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.posts++
		if r.Method != http.MethodPost || r.URL.Path != "/hooks/"+webhookSecret || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("receiver got %s %s (%s), want a JSON POST to the hook", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		if len(rc.fail) > 0 {
			code := rc.fail[0]
			rc.fail = rc.fail[1:]
			w.WriteHeader(code)
			return
		}
		var a alert.Alert
		var raw map[string]any
		if err := json.Unmarshal(body, &a); err != nil {
			t.Errorf("receiver: body %q: %v", body, err)
		}
		_ = json.Unmarshal(body, &raw)
		rc.got = append(rc.got, a)
		rc.raw = append(rc.raw, raw)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url() string { return rc.srv.URL + "/hooks/" + webhookSecret }

func (rc *receiver) postCount() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.posts
}

func (rc *receiver) failNext(codes ...int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.fail = append(rc.fail, codes...)
}

// alerts returns what was delivered, each as "event/threshold".
func (rc *receiver) alerts() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, a := range rc.got {
		out = append(out, fmt.Sprintf("%s/%d", a.Event, a.ThresholdDays))
	}
	return out
}

func (rc *receiver) last() (alert.Alert, map[string]any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) == 0 {
		return alert.Alert{}, nil
	}
	return rc.got[len(rc.got)-1], rc.raw[len(rc.raw)-1]
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
