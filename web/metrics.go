package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pushcert/pushcert/handlers"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// scrapeTimeout bounds the database reads behind one scrape.
const scrapeTimeout = 5 * time.Second

// OpsStore is what the operational endpoints read from the database when
// they are asked, so every replica reports the installation's state rather
// than its own: /readyz pings it and counts the stored keys it cannot open,
// /metrics reads the certificate and counts audit events and alerts.
// *store.DB implements it.
type OpsStore interface {
	Ping(ctx context.Context) error
	UnreadableKeys(ctx context.Context) (int, error)
	State(ctx context.Context) (pushcert.State, error)
	EventCounts(ctx context.Context) (map[pushcert.EventKind]int64, error)
	AlertCounts(ctx context.Context) (sent, failed int64, err error)
}

// Ops is pushcert's operational surface: readiness, the Prometheus metrics
// (on a registry of its own) and the per-request instrumentation.
type Ops struct {
	log      *slog.Logger
	db       OpsStore
	token    []byte // sha256 of the metrics token; nil when /metrics is open
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	metrics  http.Handler
	reg      *prometheus.Registry
	// series keeps the counter and histogram of each route, method and
	// status seen, so a request does not hash its labels into the vectors
	// again. Its keys are as bounded as the labels.
	series sync.Map // seriesKey → *requestSeries
	// alerts is how alerts are set up, for the status page; nil shows
	// nothing about them (see WithAlerts).
	alerts *handlers.AlertsInfo
}

type seriesKey struct {
	route, method string
	status        int
}

type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// NewOps returns the operational endpoints over db. A non-empty
// metricsToken makes /metrics require "Authorization: Bearer <token>".
func NewOps(log *slog.Logger, db OpsStore, metricsToken string) *Ops {
	reg := prometheus.NewRegistry()
	o := &Ops{
		log: log,
		db:  db,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushcert_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pushcert_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if metricsToken != "" {
		h := sha256.Sum256([]byte(metricsToken))
		o.token = h[:]
	}
	reg.MustRegister(
		o.requests,
		o.duration,
		newStoreCollector(log, db),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	o.reg = reg
	o.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slogPrintln{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
		Timeout:       2 * scrapeTimeout,
	})
	return o
}

// serveMetrics handles GET /metrics in the Prometheus text format. With a
// token configured it answers 401 to any request without it.
func (o *Ops) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if o.token != nil && !o.authorized(r.Header.Get("Authorization")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pushcert metrics"`)
		http.Error(w, "a bearer token is required for /metrics", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	o.metrics.ServeHTTP(w, r)
}

// authorized compares the bearer token in constant time; hashing first
// keeps the comparison from revealing the token's length too.
func (o *Ops) authorized(header string) bool {
	token, ok := bearerToken(header)
	if !ok {
		return false
	}
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], o.token) == 1
}

// observe records one served request. The route is the mux pattern, never
// the raw path, so the number of series stays bounded whatever clients ask
// for; so is the method.
func (o *Ops) observe(route, method string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched" // refused by middleware before routing
	}
	key := seriesKey{route, methodLabel(method), status}
	v, ok := o.series.Load(key)
	if !ok {
		v, _ = o.series.LoadOrStore(key, &requestSeries{
			count:    o.requests.WithLabelValues(key.route, key.method, strconv.Itoa(status)),
			duration: o.duration.WithLabelValues(key.route),
		})
	}
	s := v.(*requestSeries)
	s.count.Inc()
	s.duration.Observe(d.Seconds())
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	default:
		return "OTHER"
	}
}

// storeCollector reads the certificate and the installation-wide counters
// from the database at every scrape, so each replica reports the same,
// current values. The counters count audit events and recorded alerts, so
// they are totals over the installation's life: aggregate replicas with
// max(), not sum().
type storeCollector struct {
	log        *slog.Logger
	db         OpsStore
	up         *prometheus.Desc
	configured *prometheus.Desc
	expiry     *prometheus.Desc
	uploads    *prometheus.Desc
	csrs       *prometheus.Desc
	alerts     *prometheus.Desc
}

func newStoreCollector(log *slog.Logger, db OpsStore) *storeCollector {
	return &storeCollector{
		log: log,
		db:  db,
		up: prometheus.NewDesc("pushcert_database_up",
			"Whether the database answered this scrape (1) or not (0); without it the other pushcert_ metrics are missing.", nil, nil),
		configured: prometheus.NewDesc("pushcert_certificate_configured",
			"Whether an active push certificate is configured (1) or not (0).", nil, nil),
		expiry: prometheus.NewDesc("pushcert_certificate_expiry_timestamp_seconds",
			"When the active push certificate expires (its NotAfter), in Unix seconds; absent without a certificate.", nil, nil),
		uploads: prometheus.NewDesc("pushcert_uploads_total",
			"Certificate uploads, by result (succeeded or failed).", []string{"result"}, nil),
		csrs: prometheus.NewDesc("pushcert_csrs_generated_total",
			"Certificate signing requests generated.", nil, nil),
		alerts: prometheus.NewDesc("pushcert_alerts_total",
			"Alerts delivered (sent) and deliveries that failed after their retries (failed).", []string{"result"}, nil),
	}
}

// Describe sends the descriptors of every metric the collector makes.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.configured, c.expiry, c.uploads, c.csrs, c.alerts} {
		ch <- d
	}
}

// Collect reads the database and sends the metrics.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if err := c.collect(ctx, ch); err != nil {
		c.log.Warn("metrics: database read failed", "err", err)
		ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
}

func (c *storeCollector) collect(ctx context.Context, ch chan<- prometheus.Metric) error {
	st, err := c.db.State(ctx)
	if err != nil {
		return err
	}
	counts, err := c.db.EventCounts(ctx)
	if err != nil {
		return err
	}
	sent, failed, err := c.db.AlertCounts(ctx)
	if err != nil {
		return err
	}
	configured := 0.0
	if st.Certificate != nil {
		configured = 1
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(st.Certificate.NotAfter.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(c.configured, prometheus.GaugeValue, configured)
	ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.CounterValue, float64(counts[pushcert.EventUploadSucceeded]), "succeeded")
	ch <- prometheus.MustNewConstMetric(c.uploads, prometheus.CounterValue, float64(counts[pushcert.EventUploadFailed]), "failed")
	ch <- prometheus.MustNewConstMetric(c.csrs, prometheus.CounterValue, float64(counts[pushcert.EventCSRGenerated]))
	ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.CounterValue, float64(sent), "sent")
	ch <- prometheus.MustNewConstMetric(c.alerts, prometheus.CounterValue, float64(failed), "failed")
	return nil
}

// slogPrintln lets promhttp report errors through the application's logger.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Error("metrics: serve failed", "err", strings.TrimSpace(fmt.Sprintln(v...)))
}
