// Package filelock serializes work across processes with an exclusive lock
// on a file: the test harnesses that install a peer once per machine
// (NanoMDM, axe-core) take it, so parallel test binaries do not both
// install it.
package filelock
