package views

import "strings"

// HistoryView is the audit history, newest first.
type HistoryView struct {
	Rows []HistoryRow
	// Truncated is true when older events exist beyond the rows shown.
	Truncated bool
}

// HistoryRow is one audit event, worded and formatted for people.
type HistoryRow struct {
	Kind    string // the event kind, for tests and style
	What    string // "Certificate uploaded", "Upload refused", ...
	Failure bool   // the event records something refused
	Who     string
	When    string // "2027-11-22 05:00 UTC"
	WhenISO string // RFC 3339, for the <time> element
	Serial  string
	Topic   string
	Expiry  string // the certificate's expiry date, empty when not about one
	Detail  string
}

// whenDate and whenClock split a time as the pages write it, "2027-11-22
// 05:00 UTC", into the date and the time of day, so a narrow column breaks
// the line between them and nowhere else.
func whenDate(when string) string {
	date, _, _ := strings.Cut(when, " ")
	return date
}

func whenClock(when string) string {
	_, clock, _ := strings.Cut(when, " ")
	return clock
}
