package store

import (
	"sync"

	"github.com/mpgate/password-reset/internal/secret"
)

// Reservation is a token held by one redemption, from Reserve until Release
// or Consume lets go of it. Letting go twice, or with a Reservation that
// never held the token, changes nothing.
type Reservation struct {
	// User is the token's user.
	User string

	token secret.String
	id    uint64 // tells this holder from a later one of the same user
}

// leases hold the users whose tokens redemptions are using, in memory. A
// lease only keeps the redemptions of one user in this process apart, and
// one process holds the store at a time, so it needs no disk: writing it
// costs a synced commit on every reset, and after a crash it is gone with
// the redemption that held it.
//
// A lease is held by the user, not the token, so that a newer link of the
// same user cannot set the password (or cancel the request) while an older
// one is setting it. It lasts until its holder lets go, whatever the clock
// says: a lease that ran out under a redemption still waiting for the hub
// would let a second redemption set the password, or a cancellation report
// success for a request that then changes it. Holders let go on every path;
// the hub call they wait on has a timeout. So the map holds only the
// redemptions in flight.
type leases struct {
	mu   sync.Mutex
	last uint64
	held map[string]uint64 // user → the id of the reservation holding it
}

func newLeases() *leases { return &leases{held: map[string]uint64{}} }

// take leases user; ok is false when another holds it.
func (l *leases) take(user string) (id uint64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, busy := l.held[user]; busy {
		return 0, false
	}
	l.last++
	l.held[user] = l.last
	return l.last, true
}

// busy reports whether a redemption holds user.
func (l *leases) busy(user string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[user]
	return ok
}

// holds reports whether the reservation id still holds user.
func (l *leases) holds(user string, id uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return id != 0 && l.held[user] == id
}

// drop ends the lease of user when id holds it.
func (l *leases) drop(user string, id uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if id != 0 && l.held[user] == id {
		delete(l.held, user)
	}
}
