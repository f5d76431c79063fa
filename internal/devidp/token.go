package devidp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
)

// Token gets an access token for the demo user (admin, viewer, outsider)
// from the development provider at issuer, through the dev_user shortcut
// of its token endpoint: what a developer does with curl, for tests and
// the load benchmark.
func Token(ctx context.Context, client *http.Client, issuer, user string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer+"/token?dev_user="+url.QueryEscape(user), nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("token for %s: %w", user, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		return "", fmt.Errorf("token for %s: status %d, %v", user, resp.StatusCode, err)
	}
	return body.AccessToken, nil
}
