// Package limit keeps token-bucket limiters (golang.org/x/time/rate) per key,
// such as a client address, in a map bounded in size and swept of idle keys,
// so that a caller with a million addresses cannot grow it without end.
package limit

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rule is a budget of Events per Per, all of which may be spent at once.
type Rule struct {
	Events int
	Per    time.Duration
}

// limit returns the rule as a refill rate.
func (r Rule) limit() rate.Limit { return rate.Limit(float64(r.Events) / r.Per.Seconds()) }

// Keyed holds one limiter per key. Its methods are safe for concurrent use.
// The zero value is not usable; call New.
type Keyed struct {
	rule Rule
	max  int

	mu      sync.Mutex
	entries map[string]*rate.Limiter
	swept   time.Time
}

// sweepGap spaces out the sweeps a full map triggers, since each one looks
// at every key.
const sweepGap = time.Second

// New returns limiters of rule, keeping at most max keys. When the map is
// full, idle keys are swept first, and then an arbitrary key is evicted:
// evicting hands that key a fresh budget, which is the price of bounded
// memory, but a caller able to fill the map has fresh keys of its own anyway.
func New(rule Rule, max int) *Keyed {
	return &Keyed{rule: rule, max: max, entries: make(map[string]*rate.Limiter)}
}

// Allow spends one event of key's budget. When none is left it spends
// nothing and returns how long until one is.
func (k *Keyed) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := k.get(key, now).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Blocked reports, without spending anything, whether key's budget is
// spent, and how long until an event is available again.
func (k *Keyed) Blocked(key string, now time.Time) (blocked bool, retryAfter time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	lim, ok := k.entries[key]
	if !ok || lim.TokensAt(now) >= 1 {
		return false, 0
	}
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return true, d
}

// Spend takes one event from key's budget even when it is spent, so that
// failures keep counting.
func (k *Keyed) Spend(key string, now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	lim := k.get(key, now)
	if lim.TokensAt(now) >= 1 {
		lim.AllowN(now, 1)
	}
}

// Len returns the number of keys held.
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.entries)
}

// Sweep forgets keys whose budget has refilled: they hold nothing a fresh
// limiter would not.
func (k *Keyed) Sweep(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sweep(now)
}

func (k *Keyed) sweep(now time.Time) {
	k.swept = now
	for key, lim := range k.entries {
		if lim.TokensAt(now) >= float64(k.rule.Events) {
			delete(k.entries, key)
		}
	}
}

// get returns key's entry, making room for a new one if needed. k.mu is held.
func (k *Keyed) get(key string, now time.Time) *rate.Limiter {
	if lim, ok := k.entries[key]; ok {
		return lim
	}
	if len(k.entries) >= k.max && now.Sub(k.swept) >= sweepGap {
		k.sweep(now)
	}
	for key := range k.entries {
		if len(k.entries) < k.max {
			break
		}
		delete(k.entries, key) // map order is arbitrary
	}
	lim := rate.NewLimiter(k.rule.limit(), k.rule.Events)
	k.entries[key] = lim
	return lim
}

// AddressKey returns the limiter key of a client address: the address
// itself for IPv4, and its /64 network for IPv6, since one host commonly
// holds a whole /64. An unparsable address is its own key.
func AddressKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}
