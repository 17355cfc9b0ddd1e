package store

import (
	"fmt"
	"testing"
	"time"
)

// The leases hold the redemptions in flight and nothing else: tokens that
// do not verify never enter, and every reservation let go leaves.
func TestLeasesHoldOnlyWhatIsInFlight(t *testing.T) {
	s, err := Open(Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for range 500 {
		tok, _ := NewToken()
		_, _ = s.Reserve(tok, now)
		_, _ = s.Invalidate(tok, now)
	}
	if n := s.leases.count(); n != 0 {
		t.Errorf("leases after 1,000 unknown tokens = %d, want 0", n)
	}
	const users = 200
	held := make([]Reservation, users)
	for i := range users {
		iss, err := s.Issue(fmt.Sprintf("user%03d", i), now, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if held[i], err = s.Reserve(iss.Token, now); err != nil {
			t.Fatalf("Reserve(user%03d) = %v", i, err)
		}
	}
	if n := s.leases.count(); n != users {
		t.Errorf("leases of %d redemptions in flight = %d", users, n)
	}
	for i, res := range held {
		if i%2 == 0 {
			err = s.Release(res, i%4 == 0, 5)
		} else {
			err = s.Consume(res, now)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.leases.count(); n != 0 {
		t.Errorf("leases after every redemption let go = %d, want 0", n)
	}
}

// count returns how many leases are held.
func (l *leases) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}
