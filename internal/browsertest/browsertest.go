// Package browsertest starts headless Chromium (Debian's chromium package)
// for tests that need a real browser: with a fresh profile and the flags
// that keep it off the network, so the tests run without internet.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path finds Chromium. Without it the test skips, except in CI (CI set),
// where a missing browser is a broken setup.
func Path(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not found: CI must install Debian's chromium package (.ci/run does)")
	}
	t.Skip("chromium not found; install Debian's chromium package to run browser tests")
	return ""
}

// Start launches Chromium at path with a fresh profile and returns a tab's
// context, bounded by timeout. output, when non-nil, receives the browser's
// own output. The test's cleanup closes the tab, then the browser, and only
// then removes the profile folder.
func Start(t testing.TB, path string, timeout time.Duration, output interface{ Write([]byte) (int, error) }) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	if output != nil {
		opts = append(opts, chromedp.CombinedOutput(output))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(ctx, opts...)
	// Cleanups run last-registered first.
	t.Cleanup(allocCancel)
	tabCtx, tabCancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		closeCtx, closeCancel := context.WithTimeout(tabCtx, 15*time.Second)
		_ = chromedp.Cancel(closeCtx)
		closeCancel()
		tabCancel()
	})
	return tabCtx
}
