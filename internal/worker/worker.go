// Package worker turns accepted reset requests into mail. It takes due jobs
// from the store's outbox, looks the user up on the hub, issues a token and
// sends the mail, and retries with backoff when the hub or SMTP fails, so
// that nothing the gate accepted is lost while either is down.
package worker

import (
	"context"
	"errors"
	"net/url"
	"sync"
	"time"

	_ "time/tzdata" // users name their time zone; hosts may lack the database

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/mailer"
	"github.com/mpgate/password-reset/internal/secret"
	"github.com/mpgate/password-reset/internal/store"
)

// Directory looks users up; *hub.Client is one.
type Directory interface {
	User(ctx context.Context, name string) (hub.User, error)
}

// Sender sends reset mails and change notices; *mailer.Mailer is one.
type Sender interface {
	SendReset(ctx context.Context, r mailer.Reset) error
	SendChanged(ctx context.Context, c mailer.Changed) error
}

// Deps are the parts of the configuration a job is processed with. A
// config reload swaps them while the worker keeps running.
type Deps struct {
	Hub   Directory
	Mail  Sender
	Links Links
	TTL   time.Duration
	Retry Backoff
	// Budgets bound the mails to one user; over them, requests are dropped.
	Budgets []store.Budget
	// MailsPerMinute caps the mails sent in all; over it, mails wait.
	MailsPerMinute int
	Logger         *zap.Logger
	// Audit gets one event for every job that ends and every failed try.
	Audit *zap.Logger
	// Observer, when set, is told the same, for metrics.
	Observer Observer
}

// Observer is told what the worker decides, in fixed words only: kind is
// KindReset or KindChanged, reason one of the Reason values. It is called
// from the worker goroutine and must not block.
type Observer interface {
	// Sent is told of a mail handed to the SMTP server.
	Sent(kind string)
	// Failed is told of a try that failed and will be made again.
	Failed(kind, reason string)
	// Suppressed is told of a job that ended without mail.
	Suppressed(kind, reason string)
	// Issued is told of a token issued for a reset mail.
	Issued()
	// Postponed is told of a mail that waits for its turn under the cap of
	// mails per minute.
	Postponed()
}

// The kinds of mail, as Observer and the audit log name them.
const (
	KindReset   = "reset"
	KindChanged = "changed"
)

// Why a job ended without mail.
const (
	ReasonEnded       = "ended"        // a later reset or cancellation ended the request
	ReasonUnknownUser = "unknown_user" // the hub has no such user
	ReasonExternal    = "external"     // an LDAP or Active Directory user
	ReasonNoEmail     = "no_email"     // the hub has no address for the user
	ReasonBadAddress  = "bad_address"  // the address cannot be mailed to
	ReasonBudget      = "budget"       // the user's mail budget is spent
	ReasonGaveUp      = "gave_up"      // tries failed until the give-up time
)

// Why a try failed.
const (
	ReasonHubUnavailable = "hub_unavailable" // the hub could not be asked
	ReasonSMTPFailed     = "smtp_failed"     // the mail server refused or was down
	ReasonStoreFailed    = "store_failed"    // the store could not be read or written
)

// nopObserver is the Observer of a Deps without one.
type nopObserver struct{}

func (nopObserver) Sent(string)               {}
func (nopObserver) Failed(string, string)     {}
func (nopObserver) Suppressed(string, string) {}
func (nopObserver) Issued()                   {}
func (nopObserver) Postponed()                {}

// observer returns d's Observer, or one that does nothing.
func (d *Deps) observer() Observer {
	if d.Observer == nil {
		return nopObserver{}
	}
	return d.Observer
}

// KindOf returns the name of a job's kind, KindReset or KindChanged, as the
// Observer, metrics and the admin endpoint show it.
func KindOf(job store.Job) string {
	if job.Kind == store.KindChanged {
		return KindChanged
	}
	return KindReset
}

// Links builds the page links that go into mail, from the configured
// public URL alone.
type Links struct {
	// Base is the public URL, without a trailing slash.
	Base *url.URL
	// PagePath is the path of the reset page, ending in a slash.
	PagePath string
}

