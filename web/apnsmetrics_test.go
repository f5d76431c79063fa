package web

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushcert/pushcert/internal/apns"
	"github.com/pushcert/pushcert/internal/testclock"
)

// The gauges report the last check only when it is about the active
// certificate: after a renewal, the old certificate's refusal is not the
// state of the certificate in use.
func TestAPNSMetrics(t *testing.T) {
	at := testclock.Start(t)
	for _, tt := range []struct {
		name     string
		last     apns.LastResult
		want     map[string]float64 // outcome gauge by label
		wantTime bool
	}{
		{"before any check", apns.LastResult{},
			map[string]float64{"accepted": 0, "rejected": 0, "unreachable": 0}, false},
		{"the active certificate accepted", lastResult(apns.OutcomeAccepted, at, true),
			map[string]float64{"accepted": 1, "rejected": 0, "unreachable": 0}, true},
		{"the active certificate rejected", lastResult(apns.OutcomeRejected, at, true),
			map[string]float64{"accepted": 0, "rejected": 1, "unreachable": 0}, true},
		{"the replaced certificate rejected", lastResult(apns.OutcomeRejected, at, false),
			map[string]float64{"accepted": 0, "rejected": 0, "unreachable": 0}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			reg.MustRegister(newAPNSCollector(slog.New(slog.DiscardHandler), func(context.Context) (apns.LastResult, error) { return tt.last, nil }))
			families, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			var gotTime float64
			hasTime := false
			for _, f := range families {
				for _, m := range f.GetMetric() {
					switch f.GetName() {
					case "pushcert_apns_check_outcome":
						got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
					case "pushcert_apns_check_timestamp_seconds":
						gotTime, hasTime = m.GetGauge().GetValue(), true
					}
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got outcomes %v, want %v", got, tt.want)
			}
			for o, v := range tt.want {
				if got[o] != v {
					t.Errorf("outcome %s: got %v, want %v", o, got[o], v)
				}
			}
			if hasTime != tt.wantTime || hasTime && gotTime != float64(at.Unix()) {
				t.Errorf("timestamp: got %v (present %v), want present %v at %d", gotTime, hasTime, tt.wantTime, at.Unix())
			}
		})
	}
}

func lastResult(o apns.Outcome, at time.Time, forActive bool) apns.LastResult {
	return apns.LastResult{Result: apns.Result{At: at, Outcome: o}, ForActive: forActive}
}
