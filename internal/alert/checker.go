package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pushcert/pushcert/internal/pushcert"
)

// Delivery defaults; Config fields of zero take them.
const (
	defaultAttempts = 4
	defaultBackoff  = time.Second
	defaultLease    = 5 * time.Minute
	// firstRetry is how long a failed alert waits before the next check
	// may try it again; it doubles with every failure up to maxRetry.
	firstRetry = time.Minute
	maxRetry   = 6 * time.Hour
	// batch bounds how many events or alerts one query reads.
	batch = 100
	// finishTimeout bounds recording an outcome after the checker's context
	// has ended: an alert that was delivered must be marked sent, or a
	// replica would send it again.
	finishTimeout = 5 * time.Second
)

// Config tunes a Checker. Zero fields take the defaults.
type Config struct {
	// Thresholds are the days before expiry at which an alert goes out;
	// nil means DefaultThresholds.
	Thresholds []int
	// Interval is how often the Checker looks when nothing prompts it;
	// 0 means DefaultInterval.
	Interval time.Duration
	// ConsoleURL is pushcert's external URL, named in the alerts.
	ConsoleURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Attempts is how many times one check tries to deliver an alert, with
	// Backoff before the first retry, doubled before each next one.
	Attempts int
	Backoff  time.Duration
	// Lease is how long a claimed alert belongs to the replica that
	// claimed it; it must outlast all Attempts.
	Lease time.Duration
}

// Checker finds due alerts and delivers them, and logs new audit events.
// Several Checkers, in one process or many, may share one store.
type Checker struct {
	log        *slog.Logger
	st         Store
	n          Notifier
	thresholds []int // ascending
	interval   time.Duration
	consoleURL string
	now        func() time.Time
	attempts   int
	backoff    time.Duration
	lease      time.Duration
	poke       chan struct{}
}

// NewChecker returns a Checker over st that delivers through n. With a nil
// n it sends nothing and only logs audit events.
func NewChecker(log *slog.Logger, st Store, n Notifier, cfg Config) *Checker {
	c := &Checker{
		log:        log,
		st:         st,
		n:          n,
		thresholds: slices.Clone(cfg.Thresholds),
		interval:   cfg.Interval,
		consoleURL: cfg.ConsoleURL,
		now:        cfg.Now,
		attempts:   cfg.Attempts,
		backoff:    cfg.Backoff,
		lease:      cfg.Lease,
		poke:       make(chan struct{}, 1),
	}
	if c.thresholds == nil {
		c.thresholds, _ = ParseThresholds(DefaultThresholds) // a constant that parses
	}
	slices.Sort(c.thresholds)
	c.thresholds = slices.Compact(c.thresholds)
	if c.interval <= 0 {
		c.interval = DefaultInterval
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.attempts <= 0 {
		c.attempts = defaultAttempts
	}
	if c.backoff <= 0 {
		c.backoff = defaultBackoff
	}
	if c.lease <= 0 {
		c.lease = defaultLease
	}
	return c
}

// Run checks at once, then every interval and whenever poked, until ctx
// ends. A failed check is logged and tried again at the next turn.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		if err := c.Check(ctx); err != nil && ctx.Err() == nil {
			c.log.Error("alert check failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.poke:
		}
	}
}

// Poke asks a running Checker to check soon, without waiting for it: the
// store calls it after every write, so a refused upload is alerted and
// every audit event logged within moments rather than at the next interval.
func (c *Checker) Poke() {
	select {
	case c.poke <- struct{}{}:
	default: // a check is already asked for
	}
}

