package browsertest

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestAxeScan checks the scan itself: it reports a page's broken rules
// with their impact and elements, and nothing on a sound page, so a
// browser test that finds no violation really looked.
func TestAxeScan(t *testing.T) {
	chromium := Path(t)
	src := Axe(t)
	pages := map[string]string{
		"/bad": `<!DOCTYPE html><html lang="en"><head><title>bad</title></head><body>
<p class="outside">Outside every landmark.</p>
<main><img src="/x.png"><label>File <input type="file" id="f" aria-invalid="true" aria-errormessage="err"></label>
<p id="err">Not announced.</p></main></body></html>`,
		"/good": `<!DOCTYPE html><html lang="en"><head><title>good</title></head><body>
<main><h1>Fine</h1><img src="/x.png" alt="A cross"></main></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(pages[r.URL.Path]))
	}))
	t.Cleanup(srv.Close)
	ctx := Start(t, chromium, 60*time.Second, nil)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/bad")); err != nil {
		t.Fatalf("open the bad page: %v", err)
	}
	vs, err := AxeScan(ctx, src)
	if err != nil {
		t.Fatalf("scan the bad page: %v", err)
	}
	var blocking []string
	for _, v := range vs {
		if v.Blocking() {
			blocking = append(blocking, v.ID)
		}
		if len(v.Nodes) == 0 || v.Help == "" || v.Impact == "" {
			t.Errorf("violation %s: got %d elements, help %q, impact %q, want elements, help and impact", v.ID, len(v.Nodes), v.Help, v.Impact)
		}
	}
	for _, want := range []string{"image-alt", "aria-valid-attr-value", "region"} {
		if !slices.Contains(blocking, want) {
			t.Errorf("bad page: got blocking violations %v, want %s among them", blocking, want)
		}
	}

	// A second scan of the same page reuses the injected axe-core.
	if _, err := AxeScan(ctx, src); err != nil {
		t.Fatalf("scan the bad page again: %v", err)
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/good")); err != nil {
		t.Fatalf("open the good page: %v", err)
	}
	vs, err = AxeScan(ctx, src)
	if err != nil {
		t.Fatalf("scan the good page: %v", err)
	}
	for _, v := range vs {
		if v.Blocking() {
			t.Errorf("good page: got %s, want no blocking violation", v)
		}
	}
}
