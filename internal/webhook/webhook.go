// Package webhook delivers alerts to an incoming-webhook URL: Slack,
// Microsoft Teams, or any receiver that reads JSON.
package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/pushcert/pushcert/internal/alert"
)

// timeout bounds one delivery attempt.
const timeout = 10 * time.Second

// Notifier delivers alerts as a JSON POST to an incoming-webhook URL. It is
// an alert.Notifier.
//
// Incoming-webhook URLs carry their secret in the path or query, so errors
// and logs name only the host.
type Notifier struct {
	url    string
	host   string
	client *http.Client
}

var _ alert.Notifier = (*Notifier)(nil)

// New returns a Notifier posting to rawURL, an absolute http(s) URL. A nil
// client means one with a 10-second timeout.
func New(rawURL string, client *http.Client) (*Notifier, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("alert webhook: want an absolute http(s) URL")
	}
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	// A redirect would turn the POST into a GET, or carry the alert to
	// another host: take it as a refusal instead.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Notifier{url: rawURL, host: u.Host, client: &c}, nil
}

// Host is the receiver's host, the one part of the URL safe to log.
func (n *Notifier) Host() string { return n.host }

// Notify posts a as JSON. 2xx is success; 408, 429 and 5xx are worth
// retrying; any other answer is a *alert.PermanentError.
func (n *Notifier) Notify(ctx context.Context, a alert.Alert) error {
	body, err := json.Marshal(a)
	if err != nil {
		return &alert.PermanentError{Err: fmt.Errorf("encode alert: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return &alert.PermanentError{Err: fmt.Errorf("alert webhook at %s: bad request", n.host)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pushcert")
	resp, err := n.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, secret and all: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("post alert to %s: %w", n.host, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout, code == http.StatusTooManyRequests, code >= 500:
		return fmt.Errorf("alert receiver %s answered %s", n.host, resp.Status)
	default:
		return &alert.PermanentError{Err: fmt.Errorf("alert receiver %s refused the alert: %s", n.host, resp.Status)}
	}
}
