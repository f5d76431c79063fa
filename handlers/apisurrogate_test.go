package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/applesim"
)

// encoding/json decodes an escape of half a surrogate pair as U+FFFD, so
// the API refuses it, as it refuses invalid UTF-8, instead of storing text
// the client never sent.
func TestAPILoneSurrogateRefused(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantCode int
		wantText string // in the refusal; "" when accepted
	}{
		{"lone high surrogate", `{"appleIdentifier":"a\ud800@b.example"}`, 400, `escape \ud800, half of a UTF-16 surrogate pair`},
		{"lone low surrogate", `{"appleIdentifier":"a\udc00@b.example"}`, 400, `escape \udc00`},
		{"high surrogate ending the string", `{"appleIdentifier":"a@b.example\uD800"}`, 400, `escape \uD800`},
		{"high surrogate before another escape", `{"appleIdentifier":"a\ud800\u0040b.example"}`, 400, `escape \ud800`},
		{"two high surrogates", `{"appleIdentifier":"a\ud83d\ud83d@b.example"}`, 400, `escape \ud83d`},
		{"pair in the wrong order", `{"appleIdentifier":"a\ude00\ud83d@b.example"}`, 400, `escape \ude00`},
		{"in a property name", `{"apple\ud800Identifier":"a@b.example"}`, 400, `escape \ud800`},
		{"in an ignored property", `{"topicIdentifier":"\udfff","appleIdentifier":"a@b.example"}`, 400, `escape \udfff`},
		{"complete pair", `{"topicIdentifier":"\ud83d\ude00","appleIdentifier":"a@b.example"}`, 200, ""},
		{"escaped backslash before u", `{"topicIdentifier":"\\ud800","appleIdentifier":"a@b.example"}`, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAPIFixture(t)
			f.upload(t, applesim.NewTopic(), f.now().AddDate(1, 0, 0))
			before := f.snapshot(t)
			w := f.do(t, http.MethodPatch, testResource, []byte(tt.body))
			st, err := f.svc.State(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantText == "" {
				if w.Code != tt.wantCode || st.AppleID != "a@b.example" {
					t.Errorf("got %d %s, Apple ID %q; want %d and a@b.example", w.Code, w.Body, st.AppleID, tt.wantCode)
				}
				return
			}
			assertAPIError(t, w, tt.wantCode, "invalidRequest", tt.wantText)
			if st.Version != before.state.Version || strings.ContainsRune(st.AppleID, '\uFFFD') {
				t.Errorf("got version %d, Apple ID %q; want version %d and nothing stored", st.Version, st.AppleID, before.state.Version)
			}
			f.assertCertificateUnchanged(t, before)
		})
	}
}
