package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestCompareSemver(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"v0.59.0", "v0.59.0", 0},
		{"v0.11.0", "v0.59.0", -1},
		{"v0.100.0", "v0.59.0", 1}, // numerically, not as text
		{"v4.1.10", "v4.1.9", 1},
		{"v1.0.0", "v0.99.99", 1},
		{"v0.0.0-20220214200702-86341886e292", "v0.1.0", -1}, // a pseudo-version is a prerelease
		{"v0.59.1-0.20260101000000-abcdefabcdef", "v0.59.0", 1},
		{"v0.59.1-0.20260101000000-abcdefabcdef", "v0.59.1", -1},
		{"v1.0.0-alpha", "v1.0.0-alpha.1", -1},
		{"v1.0.0-alpha.1", "v1.0.0-alpha.beta", -1}, // numbers below words
		{"v1.0.0-beta.2", "v1.0.0-beta.11", -1},
		{"v1.0.0-rc.1", "v1.0.0", -1},
		{"v2.0.0+incompatible", "v2.0.0", 0}, // build metadata does not order
		{"(devel)", "v0.0.1", -1},            // not a version: below every version
		{"v1.2", "v0.0.1", -1},
	}
	for _, tt := range tests {
		if got := compareSemver(tt.a, tt.b); got != tt.want {
			t.Errorf("compareSemver(%s, %s): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareSemver(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareSemver(%s, %s): got %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestParsePolicyRefuses(t *testing.T) {
	tests := []struct{ name, text, want string }{
		{"three fields", "golang.org/x/crypto v0.59.0 extra\n", "line 1"},
		{"a bare module", "\n# comment\ngolang.org/x/crypto\n", "line 3"},
		{"not a version", "golang.org/x/crypto 0.59.0\n", "neither deny nor a version"},
		{"a Go version without go", "go 1.26.8\n", "not a Go version"},
		{"a module twice", "a.example/m v1.0.0\na.example/m deny\n", "already on line 1"},
		{"nothing", "# only comments\n\n", "no rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parsePolicy(strings.NewReader(tt.text))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

const testPolicy = `
go go1.26.8 # stdlib fixes
golang.org/x/crypto v0.59.0 # scanners flag older
github.com/go-jose/go-jose/v4 v4.1.9
github.com/oauth2-proxy/mockoidc deny # dev only
github.com/go-jose/go-jose/v3 deny
`

func TestCheck(t *testing.T) {
	mod := func(path, version string) *debug.Module { return &debug.Module{Path: path, Version: version} }
	tests := []struct {
		name      string
		goVersion string
		deps      []*debug.Module
		want      []string // one substring per problem, in order
	}{
		{"at the minimums", "go1.26.8", []*debug.Module{mod("golang.org/x/crypto", "v0.59.0"), mod("github.com/go-jose/go-jose/v4", "v4.1.9"), mod("unlisted.example/m", "v0.0.1")}, nil},
		{"above the minimums", "go1.27.1", []*debug.Module{mod("golang.org/x/crypto", "v0.60.0"), mod("github.com/go-jose/go-jose/v4", "v4.1.10")}, nil},
		{"old crypto", "go1.26.8", []*debug.Module{mod("golang.org/x/crypto", "v0.11.0")},
			[]string{"golang.org/x/crypto v0.11.0 is below the minimum v0.59.0: scanners flag older"}},
		{"a pseudo-version below the minimum", "go1.26.8", []*debug.Module{mod("golang.org/x/crypto", "v0.0.0-20220214200702-86341886e292")},
			[]string{"golang.org/x/crypto v0.0.0-20220214200702-86341886e292 is below the minimum v0.59.0"}},
		{"denied modules", "go1.26.8", []*debug.Module{mod("github.com/oauth2-proxy/mockoidc", "v0.0.0-20240214162133-caebfff84d25"), mod("github.com/go-jose/go-jose/v3", "v3.0.4")},
			[]string{"mockoidc v0.0.0-20240214162133-caebfff84d25 is denied: dev only", "go-jose/v3 v3.0.4 is denied"}},
		{"old toolchain", "go1.26.2", nil, []string{"built with go1.26.2, below the minimum go1.26.8: stdlib fixes"}},
		{"toolchain with experiments", "go1.26.8 X:nodwarf5", nil, nil},
		{"replaced by an older version", "go1.26.8", []*debug.Module{{Path: "golang.org/x/crypto", Version: "v0.59.0",
			Replace: mod("golang.org/x/crypto", "v0.40.0")}}, []string{"golang.org/x/crypto v0.40.0 is below the minimum v0.59.0"}},
		{"replaced by a fork", "go1.26.8", []*debug.Module{{Path: "golang.org/x/crypto", Version: "v0.59.0",
			Replace: mod("fork.example/crypto", "v1.0.0")}}, []string{"replaced by fork.example/crypto v1.0.0, whose version cannot be held"}},
		{"replaced by a local folder", "go1.26.8", []*debug.Module{{Path: "golang.org/x/crypto", Version: "v0.59.0",
			Replace: mod("../crypto", "")}}, []string{"replaced by ../crypto"}},
		{"a denied module as a replacement", "go1.26.8", []*debug.Module{{Path: "unlisted.example/oidc", Version: "v1.0.0",
			Replace: mod("github.com/oauth2-proxy/mockoidc", "v0.0.0-20240214162133-caebfff84d25")}},
			[]string{"github.com/oauth2-proxy/mockoidc (replacing unlisted.example/oidc) is denied"}},
		{"no version", "go1.26.8", []*debug.Module{mod("golang.org/x/crypto", "(devel)")}, []string{`version "(devel)"`}},
	}
	pol, err := parsePolicy(strings.NewReader(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := check(&debug.BuildInfo{GoVersion: tt.goVersion, Deps: tt.deps}, pol)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems %q, want %d like %q", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("problem %d: got %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestRepositoryPolicy: the policy CI uses parses, and holds the rules
// finding 7 of issue 14 is about.
func TestRepositoryPolicy(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "min-versions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pol, err := parsePolicy(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"github.com/oauth2-proxy/mockoidc", "github.com/go-jose/go-jose/v3"} {
		if !pol.modules[m].deny {
			t.Errorf("%s: got no deny rule, want one", m)
		}
	}
	for _, m := range []string{"golang.org/x/crypto", "github.com/go-jose/go-jose/v4", "golang.org/x/net"} {
		if pol.modules[m].min == "" {
			t.Errorf("%s: got no minimum, want one", m)
		}
	}
}

// TestRun reads a real binary, this test's own, through the command: it
// passes a policy the binary meets and fails one it breaks.
func TestRun(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"met", []string{"-policy", write("ok.txt", "go go1.21.0\nunlisted.example/m deny\n"), exe}, 0, "0 problems"},
		{"broken", []string{"-policy", write("new.txt", "go go1.999.0 # too new\n"), exe}, 1, "below the minimum go1.999.0: too new"},
		{"not a binary", []string{"-policy", write("ok2.txt", "go go1.21.0\n"), write("text", "hello")}, 2, ""},
		{"no binary", []string{"-policy", write("ok3.txt", "go go1.21.0\n")}, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut strings.Builder
			code := run(tt.args, &out, &errOut)
			if code != tt.wantCode || !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("got %d %q (stderr %q), want %d containing %q", code, out.String(), errOut.String(), tt.wantCode, tt.wantOut)
			}
		})
	}
}