// Page returns the link to the reset page for a token.
func (l Links) Page(token secret.String) secret.String {
	u := *l.Base
	u.Path = u.Path + l.PagePath + token.Reveal()
	u.RawPath = ""
	return secret.String(u.String())
}

// Cancel returns the link that opens the reset page at the question whether
// to cancel the request.
func (l Links) Cancel(token secret.String) secret.String {
	return l.Page(token) + "?cancel"
}

// Login returns the Mission Portal sign-in page: the public URL itself.
func (l Links) Login() string {
	u := *l.Base
	u.Path += "/"
	return u.String()
}

// Backoff says how failed jobs are retried.
type Backoff struct {
	// First is the wait after the first failure; it doubles each time.
	First time.Duration
	// Max caps the wait between tries.
	Max time.Duration
	// GiveUp is how long after the request a job is dropped.
	GiveUp time.Duration
}

// Wait returns the wait after the given number of failed attempts.
func (b Backoff) Wait(attempts int) time.Duration {
	d := b.First
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// batch is how many due jobs one pass takes.
const batch = 32

// idleWake bounds how long the worker sleeps, so that a job written by an
// earlier process (or a clock jump) is never left waiting long.
const idleWake = 30 * time.Second

// jobTimeout bounds one job: the hub look-up and the send together.
const jobTimeout = 2 * time.Minute

// StopGrace is how long Stop waits for the job in flight before it
// cancels it.
const StopGrace = 30 * time.Second

// Worker processes the outbox. It is safe for concurrent use.
type Worker struct {
	store store.Store
	deps  func() *Deps
	now   func() time.Time

	wake chan struct{}
	asks chan retryAsk
	stop chan struct{}
	done chan struct{}
	once sync.Once

	// jobs is the parent context of every job: Stop cancels it only once
	// grace has passed, so a send in flight is not cut by the stop itself
	jobs  context.Context
	abort context.CancelFunc
	grace time.Duration

	// global caps the mails per minute; only the worker goroutine uses it
	global  *rate.Limiter
	globalN int
}

// New returns a worker over st that takes its configuration from deps on
// every job and reads the time from now. Call Start to run it.
func New(st store.Store, deps func() *Deps, now func() time.Time) *Worker {
	jobs, abort := context.WithCancel(context.Background())
	return &Worker{
		store: st,
		deps:  deps,
		now:   now,
		wake:  make(chan struct{}, 1),
		asks:  make(chan retryAsk),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		jobs:  jobs,
		abort: abort,
		grace: StopGrace,
	}
}

// Start runs the worker in its own goroutine.
func (w *Worker) Start() { go w.run() }

// Wake asks the worker to look at the outbox now.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Stop asks the worker to stop and waits until the job in flight, if
// any, has finished: a mail being sent is sent, and leaves the outbox. A
// job still running after StopGrace is cancelled and stays in the outbox,
// to be tried again after the next start. A worker never started must not
// be stopped.
func (w *Worker) Stop() {
	w.once.Do(func() { close(w.stop) })
	defer w.abort()
	grace := time.NewTimer(w.grace)
	defer grace.Stop()
	select {
	case <-w.done:
		return
	case <-grace.C:
	}
	w.deps().Logger.Warn("cancelling the mail in flight to stop", zap.Duration("grace", w.grace))
	w.abort()
	<-w.done
}

// Stopping returns a channel that is closed once Stop was called.
func (w *Worker) Stopping() <-chan struct{} { return w.stop }

func (w *Worker) run() {
	defer close(w.done)
	for {
		w.drain()
		timer := time.NewTimer(w.sleep())
		select {
		case <-w.stop:
			timer.Stop()
			return
		case <-w.wake:
		case ask := <-w.asks:
			w.answerRetry(ask)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// drain processes due jobs until none is left or the worker is stopped.
func (w *Worker) drain() {
	for {
		jobs, err := w.store.Due(w.now(), batch)
		if err != nil {
			w.deps().Logger.Error("reading outbox", zap.Error(err))
			return
		}
		if len(jobs) == 0 {
			return
		}
		for _, job := range jobs {
			select {
			case <-w.stop:
				return
			case ask := <-w.asks:
				w.answerRetry(ask)
			default:
			}
			w.process(job)
		}
	}
}

// sleep returns how long to wait for the next due job.
func (w *Worker) sleep() time.Duration {
	at, ok, err := w.store.NextDue()
	if err != nil || !ok {
		return idleWake
	}
	return min(max(at.Sub(w.now()), 0), idleWake)
}

// process handles one job to its end: sent, dropped, or rescheduled.
func (w *Worker) process(job store.Job) {
	d := w.deps()
	log := d.Audit.With(zap.String("user", job.User), zap.String("client_ip", job.ClientIP),
		zap.String("mail", KindOf(job)))
	ctx, cancel := context.WithTimeout(w.jobs, jobTimeout)
	defer cancel()

	if job.Kind == store.KindChanged {
		w.notify(ctx, d, job, log)
		return
	}
	ended, err := w.store.Ended(job.User, job.RequestedAt)
	switch {
	case err != nil:
		w.retry(d, job, log, ReasonStoreFailed, err)
		return
	case ended:
		w.suppress(d, job, log, ReasonEnded)
		return
	}
	user, ok := w.lookup(ctx, d, job, log)
	if !ok {
		return
	}

	allowed, err := w.store.MailAllowed(job.User, w.now(), d.Budgets)
	switch {
	case err != nil:
		w.retry(d, job, log, ReasonStoreFailed, err)
		return
	case !allowed:
		w.suppress(d, job, log, ReasonBudget)
		return
	}
	if wait := w.globalWait(d); wait > 0 {
		w.postpone(d, job, wait)
		return
	}

	issued, err := w.store.Issue(job.User, w.now(), d.TTL)
	if err != nil {
		w.retry(d, job, log, ReasonStoreFailed, err)
		return
	}
	d.observer().Issued()
	err = d.Mail.SendReset(ctx, mailer.Reset{
		To:            user.Email,
		Username:      job.User,
		DisplayName:   user.Name,
		Link:          d.Links.Page(issued.Token).Reveal(),
		CancelLink:    d.Links.Cancel(issued.Token).Reveal(),
		Token:         issued.Token.Reveal(),
		Expires:       issued.Expires,
		RequestedAt:   job.RequestedAt,
		RequestedFrom: job.ClientIP,
		Location:      location(user.TimeZone),
	})
	if err != nil {
		// a token never seen by its user must not stay usable; the next
		// try issues a fresh one
		if rerr := w.store.Revoke(issued.Token); rerr != nil {
			d.Logger.Error("revoking unsent token", zap.Error(rerr))
		}
		if errors.Is(err, mailer.ErrBadRecipient) {
			w.suppress(d, job, log, ReasonBadAddress)
			return
		}
		w.retry(d, job, log, ReasonSMTPFailed, err)
		return
	}
	if err := w.store.MailSent(job.User, w.now(), d.Budgets); err != nil {
		d.Logger.Error("recording a sent mail", zap.Error(err))
	}
	w.sent(d, job, log)
}

// lookup asks the hub for the job's user. A user who cannot get mail ends
// the job; a failed lookup puts it back for a retry. Either way ok is false.
func (w *Worker) lookup(ctx context.Context, d *Deps, job store.Job, log *zap.Logger) (user hub.User, ok bool) {
	user, err := d.Hub.User(ctx, job.User)
	switch {
	case errors.Is(err, hub.ErrNotFound):
		w.suppress(d, job, log, ReasonUnknownUser)
	case err != nil:
		w.retry(d, job, log, ReasonHubUnavailable, err)
	case user.External:
		w.suppress(d, job, log, ReasonExternal)
	case user.Email == "":
		w.suppress(d, job, log, ReasonNoEmail)
	default:
		return user, true
	}
	return user, false
}

// notify sends the notice that the user's password was changed, to the
// address the hub has for the user now. The user's budgets do not apply: a
// notice follows a reset that was done, not asked for.
func (w *Worker) notify(ctx context.Context, d *Deps, job store.Job, log *zap.Logger) {
	user, ok := w.lookup(ctx, d, job, log)
	if !ok {
		return
	}
	if wait := w.globalWait(d); wait > 0 {
		w.postpone(d, job, wait)
		return
	}
	err := d.Mail.SendChanged(ctx, mailer.Changed{
		To:          user.Email,
		Username:    job.User,
		DisplayName: user.Name,
		At:          job.RequestedAt,
		From:        job.ClientIP,
		LoginLink:   d.Links.Login(),
		Location:    location(user.TimeZone),
	})
	switch {
	case errors.Is(err, mailer.ErrBadRecipient):
		w.suppress(d, job, log, ReasonBadAddress)
	case err != nil:
		w.retry(d, job, log, ReasonSMTPFailed, err)
	default:
		w.sent(d, job, log)
	}
}

// globalWait takes one mail from the global cap, or returns how long the
// worker must wait for one.
func (w *Worker) globalWait(d *Deps) time.Duration {
	if d.MailsPerMinute <= 0 {
		return 0
	}
	if w.global == nil || w.globalN != d.MailsPerMinute {
		w.global = rate.NewLimiter(rate.Limit(float64(d.MailsPerMinute)/60), d.MailsPerMinute)
		w.globalN = d.MailsPerMinute
	}
	now := w.now()
	r := w.global.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return wait
	}
	return 0
}

// postpone puts a job back for later without counting a failure.
func (w *Worker) postpone(d *Deps, job store.Job, wait time.Duration) {
	next := job
	next.NextAt = w.now().Add(wait)
	if err := w.store.Reschedule(job, next); err != nil {
		d.Logger.Error("rescheduling job", zap.Error(err))
	}
	d.observer().Postponed()
	d.Logger.Debug("mail postponed by the global cap", zap.Duration("wait", wait))
}

// sent removes a job whose mail went out and records it.
func (w *Worker) sent(d *Deps, job store.Job, log *zap.Logger) {
	w.remove(d, job)
	d.observer().Sent(KindOf(job))
	log.Info("sent", zap.Int("attempts", job.Attempts+1))
}

// suppress removes a job that ends without mail and records why.
func (w *Worker) suppress(d *Deps, job store.Job, log *zap.Logger, reason string) {
	w.remove(d, job)
	d.observer().Suppressed(KindOf(job), reason)
	log.Info("suppressed", zap.String("reason", reason), zap.Int("attempts", job.Attempts+1))
}

func (w *Worker) remove(d *Deps, job store.Job) {
	if err := w.store.Done(job); err != nil {
		d.Logger.Error("removing finished job", zap.Error(err))
	}
}

// retry puts a failed job back with backoff, or drops it when it is too old.
// The error goes to the audit log: the hub client's and the mailer's errors
// carry no secret.
func (w *Worker) retry(d *Deps, job store.Job, log *zap.Logger, reason string, err error) {
	now := w.now()
	next := job
	next.Attempts++
	next.NextAt = now.Add(d.Retry.Wait(next.Attempts))
	if next.NextAt.Sub(job.RequestedAt) > d.Retry.GiveUp {
		w.remove(d, job)
		d.observer().Suppressed(KindOf(job), ReasonGaveUp)
		log.Warn("suppressed", zap.String("reason", ReasonGaveUp),
			zap.String("last_failure", reason), zap.Error(err),
			zap.Int("attempts", next.Attempts))
		return
	}
	if rerr := w.store.Reschedule(job, next); rerr != nil {
		d.Logger.Error("rescheduling job", zap.Error(rerr))
		return
	}
	d.observer().Failed(KindOf(job), reason)
	log.Warn("send failed", zap.String("reason", reason), zap.Error(err),
		zap.Int("attempts", next.Attempts), zap.Time("next_at", next.NextAt))
}

// location returns the user's time zone, or UTC when it is unknown.
func location(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}
