package views

import (
	"regexp"
	"strings"
	"testing"

	"github.com/pushcert/pushcert/internal/auth"
)

// TestHistoryCellsCarryLabels checks that every cell of every row names
// its column in data-label, the same words as the header, in the header's
// order: on a phone the cells are drawn as a card with those labels.
func TestHistoryCellsCarryLabels(t *testing.T) {
	rows := []HistoryRow{
		{Kind: "upload_failed", What: "Upload refused", Failure: true, Who: "v@example.com",
			When: "2027-11-22 05:00 UTC", WhenISO: "2027-11-22T05:00:00Z", Detail: "The topic changed."},
		{Kind: "certificate_uploaded", What: "Certificate uploaded", Who: "a@example.com",
			When: "2027-11-21 05:00 UTC", WhenISO: "2027-11-21T05:00:00Z",
			Serial: "764AF7DD41A618B8", Topic: "com.apple.mgmt.External.55983920-66ca-4584-9c8c-c9f348df063d", Expiry: "2028-11-21"},
	}
	page := renderString(t, HistoryPage(Shell{Title: "History", User: &auth.User{Email: "v@example.com", Role: auth.RoleViewer}, Path: "/history"}, HistoryView{Rows: rows}))

	var headers []string
	for _, m := range regexp.MustCompile(`<th scope="col">([^<]*)</th>`).FindAllStringSubmatch(page, -1) {
		headers = append(headers, m[1])
	}
	if want := []string{"When", "What", "Who", "Certificate", "Detail"}; strings.Join(headers, ",") != strings.Join(want, ",") {
		t.Fatalf("got headers %q, want %q", headers, want)
	}
	body := between(t, page, "<tbody>", "</tbody>")
	trs := strings.Split(body, "</tr>")
	trs = trs[:len(trs)-1]
	if len(trs) != len(rows) {
		t.Fatalf("got %d rows, want %d", len(trs), len(rows))
	}
	td := regexp.MustCompile(`<td\b[^>]*>`)
	label := regexp.MustCompile(`\bdata-label="([^"]*)"`)
	for i, tr := range trs {
		cells := td.FindAllString(tr, -1)
		if len(cells) != len(headers) {
			t.Errorf("row %d: got %d cells, want %d", i, len(cells), len(headers))
			continue
		}
		for j, cell := range cells {
			m := label.FindStringSubmatch(cell)
			if m == nil || m[1] != headers[j] {
				t.Errorf("row %d cell %d: got %s, want data-label=%q", i, j, cell, headers[j])
			}
		}
	}
}
