// Package handlers holds pushcert's HTTP handlers: the dashboard pages, the
// certificate upload and CSR download, the JSON API and health. Each area is
// a small type with its dependencies; web wires their methods to routes and
// applies sign-in and roles before they run.
package handlers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"

	"github.com/a-h/templ"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/views"
)

// render writes c as the response with status. The page is rendered into a
// buffer first, so a template failure becomes a clean 500 page instead of
// half a page under a 200.
func render(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, c templ.Component) {
	buf := getPageBuffer()
	// The buffer goes back to the pool only after writePage has returned:
	// a ResponseWriter copies what it is given and keeps none of it.
	defer putPageBuffer(buf)
	if err := c.Render(r.Context(), buf); err != nil {
		serverError(w, r, log, fmt.Errorf("render page: %w", err))
		return
	}
	writePage(w, status, buf.Bytes())
}

// Page buffers are pooled: a page is rendered into a buffer with room for
// it, not one grown by copying, and the buffer is reused.
const (
	// pageBufferSize is a new page buffer's capacity: room for the status
	// page, the page served most (about 5.3 KiB), and a short history.
	pageBufferSize = 16 << 10
	// maxPooledPageBuffer is the largest buffer put back: one grown by a
	// rare large page (a long history) is left to the garbage collector.
	maxPooledPageBuffer = 256 << 10
)

var pageBuffers = sync.Pool{
	New: func() any { return bytes.NewBuffer(make([]byte, 0, pageBufferSize)) },
}

func getPageBuffer() *bytes.Buffer {
	return pageBuffers.Get().(*bytes.Buffer)
}

// putPageBuffer returns buf to the pool, emptied. Nothing may use buf or
// a slice of its bytes afterwards.
func putPageBuffer(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledPageBuffer {
		return
	}
	buf.Reset()
	pageBuffers.Put(buf)
}

// statusClientClosedRequest is the status recorded for a request whose
// client went away before its answer was ready (nginx's 499): it is sent
// without a body, to nobody, but the request log and the metrics then tell
// it apart from the server's own failures.
const statusClientClosedRequest = 499

// clientGone reports whether err is the request's own context ending: the
// client closed the connection (or canceled its HTTP/2 stream) while the
// request was being served. That is not a failure of the server.
func clientGone(r *http.Request, err error) bool {
	return errors.Is(err, context.Canceled) && r.Context().Err() != nil
}

// abandon ends a request whose client went away: one line at debug level
// and the bare status, with no error page that nobody would read.
func abandon(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	log.Debug("client went away", "method", r.Method, "path", r.URL.Path, "err", err)
	w.WriteHeader(statusClientClosedRequest)
}

// serverError logs err and answers with the generic 500 page. err's text
// never reaches the page: it may name files, queries or keys. When err is
// only the client going away, it is not logged as an error (see abandon).
func serverError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	if clientGone(r, err) {
		abandon(w, r, log, err)
		return
	}
	log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	buf := getPageBuffer()
	defer putPageBuffer(buf)
	rerr := views.ErrorPage(newShell(r, false, "Something went wrong"), views.ErrorView{
		Status:  http.StatusInternalServerError,
		Title:   "Something went wrong",
		Message: "pushcert could not complete the request. Nothing was changed by this error; try again, and if it keeps happening an administrator can find the details in the server log.",
	}).Render(r.Context(), buf)
	if rerr != nil {
		// The error page itself failed: fall back to plain text rather
		// than calling render again and looping. When only the client
		// went away meanwhile, the failure is already logged above.
		if !clientGone(r, rerr) {
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", fmt.Errorf("render error page: %w", rerr))
		}
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	writePage(w, http.StatusInternalServerError, buf.Bytes())
}

// RenderError answers with an error page in the site's layout: status, a
// short title and a message that tells the person what to do. web's
// middleware uses it for 401, 403, 413 and 500 answers. title and message
// are shown as they are, so they must not carry internal error text.
func RenderError(w http.ResponseWriter, r *http.Request, log *slog.Logger, dev bool, status int, title, message string) {
	render(w, r, log, status, views.ErrorPage(newShell(r, dev, title), views.ErrorView{
		Status:  status,
		Title:   title,
		Message: message,
	}))
}

// NotFound returns the handler for every path no route matches: the 404
// page in the site's layout.
func NotFound(log *slog.Logger, dev bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		RenderError(w, r, log, dev, http.StatusNotFound, "Page not found",
			"There is nothing at this address. Check the link, or go to the status page.")
	})
}

// newShell builds the frame every page needs from the request: the signed-in
// user that web's middleware put in the context, the path and dev mode.
func newShell(r *http.Request, dev bool, title string) views.Shell {
	s := views.Shell{Title: title, Dev: dev, Path: r.URL.Path}
	if u, ok := auth.UserFrom(r.Context()); ok {
		s.User = &u
	}
	return s
}

func writePage(w http.ResponseWriter, status int, page []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(page)))
	// Pages show who is signed in and the state of a credential: no
	// shared cache may keep them.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(page)
}

// writeDownload answers with body as a file the browser saves under name.
// nosniff keeps a browser from treating a CSR or certificate as a page.
func writeDownload(w http.ResponseWriter, name, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
