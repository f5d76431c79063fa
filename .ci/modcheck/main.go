// Command modcheck checks the modules built into a Go binary against a
// policy kept in the repository (.ci/min-versions.txt): a listed module
// that is built in must be at or above its minimum version, a denied module
// must not be built in at all, and the toolchain that built the binary
// must be at or above its minimum. It reads the same build information
// `go version -m` prints. It exits 1 when the binary breaks the policy and
// 2 when it cannot tell.
//
//	modcheck -policy .ci/min-versions.txt ./pushcert
//
// The policy has one rule a line; # starts a comment, which is also the
// rule's reason, printed when the rule is broken:
//
//	golang.org/x/crypto v0.59.0       # MODULE MINIMUM
//	github.com/go-jose/go-jose/v3 deny # MODULE deny
//	go go1.26.8                        # the toolchain's minimum
package main

import (
	"bufio"
	"debug/buildinfo"
	"errors"
	"flag"
	"fmt"
	"go/version"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command with its arguments and outputs; it returns the exit
// status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	policyPath := fs.String("policy", ".ci/min-versions.txt", "the policy: minimum versions and denied modules")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: modcheck [-policy FILE] BINARY")
		return 2
	}
	f, err := os.Open(*policyPath)
	if err != nil {
		fmt.Fprintf(stderr, "modcheck: %v\n", err)
		return 2
	}
	pol, err := parsePolicy(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "modcheck: %s: %v\n", *policyPath, err)
		return 2
	}
	info, err := buildinfo.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintf(stderr, "modcheck: read the build information of %s: %v\n", fs.Arg(0), err)
		return 2
	}
	problems := check(info, pol)
	for _, p := range problems {
		fmt.Fprintf(stdout, "modcheck: %s\n", p)
	}
	fmt.Fprintf(stdout, "modcheck: %s (%s): %d modules built in, %d rules, %d problems\n",
		fs.Arg(0), info.GoVersion, len(info.Deps), pol.size(), len(problems))
	if len(problems) > 0 {
		fmt.Fprintf(stdout, "modcheck: upgrade or remove each module named above (go get MODULE@VERSION, go mod tidy), or change %s with a reason\n", *policyPath)
		return 1
	}
	return 0
}

// rule is one line of the policy.
type rule struct {
	min  string // the lowest version allowed; empty for a denied module
	deny bool
	why  string // the line's comment
	line int
}

// policy is the parsed policy file.
type policy struct {
	modules   map[string]rule
	toolchain rule // min is a Go version such as go1.26.8; empty means any
}

func (p policy) size() int {
	n := len(p.modules)
	if p.toolchain.min != "" {
		n++
	}
	return n
}

// parsePolicy reads the policy. Every line must be understood: a rule
// that silently meant nothing would be a gate that never closes.
func parsePolicy(r io.Reader) (policy, error) {
	p := policy{modules: make(map[string]rule)}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text, why, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return policy{}, fmt.Errorf("line %d: got %q, want MODULE VERSION or MODULE deny", n, strings.TrimSpace(text))
		}
		mod, v := fields[0], fields[1]
		r := rule{why: strings.TrimSpace(why), line: n}
		switch {
		case mod == "go":
			if !version.IsValid(v) {
				return policy{}, fmt.Errorf("line %d: %q is not a Go version such as go1.26.8", n, v)
			}
			r.min = v
			p.toolchain = r
			continue
		case v == "deny":
			r.deny = true
		case validSemver(v):
			r.min = v
		default:
			return policy{}, fmt.Errorf("line %d: %q is neither deny nor a version such as v1.2.3", n, v)
		}
		if old, dup := p.modules[mod]; dup {
			return policy{}, fmt.Errorf("line %d: %s is already on line %d", n, mod, old.line)
		}
		p.modules[mod] = r
	}
	if err := sc.Err(); err != nil {
		return policy{}, err
	}
	if p.size() == 0 {
		return policy{}, errors.New("no rules")
	}
	return p, nil
}

// check returns how the binary described by info breaks the policy.
func check(info *debug.BuildInfo, p policy) []string {
	var problems []string
	if min := p.toolchain.min; min != "" {
		gov, _, _ := strings.Cut(info.GoVersion, " ")
		if !version.IsValid(gov) || version.Compare(gov, min) < 0 {
			problems = append(problems, fmt.Sprintf("built with %s, below the minimum %s%s", info.GoVersion, min, reason(p.toolchain)))
		}
	}
	for _, d := range info.Deps {
		problems = append(problems, checkModule(d, p)...)
	}
	return problems
}

// checkModule checks one module built into the binary, and what replaces
// it, if anything.
func checkModule(d *debug.Module, p policy) []string {
	var problems []string
	path, ver := d.Path, d.Version
	if d.Replace != nil {
		if r, ok := p.modules[d.Replace.Path]; ok && r.deny && d.Replace.Path != d.Path {
			problems = append(problems, fmt.Sprintf("%s (replacing %s) is denied%s", d.Replace.Path, d.Path, reason(r)))
		}
		if d.Replace.Path != d.Path {
			// Another module's versions say nothing about this one's fixes.
			if r, ok := p.modules[d.Path]; ok && !r.deny {
				problems = append(problems, fmt.Sprintf("%s is replaced by %s %s, whose version cannot be held to the minimum %s",
					d.Path, d.Replace.Path, d.Replace.Version, r.min))
			}
			ver = ""
		} else {
			ver = d.Replace.Version
		}
	}
	r, ok := p.modules[path]
	switch {
	case !ok:
	case r.deny:
		problems = append(problems, fmt.Sprintf("%s %s is denied%s", path, d.Version, reason(r)))
	case ver == "" && d.Replace != nil:
		// Reported above.
	case !validSemver(ver):
		problems = append(problems, fmt.Sprintf("%s has version %q, which cannot be held to the minimum %s", path, ver, r.min))
	case compareSemver(ver, r.min) < 0:
		problems = append(problems, fmt.Sprintf("%s %s is below the minimum %s%s", path, ver, r.min, reason(r)))
	}
	return problems
}

func reason(r rule) string {
	if r.why == "" {
		return ""
	}
	return ": " + r.why
}
