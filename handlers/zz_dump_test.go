//go:build dump

package handlers

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/static"
)

func TestDumpScreens(t *testing.T) {
	e := newEnv(t)
	e.activate(t, "it@example.com", applesim.Request{Topic: activeTopic, NotAfter: today().AddDate(0, 0, 23)})
	time.Sleep(10 * time.Millisecond)
	pk := e.generateCSR(t)
	cert := e.issue(t, pk.CSRDER, applesim.Request{})
	d := NewDashboard(discardLogger(), e.svc, true)
	c := NewCertificate(discardLogger(), e.svc, "Example Corp", true)
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static.FS)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { d.Show(w, as(r, admin)) })
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, r *http.Request) { d.History(w, as(r, admin)) })
	mux.HandleFunc("GET /refused", func(w http.ResponseWriter, r *http.Request) {
		c.Upload(w, uploadRequest(t, map[string]string{"apple_id": "it@example.com"}, cert))
	})
	mux.HandleFunc("GET /dev/apple", func(w http.ResponseWriter, r *http.Request) { NewDevApple(discardLogger(), e.svc, e.ca).Show(w, as(r, admin)) })
	mux.HandleFunc("GET /viewer", func(w http.ResponseWriter, r *http.Request) { d.Show(w, as(r, viewer)) })
	mux.Handle("/", NotFound(discardLogger(), true))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	os.MkdirAll("/tmp/shots", 0o755)
	for _, p := range []string{"/", "/history", "/refused", "/dev/apple", "/viewer", "/missing"} {
		name := "/tmp/shots/" + map[string]string{"/": "status", "/history": "history", "/refused": "refused", "/dev/apple": "dev", "/viewer": "viewer", "/missing": "404"}[p] + ".png"
		out, err := exec.Command("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1100,1800", "--screenshot="+name, srv.URL+p).CombinedOutput()
		if err != nil {
			t.Logf("%s: %v %s", p, err, out)
		}
	}
}
