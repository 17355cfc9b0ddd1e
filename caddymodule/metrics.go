package caddymodule

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mpgate/password-reset/internal/hub"
	"github.com/mpgate/password-reset/internal/worker"
)

// metricSet holds the module's metrics. Every label value is one of a few
// fixed words: no username, address or token is ever a label.
type metricSet struct {
	requests     *prometheus.CounterVec   // call, outcome
	mailsQueued  *prometheus.CounterVec   // kind
	mailsSent    *prometheus.CounterVec   // kind
	mailsFailed  *prometheus.CounterVec   // kind, reason
	mailsDropped *prometheus.CounterVec   // kind, reason
	tokens       *prometheus.CounterVec   // event
	throttled    *prometheus.CounterVec   // limiter
	hubCalls     *prometheus.HistogramVec // call
	outbox       *outboxCollector
}

// metrics are made once per process. Caddy gives every config a registry
// of its own; registering the same collectors in each keeps the counts
// across reloads, where new collectors would start again from zero.
var metrics = newMetricSet()

func newMetricSet() *metricSet {
	const ns, sub = "caddy", "password_reset"
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: name, Help: help,
		}, labels)
	}
	m := &metricSet{
		requests: counter("requests_total",
			"Requests the module answered, by call and outcome.", "call", "outcome"),
		mailsQueued: counter("mails_queued_total",
			"Mails put in the outbox: accepted reset requests and change notices.", "kind"),
		mailsSent: counter("mails_sent_total",
			"Mails the SMTP server accepted.", "kind"),
		mailsFailed: counter("mails_failed_total",
			"Tries to send a mail that failed and will be made again.", "kind", "reason"),
		mailsDropped: counter("mails_dropped_total",
			"Outbox jobs that ended without a mail.", "kind", "reason"),
		tokens: counter("tokens_total",
			"Reset tokens issued, redeemed, invalidated, and presented after their expiry.",
			"event"),
		throttled: counter("throttled_total",
			"Requests and mails held back by a limit.", "limiter"),
		hubCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "hub_request_duration_seconds",
			Help:    "Time taken by calls to the hub's API, answered or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"call"}),
		outbox: &outboxCollector{
			jobs: prometheus.NewDesc(ns+"_"+sub+"_outbox_jobs",
				"Mails waiting in the outbox.", nil, nil),
			oldest: prometheus.NewDesc(ns+"_"+sub+"_outbox_oldest_age_seconds",
				"Age of the oldest request waiting in the outbox; 0 when it is empty.",
				nil, nil),
		},
	}
	// series of fixed words start at zero, so that a rate has a start
	for _, kind := range []string{worker.KindReset, worker.KindChanged} {
		m.mailsQueued.WithLabelValues(kind)
		m.mailsSent.WithLabelValues(kind)
	}
	for _, e := range []string{tokenIssued, tokenRedeemed, tokenInvalidated, tokenExpired} {
		m.tokens.WithLabelValues(e)
	}
	for _, l := range []string{limitForgot, limitFailures, limitMailsPerUser, limitMailsPerMinute} {
		m.throttled.WithLabelValues(l)
	}
	for _, c := range []hub.Call{hub.CallUser, hub.CallSetPassword, hub.CallSettings, hub.CallPing} {
		m.hubCalls.WithLabelValues(string(c))
	}
	return m
}

// The events of the tokens metric.
const (
	tokenIssued      = "issued"
	tokenRedeemed    = "redeemed"
	tokenInvalidated = "invalidated"
	tokenExpired     = "expired"
)

// The limiters of the throttled metric and the audit log, named as in the
// limits block.
const (
	limitForgot         = "forgot_per_address"
	limitFailures       = "failures_per_address"
	limitMailsPerUser   = "mails_per_user"
	limitMailsPerMinute = "mails_per_minute"
)

func (m *metricSet) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.mailsQueued, m.mailsSent, m.mailsFailed,
		m.mailsDropped, m.tokens, m.throttled, m.hubCalls, m.outbox}
}

// register adds the metrics to a config's registry. A registry that has
// them already, from another handler of the same config, is left as is.
func (m *metricSet) register(reg *prometheus.Registry) error {
	for _, c := range m.collectors() {
		err := reg.Register(c)
		var dup prometheus.AlreadyRegisteredError
		if err == nil || errors.As(err, &dup) && dup.ExistingCollector == c {
			continue
		}
		return fmt.Errorf("registering password_reset metrics: %w", err)
	}
	return nil
}

// observeHub records how long a call to the hub took.
func observeHub(call hub.Call, took time.Duration) {
	metrics.hubCalls.WithLabelValues(string(call)).Observe(took.Seconds())
}

// mailObserver counts what the mail worker decides.
type mailObserver struct{}

func (mailObserver) Sent(kind string) { metrics.mailsSent.WithLabelValues(kind).Inc() }

func (mailObserver) Failed(kind, reason string) {
	metrics.mailsFailed.WithLabelValues(kind, reason).Inc()
}

func (mailObserver) Suppressed(kind, reason string) {
	metrics.mailsDropped.WithLabelValues(kind, reason).Inc()
	if reason == worker.ReasonBudget {
		metrics.throttled.WithLabelValues(limitMailsPerUser).Inc()
	}
}

func (mailObserver) Issued() { metrics.tokens.WithLabelValues(tokenIssued).Inc() }

func (mailObserver) Postponed() {
	metrics.throttled.WithLabelValues(limitMailsPerMinute).Inc()
}

// outboxCollector reports the outbox of every open store when scraped: one
// read-only pass over the jobs waiting, which are few.
type outboxCollector struct {
	jobs, oldest *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *outboxCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.jobs
	ch <- c.oldest
}

// Collect implements prometheus.Collector. A store that cannot be read is
// left out rather than failing the whole scrape.
func (c *outboxCollector) Collect(ch chan<- prometheus.Metric) {
	all, _ := openStorages("") // all of them: no error
	jobs, oldest := 0, time.Time{}
	for _, o := range all {
		if !o.sh.enter() {
			continue // closed under the scrape
		}
		st, _, err := o.sh.store.OutboxJobs(clock(), 0)
		o.sh.leave()
		if err != nil {
			continue
		}
		jobs += st.Depth
		if !st.Oldest.IsZero() && (oldest.IsZero() || st.Oldest.Before(oldest)) {
			oldest = st.Oldest
		}
	}
	age := 0.0
	if !oldest.IsZero() {
		age = max(clock().Sub(oldest).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(jobs))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age)
}
