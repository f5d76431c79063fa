package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
	"github.com/pushcert/pushcert/internal/target"
)

// Defaults; Config fields of zero take them.
const (
	// DefaultInterval is how often a Deliverer reconciles when nothing
	// prompts it sooner.
	DefaultInterval = 5 * time.Minute
	// DefaultAlertAfter is how long a target may stay out of sync before
	// the alert webhook hears of it.
	DefaultAlertAfter = time.Hour
	defaultRetryBase  = 5 * time.Second
	defaultRetryMax   = 5 * time.Minute
	defaultTimeout    = time.Minute
	// recordTimeout bounds recording an outcome after the Deliverer's
	// context has ended: a delivery that was made must be recorded, or its
	// lease would hold the target until it runs out.
	recordTimeout = 5 * time.Second
	// minWait keeps a Deliverer from spinning when something is due now.
	minWait = 50 * time.Millisecond
)

// Errors of Request.
var (
	ErrNoTargets   = errors.New("no delivery targets are configured")
	ErrNoActiveKey = errors.New("there is no active certificate to deliver yet")
)

// System is the actor of the Deliverer's own history events.
var System = auth.User{Subject: "pushcert", Name: "pushcert"}

// Config tunes a Deliverer. Zero fields take the defaults.
type Config struct {
	// Interval is how often the Deliverer reconciles when not poked.
	Interval time.Duration
	// AlertAfter is how long a target may stay out of sync before an
	// out-of-sync event (and with it an alert) is recorded; below zero
	// never.
	AlertAfter time.Duration
	// RetryBase is the wait after a target's first failure; it doubles
	// with every further failure up to RetryMax.
	RetryBase time.Duration
	RetryMax  time.Duration
	// Timeout bounds one delivery, on top of the target's own timeout.
	Timeout time.Duration
	// ExportDisabled turns off every export of the private key.
	ExportDisabled bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Deliverer delivers the active certificate to its targets. Several
// Deliverers, in one process or many, may share one store.
type Deliverer struct {
	log        *slog.Logger
	st         Store
	targets    []Target
	interval   time.Duration
	alertAfter time.Duration
	retryBase  time.Duration
	retryMax   time.Duration
	timeout    time.Duration
	now        func() time.Time
	poke       chan struct{}
	// exportDisabled turns off Export.
	exportDisabled bool
}

// New returns a Deliverer of targets over st.
func New(log *slog.Logger, st Store, targets []Target, cfg Config) *Deliverer {
	d := &Deliverer{
		log: log, st: st, targets: targets,
		interval: cfg.Interval, alertAfter: cfg.AlertAfter,
		retryBase: cfg.RetryBase, retryMax: cfg.RetryMax, timeout: cfg.Timeout,
		now: cfg.Now, poke: make(chan struct{}, 1), exportDisabled: cfg.ExportDisabled,
	}
	if d.interval <= 0 {
		d.interval = DefaultInterval
	}
	if d.alertAfter == 0 {
		d.alertAfter = DefaultAlertAfter
	}
	if d.retryBase <= 0 {
		d.retryBase = defaultRetryBase
	}
	if d.retryMax <= 0 {
		d.retryMax = defaultRetryMax
	}
	if d.timeout <= 0 {
		// A target's own time limit must not be cut short: the deadline
		// (and with it the lease) outlasts the longest one.
		d.timeout = defaultTimeout
		for _, t := range targets {
			if tt, ok := t.(interface{ Timeout() time.Duration }); ok {
				d.timeout = max(d.timeout, tt.Timeout()+10*time.Second)
			}
		}
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d
}

// Targets returns the configured targets.
func (d *Deliverer) Targets() []Target { return d.targets }

// Run reconciles at once, then whenever poked, whenever a retry or an
// alert is due, and at least every interval, until ctx ends.
func (d *Deliverer) Run(ctx context.Context) {
	if len(d.targets) == 0 {
		return
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next, err := d.Reconcile(ctx)
		wait := d.interval
		if err != nil && ctx.Err() == nil {
			d.log.Error("delivery pass failed", "err", err)
			wait = min(wait, d.retryBase)
		}
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(d.now()), minWait))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-d.poke:
		}
	}
}

// Poke asks a running Deliverer to reconcile soon, without waiting: the
// service's store calls it after every write, so an activation is
// delivered within moments.
func (d *Deliverer) Poke() {
	select {
	case d.poke <- struct{}{}:
	default: // a pass is already asked for
	}
}

