//go:build race

package main

// raceEnabled says the tests were built with -race; binaries they build
// match, so the build reuses the compiled packages.
const raceEnabled = true