// Check runs one pass: it records the expiry alert that is due, records an
// alert for every refused upload since the last pass and logs the new audit
// events, then delivers what is waiting.
func (c *Checker) Check(ctx context.Context) error {
	now := c.now()
	st, err := c.st.State(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if c.n != nil {
		if key, a, ok := c.expiryAlert(st, now); ok {
			if err := c.record(ctx, key, a, now); err != nil {
				return err
			}
		}
	}
	if err := c.scanEvents(ctx, st, now); err != nil {
		return err
	}
	if c.n == nil {
		return nil
	}
	return c.deliverDue(ctx, now)
}

// due returns the most urgent expiry alert due for the active certificate
// at now: expired, or the smallest threshold whose time has come. Crossing
// several thresholds at once (a certificate first seen with 5 days left)
// raises only the most urgent; the others would only repeat it.
//
// Days are counted by pushcert's one rule (Certificate.DaysLeft, calendar
// days in UTC), so an alert for 30 days goes out on the day the status
// page first says "in 30 days".
func (c *Checker) due(cert *pushcert.Certificate, now time.Time) (key string, expired bool, threshold int, ok bool) {
	if !now.Before(cert.NotAfter) {
		return expiredKey(cert), true, 0, true
	}
	left := cert.DaysLeft(now)
	for _, days := range c.thresholds {
		if left <= days {
			return expiringKey(cert, days), false, days, true
		}
	}
	return "", false, 0, false
}

// expiryAlert builds the expiry alert due for st at now, if any.
func (c *Checker) expiryAlert(st pushcert.State, now time.Time) (string, Alert, bool) {
	cert := st.Certificate
	if cert == nil {
		return "", Alert{}, false
	}
	key, expired, threshold, ok := c.due(cert, now)
	if !ok {
		return "", Alert{}, false
	}
	a := Alert{
		Event:         KindExpiring,
		At:            now.UTC().Format(time.RFC3339),
		Topic:         cert.Topic,
		Serial:        cert.SerialNumber,
		Fingerprint:   cert.Fingerprint,
		Expiry:        cert.NotAfter.UTC().Format(time.RFC3339),
		ThresholdDays: threshold,
		AppleID:       st.AppleID,
		URL:           c.consoleURL,
	}
	if expired {
		a.Event = KindExpired
	}
	return key, a, true
}

// uploadFailedAlert builds the alert for a refused upload.
func (c *Checker) uploadFailedAlert(e pushcert.Event, st pushcert.State) Alert {
	a := Alert{
		Event:   KindUploadFailed,
		At:      e.At.UTC().Format(time.RFC3339),
		Topic:   e.Topic,
		Serial:  e.Serial,
		AppleID: st.AppleID,
		Reason:  e.Detail,
		Actor:   e.Actor.Label(),
		URL:     c.consoleURL,
	}
	if !e.NotAfter.IsZero() {
		a.Expiry = e.NotAfter.UTC().Format(time.RFC3339)
	}
	a.Text = uploadFailedText(a)
	return a
}

// recordEventAlert records the alert an audit event raises, if it raises
// one: a refused upload, a delivery target out of sync for too long, an
// exported private key, Apple refusing the certificate, Apple's push
// service out of reach for too long.
func (c *Checker) recordEventAlert(ctx context.Context, e pushcert.Event, st pushcert.State, now time.Time) error {
	switch e.Kind {
	case pushcert.EventUploadFailed:
		return c.record(ctx, uploadFailedKey(e), c.uploadFailedAlert(e, st), now)
	case pushcert.EventDeliveryOutOfSync:
		a := c.eventAlert(KindDeliveryOutOfSync, e)
		a.Text = outOfSyncText(a)
		return c.record(ctx, eventKey(KindDeliveryOutOfSync, e), a, now)
	case pushcert.EventKeyExported:
		a := c.eventAlert(KindKeyExported, e)
		a.Text = keyExportedText(a)
		return c.record(ctx, eventKey(KindKeyExported, e), a, now)
	case pushcert.EventAPNSAlertRejected:
		a := c.eventAlert(KindAPNSRejected, e)
		a.Actor = "" // pushcert's own check
		a.Text = apnsRejectedText(a)
		return c.record(ctx, eventKey(KindAPNSRejected, e), a, now)
	case pushcert.EventAPNSAlertUnreachable:
		a := c.eventAlert(KindAPNSUnreachable, e)
		a.Actor = ""
		a.Text = apnsUnreachableText(a)
		return c.record(ctx, eventKey(KindAPNSUnreachable, e), a, now)
	}
	return nil
}

// eventAlert is the alert for an audit event, without its text.
func (c *Checker) eventAlert(k Kind, e pushcert.Event) Alert {
	a := Alert{Event: k, At: e.At.UTC().Format(time.RFC3339), Topic: e.Topic, Serial: e.Serial,
		Reason: e.Detail, Actor: e.Actor.Label(), URL: c.consoleURL}
	if !e.NotAfter.IsZero() {
		a.Expiry = e.NotAfter.UTC().Format(time.RFC3339)
	}
	return a
}

// record stores an alert under key unless it is stored already.
func (c *Checker) record(ctx context.Context, key string, a Alert, now time.Time) error {
	payload, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert %s: %w", key, err)
	}
	added, err := c.st.AddAlert(ctx, key, payload, now)
	if err != nil {
		return fmt.Errorf("record alert %s: %w", key, err)
	}
	if added {
		c.log.Info("alert raised", "alert", key, "event", string(a.Event), "serial", a.Serial)
	}
	return nil
}

