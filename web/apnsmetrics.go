package web

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushcert/pushcert/internal/apns"
)

// WithAPNS adds the connection check's gauges to /metrics, read from the
// database at each scrape so every replica reports the same, and returns o.
func (o *Ops) WithAPNS(mon *apns.Monitor) *Ops {
	if mon != nil {
		o.reg.MustRegister(newAPNSCollector(o.log, mon.Last))
	}
	return o
}

// apnsCollector makes the connection check's gauges from last, the
// Monitor's last result.
type apnsCollector struct {
	log     *slog.Logger
	last    func(context.Context) (apns.LastResult, error)
	outcome *prometheus.Desc
	at      *prometheus.Desc
}

func newAPNSCollector(log *slog.Logger, last func(context.Context) (apns.LastResult, error)) *apnsCollector {
	return &apnsCollector{
		log:  log,
		last: last,
		outcome: prometheus.NewDesc("pushcert_apns_check_outcome",
			"1 for the outcome of the last connection check of the active certificate against Apple's push service, 0 for the others "+
				"(all 0 before the active certificate's first check, such as right after a renewal).",
			[]string{"outcome"}, nil),
		at: prometheus.NewDesc("pushcert_apns_check_timestamp_seconds",
			"Unix time of the last connection check of the active certificate against Apple's push service; absent before the first.", nil, nil),
	}
}

// Describe sends the descriptors of every metric the collector makes.
func (c *apnsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.outcome
	ch <- c.at
}

// Collect reads the last check and sends the gauges. A result about
// another certificate than the active one (the one a renewal replaced)
// is not reported: its refusal would page someone about a certificate
// no longer in use.
func (c *apnsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	last, err := c.last(ctx)
	if err != nil {
		c.log.Warn("metrics: connection check read failed", "err", err)
		return
	}
	for _, o := range apns.Outcomes() {
		v := 0.0
		if last.ForActive && last.Outcome == o {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.outcome, prometheus.GaugeValue, v, string(o))
	}
	if last.ForActive && !last.At.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.at, prometheus.GaugeValue, float64(last.At.Unix()))
	}
}
