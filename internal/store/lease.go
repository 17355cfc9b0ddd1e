package store

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/mpgate/password-reset/internal/secret"
)

// leases hold the tokens that redemptions are using, in memory. A lease
// only keeps two redemptions of one token in this process apart, and one
// process holds the store at a time, so it needs no disk: writing it costs
// a synced commit on every reset, and after a crash the token would simply
// be usable again, as it is once a lease runs out. Tokens are kept under a
// keyed digest whose key lives and dies with the process.
type leases struct {
	key []byte
	mu  sync.Mutex
	end map[string]time.Time
}

func newLeases() *leases {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails on supported platforms
	return &leases{key: key, end: map[string]time.Time{}}
}

// take leases token until now+d; it reports false when another holds it.
// It also forgets leases that ran out, so the map holds only live ones.
func (l *leases) take(token secret.String, now time.Time, d time.Duration) bool {
	k := string(digestWith(l.key, token))
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.end[k]) {
		return false
	}
	for other, end := range l.end {
		if !now.Before(end) {
			delete(l.end, other)
		}
	}
	l.end[k] = now.Add(d)
	return true
}

// held reports whether a redemption holds token at now.
func (l *leases) held(token secret.String, now time.Time) bool {
	k := string(digestWith(l.key, token))
	l.mu.Lock()
	defer l.mu.Unlock()
	return now.Before(l.end[k])
}

// drop ends token's lease.
func (l *leases) drop(token secret.String) {
	k := string(digestWith(l.key, token))
	l.mu.Lock()
	delete(l.end, k)
	l.mu.Unlock()
}
