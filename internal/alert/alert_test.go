package alert

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseThresholds(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr string
	}{
		{"30,14,7,3,1", "[30 14 7 3 1]", ""},
		{" 90 , 1 ", "[90 1]", ""},
		{"7,,3", "[7 3]", ""},
		{"", "", "at least one"},
		{"30,two", "", `"two"`},
		{"0", "", `"0"`},
		{"-3", "", `"-3"`},
		{"4000", "", `"4000"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseThresholds(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %v, %v; want an error containing %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tt.want {
				t.Errorf("got %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestRetryDelay(t *testing.T) {
	want := map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 10: 6 * time.Hour, 100: 6 * time.Hour}
	for claims, w := range want {
		if got := retryDelay(claims); got != w {
			t.Errorf("retryDelay(%d): got %s, want %s", claims, got, w)
		}
	}
}

func TestExpiringText(t *testing.T) {
	notAfter := time.Date(2031, 5, 1, 12, 0, 0, 0, time.UTC)
	a := Alert{Topic: "com.apple.mgmt.External.x", Serial: "AB12", URL: "https://pushcert.example.com"}
	for days, want := range map[int]string{0: "expires today,", 1: "expires tomorrow,", 14: "expires in 14 days,"} {
		if got := expiringText(a, notAfter, days); !strings.Contains(got, want) || !strings.Contains(got, "with the Apple ID that created it") {
			t.Errorf("%d days: got %q, want %q and the Apple ID advice", days, got, want)
		}
	}
}
