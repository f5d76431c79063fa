package handlers

import "net/http"

// Healthz handles GET /healthz: it answers 200 "ok" while the process
// serves requests. It checks nothing else, so a slow database does not get
// a healthy process restarted.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok"))
}
