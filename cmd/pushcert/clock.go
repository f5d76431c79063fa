//go:build !pushcert_testclock

package main

import "time"

// processClock is the clock pushcert runs on: the wall clock. A build
// with the pushcert_testclock tag (only the tests that start pushcert as a
// child process make one) reads PUSHCERT_TEST_NOW instead.
func processClock(func(string) string) (func() time.Time, error) {
	return time.Now, nil
}
