package web

import "github.com/pushcert/pushcert/handlers"

// WithAlerts makes the status page show how alerts are set up (the
// webhook's host, the thresholds) and the last alert sent, and returns o.
// It rides on Ops, which the alert counters already read from, so that
// NewServer keeps its arguments.
func (o *Ops) WithAlerts(a handlers.AlertsInfo) *Ops {
	o.alerts = &a
	return o
}

// withAlerts gives d the alerts set up by Ops.WithAlerts, if any.
func withAlerts(d *handlers.Dashboard, a *handlers.AlertsInfo) *handlers.Dashboard {
	if a == nil {
		return d
	}
	return d.WithAlerts(*a)
}
