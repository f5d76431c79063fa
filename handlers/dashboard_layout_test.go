package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/pushcert/pushcert/internal/applesim"
	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/browsertest"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/static"
)

// layoutTimeout bounds one layout check, Chromium's start included, with
// room for a busy CI runner with the race detector on.
const layoutTimeout = 60 * time.Second

// historyLayout is what TestHistoryLayout measures in the browser, in CSS
// pixels and line boxes.
type historyLayout struct {
	WrapScrollWidth  float64   `json:"wrapScrollWidth"`
	WrapClientWidth  float64   `json:"wrapClientWidth"`
	CertificateWidth float64   `json:"certificateWidth"`
	DetailWidth      float64   `json:"detailWidth"`
	SerialLines      []float64 `json:"serialLines"`
	TopicLines       []float64 `json:"topicLines"`
	WhenLines        []float64 `json:"whenLines"`
}

// measureHistory runs in the page: it reads the table's overflow, the
// column widths and on how many lines the values wrap.
const measureHistory = `(() => {
	const lines = el => {
		const r = document.createRange();
		r.selectNodeContents(el);
		return new Set(Array.from(r.getClientRects(), c => Math.round(c.top))).size;
	};
	const all = sel => Array.from(document.querySelectorAll(sel));
	const wrap = document.querySelector(".table-wrap");
	const th = all(".history thead th");
	return {
		wrapScrollWidth: wrap.scrollWidth,
		wrapClientWidth: wrap.clientWidth,
		certificateWidth: th[3].getBoundingClientRect().width,
		detailWidth: th[4].getBoundingClientRect().width,
		serialLines: all('[data-testid="history-serial"]').map(lines),
		topicLines: all('[data-testid="history-topic"]').map(lines),
		whenLines: all('[data-testid="history-row"] time').map(lines),
	};
})()`

// TestHistoryLayout loads the history page in headless Chromium at a
// desktop width, with the stylesheet, after a refused topic change: the
// longest reason the service writes, full of unbroken topics. The table
// must fit without scrolling sideways, give the detail room, and keep
// serials and topics readable rather than in narrow fragments.
func TestHistoryLayout(t *testing.T) {
	chromium := browsertest.Path(t)
	e := newEnv(t)
	// Typical data: random topics as Apple makes them, a shared Apple ID
	// and a colleague with a long address.
	e.activate(t, "push-admin@example.com", applesim.Request{})
	pk := e.generateCSR(t)
	colleague := auth.User{Subject: "sub-max", Email: "maximilian.administrator@example.com", Role: auth.RoleAdmin}
	if _, err := e.svc.Update(t.Context(), pushcert.Update{Actor: colleague, Certificate: e.issue(t, pk.CSRDER, applesim.Request{})}); err == nil {
		t.Fatal("got no error for a certificate with another topic, want a refusal")
	}

	d := NewDashboard(discardLogger(), e.svc, true)
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static.FS)))
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, r *http.Request) { d.History(w, as(r, viewer)) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	ctx := browsertest.Start(t, chromium, layoutTimeout, nil)
	for _, width := range []int64{1280, 1024} {
		err := chromedp.Do(ctx,
			chromedp.EmulateViewport(width, 900),
			chromedp.Navigate(srv.URL+"/history"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid="history-row"]`)),
		)
		if err != nil {
			t.Fatalf("load the history at %d px: %v", width, err)
		}
		m, err := chromedp.Run(ctx, chromedp.Evaluate[historyLayout](measureHistory))
		if err != nil {
			t.Fatalf("measure the history at %d px: %v", width, err)
		}
		if m.WrapScrollWidth > m.WrapClientWidth {
			t.Errorf("%d px: got a table %v px wide in %v px, want no sideways scrolling", width, m.WrapScrollWidth, m.WrapClientWidth)
		}
		if m.DetailWidth < m.CertificateWidth {
			t.Errorf("%d px: got Detail %v px and Certificate %v px wide, want Detail the wider", width, m.DetailWidth, m.CertificateWidth)
		}
		// The refused and the accepted upload each name a certificate.
		assertLines(t, width, "serial", m.SerialLines, 2, 1)
		assertLines(t, width, "topic", m.TopicLines, 2, 3)
		assertLines(t, width, "time", m.WhenLines, 4, 2)
	}
}

// assertLines checks that want values were measured and none wraps onto
// more than maxLines lines.
func assertLines(t *testing.T, width int64, what string, got []float64, want int, maxLines float64) {
	t.Helper()
	if len(got) != want {
		t.Errorf("%d px: got %d %ss, want %d", width, len(got), what, want)
	}
	for i, n := range got {
		if n > maxLines {
			t.Errorf("%d px: %s %d: got %v lines, want at most %v", width, what, i, n, maxLines)
		}
	}
}
