package main

import "runtime/debug"

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// the heap may grow to three times what is live, instead of Go's two. The
// live heap of pushcert is a few MiB, so this costs a few MiB of memory and
// saves collections, which under load took about a tenth of the CPU per
// request (docs/performance.md).
const defaultGCPercent = 200

// setGCPercent applies defaultGCPercent unless GOGC is set, which the
// runtime has then applied already.
func setGCPercent(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}
