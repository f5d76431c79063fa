package webhook_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/alert"
	"github.com/pushcert/pushcert/internal/webhook"
)

func TestRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "ftp://example.com/x", "/relative", "https://"} {
		if _, err := webhook.New(u, nil); err == nil {
			t.Errorf("New(%q): got nil error, want a refusal", u)
		}
	}
}

func TestErrorNamesOnlyHost(t *testing.T) {
	n, err := webhook.New("http://127.0.0.1:1/hooks/"+webhookSecret+"?token=abc", nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.Host() != "127.0.0.1:1" {
		t.Errorf("Host: got %q, want 127.0.0.1:1", n.Host())
	}
	err = n.Notify(t.Context(), alert.Alert{Text: "x"})
	if err == nil || strings.Contains(err.Error(), "hooks") || strings.Contains(err.Error(), "token") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("got %v, want an error naming only the host", err)
	}
}

// TestNotifyAnswers: a 2xx delivers the alert as JSON; 408, 429 and 5xx
// are worth retrying; any other answer, a redirect included, is a
// permanent refusal. No error names more of the URL than its host.
func TestNotifyAnswers(t *testing.T) {
	tests := []struct {
		status        int
		wantErr       bool
		wantPermanent bool
	}{
		{http.StatusOK, false, false},
		{http.StatusNoContent, false, false},
		{http.StatusRequestTimeout, true, false},
		{http.StatusTooManyRequests, true, false},
		{http.StatusInternalServerError, true, false},
		{http.StatusServiceUnavailable, true, false},
		{http.StatusBadRequest, true, true},
		{http.StatusNotFound, true, true},
		{http.StatusFound, true, true},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			rc := newReceiver(t)
			rc.failNext(tt.status)
			n, err := webhook.New(rc.url(), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = n.Notify(t.Context(), alert.Alert{Event: alert.KindUploadFailed, Text: "refused"})
			var perm *alert.PermanentError
			if (err != nil) != tt.wantErr || errors.As(err, &perm) != tt.wantPermanent {
				t.Errorf("got %v (permanent %t), want error %t, permanent %t", err, errors.As(err, &perm), tt.wantErr, tt.wantPermanent)
			}
			if err != nil && (strings.Contains(err.Error(), "hooks") || !strings.Contains(err.Error(), n.Host())) {
				t.Errorf("got %q, want an error naming only the host", err)
			}
			if rc.postCount() != 1 {
				t.Errorf("got %d posts, want 1", rc.postCount())
			}
		})
	}
	t.Run("delivered", func(t *testing.T) {
		rc := newReceiver(t)
		n, err := webhook.New(rc.url(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Notify(t.Context(), alert.Alert{Event: alert.KindUploadFailed, Text: "refused"}); err != nil {
			t.Fatal(err)
		}
		if a, raw := rc.last(); a.Event != alert.KindUploadFailed || a.Text != "refused" || raw["text"] != "refused" {
			t.Errorf("got %+v, want the upload_failed alert with its text", a)
		}
	})
}

// TestRedirectNotFollowed: a receiver that redirects does not get the alert
// carried on to where it points.
func TestRedirectNotFollowed(t *testing.T) {
	other := newReceiver(t)
	redirect := httptest.NewServer(http.RedirectHandler(other.url(), http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)
	n, err := webhook.New(redirect.URL+"/hooks/"+webhookSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = n.Notify(t.Context(), alert.Alert{Text: "x"})
	var perm *alert.PermanentError
	if !errors.As(err, &perm) || other.postCount() != 0 {
		t.Errorf("got %v and %d posts at the redirect's target, want a permanent refusal and none", err, other.postCount())
	}
}
