package target

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// readFolder returns the names in dir and fails on a leftover temporary
// file.
func readFolder(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("got %s mode %o, want %o", filepath.Base(path), got, want)
	}
}

func TestFolderDelivery(t *testing.T) {
	tests := []struct {
		name      string
		key       string
		opts      FolderOptions
		wantBlock string
		wantFiles []string
	}{
		{"defaults, RSA", rsaKey, FolderOptions{}, "RSA PRIVATE KEY", []string{"push.key", "push.pem"}},
		{"pkcs8, RSA, pair file", rsaKey, FolderOptions{KeyFormat: FormatPKCS8, PairFile: "pair.pem"}, "PRIVATE KEY", []string{"pair.pem", "push.key", "push.pem"}},
		{"pkcs1, ECDSA, own names", ecdsaKey, FolderOptions{CertFile: "mdm.crt", KeyFile: "mdm.key", KeyFormat: FormatPKCS1}, "EC PRIVATE KEY", []string{"mdm.crt", "mdm.key"}},
		{"pkcs8, ECDSA", ecdsaKey, FolderOptions{KeyFormat: FormatPKCS8}, "PRIVATE KEY", []string{"push.key", "push.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			o := tt.opts
			o.Name, o.Dir = "shared", dir
			f, err := NewFolder(o)
			if err != nil {
				t.Fatal(err)
			}
			if f.Describe() != dir || f.Kind() != KindFolder || f.Name() != "shared" {
				t.Errorf("got %q %q %q, want %q folder shared", f.Describe(), f.Kind(), f.Name(), dir)
			}
			certPath, keyPath, pairPath := f.Files()
			// The second delivery is a renewal replacing the first.
			for _, p := range []Pair{newPair(t, "", tt.key), newPair(t, "", tt.key)} {
				if err := f.Deliver(t.Context(), p); err != nil {
					t.Fatal(err)
				}
				if got := readFolder(t, dir); !slices.Equal(got, tt.wantFiles) {
					t.Errorf("got files %v, want %v (no temporary files)", got, tt.wantFiles)
				}
				certPEM, _ := os.ReadFile(certPath)
				keyPEM, _ := os.ReadFile(keyPath)
				if string(certPEM) != p.Certificate.PEM {
					t.Errorf("got certificate file %q, want the delivered certificate", certPEM)
				}
				_, pub, block := parseStored(t, certPEM, keyPEM)
				if block != tt.wantBlock || !samePublicKey(t, p, pub) {
					t.Errorf("got key block %q, want %q of the delivered key", block, tt.wantBlock)
				}
				wantMode(t, certPath, 0o644)
				wantMode(t, keyPath, 0o600)
				if pairPath != "" {
					pair, _ := os.ReadFile(pairPath)
					if want := string(certPEM) + string(keyPEM); string(pair) != want {
						t.Errorf("got pair file %q, want the certificate then the key", pair)
					}
					wantMode(t, pairPath, 0o600)
				}
			}
		})
	}
}

func TestFolderRefusesMismatchedPair(t *testing.T) {
	dir := t.TempDir()
	f, err := NewFolder(FolderOptions{Name: "shared", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	p := pairFor(t, "", newKey(t, rsaKey), newKey(t, rsaKey))
	wantMessage(t, f.Deliver(t.Context(), p), "the certificate's public key does not match the private key")
	if got := readFolder(t, dir); len(got) != 0 {
		t.Errorf("got files %v, want none", got)
	}
}

func TestFolderFailures(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   func(dir string) string
	}{
		{"folder removed", func(t *testing.T, dir string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
		}, func(dir string) string { return "the folder " + dir + " does not exist (any more)" }},
		{"a folder where the key goes", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "push.key", "x"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, func(dir string) string {
			return "cannot write push.key in " + dir + ": a folder of that name is in the way"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "push")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := NewFolder(FolderOptions{Name: "shared", Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			tt.damage(t, dir)
			err = f.Deliver(t.Context(), newPair(t, "", rsaKey))
			wantMessage(t, err, tt.want(dir))
			if names, err := os.ReadDir(dir); err == nil {
				for _, n := range names {
					if n.Name() != "push.key" && n.Name() != "push.pem" {
						t.Errorf("got leftover %s, want no temporary files", n.Name())
					}
				}
			}
		})
	}
}

func TestFolderUnwritable(t *testing.T) {
	dir := t.TempDir()
	f, err := NewFolder(FolderOptions{Name: "shared", Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	want := "pushcert may not write push.pem in " + dir + " (permission denied)"
	if os.Geteuid() == 0 {
		// root writes anywhere, so the refusal is made up; the message is
		// what is under test.
		e := f.fileError("push.pem", &fs.PathError{Op: "open", Path: filepath.Join(dir, ".push.pem.tmp-1"), Err: syscall.EACCES})
		wantMessage(t, e, want)
		return
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
	err = f.Deliver(t.Context(), newPair(t, "", rsaKey))
	wantMessage(t, err, want)
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("got cause %v, want a permission error", errors.Unwrap(err))
	}
}
