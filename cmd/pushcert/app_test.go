package main

import (
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/testclock"
)

// TestFirstAlertDays: the status page turns to "expires soon" on the day
// the first expiry alert goes out, the largest threshold.
func TestFirstAlertDays(t *testing.T) {
	for _, tt := range []struct {
		thresholds []int
		want       int
	}{
		{[]int{30, 14, 7, 3, 1}, 30},
		{[]int{1, 60, 10}, 60},
		{nil, 0},
	} {
		if got := firstAlertDays(tt.thresholds); got != tt.want {
			t.Errorf("firstAlertDays(%v): got %d, want %d", tt.thresholds, got, tt.want)
		}
	}
}

// TestServiceExpiresSoonFromThresholds: the service run builds says
// "expires soon" from the largest configured alert threshold, not from its
// own default.
func TestServiceExpiresSoonFromThresholds(t *testing.T) {
	cfg := &config{Organization: "Org", AlertThresholds: []int{7, 60, 3}}
	svc := newService(cfg, nil, &signing{}, nil, testclock.New(t).Now)
	if got := svc.ExpiresSoonDays(); got != 60 {
		t.Errorf("got %d, want 60, the largest threshold", got)
	}
}

func TestDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		8 * time.Hour: "8h", 90 * time.Minute: "1h30m", 20 * time.Minute: "20m", 45 * time.Second: "45s", 90 * time.Second: "1m30s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("durationText(%v): got %q, want %q", d, got, want)
		}
	}
}
