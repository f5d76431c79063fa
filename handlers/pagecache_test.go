package handlers

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/views"
)

// fillInputs sets every field reachable from v (allocating what pointers
// point to) to a non-zero value, or, for the field at path alt, to another
// non-zero value. It returns the paths of the fields it set.
func fillInputs(v reflect.Value, path, alt string) []string {
	if v.Type() == reflect.TypeFor[time.Time]() {
		v.Set(reflect.ValueOf(time.Unix(map[bool]int64{false: 1, true: 2}[path == alt], 0)))
		return []string{path}
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return fillInputs(v.Elem(), path, alt)
	case reflect.Struct:
		var paths []string
		for i := range v.NumField() {
			paths = append(paths, fillInputs(v.Field(i), path+"."+v.Type().Field(i).Name, alt)...)
		}
		return paths
	case reflect.Slice:
		// One element, itself filled; its fields' paths are under [0].
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		return fillInputs(v.Index(0), path+"[0]", alt)
	case reflect.String:
		v.SetString(map[bool]string{false: "a", true: "b"}[path == alt])
	case reflect.Bool:
		v.SetBool(path != alt)
	case reflect.Int, reflect.Int64:
		v.SetInt(map[bool]int64{false: 1, true: 2}[path == alt])
	default:
		panic("fillInputs: add a case for " + v.Kind().String() + " at " + path)
	}
	return []string{path}
}

// TestStatusPageKeyCoversEveryInput: a change to any field the status page
// is rendered from, however deep, gives another key, so a kept page is
// never served for other inputs. A field added to the views later is
// checked without changing this test.
func TestStatusPageKeyCoversEveryInput(t *testing.T) {
	type inputs struct {
		Shell views.Shell
		View  views.StatusView
	}
	key := func(alt string) (statusPageKey, []string) {
		var in inputs
		paths := fillInputs(reflect.ValueOf(&in).Elem(), "", alt)
		return newStatusPageKey(in.Shell, in.View), paths
	}
	base, paths := key("")
	if again, _ := key(""); again != base {
		t.Fatal("the same inputs, filled afresh, give another key")
	}
	if len(paths) < 25 {
		t.Fatalf("found only %d inputs: %v", len(paths), paths)
	}
	for _, p := range paths {
		if k, _ := key(p); k == base {
			t.Errorf("changing %s does not change the key", p)
		}
	}
	// A missing user, certificate or pending CSR is another page too.
	var in inputs
	fillInputs(reflect.ValueOf(&in).Elem(), "", "")
	for name, clear := range map[string]func(*inputs){
		"Shell.User":       func(in *inputs) { in.Shell.User = nil },
		"View.Certificate": func(in *inputs) { in.View.Certificate = nil },
		"View.Pending":     func(in *inputs) { in.View.Pending = nil },
	} {
		cp := in
		clear(&cp)
		if newStatusPageKey(cp.Shell, cp.View) == base {
			t.Errorf("%s nil gives the same key as set", name)
		}
	}
}

// TestDashboardShowKeepsPages: the status page is rendered once for the
// same inputs, and a change of any of them (the certificate, the person,
// the day) shows on the next view.
func TestDashboardShowKeepsPages(t *testing.T) {
	e := newEnv(t)
	d := NewDashboard(discardLogger(), e.svc, false)
	show := func(t *testing.T, r *http.Request) string {
		t.Helper()
		w := httptest.NewRecorder()
		d.Show(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("got status %d, want 200", w.Code)
		}
		assertPage(t, w)
		return w.Body.String()
	}
	get := func() *http.Request { return httptest.NewRequest(http.MethodGet, "/", nil) }
	kept := func() int {
		d.pages.mu.RLock()
		defer d.pages.mu.RUnlock()
		return len(d.pages.pages)
	}

	first := show(t, as(get(), admin))
	if second := show(t, as(get(), admin)); second != first || kept() != 1 {
		t.Fatalf("the same view twice: %d pages kept, same bytes %v; want 1 and true", kept(), second == first)
	}
	// The kept page is what is served: swapped for a marker, the marker
	// comes back. Put back afterwards.
	d.pages.mu.Lock()
	for k := range d.pages.pages {
		d.pages.pages[k] = []byte("<!doctype html><title>kept</title>")
	}
	d.pages.mu.Unlock()
	w := httptest.NewRecorder()
	d.Show(w, as(get(), admin))
	if w.Body.String() != "<!doctype html><title>kept</title>" {
		t.Fatalf("the same view a third time: the page was rendered again instead of served from what was kept")
	}
	d.pages.mu.Lock()
	clear(d.pages.pages)
	d.pages.mu.Unlock()
	if show(t, as(get(), admin)) != first {
		t.Fatal("rendered again after the cache was emptied: another page than the first time")
	}

	e.activate(t, "it@example.com", applesim.Request{NotAfter: e.now().AddDate(0, 0, 40)})
	body := show(t, as(get(), admin))
	if got := testIDText(t, body, "status-state"); !strings.Contains(got, "Active") {
		t.Fatalf("after an upload the page shows state %q, want Active", got)
	}
	if got := testIDText(t, body, "expiry-relative"); !strings.Contains(got, "in 40 days") {
		t.Errorf("expiry: got %q, want it to say in 40 days", got)
	}

	if got := testIDText(t, show(t, as(get(), viewer)), "user-label"); !strings.Contains(got, viewer.Email) {
		t.Errorf("a viewer after the admin: user label %q, want %q", got, viewer.Email)
	}

	e.clk.Advance(15 * 24 * time.Hour)
	if got := testIDText(t, show(t, as(get(), admin)), "status-state"); !strings.Contains(got, "Expires soon") {
		t.Errorf("15 days later: state %q, want Expires soon", got)
	}
	if kept() != 4 {
		t.Errorf("four different pages shown: %d kept, want 4", kept())
	}
}

func TestStatusPagesBounded(t *testing.T) {
	var c statusPages
	for i := range maxStatusPages + 10 {
		c.put(statusPageKey{path: strings.Repeat("x", i)}, []byte("page"))
		if n := len(c.pages); n > maxStatusPages {
			t.Fatalf("after %d pages: %d kept, want at most %d", i+1, n, maxStatusPages)
		}
	}
	if _, ok := c.get(statusPageKey{path: strings.Repeat("x", maxStatusPages+9)}); !ok {
		t.Error("the page put last is not kept")
	}
}
