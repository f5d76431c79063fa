package apns

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pushcert/pushcert/internal/auth"
	"github.com/pushcert/pushcert/internal/pushcert"
)

// Defaults of a Monitor.
const (
	// DefaultInterval is how often the certificate is checked when nothing
	// prompts a check sooner: the default of PUSHCERT_APNS_CHECK_INTERVAL.
	DefaultInterval = 24 * time.Hour
	// DefaultUnreachableAlertAfter is how long Apple may stay out of reach
	// before the alert webhook hears of it.
	DefaultUnreachableAlertAfter = time.Hour
	// DefaultRetry is how soon a check that found Apple out of reach is
	// made again.
	DefaultRetry = 10 * time.Minute
	// recordTimeout bounds recording a check after the Monitor's context
	// has ended: a check that was made must be recorded, or its lease
	// would hold the next one back until it runs out.
	recordTimeout = 5 * time.Second
	// minWait keeps a Monitor from spinning when something is due now.
	minWait = 50 * time.Millisecond
	// errorWait is how soon a pass that failed (the database was down) is
	// made again.
	errorWait = time.Minute
)

// Config tunes a Monitor.
type Config struct {
	// Interval is how often the active certificate is checked; 0 turns
	// the periodic check off (checks after activations and on demand are
	// still made, and so are the retries of a check that found Apple out
	// of reach). The setting's default is DefaultInterval.
	Interval time.Duration
	// UnreachableAlertAfter is how long checks must keep finding Apple out
	// of reach before an alert is raised; 0 means
	// DefaultUnreachableAlertAfter, below zero never.
	UnreachableAlertAfter time.Duration
	// Retry is how soon a check that found Apple out of reach is made
	// again, at most Interval when that is on; 0 means DefaultRetry.
	Retry time.Duration
	// OnAlert is called after the Monitor records an alert event, so that
	// whatever delivers alerts (the alert checker's Poke) sends it at once
	// rather than at its next round; nil means nothing is called.
	OnAlert func()
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Monitor runs the check of the active certificate when it is due, and
// keeps its result. Several Monitors, in one process or many, may share
// one store: each periodic check is made by one of them.
type Monitor struct {
	log        *slog.Logger
	st         Store
	c          *Checker
	interval   time.Duration
	alertAfter time.Duration
	retry      time.Duration
	onAlert    func()
	now        func() time.Time
	poke       chan struct{}
}

// New returns a Monitor that checks with c and records in st.
func New(log *slog.Logger, st Store, c *Checker, cfg Config) *Monitor {
	m := &Monitor{
		log: log, st: st, c: c, interval: max(cfg.Interval, 0), alertAfter: cfg.UnreachableAlertAfter,
		retry: cfg.Retry, onAlert: cfg.OnAlert, now: cfg.Now, poke: make(chan struct{}, 1),
	}
	if m.alertAfter == 0 {
		m.alertAfter = DefaultUnreachableAlertAfter
	}
	if m.retry <= 0 {
		m.retry = DefaultRetry
	}
	if m.onAlert == nil {
		m.onAlert = func() {}
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Checker returns the Checker the Monitor checks with.
func (m *Monitor) Checker() *Checker { return m.c }

// Interval returns how often the certificate is checked; 0 when the
// periodic check is off.
func (m *Monitor) Interval() time.Duration { return m.interval }

// Run makes a pass at once, then whenever poked and whenever something is
// due (a check, a lease running out, an alert), until ctx ends. A pass
// that fails is logged and made again a minute later.
//
// Nothing is due before there is a certificate: poke the Monitor after
// every activation, so that the new certificate is checked at once.
func (m *Monitor) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next, err := m.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Error("apns check pass failed", "err", err)
			next = m.now().Add(errorWait)
		}
		var due <-chan time.Time // nothing due: wait to be poked
		if !next.IsZero() {
			timer.Reset(max(next.Sub(m.now()), minWait))
			due = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-due:
		case <-m.poke:
			timer.Stop()
		}
	}
}

