package testclock

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	// wall is a fixed reading, not the wall clock: Parse's answer depends
	// only on its arguments.
	wall := time.Date(2027, 3, 1, 10, 0, 0, 500_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name, value string
		want        time.Time
		wantErr     string
	}{
		{"unset is the wall reading, in UTC, to the second", "", time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC), ""},
		{"an RFC 3339 instant", "2028-02-29T23:59:30Z", time.Date(2028, 2, 29, 23, 59, 30, 0, time.UTC), ""},
		{"an instant with an offset, in UTC", "2026-12-31T23:59:30-02:00", time.Date(2027, 1, 1, 1, 59, 30, 0, time.UTC), ""},
		{"a time of day on the wall reading's UTC date", "23:59:30", time.Date(2027, 3, 1, 23, 59, 30, 0, time.UTC), ""},
		{"spaces around", " 00:00:30\n", time.Date(2027, 3, 1, 0, 0, 30, 0, time.UTC), ""},
		{"not a time", "tomorrow", time.Time{}, "PUSHCERT_TEST_NOW"},
		{"a date alone", "2028-02-29", time.Time{}, "such as 23:59:30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.value, wall)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, %v; want an error mentioning %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("got %v, %v; want %v in UTC", got, err, tt.want)
			}
		})
	}
}

func TestClock(t *testing.T) {
	t0 := time.Date(2028, 2, 29, 23, 59, 30, 0, time.UTC)
	c := At(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("got %v, want %v", c.Now(), t0)
	}
	c.Advance(time.Minute)
	if want := time.Date(2028, 3, 1, 0, 0, 30, 0, time.UTC); !c.Now().Equal(want) {
		t.Fatalf("after Advance: got %v, want %v", c.Now(), want)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("after Set: got %v, want %v", c.Now(), t0)
	}
}

func TestRunning(t *testing.T) {
	t0 := time.Date(2028, 2, 29, 23, 59, 30, 0, time.UTC)
	now := Running(t0)
	a := now()
	b := now()
	if a.Before(t0) || b.Before(a) || a.Sub(t0) > time.Minute {
		t.Fatalf("got %v then %v, want from %v on, never backwards", a, b, t0)
	}
}
