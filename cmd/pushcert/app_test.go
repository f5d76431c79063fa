package main

import "testing"

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
