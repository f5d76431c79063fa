package web_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pushcert/pushcert/web/webtest"
)

// TestUploadBodyUnreadWithoutAdmin: the upload form's body is read only by
// the upload handler, after the route's role check. A visitor who is not
// signed in, and a viewer, are refused without a byte of it being read.
func TestUploadBodyUnreadWithoutAdmin(t *testing.T) {
	app := webtest.New(t, webtest.Options{})
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("certificate", "MDM_Certificate.pem")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(bytes.Repeat([]byte("A"), 512<<10))
	_ = mw.Close()

	for _, who := range []string{"nobody", "viewer"} {
		t.Run(who, func(t *testing.T) {
			read := &readCounter{r: bytes.NewReader(body.Bytes())}
			req := httptest.NewRequest(http.MethodPost, app.URL+"/certificate?_method=PATCH", read)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			req.Header.Set("Origin", app.URL)
			if who == "viewer" {
				for _, c := range app.LoginAs(t, "viewer").Jar.Cookies(req.URL) {
					req.AddCookie(c)
				}
			}
			w := httptest.NewRecorder()
			app.Server.Config.Handler.ServeHTTP(w, req)
			want := map[string]int{"nobody": http.StatusUnauthorized, "viewer": http.StatusForbidden}[who]
			if w.Code != want {
				t.Fatalf("got %d, want %d: the upload refused by the role check", w.Code, want)
			}
			if read.n != 0 {
				t.Errorf("got %d bytes of the body read, want none", read.n)
			}
		})
	}
}

// readCounter counts the bytes read from a request body.
type readCounter struct {
	r *bytes.Reader
	n int
}

func (c *readCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
