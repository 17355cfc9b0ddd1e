package caddymodule

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mpgate/password-reset/internal/limit"
	"github.com/mpgate/password-reset/internal/store"
)

// Limits bound the cost of abuse. Rates are a number of events per period;
// all of a budget may be spent at once, and it refills evenly.
type Limits struct {
	// ForgotPerAddress limits reset requests per client address; over it,
	// the request is answered 422 with Retry-After. Default: 5 per 10m.
	ForgotPerAddress Rate `json:"forgot_per_address,omitzero"`
	// FailuresPerAddress limits failed resets and invalidations (a bad
	// token, a refused password, a malformed request) per client address;
	// over it, both calls are answered 429 with Retry-After.
	// Default: 10 per 1m.
	FailuresPerAddress Rate `json:"failures_per_address,omitzero"`
	// FailuresPerToken is how many refused passwords burn a token.
	// Default: 5.
	FailuresPerToken int `json:"failures_per_token,omitempty"`
	// MailsPerUser are budgets of mails to one user, all of which must
	// hold; over them, requests are dropped silently (the answer does not
	// change). Kept in the store, so a restart does not reset them.
	// Default: 1 per 2m and 5 per 1h.
	MailsPerUser []Rate `json:"mails_per_user,omitempty"`
	// MailsPerMinute caps the mails sent per minute in all; over it, mails
	// wait. Default: 60.
	MailsPerMinute int `json:"mails_per_minute,omitempty"`
	// TrackedAddresses caps the client addresses each limiter remembers.
	// Default: 100000.
	TrackedAddresses int `json:"tracked_addresses,omitempty"`
}

// Rate is Events per Per.
type Rate struct {
	Events int            `json:"events,omitempty"`
	Per    caddy.Duration `json:"per,omitempty"`
}

func (r Rate) rule() limit.Rule { return limit.Rule{Events: r.Events, Per: time.Duration(r.Per)} }

func (r Rate) budget() store.Budget {
	return store.Budget{Events: r.Events, Per: time.Duration(r.Per)}
}

// applyDefaults fills in the limits left out.
func (l *Limits) applyDefaults() {
	if l.ForgotPerAddress == (Rate{}) {
		l.ForgotPerAddress = Rate{5, caddy.Duration(10 * time.Minute)}
	}
	if l.FailuresPerAddress == (Rate{}) {
		l.FailuresPerAddress = Rate{10, caddy.Duration(time.Minute)}
	}
	if l.FailuresPerToken == 0 {
		l.FailuresPerToken = 5
	}
	if l.MailsPerUser == nil {
		l.MailsPerUser = []Rate{{1, caddy.Duration(2 * time.Minute)},
			{5, caddy.Duration(time.Hour)}}
	}
	if l.MailsPerMinute == 0 {
		l.MailsPerMinute = 60
	}
	if l.TrackedAddresses == 0 {
		l.TrackedAddresses = 100_000
	}
}

// check rejects limits that make no sense.
func (l *Limits) check() error {
	rates := append([]Rate{l.ForgotPerAddress, l.FailuresPerAddress}, l.MailsPerUser...)
	for _, r := range rates {
		if r.Events <= 0 || r.Per <= 0 {
			return errors.New("limits: want a positive number of events per a positive period")
		}
	}
	if l.FailuresPerToken <= 0 || l.MailsPerMinute <= 0 || l.TrackedAddresses <= 0 {
		return errors.New("limits: counts must be positive")
	}
	return nil
}

// limiters are the in-memory limiters of one set of limits; they live in
// the shared state, so a reload with the same limits keeps their counts.
type limiters struct {
	forgot   *limit.Keyed
	failures *limit.Keyed
}

func newLimiters(l Limits) *limiters {
	return &limiters{
		forgot:   limit.New(l.ForgotPerAddress.rule(), l.TrackedAddresses),
		failures: limit.New(l.FailuresPerAddress.rule(), l.TrackedAddresses),
	}
}

func (l *limiters) sweep(now time.Time) {
	l.forgot.Sweep(now)
	l.failures.Sweep(now)
}

// setRetryAfter tells the client, in whole seconds rounded up, when to
// try again.
func setRetryAfter(w http.ResponseWriter, d time.Duration) {
	secs := int64(math.Ceil(d.Seconds()))
	w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
}

// parse reads the limits block.
func (l *Limits) parse(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		name := d.Val()
		args := d.RemainingArgs()
		var err error
		switch name {
		case "forgot_per_address":
			l.ForgotPerAddress, err = parseRate(args)
		case "failures_per_address":
			l.FailuresPerAddress, err = parseRate(args)
		case "mails_per_user":
			l.MailsPerUser, err = parseRates(args)
		case "failures_per_token":
			l.FailuresPerToken, err = parseCount(args)
		case "mails_per_minute":
			l.MailsPerMinute, err = parseCount(args)
		case "tracked_addresses":
			l.TrackedAddresses, err = parseCount(args)
		default:
			return d.Errf("unrecognized limits subdirective %q", name)
		}
		if err != nil {
			return d.Errf("limits %s: %v", name, err)
		}
	}
	return nil
}

// parseRates reads one or more "<events> <period>" pairs.
func parseRates(args []string) ([]Rate, error) {
	if len(args) == 0 || len(args)%2 != 0 {
		return nil, errors.New("want pairs of <events> <period>")
	}
	var out []Rate
	for i := 0; i < len(args); i += 2 {
		r, err := parseRate(args[i : i+2])
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRate(args []string) (Rate, error) {
	if len(args) != 2 {
		return Rate{}, errors.New("want <events> <period>, e.g. 5 10m")
	}
	n, err := parseCount(args[:1])
	if err != nil {
		return Rate{}, err
	}
	per, err := caddy.ParseDuration(args[1])
	if err != nil || per <= 0 {
		return Rate{}, fmt.Errorf("%q is not a positive duration", args[1])
	}
	return Rate{n, caddy.Duration(per)}, nil
}

func parseCount(args []string) (int, error) {
	if len(args) != 1 {
		return 0, errors.New("want one number")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive number", args[0])
	}
	return n, nil
}
