package nanomdmtest

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
	"time"

	"github.com/pushcert/pushcert/internal/filelock"
)

// Module is the NanoMDM the harness runs when it has to install one.
const Module = "github.com/micromdm/nanomdm/cmd/nanomdm@v0.9.0"

// BinaryEnv names the variable that points the harness at a nanomdm
// binary.
const BinaryEnv = "PUSHCERT_NANOMDM"

// binary is found, or installed, once per test binary.
var binary = sync.OnceValues(findBinary)

// findBinary returns the nanomdm to run: $PUSHCERT_NANOMDM, else nanomdm on
// PATH, else in $(go env GOBIN) or $(go env GOPATH)/bin, else one it
// installs into the user's cache folder.
func findBinary() (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", BinaryEnv, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("nanomdm"); err == nil {
		return p, nil
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, "nanomdm")
		if executable(p) == nil {
			return p, nil
		}
	}
	return install()
}

// goBinDirs are the folders go install puts binaries in.
func goBinDirs() []string {
	var dirs []string
	if gobin := goEnv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	for _, p := range filepath.SplitList(goEnv("GOPATH")) {
		if p != "" {
			dirs = append(dirs, filepath.Join(p, "bin"))
		}
	}
	return dirs
}

// goEnv is `go env name`, or "" when go is not to be found.
func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func executable(p string) error {
	fi, err := os.Stat(p)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return errors.New("is a folder, not the nanomdm binary")
	case fi.Mode()&0o111 == 0:
		return errors.New("is not executable")
	}
	return nil
}

// install builds NanoMDM into the user's cache folder with go install,
// unless a test binary before this one did. A lock file keeps parallel test
// binaries from building at once; the binary is renamed into place, so a
// reader never sees half of it.
func install() (string, error) {
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder to install nanomdm in: %w", err)
	}
	dir := filepath.Join(cache, "pushcert", "nanomdm-"+Module[strings.LastIndex(Module, "@")+1:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("make %s: %w", dir, err)
	}
	bin := filepath.Join(dir, "nanomdm")
	unlock, err := filelock.Lock(filepath.Join(dir, ".lock"))
	if err != nil {
		return "", fmt.Errorf("lock %s: %w", dir, err)
	}
	defer unlock()
	if executable(bin) == nil {
		return bin, nil
	}
	tmp, err := os.MkdirTemp(dir, ".gobin-")
	if err != nil {
		return "", fmt.Errorf("make a folder to install nanomdm in: %w", err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", Module)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s: %w\n%s", Module, err, out.Bytes())
	}
	if err := os.Rename(filepath.Join(tmp, "nanomdm"), bin); err != nil {
		return "", fmt.Errorf("put nanomdm in place: %w", err)
	}
	return bin, nil
}
