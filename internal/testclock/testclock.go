// Package testclock is the time the tests run at. Every test that makes or
// checks certificates, expiry, days left, alerts or sessions hangs its clock
// on Start instead of reading the wall clock, so the suite can be run on
// purpose at any instant: set PUSHCERT_TEST_NOW to 2028-02-29T23:59:30Z (or
// to 23:59:30 for today at that time, UTC) and every test runs then.
//
// Only tests import this package; production code takes its clock from
// run, which passes time.Now.
package testclock

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Env names the variable that sets the tests' "now".
const Env = "PUSHCERT_TEST_NOW"

// start is read once per test binary, so every test in it, and every child
// process it starts with the same environment, agrees on "now".
var start = sync.OnceValues(func() (time.Time, error) {
	return Parse(os.Getenv(Env), time.Now())
})

// Parse reads a value of PUSHCERT_TEST_NOW: an RFC 3339 instant, or a time
// of day (HH:MM:SS, UTC) on wall's date. An empty value is wall itself,
// truncated to the second. The result is in UTC.
func Parse(v string, wall time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	wall = wall.UTC()
	if v == "" {
		return wall.Truncate(time.Second), nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.TimeOnly, v); err == nil {
		y, m, d := wall.Date()
		return time.Date(y, m, d, t.Hour(), t.Minute(), t.Second(), 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("%s=%q: want an RFC 3339 instant such as 2028-02-29T23:59:30Z, or a time of day such as 23:59:30", Env, v)
}

// TB is the part of testing.TB Start needs.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Start returns the instant the tests run at: PUSHCERT_TEST_NOW when set,
// otherwise the moment the test binary first asked, in UTC, to the second.
func Start(tb TB) time.Time {
	tb.Helper()
	t, err := start()
	if err != nil {
		tb.Fatalf("%v", err)
	}
	return t
}

// Now is Start for code with no test at hand, such as an authority shared
// by a whole test binary; it panics when PUSHCERT_TEST_NOW is malformed.
// It stands still: pass the function itself as a fixed clock.
func Now() time.Time {
	t, err := start()
	if err != nil {
		panic(err)
	}
	return t
}

// Clock is a settable clock for the code under test: it stands still until
// a test moves it. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at Start.
func New(tb TB) *Clock {
	tb.Helper()
	return At(Start(tb))
}

// At returns a clock standing at t.
func At(t time.Time) *Clock {
	return &Clock{t: t}
}

// Now returns the clock's time; pass the method value as a Now function.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (backwards when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Running returns a clock that starts at from and moves with the wall
// clock's monotonic reading, for a process whose timeouts must still pass
// while its "now" is set (a server a test starts as a child process).
func Running(from time.Time) func() time.Time {
	began := time.Now()
	return func() time.Time { return from.Add(time.Since(began)) }
}
