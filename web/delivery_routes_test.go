package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/web/webtest"
)

// The delivery routes apply their roles: viewers read the status, only
// admins ask for a delivery, on the page and in the API.
func TestDeliveryRoutesRoles(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	post := func(c *http.Client, path, token string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, app.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", app.URL)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(app.LoginAs(t, "viewer"), "/deliveries", ""); code != http.StatusForbidden {
		t.Errorf("viewer's Deliver now: got %d, want 403", code)
	}
	if code, body := post(app.LoginAs(t, "admin"), "/deliveries", ""); code != http.StatusConflict || !strings.Contains(body, "No delivery targets are configured") {
		t.Errorf("admin's Deliver now without targets: got %d, want 409 saying none is configured", code)
	}
	if code, _ := post(app.Client(t), "/api/pushcert/deliveries", app.Token(t, "viewer")); code != http.StatusForbidden {
		t.Errorf("viewer token's POST: got %d, want 403", code)
	}
	if code, body := post(app.Client(t), "/api/pushcert/deliveries", app.Token(t, "admin")); code != http.StatusConflict || !strings.Contains(body, `"code":"conflict"`) {
		t.Errorf("admin token's POST without targets: got %d %s, want 409 conflict", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, app.URL+"/api/pushcert/deliveries", nil)
	req.Header.Set("Authorization", "Bearer "+app.Token(t, "viewer"))
	resp, err := app.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Targets []any `json:"targets"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); resp.StatusCode != http.StatusOK || err != nil || v.Targets == nil {
		t.Errorf("viewer token's GET: got %d (%v), want 200 with an empty target list", resp.StatusCode, err)
	}
	if code, _ := post(app.Client(t), "/deliveries", ""); code != http.StatusUnauthorized && code != http.StatusSeeOther {
		t.Errorf("signed-out Deliver now: got %d, want 401 or a redirect to sign in", code)
	}
}
