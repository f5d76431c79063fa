package browsertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pushcert/pushcert/internal/filelock"
)

// AxeVersion is the axe-core the accessibility scan runs, pinned so that a
// new release with new rules cannot fail the tests on its own.
const AxeVersion = "4.14.1"

// AxeEnv names the variable that points the scan at an axe.min.js (of
// AxeVersion) instead of the one installed into the user's cache folder.
const AxeEnv = "PUSHCERT_AXE"

// axeSource is axe.min.js, found or installed once per test binary.
var axeSource = sync.OnceValues(findAxe)

// Axe returns the source of axe.min.js: the file $PUSHCERT_AXE names, else
// the one in the user's cache folder, which it installs there with npm when
// missing. It never skips: a test that cannot get axe-core fails and says
// why.
func Axe(t testing.TB) string {
	t.Helper()
	src, err := axeSource()
	if err != nil {
		t.Fatalf("browsertest: no axe-core for the accessibility scan: %v\n"+
			"Install Node.js with npm (Debian's npm package) so the test can run "+
			"`npm install axe-core@%s` into the user's cache folder, or set %s to an axe.min.js of that version.",
			err, AxeVersion, AxeEnv)
	}
	return src
}

func findAxe() (string, error) {
	if p := os.Getenv(AxeEnv); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("%s: %w", AxeEnv, err)
		}
		return string(b), nil
	}
	p, err := installAxe()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p)
	return string(b), err
}

// installAxe puts axe.min.js into the user's cache folder with npm, unless
// a test binary before this one did. A lock file keeps parallel test
// binaries from installing at once; the file is renamed into place, so a
// reader never sees half of it.
func installAxe() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder to install axe-core in: %w", err)
	}
	dir := filepath.Join(cache, "pushcert", "axe-core-"+AxeVersion)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	dst := filepath.Join(dir, "axe.min.js")
	unlock, err := filelock.Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unlock()
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() {
		return dst, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm not found")
	}
	tmp, err := os.MkdirTemp(dir, ".npm-")
	if err != nil {
		return "", fmt.Errorf("make a folder to install axe-core in: %w", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// --ignore-scripts: axe-core has no install scripts, and none may run.
	cmd := exec.CommandContext(ctx, npm, "install", "--no-save", "--no-audit", "--no-fund",
		"--ignore-scripts", "--prefix", tmp, "axe-core@"+AxeVersion)
	cmd.Dir = tmp
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install axe-core@%s: %w\n%s", AxeVersion, err, out.Bytes())
	}
	if err := os.Rename(filepath.Join(tmp, "node_modules", "axe-core", "axe.min.js"), dst); err != nil {
		return "", fmt.Errorf("put axe.min.js in place: %w", err)
	}
	return dst, nil
}

// AxeViolation is one rule axe-core found broken on a page, with the
// elements that break it.
type AxeViolation struct {
	ID      string `json:"id"`
	Impact  string `json:"impact"`
	Help    string `json:"help"`
	HelpURL string `json:"helpUrl"`
	Nodes   []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// String is the violation as a test reports it: rule, impact, help text,
// and each element's selector.
func (v AxeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s <%s>", v.ID, v.Impact, v.Help, v.HelpURL)
	for _, n := range v.Nodes {
		fmt.Fprintf(&b, "\n    %v", n.Target)
		if n.Summary != "" {
			fmt.Fprintf(&b, ": %s", strings.Join(strings.Fields(n.Summary), " "))
		}
	}
	return b.String()
}

// Blocking reports whether the tests fail on the violation: any serious or
// critical one, and the moderate rules a page of this app must pass all the
// same (region: everything is inside a landmark, so a screen reader that
// moves by landmarks reaches it).
func (v AxeViolation) Blocking() bool {
	return v.Impact == "serious" || v.Impact == "critical" || v.ID == "region"
}

// AxeScan injects axe-core (source from Axe) into the page the tab shows,
// unless it is there already, runs it on the whole document and returns
// every violation, whatever its impact.
func AxeScan(ctx context.Context, source string) ([]AxeViolation, error) {
	loaded, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`typeof window.axe === "object"`))
	if err != nil {
		return nil, fmt.Errorf("look for axe-core: %w", err)
	}
	if !loaded {
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](source+"\n;true")); err != nil {
			return nil, fmt.Errorf("inject axe-core: %w", err)
		}
	}
	const run = `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations)`
	vs, err := chromedp.Run(ctx, chromedp.Evaluate[[]AxeViolation](run, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, fmt.Errorf("run axe-core: %w", err)
	}
	return vs, nil
}