// Request asks for the active certificate to be delivered to every target
// again now ("Deliver now"), records who asked, and pokes the Deliverer.
func (d *Deliverer) Request(ctx context.Context, by auth.User) error {
	if len(d.targets) == 0 {
		return ErrNoTargets
	}
	st, err := d.st.State(ctx)
	if err != nil {
		return fmt.Errorf("read state: %w", err)
	}
	if st.Certificate == nil {
		return ErrNoActiveKey
	}
	names := make([]string, len(d.targets))
	for i, t := range d.targets {
		names[i] = t.Name()
	}
	e := pushcert.Event{At: d.now(), Kind: pushcert.EventDeliveryRequested, Actor: by,
		Serial: st.Certificate.SerialNumber, Topic: st.Certificate.Topic, NotAfter: st.Certificate.NotAfter,
		Detail: fmt.Sprintf("to %s", joinNames(names))}
	if err := d.st.RequestDelivery(ctx, names, e); err != nil {
		return err
	}
	d.Poke()
	return nil
}

// Reconcile runs one pass: every target that lacks the active certificate
// (or was asked to get it again), is due and is not being delivered to by
// another replica gets it, all targets at once; then every out-of-sync
// episode that has lasted AlertAfter is recorded, once. It returns when
// something will next be due (a retry, a lease running out, an alert),
// zero when nothing is waiting.
func (d *Deliverer) Reconcile(ctx context.Context) (time.Time, error) {
	cert, key, err := d.st.ActivePair(ctx)
	if errors.Is(err, pushcert.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	pair := target.Pair{Certificate: cert, KeyDER: key}
	// The store keeps a certificate only with its own key; should they
	// ever disagree, nothing is sent anywhere.
	if err := pair.Check(); err != nil {
		return time.Time{}, fmt.Errorf("the active certificate and key are not a pair: %w", err)
	}
	if err := d.verifyHeld(ctx, pair); err != nil {
		return time.Time{}, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(d.targets))
	for i, t := range d.targets {
		wg.Go(func() { errs[i] = d.deliverOne(ctx, t, pair) })
	}
	wg.Wait()
	// One target's store error does not keep the others' alerts and
	// retries from being worked out.
	next, err := d.afterPass(ctx, cert)
	return next, errors.Join(append(errs, err)...)
}

// Holder is a Target that can tell whether it still holds what it was
// sent, such as a folder: one whose files were lost is delivered to again,
// though its record says it has them.
type Holder interface {
	Holds(ctx context.Context, p target.Pair) bool
}

// verifyHeld forgets the delivery of pair to every Holder whose record says
// it has pair but that no longer holds it (its folder was emptied, or it is
// this replica's own folder and another replica made the delivery).
func (d *Deliverer) verifyHeld(ctx context.Context, pair target.Pair) error {
	var recs []Record
	for _, t := range d.targets {
		h, ok := t.(Holder)
		if !ok {
			continue
		}
		if recs == nil {
			var err error
			if recs, err = d.st.DeliveryRecords(ctx); err != nil {
				return err
			}
		}
		for _, r := range recs {
			if r.Target == t.Name() && r.holds(pair.Certificate.Fingerprint, settingsOf(t)) && !h.Holds(ctx, pair) {
				d.log.Warn("delivery target lost the certificate; delivering it again", "target", t.Name(), "serial", pair.Certificate.SerialNumber)
				if err := d.st.ForgetDelivery(ctx, t.Name(), pair.Certificate.Fingerprint); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// settingsOf is what a delivery to t is made with, besides the pair: its
// Settings, or where it delivers for a Target without them.
func settingsOf(t Target) string {
	if s, ok := t.(interface{ Settings() string }); ok {
		return s.Settings()
	}
	return t.Kind() + "\n" + t.Describe()
}

// deliverOne claims t's delivery of pair, if it needs one now, makes it
// and records the outcome.
func (d *Deliverer) deliverOne(ctx context.Context, t Target, pair target.Pair) error {
	cert := pair.Certificate
	now := d.now()
	settings := settingsOf(t)
	rec, ok, err := d.st.ClaimDelivery(ctx, t.Name(), cert.Fingerprint, settings, now, now.Add(d.lease()))
	if err != nil || !ok {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, d.timeout)
	derr := t.Deliver(dctx, pair)
	cancel()
	at := d.now()
	res := Result{Target: t.Name(), Serial: cert.SerialNumber, Fingerprint: cert.Fingerprint, Settings: settings, At: at}
	ev := pushcert.Event{At: at, Actor: System, Serial: cert.SerialNumber, Topic: cert.Topic, NotAfter: cert.NotAfter}
	if derr == nil {
		ev.Kind, ev.Detail = pushcert.EventDelivered, fmt.Sprintf("to %s (%s)", t.Name(), Describe(t))
		res.Event = &ev
		d.log.Info("certificate delivered", "target", t.Name(), "serial", cert.SerialNumber)
	} else {
		res.Error = failureMessage(t, derr, ctx.Err() != nil)
		res.NextAttempt = at.Add(d.backoff(rec.Failures))
		// History gets the first failure of a run and every change of
		// reason, not every retry of a target that is down for a day.
		if rec.Failures == 0 || rec.LastError != res.Error {
			ev.Kind, ev.Detail = pushcert.EventDeliveryFailed, fmt.Sprintf("to %s: %s", t.Name(), res.Error)
			res.Event = &ev
		}
		// The reason is the target's own words; its cause (never a secret
		// either) carries the detail for whoever reads the log.
		cause := derr
		if u := errors.Unwrap(derr); u != nil {
			cause = u
		}
		d.log.Warn("delivery failed", "target", t.Name(), "serial", cert.SerialNumber,
			"reason", res.Error, "err", cause, "retry_at", res.NextAttempt.UTC().Format(time.RFC3339))
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer rcancel()
	return d.st.FinishDelivery(rctx, res)
}

// afterPass records the out-of-sync episodes that have lasted AlertAfter
// and works out when something is next due.
func (d *Deliverer) afterPass(ctx context.Context, cert pushcert.Certificate) (time.Time, error) {
	recs, err := d.st.DeliveryRecords(ctx)
	if err != nil {
		return time.Time{}, err
	}
	byName := make(map[string]Record, len(recs))
	for _, r := range recs {
		byName[r.Target] = r
	}
	now := d.now()
	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, t := range d.targets {
		r, ok := byName[t.Name()]
		if !ok || (r.holds(cert.Fingerprint, settingsOf(t)) && r.RequestedAt.IsZero()) {
			continue
		}
		soonest(r.NextAttemptAt)
		if r.LeaseUntil.After(now) {
			soonest(r.LeaseUntil)
		}
		if r.OutOfSyncSince.IsZero() || r.Alerted || d.alertAfter < 0 {
			continue
		}
		if due := r.OutOfSyncSince.Add(d.alertAfter); due.After(now) {
			soonest(due)
			continue
		}
		if err := d.alert(ctx, t, r, cert, now); err != nil {
			return time.Time{}, err
		}
	}
	return next, nil
}

// alert records the out-of-sync event for r's episode, once across replicas.
func (d *Deliverer) alert(ctx context.Context, t Target, r Record, cert pushcert.Certificate, now time.Time) error {
	reason := r.LastError
	if reason == "" {
		reason = "no delivery has been tried yet"
	}
	e := pushcert.Event{At: now, Kind: pushcert.EventDeliveryOutOfSync, Actor: System,
		Serial: cert.SerialNumber, Topic: cert.Topic, NotAfter: cert.NotAfter,
		Detail: fmt.Sprintf("%s (%s) has not had the active certificate since %s: %s",
			t.Name(), Describe(t), r.OutOfSyncSince.UTC().Format("2006-01-02 15:04 UTC"), reason)}
	marked, err := d.st.MarkOutOfSyncAlerted(ctx, t.Name(), r.OutOfSyncSince, e)
	if marked {
		d.log.Warn("delivery target out of sync", "target", t.Name(), "since", r.OutOfSyncSince.UTC().Format(time.RFC3339))
	}
	return err
}

// lease is how long a claimed delivery belongs to the replica that
// claimed it: longer than any delivery may take.
func (d *Deliverer) lease() time.Duration { return d.timeout + 30*time.Second }

// backoff is the wait after a failure that follows failures earlier ones.
func (d *Deliverer) backoff(failures int) time.Duration {
	wait := d.retryBase
	for range failures {
		if wait >= d.retryMax/2 {
			return d.retryMax
		}
		wait *= 2
	}
	return min(wait, d.retryMax)
}

// failureMessage words a failed delivery for the status page and history:
// the target's own words when it gives them, which never hold secrets.
func failureMessage(t Target, err error, stopping bool) string {
	var te *target.Error
	switch {
	case errors.As(err, &te):
		return te.Message
	case stopping:
		return "pushcert stopped during the delivery; it will be tried again"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer in time", KindLabel(t.Kind()))
	default:
		return fmt.Sprintf("the delivery to %s failed; see pushcert's log", KindLabel(t.Kind()))
	}
}
