package static

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"testing"

	"github.com/pushcert/pushcert/views"
)

// TestStaticVersion keeps the cache-busting version in step with the files:
// the pages link them with ?v=views.StaticVersion and browsers may cache
// them for long, so every change to a file needs a new version.
func TestStaticVersion(t *testing.T) {
	h := sha256.New()
	err := fs.WalkDir(FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := FS.ReadFile(path)
		if err != nil {
			return err
		}
		h.Write([]byte(path))
		h.Write([]byte{0})
		h.Write(data)
		h.Write([]byte{0})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))[:8]
	if views.StaticVersion != want {
		t.Errorf("got views.StaticVersion %q, want %q: the files under static/ changed; set the new value in views/layout.go", views.StaticVersion, want)
	}
}

func TestFilesEmbedded(t *testing.T) {
	for _, name := range []string{"css/app.css", "js/localtime.js", "img/favicon.svg"} {
		if _, err := fs.Stat(FS, name); err != nil {
			t.Errorf("got %v for %s, want it embedded", err, name)
		}
	}
}
