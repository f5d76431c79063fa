package web

import (
	"io/fs"
	"net/url"
	"strings"
)

// filesOnly is a file system whose directories cannot be opened, so that
// http.FileServerFS answers 404 for them instead of listing what they
// hold.
type filesOnly struct{ fsys fs.FS }

// Open opens name unless it is a directory.
func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err != nil || info.IsDir() {
		file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

// isHTTPS reports whether the base URL is an https one, its scheme written
// in any case ("HTTPS://" too, as RFC 3986 allows).
func isHTTPS(baseURL string) bool {
	u, err := url.Parse(baseURL)
	return err == nil && strings.EqualFold(u.Scheme, "https") && u.Host != ""
}