// Poke asks a running Monitor for a pass soon, without waiting: after an
// activation, the new certificate is checked within moments.
func (m *Monitor) Poke() {
	select {
	case m.poke <- struct{}{}:
	default: // a pass is already asked for
	}
}

// Pass checks the active certificate if a check is due and no other
// replica is making it, then raises the alerts that are due. It returns
// when something will next be due, zero when nothing is (no certificate,
// the periodic check off).
func (m *Monitor) Pass(ctx context.Context) (time.Time, error) {
	st, err := m.st.State(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read state: %w", err)
	}
	if st.Certificate == nil {
		return time.Time{}, nil
	}
	rec, err := m.st.APNSCheck(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := m.now()
	var checkedBefore time.Time
	if p := m.period(rec.Last.Outcome); p > 0 {
		checkedBefore = now.Add(-p)
	}
	lease := now.Add(m.lease())
	claimed, err := m.st.ClaimAPNSCheck(ctx, st.Certificate.Fingerprint, now, lease, checkedBefore)
	if err != nil {
		return time.Time{}, err
	}
	if claimed {
		if err := m.checkClaimed(ctx, lease); err != nil {
			return time.Time{}, err
		}
	}
	return m.afterCheck(ctx)
}

// checkClaimed makes the check this replica claimed, with the lease that
// ends at lease, and records it.
func (m *Monitor) checkClaimed(ctx context.Context, lease time.Time) error {
	cert, key, err := m.st.ActivePair(ctx)
	if err != nil {
		// The certificate cannot be gone once there was one; a read that
		// failed leaves the lease to run out.
		return err
	}
	res, canceled := m.c.check(ctx, cert, key)
	if canceled {
		// Stopping before Apple answered: the lease runs out and another
		// pass checks.
		return ctx.Err()
	}
	res.By = System
	_, err = m.record(ctx, Finished{Result: res, Event: m.event(res, cert, System), Lease: lease})
	return err
}

// CheckNow checks the active certificate at once for by, who pressed
// "Test connection to Apple" or called the API, and waits for the answer
// (at most the Checker's timeout). The check is recorded as the last one
// and in the history, whatever its outcome, even when ctx ends once Apple
// has answered. ErrNoCertificate means there is nothing to check.
func (m *Monitor) CheckNow(ctx context.Context, by auth.User) (Result, error) {
	cert, key, err := m.st.ActivePair(ctx)
	if errors.Is(err, pushcert.ErrNotFound) {
		return Result{}, ErrNoCertificate
	}
	if err != nil {
		return Result{}, err
	}
	res, canceled := m.c.check(ctx, cert, key)
	if canceled {
		return Result{}, ctx.Err()
	}
	res.By = by
	// Apple answered: what it said is recorded and acted on even when the
	// person who asked has gone.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if _, err := m.record(ctx, Finished{Result: res, Event: m.event(res, cert, by), Always: true}); err != nil {
		return Result{}, err
	}
	// An alert due from this check is raised now, not at the next pass.
	if _, err := m.afterCheck(ctx); err != nil {
		return Result{}, err
	}
	m.Poke()
	return res, nil
}

// record stores a check, even when ctx has just ended.
func (m *Monitor) record(ctx context.Context, f Finished) (bool, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	changed, err := m.st.RecordAPNSCheck(rctx, f)
	if err != nil {
		return false, fmt.Errorf("record apns check: %w", err)
	}
	r := f.Result
	attrs := []any{"outcome", string(r.Outcome), "serial", r.Serial, "server", r.Server, "status", r.HTTPStatus, "reason", r.Reason}
	switch {
	case changed && r.Outcome != OutcomeAccepted:
		m.log.Warn("apns check outcome changed", attrs...)
	case changed:
		m.log.Info("apns check outcome changed", attrs...)
	default:
		m.log.Info("apns check", attrs...)
	}
	return changed, nil
}