// scanEvents reads the audit events after the shared cursor, records an
// alert for each refused upload, and moves the cursor past them. The
// replica that moves the cursor logs the events, so each is logged once.
// Alerts are recorded before the cursor moves: if this replica stops in
// between, the next pass records them again, which changes nothing.
func (c *Checker) scanEvents(ctx context.Context, st pushcert.State, now time.Time) error {
	for {
		cursor, err := c.st.AlertCursor(ctx)
		if err != nil {
			return fmt.Errorf("read alert cursor: %w", err)
		}
		events, err := c.st.EventsAfter(ctx, cursor, batch)
		if err != nil {
			return fmt.Errorf("read audit events: %w", err)
		}
		if len(events) == 0 {
			return nil
		}
		if c.n != nil {
			for _, e := range events {
				if err := c.recordEventAlert(ctx, e, st, now); err != nil {
					return err
				}
			}
		}
		moved, err := c.st.AdvanceAlertCursor(ctx, cursor, events[len(events)-1].ID)
		if err != nil {
			return fmt.Errorf("advance alert cursor: %w", err)
		}
		if moved {
			for _, e := range events {
				c.logEvent(e)
			}
		}
		if len(events) < batch && moved {
			return nil
		}
	}
}

// logEvent writes an audit event to the log. Details are the service's own
// words (reasons, "Apple ID changed from … to …"), never keys or bodies.
func (c *Checker) logEvent(e pushcert.Event) {
	attrs := []any{"event_id", e.ID, "kind", string(e.Kind), "user_id", e.Actor.Subject, "at", e.At.UTC().Format(time.RFC3339)}
	if e.Serial != "" {
		attrs = append(attrs, "serial", e.Serial, "topic", e.Topic)
	}
	if e.Detail != "" {
		attrs = append(attrs, "detail", e.Detail)
	}
	c.log.Info("audit", attrs...)
}

// deliverDue claims the alerts that are waiting and delivers each.
func (c *Checker) deliverDue(ctx context.Context, now time.Time) error {
	for {
		claimed, err := c.st.ClaimAlerts(ctx, now, now.Add(c.lease), batch)
		if err != nil {
			return fmt.Errorf("claim alerts: %w", err)
		}
		if len(claimed) == 0 {
			return nil
		}
		// The state is read after the claim, not taken from the start of
		// the pass: another replica may have activated a certificate and
		// raised its alert since, and judged against the older state that
		// alert would be dropped as superseded, for good.
		st, err := c.st.State(ctx)
		if err != nil {
			return fmt.Errorf("read state: %w", err)
		}
		for _, q := range claimed {
			if err := c.deliver(ctx, st, now, q); err != nil {
				return err
			}
		}
		if len(claimed) < batch {
			return nil
		}
	}
}

