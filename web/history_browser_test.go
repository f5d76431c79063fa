package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/browsertest"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/web/webtest"
)

// TestBrowserHistoryPhone opens the history on a phone-sized screen (390
// px wide) with a refusal whose detail is a long sentence: the page must
// not scroll sideways, and the detail must get a readable width instead of
// the sliver a five-column table leaves it.
func TestBrowserHistoryPhone(t *testing.T) {
	chromium := browsertest.Path(t)
	app := webtest.New(t, webtest.Options{})
	b := startBrowser(t, chromium, screenshotDir(t))

	// History as an installation has it after a renewal attempt: a CSR, an
	// upload, a second CSR and a refused certificate for another topic.
	ctx := context.Background()
	admin := auth.User{Subject: "admin", Name: "Demo Admin", Email: "admin@example.com", Role: auth.RoleAdmin}
	for i, topic := range []string{"", applesim.NewTopic()} {
		if _, err := app.Service.GenerateCSR(ctx, admin); err != nil {
			t.Fatalf("generate csr: %v", err)
		}
		_, err := app.Service.Update(ctx, pushcert.Update{Actor: admin, AppleID: "it-department@example.com", Certificate: app.IssueForLatestCSR(t, topic)})
		if wantErr := i == 1; (err != nil) != wantErr {
			t.Fatalf("upload %d: got error %v, want an error: %v", i+1, err, wantErr)
		}
	}

	b.do("open pushcert", chromedp.Navigate(app.URL))
	b.waitVisible(testID("devlogin-admin"))
	b.follow("choose the demo admin", testID("devlogin-admin"), 200)
	b.do("resize to a phone", chromedp.EmulateViewport(390, 844))
	b.do("open the history", chromedp.Navigate(app.URL+"/history"))
	b.waitVisible(testID("history-row"))
	if n := b.count(`[data-testid="history-row"][data-kind="upload_failed"]`); n == 0 {
		t.Fatalf("history: got no upload_failed row, want one")
	}

	scroll := b.number(`document.documentElement.scrollWidth`)
	viewport := b.number(`document.documentElement.clientWidth`)
	if scroll > viewport {
		t.Errorf("history at 390px: got scrollWidth %v, want at most the viewport's %v", scroll, viewport)
	}
	wrap := b.number(`document.querySelector(".table-wrap").scrollWidth - document.querySelector(".table-wrap").clientWidth`)
	if wrap > 0 {
		t.Errorf("history at 390px: got the table scrolling %vpx sideways, want no sideways scrolling", wrap)
	}
	detail := b.number(`document.querySelector('[data-kind="upload_failed"] [data-testid="history-detail"]').getBoundingClientRect().width`)
	if detail <= 200 {
		t.Errorf("history at 390px: got a detail cell %vpx wide, want more than 200", detail)
	}
	if text := b.text(`[data-kind="upload_failed"] [data-testid="history-detail"]`); strings.TrimSpace(text) == "" {
		t.Errorf("history at 390px: got an empty refusal detail, want the reason")
	}
	b.screenshot("history-phone")
}

// number evaluates a JavaScript expression that yields a number.
func (b *browserSession) number(expr string) float64 {
	b.t.Helper()
	s := b.eval(expr)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		b.t.Fatalf("evaluate %s: got %q, want a number", expr, s)
	}
	return n
}
