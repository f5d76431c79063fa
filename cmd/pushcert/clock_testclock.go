//go:build pushcert_testclock

package main

import (
	"time"

	"github.com/pushcert/pushcert/internal/testclock"
)

// processClock, in the binary the tests build with the pushcert_testclock
// tag, runs from PUSHCERT_TEST_NOW when it is set, so the test and the
// pushcert it started agree on "now". Release builds never have this file.
func processClock(getenv func(string) string) (func() time.Time, error) {
	v := getenv(testclock.Env)
	if v == "" {
		return time.Now, nil
	}
	from, err := testclock.Parse(v, time.Now())
	if err != nil {
		return nil, err
	}
	return testclock.Running(from), nil
}
