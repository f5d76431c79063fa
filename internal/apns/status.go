package apns

import (
	"context"
	"fmt"
	"time"
)

// LastResult is the last check as the pages, the API and the metrics show
// it: the same on every replica.
type LastResult struct {
	// Result is the last check; its Outcome is OutcomeNone before the
	// first one.
	Result
	// Since is when the run of checks with this outcome began; Alerted
	// reports that the run was alerted.
	Since   time.Time
	Alerted bool
	// ForActive reports that the result is for the active certificate:
	// after a renewal it is not, until the new certificate is checked,
	// moments later.
	ForActive bool
	// TopicMatches reports that the checked certificate's topic is the
	// active certificate's topic, the one devices enrolled with.
	TopicMatches bool
	// The active certificate; "" when there is none.
	ActiveSerial string
	ActiveTopic  string
	// Checking reports that a replica is making a periodic check now.
	Checking bool
	// NextCheckAt is when the next check is due: at once for a
	// certificate not checked yet, else the next periodic check or the
	// retry of one that did not reach Apple; zero when nothing is due (the
	// periodic check is off and Apple answered, or there is no
	// certificate).
	NextCheckAt time.Time
}

// Last returns the last check's result with what it is about.
func (m *Monitor) Last(ctx context.Context) (LastResult, error) {
	st, err := m.st.State(ctx)
	if err != nil {
		return LastResult{}, fmt.Errorf("read state: %w", err)
	}
	rec, err := m.st.APNSCheck(ctx)
	if err != nil {
		return LastResult{}, err
	}
	now := m.now()
	out := LastResult{Result: rec.Last, Since: rec.Since, Alerted: rec.Alerted, Checking: rec.LeaseUntil.After(now)}
	cert := st.Certificate
	if cert == nil {
		return out, nil
	}
	out.ActiveSerial, out.ActiveTopic = cert.SerialNumber, cert.Topic
	out.ForActive = rec.Last.Outcome != OutcomeNone && rec.Last.Fingerprint == cert.Fingerprint
	out.TopicMatches = rec.Last.Outcome != OutcomeNone && rec.Last.Topic == cert.Topic
	switch p := m.period(rec.Last.Outcome); {
	case !out.ForActive:
		out.NextCheckAt = now // a new certificate is checked at once
	case p > 0:
		out.NextCheckAt = rec.Last.At.Add(p)
	}
	return out, nil
}
