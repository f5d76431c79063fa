package target

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Default file names of a folder target.
const (
	DefaultCertFile = "push.pem"
	DefaultKeyFile  = "push.key"
)

// FolderOptions configures a folder target.
type FolderOptions struct {
	Name string
	Dir  string // an existing folder
	// CertFile and KeyFile are plain file names in Dir; empty means
	// DefaultCertFile and DefaultKeyFile.
	CertFile string
	KeyFile  string
	// PairFile, when set, is one more file in Dir holding the certificate
	// followed by the key.
	PairFile string
	// KeyFormat is FormatPKCS1 (the default when empty) or FormatPKCS8.
	KeyFormat string
}

// Folder is a target that writes the certificate and key as files in a
// folder: each file atomically (a temporary file in the same folder,
// fsync, rename, fsync of the folder), the key and the pair file with mode
// 0600, the certificate with 0644.
type Folder struct {
	name      string
	dir       string
	certFile  string
	keyFile   string
	pairFile  string
	keyFormat string

	// mu keeps two deliveries from mixing one's certificate with the
	// other's key.
	mu sync.Mutex
}

// NewFolder returns a folder target. Dir must exist and be a folder.
func NewFolder(o FolderOptions) (*Folder, error) {
	f := &Folder{
		name: o.Name, dir: filepath.Clean(o.Dir),
		certFile: o.CertFile, keyFile: o.KeyFile, pairFile: o.PairFile,
		keyFormat: o.KeyFormat,
	}
	if f.certFile == "" {
		f.certFile = DefaultCertFile
	}
	if f.keyFile == "" {
		f.keyFile = DefaultKeyFile
	}
	if f.keyFormat == "" {
		f.keyFormat = FormatPKCS1
	}
	var errs []error
	if err := checkName(o.Name); err != nil {
		errs = append(errs, err)
	}
	if err := checkDir(o.Dir); err != nil {
		errs = append(errs, err)
	}
	if f.keyFormat != FormatPKCS1 && f.keyFormat != FormatPKCS8 {
		errs = append(errs, fmt.Errorf("keyFormat %q is not pkcs1 or pkcs8", clip(f.keyFormat, 40)))
	}
	seen := map[string]string{}
	for _, file := range []struct{ field, name string }{
		{"certFile", f.certFile}, {"keyFile", f.keyFile}, {"pairFile", f.pairFile},
	} {
		if file.field == "pairFile" && file.name == "" {
			continue
		}
		if err := checkFileName(file.field, file.name); err != nil {
			errs = append(errs, err)
		} else if other, ok := seen[file.name]; ok {
			errs = append(errs, fmt.Errorf("%s and %s are both %q", other, file.field, file.name))
		}
		seen[file.name] = file.field
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

func checkDir(dir string) error {
	if dir == "" {
		return errors.New("dir is missing: name the folder to write to")
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("dir %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("dir %s cannot be read: %w", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return fmt.Errorf("dir %s is not a folder", dir)
	}
	return nil
}

// checkFileName allows plain names only: no folders, and no leading dot,
// which the temporary files use.
func checkFileName(field, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%s %q must be a plain file name, without folders or a leading dot", field, clip(name, 60))
	}
	return nil
}

// Name returns the operator's name for the target.
func (f *Folder) Name() string { return f.name }

// Kind returns KindFolder.
func (f *Folder) Kind() string { return KindFolder }

// Describe returns the folder's path.
func (f *Folder) Describe() string { return f.dir }

// Files returns the paths the target writes: certificate, key, and the
// pair file or "".
func (f *Folder) Files() (cert, key, pair string) {
	if f.pairFile != "" {
		pair = filepath.Join(f.dir, f.pairFile)
	}
	return filepath.Join(f.dir, f.certFile), filepath.Join(f.dir, f.keyFile), pair
}

// Settings names what the target writes: a change of any of them means
// the folder has to be written again.
func (f *Folder) Settings() string {
	return strings.Join([]string{KindFolder, f.dir, f.certFile, f.keyFile, f.pairFile, f.keyFormat}, "\n")
}

// Holds reports whether the folder still holds p: its certificate file is
// p's certificate, and the key file (and the pair file, if configured) are
// there. A folder is not a server that keeps what it was sent: a volume
// recreated empty, or someone's cleanup, loses the files, and only looking
// tells.
func (f *Folder) Holds(_ context.Context, p Pair) bool {
	certPath, keyPath, pairPath := f.Files()
	b, err := os.ReadFile(certPath)
	if err != nil {
		return false
	}
	held, _ := pem.Decode(b)
	want, _ := pem.Decode([]byte(p.Certificate.PEM))
	if held == nil || want == nil || !bytes.Equal(held.Bytes, want.Bytes) {
		return false
	}
	for _, path := range []string{keyPath, pairPath} {
		if path == "" {
			continue
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			return false
		}
	}
	return true
}

// file is one file a delivery writes.
type file struct {
	name string
	data []byte
	mode os.FileMode
	tmp  string // the temporary file, once written
}

// Deliver checks p and writes its files. All are written to temporary
// files and synced before the first is renamed into place, so a reader
// sees old and new files side by side only for the moment between renames;
// a reader that needs the two together reads the pair file.
func (f *Folder) Deliver(ctx context.Context, p Pair) error {
	cert, key, err := checkPair(p)
	if err != nil {
		return err
	}
	k, err := keyPEM(key, p.KeyDER, f.keyFormat)
	if err != nil {
		return fail(err, "the key cannot be written as %s: %v", f.keyFormat, err)
	}
	c := certPEM(cert)
	files := []*file{{name: f.certFile, data: c, mode: 0o644}, {name: f.keyFile, data: k, mode: 0o600}}
	if f.pairFile != "" {
		files = append(files, &file{name: f.pairFile, data: append(append([]byte{}, c...), k...), mode: 0o600})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	defer func() {
		for _, fl := range files {
			if fl.tmp != "" {
				_ = os.Remove(fl.tmp)
			}
		}
	}()
	for _, fl := range files {
		if err := ctx.Err(); err != nil {
			return fail(err, "the delivery was canceled before the files were written")
		}
		if fl.tmp, err = f.writeTemp(fl); err != nil {
			return f.fileError(fl.name, err)
		}
	}
	for _, fl := range files {
		if err := os.Rename(fl.tmp, filepath.Join(f.dir, fl.name)); err != nil {
			return f.fileError(fl.name, err)
		}
		fl.tmp = ""
	}
	if err := syncDir(f.dir); err != nil {
		return f.fileError(".", err)
	}
	return nil
}

// writeTemp writes fl to a new temporary file in the folder, with fl's
// mode, and syncs it.
func (f *Folder) writeTemp(fl *file) (string, error) {
	// CreateTemp makes the file 0600 whatever the umask, so the key is
	// never readable by others, not even for a moment.
	tmp, err := os.CreateTemp(f.dir, "."+fl.name+".tmp-*")
	if err != nil {
		return "", err
	}
	name := tmp.Name()
	err = tmp.Chmod(fl.mode)
	if err == nil {
		_, err = tmp.Write(fl.data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	// Some file systems cannot sync a folder; the renames stand anyway.
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil
	}
	return err
}

// fileError words a failure to write name in the folder.
func (f *Folder) fileError(name string, err error) *Error {
	what := "write " + name + " in " + f.dir
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, serr := os.Stat(f.dir); serr != nil {
			return fail(err, "the folder %s does not exist (any more): create it, or set dir", f.dir)
		}
	case errors.Is(err, fs.ErrPermission):
		return fail(err, "pushcert may not %s (permission denied): let the user pushcert runs as write there", what)
	case errors.Is(err, syscall.EROFS):
		return fail(err, "cannot %s: the folder is on a read-only file system", what)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fail(err, "cannot %s: no space left", what)
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.ENOTEMPTY):
		return fail(err, "cannot %s: a folder of that name is in the way", what)
	}
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) {
		err = pe.Err
	} else if errors.As(err, &le) {
		err = le.Err
	}
	return fail(err, "cannot %s: %v", what, err)
}
