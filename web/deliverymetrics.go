package web

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushcert/pushcert/internal/delivery"
)

// WithDelivery adds deliv's per-target gauges to /metrics, read from the
// database at each scrape so every replica reports the same, and returns o.
func (o *Ops) WithDelivery(deliv *delivery.Deliverer) *Ops {
	if deliv != nil && len(deliv.Targets()) > 0 {
		o.reg.MustRegister(newDeliveryCollector(o.log, deliv))
	}
	return o
}

// deliveryCollector makes the per-target delivery gauges. Labels are the
// target's name and kind, never its address or secret.
type deliveryCollector struct {
	log         *slog.Logger
	deliv       *delivery.Deliverer
	inSync      *prometheus.Desc
	lastSuccess *prometheus.Desc
	failures    *prometheus.Desc
}

func newDeliveryCollector(log *slog.Logger, deliv *delivery.Deliverer) *deliveryCollector {
	labels := []string{"target", "kind"}
	return &deliveryCollector{
		log:   log,
		deliv: deliv,
		inSync: prometheus.NewDesc("pushcert_delivery_in_sync",
			"1 when the delivery target holds the active certificate, else 0.", labels, nil),
		lastSuccess: prometheus.NewDesc("pushcert_delivery_last_success_timestamp_seconds",
			"Unix time of the delivery target's last successful delivery; absent before the first.", labels, nil),
		failures: prometheus.NewDesc("pushcert_delivery_consecutive_failures",
			"Failed delivery attempts to the target since its last success.", labels, nil),
	}
}

// Describe sends the descriptors of every metric the collector makes.
func (c *deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inSync
	ch <- c.lastSuccess
	ch <- c.failures
}

// Collect reads the targets' status and sends the gauges.
func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	targets, _, err := c.deliv.Status(ctx)
	if err != nil {
		c.log.Warn("metrics: delivery status read failed", "err", err)
		return
	}
	for _, t := range targets {
		inSync := 0.0
		if t.InSync {
			inSync = 1
		}
		ch <- prometheus.MustNewConstMetric(c.inSync, prometheus.GaugeValue, inSync, t.Name, t.Kind)
		if !t.DeliveredAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.lastSuccess, prometheus.GaugeValue, float64(t.DeliveredAt.Unix()), t.Name, t.Kind)
		}
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.GaugeValue, float64(t.Failures), t.Name, t.Kind)
	}
}
