package main

import (
	"slices"
	"testing"
)

// TestAlertsInfo: the status page is given only the webhook's host, never
// the URL's path or query, which are the secret that lets anyone post.
func TestAlertsInfo(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		wantHost string
	}{
		{"on", "https://hooks.example.com/services/T000/B000/secret?token=x", "hooks.example.com"},
		{"off", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config{AlertWebhookURL: tt.url, AlertThresholds: []int{30, 7}}
			got, err := alertsInfo(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.WebhookHost != tt.wantHost || !slices.Equal(got.Thresholds, []int{30, 7}) {
				t.Errorf("got host %q thresholds %v, want %q and [30 7]", got.WebhookHost, got.Thresholds, tt.wantHost)
			}
		})
	}
}
