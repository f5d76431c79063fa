// Command testreport reads `go test -json` on standard input and prints what
// a person needs from a CI run: the usual line per package, the whole output
// of every failing test, every skipped test with its reason, and a closing
// count. It fails when a test failed, when a package failed to build or
// run, or when a test was skipped that the allow-list does not name.
//
//	go test -json ./... | go run ./.ci/testreport -allow 'import/path TestName' ...
//
// An allow-list entry is a package import path, a space and a test name,
// which may be a subtest path; it matches that test and its subtests.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

// allowList is the -allow flag, given once per entry.
type allowList []string

func (a *allowList) String() string     { return strings.Join(*a, ",") }
func (a *allowList) Set(v string) error { *a = append(*a, v); return nil }

func main() {
	var allow allowList
	flag.Var(&allow, "allow", "a test that may be skipped, as 'import/path TestName' (repeatable)")
	label := flag.String("label", "tests", "what this run is, for the closing lines")
	flag.Parse()
	r, err := report(os.Stdin, os.Stdout, allow, *label)
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	if !r.ok() {
		os.Exit(1)
	}
}

// key names a test in a package.
type key struct{ pkg, test string }

// result is what a run came to.
type result struct {
	passed, failed, skipped int
	badPackages             []string // failed with no failing test: build errors, panics, timeouts
	unexpectedSkips         []key
}

func (r result) ok() bool {
	return r.failed == 0 && len(r.badPackages) == 0 && len(r.unexpectedSkips) == 0
}

// run is the state of one report while the events are read.
type run struct {
	out      io.Writer
	r        result
	outputs  map[key]*strings.Builder // per test, and per package with test ""
	skips    []key
	failedIn map[string]bool // packages with a failing test
	pkgFail  map[string]bool
}

// report reads the events from in and writes the summary to out.
func report(in io.Reader, out io.Writer, allow []string, label string) (result, error) {
	ru := &run{out: out, outputs: map[key]*strings.Builder{}, failedIn: map[string]bool{}, pkgFail: map[string]bool{}}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// The go command prints build errors as plain text.
			fmt.Fprintln(out, string(line))
			continue
		}
		ru.event(e)
	}
	if err := sc.Err(); err != nil {
		return ru.r, fmt.Errorf("read go test -json: %w", err)
	}
	ru.summarize(allow, label)
	return ru.r, nil
}

// event takes one event of the stream.
func (ru *run) event(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		// Compiler errors, named by the package that did not build.
		fmt.Fprint(ru.out, e.Output)
	case "output":
		b := ru.outputs[k]
		if b == nil {
			b = &strings.Builder{}
			ru.outputs[k] = b
		}
		b.WriteString(e.Output)
		if e.Test == "" && packageLine(e.Output) {
			fmt.Fprint(ru.out, e.Output)
		}
	case "pass":
		if e.Test != "" {
			ru.r.passed++
		}
		delete(ru.outputs, k)
	case "skip":
		if e.Test != "" {
			ru.r.skipped++
			ru.skips = append(ru.skips, k)
		}
	case "fail":
		if e.Test == "" {
			ru.pkgFail[e.Package] = true
			return
		}
		ru.r.failed++
		ru.failedIn[e.Package] = true
		// A parent fails with its subtests: print each output once,
		// the innermost test's.
		if b := ru.outputs[k]; b != nil {
			fmt.Fprintf(ru.out, "--- output of failed %s %s:\n%s", e.Package, e.Test, b.String())
			delete(ru.outputs, k)
		}
	}
}

// summarize writes the packages that failed outside a test, the skipped
// tests and the closing count.
func (ru *run) summarize(allow []string, label string) {
	out := ru.out
	for pkg := range ru.pkgFail {
		if !ru.failedIn[pkg] {
			ru.r.badPackages = append(ru.r.badPackages, pkg)
			if b := ru.outputs[key{pkg, ""}]; b != nil {
				fmt.Fprintf(out, "--- output of package %s, which failed outside any test:\n%s", pkg, b.String())
			}
		}
	}
	sort.Strings(ru.r.badPackages)
	if len(ru.skips) > 0 {
		fmt.Fprintf(out, "\nskipped tests (%s):\n", label)
	}
	for _, s := range ru.skips {
		mark := "allowed"
		if !allowed(allow, s) {
			mark = "NOT ALLOWED"
			ru.r.unexpectedSkips = append(ru.r.unexpectedSkips, s)
		}
		fmt.Fprintf(out, "  %s %s.%s: %s\n", mark, s.pkg, s.test, skipReason(ru.outputs[s]))
	}
	if n := len(ru.r.unexpectedSkips); n > 0 {
		fmt.Fprintf(out, "\n%d test(s) skipped outside the allow-list in .ci/run: give the test what it needs in .ci/run, or allow it there with the reason\n", n)
	}
	for _, p := range ru.r.badPackages {
		fmt.Fprintf(out, "package %s failed outside any test (build error, panic or timeout)\n", p)
	}
	fmt.Fprintf(out, "\n%s: %d passed, %d failed, %d skipped\n", label, ru.r.passed, ru.r.failed, ru.r.skipped)
}

// packageLine reports whether a package-level output line is the one
// `go test` prints per package without -json ("ok", "FAIL", "?").
func packageLine(s string) bool {
	return strings.HasPrefix(s, "ok  \t") || strings.HasPrefix(s, "FAIL\t") ||
		strings.HasPrefix(s, "?   \t") || strings.HasPrefix(s, "panic:")
}

// skipReason is what the test logged, without the run and skip headers.
func skipReason(b *strings.Builder) string {
	if b == nil {
		return "(no reason given)"
	}
	var lines []string
	for _, l := range strings.Split(b.String(), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		lines = append(lines, t)
	}
	if len(lines) == 0 {
		return "(no reason given)"
	}
	return strings.Join(lines, " | ")
}

// allowed reports whether s, or a test it is a subtest of, is on the list.
func allowed(allow []string, s key) bool {
	for _, a := range allow {
		pkg, test, ok := strings.Cut(a, " ")
		if ok && pkg == s.pkg && (s.test == test || strings.HasPrefix(s.test, test+"/")) {
			return true
		}
	}
	return false
}