// deliver sends one claimed alert, or drops it when it is no longer true,
// and records the outcome. A delivery failure is logged and scheduled for
// a later pass, not returned: it must not hold up the other alerts.
func (c *Checker) deliver(ctx context.Context, st pushcert.State, now time.Time, q Queued) error {
	var a Alert
	if err := json.Unmarshal(q.Payload, &a); err != nil {
		c.log.Error("alert unreadable, dropped", "alert", q.Key, "err", err)
		return c.finish(ctx, q.Key, OutcomeSuperseded, now)
	}
	if a.Event.isExpiry() {
		if c.superseded(q.Key, a, st, now) {
			c.log.Info("alert superseded", "alert", q.Key, "event", string(a.Event), "serial", a.Serial)
			return c.finish(ctx, q.Key, OutcomeSuperseded, now)
		}
		// Days left are counted when the alert goes out, which may be a
		// retry some time after it was raised.
		notAfter, err := time.Parse(time.RFC3339, a.Expiry)
		if err != nil {
			c.log.Error("alert unreadable, dropped", "alert", q.Key, "err", err)
			return c.finish(ctx, q.Key, OutcomeSuperseded, now)
		}
		days := pushcert.Certificate{NotAfter: notAfter}.DaysLeft(now)
		a.DaysLeft = &days
		if a.Event == KindExpired {
			a.Text = expiredText(a, notAfter)
		} else {
			a.Text = expiringText(a, notAfter, days)
		}
	}
	err := c.send(ctx, a)
	if err == nil {
		c.log.Info("alert sent", "alert", q.Key, "event", string(a.Event), "serial", a.Serial)
		return c.finish(ctx, q.Key, OutcomeSent, now)
	}
	if ctx.Err() != nil {
		// Shutting down: the lease runs out and another pass retries.
		return ctx.Err()
	}
	retryAt := now.Add(retryDelay(q.Attempts))
	c.log.Warn("alert delivery failed", "alert", q.Key, "event", string(a.Event), "claims", q.Attempts,
		"retry_at", retryAt.UTC().Format(time.RFC3339), "err", err)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := c.st.RetryAlert(wctx, q.Key, retryAt); err != nil {
		return fmt.Errorf("reschedule alert %s: %w", q.Key, err)
	}
	return nil
}

// superseded reports whether an expiry alert is no longer worth sending:
// its certificate is not the active one any more, or a more urgent alert
// for it is due. A less urgent one (a replica whose clock lags) is not a
// reason to drop it.
func (c *Checker) superseded(key string, a Alert, st pushcert.State, now time.Time) bool {
	cert := st.Certificate
	if cert == nil || (a.Fingerprint != "" && a.Fingerprint != cert.Fingerprint) ||
		(a.Fingerprint == "" && a.Serial != cert.SerialNumber) {
		return true
	}
	dueKey, expired, threshold, ok := c.due(cert, now)
	if !ok || dueKey == key {
		return false
	}
	if a.Event == KindExpired {
		return false
	}
	return expired || threshold < a.ThresholdDays
}

// send tries to deliver a up to the configured attempts, waiting with
// exponential backoff between them, and stops early when the failure is
// permanent or ctx ends.
func (c *Checker) send(ctx context.Context, a Alert) error {
	wait := c.backoff
	var err error
	for i := range c.attempts {
		if i > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return errors.Join(err, ctx.Err())
			case <-t.C:
			}
			wait *= 2
		}
		if err = c.n.Notify(ctx, a); err == nil {
			return nil
		}
		if permanent(err) || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("%d attempts: %w", c.attempts, err)
}

// finish records an alert's outcome even when ctx has just ended.
func (c *Checker) finish(ctx context.Context, key string, o Outcome, now time.Time) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := c.st.FinishAlert(wctx, key, o, now); err != nil {
		return fmt.Errorf("finish alert %s: %w", key, err)
	}
	return nil
}

// retryDelay is how long an alert waits after its nth failed claim.
func retryDelay(claims int) time.Duration {
	d := firstRetry
	for i := 1; i < claims && d < maxRetry; i++ {
		d *= 2
	}
	return min(d, maxRetry)
}

// ParseThresholds reads a comma-separated list of days, such as
// "30,14,7,3,1".
func ParseThresholds(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > 3650 {
			return nil, fmt.Errorf("%q is not a whole number of days between 1 and 3650", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("name at least one number of days")
	}
	return out, nil
}
