package store_test

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/secret"
	"github.com/mpgate/password-reset/internal/store"
)

// A reservation holds until its holder lets go, however far the clock
// moves meanwhile: a redemption still waiting for the hub must not find
// its token reserved again, or cancelled, behind its back.
func TestReservationOutlastsMovedClock(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	res, err := s.Reserve(iss.Token, t0)
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(50 * time.Minute)
	wantInUse(t, s, iss.Token, later)
	if err := s.Consume(res, later); err != nil {
		t.Fatal(err)
	}
	wantUsedUp(t, s, iss.Token, later)
}

// wantInUse checks that a reservation, a cancellation and a check of token
// at now are all refused as in use.
func wantInUse(t *testing.T, s *store.Badger, token secret.String, now time.Time) {
	t.Helper()
	for name, call := range map[string]func() error{
		"Check":      func() error { _, err := s.Check(token, now); return err },
		"Reserve":    func() error { _, err := s.Reserve(token, now); return err },
		"Invalidate": func() error { _, err := s.Invalidate(token, now); return err },
	} {
		err := call()
		if !errors.Is(err, store.ErrInUse) || !errors.Is(err, store.ErrInvalidToken) {
			t.Errorf("%s() while reserved = %v, want ErrInUse and ErrInvalidToken", name, err)
		}
	}
}

// wantUsedUp checks that token is refused as invalid, and not as in use.
func wantUsedUp(t *testing.T, s *store.Badger, token secret.String, now time.Time) {
	t.Helper()
	if _, err := s.Reserve(token, now); errors.Is(err, store.ErrInUse) ||
		!errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Reserve() of a used token = %v, want ErrInvalidToken only", err)
	}
}

// One user's tokens are held together: a newer link can neither set the
// password nor cancel, and the operator cannot end the user, while an older
// link is being redeemed; the reset ends the newer one too.
func TestReservationHoldsTheUser(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	older, _ := s.Issue("admin", t0, time.Hour)
	res, err := s.Reserve(older.Token, t0)
	if err != nil {
		t.Fatal(err)
	}
	newer, _ := s.Issue("admin", t0, time.Hour) // revokes older's record
	other, _ := s.Issue("alice", t0, time.Hour)
	wantInUse(t, s, newer.Token, t0)
	if _, err := s.EndUser("admin", t0); !errors.Is(err, store.ErrInUse) {
		t.Errorf("EndUser() while reserved = %v, want ErrInUse", err)
	}
	if _, err := s.Check(other.Token, t0); err != nil {
		t.Errorf("Check(another user's token) = %v, want nil", err)
	}
	if err := s.Consume(res, t0); err != nil {
		t.Fatal(err)
	}
	wantUsedUp(t, s, newer.Token, t0)
}

// Letting go twice, or with a reservation that was never made, neither
// frees another holder nor counts another failure.
func TestReleaseOnlyByItsHolder(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	first, err := s.Reserve(iss.Token, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Release(first, true, 2); err != nil {
		t.Fatal(err)
	}
	second, err := s.Reserve(iss.Token, t0)
	if err != nil {
		t.Fatalf("Reserve() after Release = %v", err)
	}
	for name, stale := range map[string]store.Reservation{
		"a second release": first, "a reservation never made": {User: "admin"},
	} {
		if err := s.Release(stale, true, 2); err != nil {
			t.Errorf("Release(%s) = %v, want nil", name, err)
		}
		if err := s.Consume(stale, t0); !errors.Is(err, store.ErrInvalidToken) {
			t.Errorf("Consume(%s) = %v, want ErrInvalidToken", name, err)
		}
		if _, err := s.Reserve(iss.Token, t0); !errors.Is(err, store.ErrInUse) {
			t.Errorf("Reserve() after %s = %v, want ErrInUse", name, err)
		}
	}
	// one failure so far of the two that burn it: the token lives on
	if err := s.Release(second, false, 2); err != nil {
		t.Fatal(err)
	}
	if user, err := s.Check(iss.Token, t0); err != nil || user != "admin" {
		t.Errorf("Check() after one counted failure = %q, %v, want admin, nil", user, err)
	}
}

// Many goroutines reserve, check, cancel, release, consume and reissue
// one user's tokens at once. Every winner holds the user alone: no two
// redemptions are ever in flight together, and no cancellation happens
// while one is.
func TestUserRedemptionsNeverOverlap(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	var (
		mu     sync.Mutex
		tokens = []store.Issued{iss}
		inside int // holders in flight, counted by the test
		wins   int
	)
	pick := func(i int) store.Issued {
		mu.Lock()
		defer mu.Unlock()
		return tokens[i%len(tokens)]
	}
	enter := func() {
		mu.Lock()
		defer mu.Unlock()
		inside++
		wins++
		if inside != 1 {
			t.Errorf("%d holders of one user at once, want 1", inside)
		}
	}
	leave := func() {
		mu.Lock()
		inside--
		mu.Unlock()
	}
	var wg sync.WaitGroup
	// one goroutine issues, as the mail worker does
	wg.Go(func() {
		for range 40 {
			// a new token loses to a concurrent end of the user's tokens
			// now and then; the worker would try its job again
			if fresh, err := s.Issue("admin", t0, time.Hour); err == nil {
				mu.Lock()
				tokens = append(tokens, fresh)
				mu.Unlock()
			}
		}
	})
	for g := range 16 {
		wg.Go(func() {
			for i := range 40 {
				tok := pick(g + i).Token
				switch (g + i) % 4 {
				case 0, 1:
					res, err := s.Reserve(tok, t0)
					if err != nil {
						continue
					}
					enter()
					runtime.Gosched() // let the others try meanwhile
					leave()
					if i%3 == 0 {
						_ = s.Consume(res, t0)
					} else {
						_ = s.Release(res, i%2 == 0, 1000)
					}
				case 2:
					// a cancellation holds the user while it works
					_, _ = s.Invalidate(tok, t0)
				case 3:
					_, _ = s.Check(tok, t0)
				}
			}
		})
	}
	wg.Wait()
	if wins == 0 {
		t.Error("no reservation ever won")
	}
	// every lease was let go: the newest token can be reserved
	fresh, _ := s.Issue("admin", t0, time.Hour)
	if _, err := s.Reserve(fresh.Token, t0); err != nil {
		t.Errorf("Reserve() after the storm = %v, want nil", err)
	}
}