// event is the history's record of a check of cert.
func (m *Monitor) event(r Result, cert pushcert.Certificate, by auth.User) pushcert.Event {
	return pushcert.Event{At: r.At, Kind: eventKind(r.Outcome), Actor: by, Serial: r.Serial, Topic: r.Topic,
		NotAfter: cert.NotAfter, Detail: r.Message}
}

// afterCheck raises the alert that is due, once across replicas, and
// works out when something is next due. It reads the active certificate
// afresh: a renewal may have been activated while the check ran, and a
// result for the certificate it replaced is no one's concern any more.
func (m *Monitor) afterCheck(ctx context.Context) (time.Time, error) {
	st, err := m.st.State(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("read state: %w", err)
	}
	if st.Certificate == nil {
		return time.Time{}, nil
	}
	rec, err := m.st.APNSCheck(ctx)
	if err != nil {
		return time.Time{}, err
	}
	now := m.now()
	leased := rec.LeaseUntil.After(now)
	if rec.Last.Outcome == OutcomeNone || rec.Last.Fingerprint != st.Certificate.Fingerprint {
		// The active certificate has not been checked: at once, unless a
		// replica is checking now.
		if leased {
			return rec.LeaseUntil, nil
		}
		return now, nil
	}
	var next time.Time // zero: nothing is due, the periodic check is off
	if p := m.period(rec.Last.Outcome); p > 0 {
		next = rec.Last.At.Add(p)
		// A check due while another replica makes one waits for its lease.
		if leased && rec.LeaseUntil.After(next) {
			next = rec.LeaseUntil
		}
	}
	if rec.Alerted {
		return next, nil
	}
	switch rec.Last.Outcome {
	case OutcomeRejected:
		return next, m.alert(ctx, rec, *st.Certificate, pushcert.EventAPNSAlertRejected, rec.Last.Message)
	case OutcomeUnreachable:
		// One result is not enough: the checks since the episode began
		// must have kept finding Apple out of reach for alertAfter.
		if m.alertAfter < 0 || rec.Last.At.Sub(rec.Since) < m.alertAfter {
			break
		}
		detail := fmt.Sprintf("Apple's push service has been out of reach since %s: %s",
			rec.Since.UTC().Format("2006-01-02 15:04 UTC"), rec.Last.Message)
		return next, m.alert(ctx, rec, *st.Certificate, pushcert.EventAPNSAlertUnreachable, detail)
	}
	return next, nil
}

// alert records the alert event for rec's episode, once across replicas,
// and has it delivered at once.
func (m *Monitor) alert(ctx context.Context, rec Record, cert pushcert.Certificate, kind pushcert.EventKind, detail string) error {
	e := pushcert.Event{At: m.now(), Kind: kind, Actor: System, Serial: rec.Last.Serial, Topic: rec.Last.Topic,
		NotAfter: cert.NotAfter, Detail: detail}
	marked, err := m.st.MarkAPNSAlerted(ctx, rec.Last.Outcome, rec.Since, e)
	if err != nil {
		return err
	}
	if marked {
		m.log.Warn("apns check alert raised", "outcome", string(rec.Last.Outcome), "since", rec.Since.UTC().Format(time.RFC3339),
			"serial", rec.Last.Serial)
		m.onAlert()
	}
	return nil
}

// period is how long after a check with outcome o the next one is due; 0
// when only a new certificate (or a person) makes one due.
func (m *Monitor) period(o Outcome) time.Duration {
	switch {
	case o == OutcomeUnreachable && m.interval == 0:
		// A check that did not reach Apple proved nothing: it is made
		// again even with the periodic check off.
		return m.retry
	case o == OutcomeUnreachable:
		return min(m.retry, m.interval)
	default:
		return m.interval
	}
}

// lease is how long a claimed check belongs to the replica that claimed
// it: longer than any check may take.
func (m *Monitor) lease() time.Duration { return m.c.Timeout() + 30*time.Second }
