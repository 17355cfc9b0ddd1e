package store_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/store"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *store.Badger {
	t.Helper()
	s, err := store.Open(store.Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return s
}

func TestTokenLifecycle(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, err := s.Issue("admin", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.Token.Reveal()) != store.TokenLen {
		t.Errorf("len(token) = %d, want %d", len(iss.Token.Reveal()), store.TokenLen)
	}
	tests := []struct {
		name string
		at   time.Time
		want error
	}{
		{"valid one second before the expiry", t0.Add(time.Hour - time.Second), nil},
		{"refused at the expiry", t0.Add(time.Hour), store.ErrExpired},
		{"refused after the expiry", t0.Add(2 * time.Hour), store.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, err := s.Check(iss.Token, tt.at)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check(at %v) = %q, %v, want %v", tt.at, user, err, tt.want)
			}
			if err == nil && user != "admin" {
				t.Errorf("Check() user = %q, want admin", user)
			}
		})
	}
}

func TestNewTokenRevokesEarlier(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	first, _ := s.Issue("admin", t0, time.Hour)
	second, _ := s.Issue("admin", t0, time.Hour)
	if _, err := s.Check(first.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(first) = %v, want ErrInvalidToken", err)
	}
	if _, err := s.Check(second.Token, t0); err != nil {
		t.Errorf("Check(second) = %v, want nil", err)
	}
	other, _ := s.Issue("alice", t0, time.Hour)
	if _, err := s.Check(other.Token, t0); err != nil {
		t.Errorf("Check(other user's token) = %v, want nil", err)
	}
}

func TestReserveReleaseConsume(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	res, err := s.Reserve(iss.Token, t0)
	if err != nil {
		t.Fatalf("Reserve() = %v", err)
	}
	if _, err := s.Reserve(iss.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("second Reserve() = %v, want ErrInvalidToken while reserved", err)
	}
	if err := s.Release(res, true, 5); err != nil {
		t.Fatal(err)
	}
	res, err = s.Reserve(iss.Token, t0)
	if err != nil || res.User != "admin" {
		t.Fatalf("Reserve() after Release = %q, %v, want admin, nil", res.User, err)
	}
	if err := s.Consume(res, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(iss.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check() after Consume = %v, want ErrInvalidToken", err)
	}
}

func TestReleaseBurnsAfterMaxFailures(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	for i := range 3 {
		res, err := s.Reserve(iss.Token, t0)
		if err != nil {
			t.Fatalf("Reserve() #%d = %v", i+1, err)
		}
		_ = s.Release(res, true, 3)
	}
	if _, err := s.Check(iss.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check() after 3 failures = %v, want ErrInvalidToken", err)
	}
}

func TestConcurrentReserveOnlyOneWins(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Reserve(iss.Token, t0); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("concurrent Reserve() wins = %d, want 1", wins)
	}
}

func TestInvalidate(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	user, err := s.Invalidate(iss.Token, t0)
	if err != nil || user != "admin" {
		t.Fatalf("Invalidate() = %q, %v, want admin, nil", user, err)
	}
	if _, err := s.Invalidate(iss.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("second Invalidate() = %v, want ErrInvalidToken", err)
	}
}

func TestEndedBy(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	ended := func(user string, at time.Time) bool {
		t.Helper()
		ok, err := s.Ended(user, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if ended("admin", t0) {
		t.Fatal("a user who never reset has ended requests")
	}
	iss, _ := s.Issue("admin", t0, time.Hour)
	if _, err := s.Invalidate(iss.Token, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	iss, _ = s.Issue("alice", t0, time.Hour)
	res, _ := s.Reserve(iss.Token, t0)
	if err := s.Consume(res, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"admin", "alice"} {
		if !ended(user, t0) || !ended(user, t0.Add(time.Minute)) {
			t.Errorf("%s: a request made before the end is not ended", user)
		}
		if ended(user, t0.Add(time.Minute+time.Nanosecond)) {
			t.Errorf("%s: a request made after the end is ended", user)
		}
	}
	if ended("bob", t0) {
		t.Error("ending one user ended another")
	}
}

func TestStatePersistsAndHoldsNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	iss, _ := s.Issue("admin", t0, time.Hour)
	used, _ := s.Issue("alice", t0, time.Hour)
	res, _ := s.Reserve(used.Token, t0)
	_ = s.Consume(res, t0)
	job := store.Job{ID: "j1", User: "admin", RequestedAt: t0, NextAt: t0}
	if err := s.Enqueue(job); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(raw, []byte(iss.Token.Reveal())) {
			t.Errorf("%s holds a plaintext token", filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "token.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token.key mode = %v, %v, want 0600", fi.Mode().Perm(), err)
	}

	s = open(t, dir)
	defer s.Close()
	if user, err := s.Check(iss.Token, t0); err != nil || user != "admin" {
		t.Errorf("Check() after reopen = %q, %v, want admin, nil", user, err)
	}
	if _, err := s.Check(used.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(used token) after reopen = %v, want ErrInvalidToken", err)
	}
	jobs, err := s.Due(t0, 10)
	if err != nil || len(jobs) != 1 || jobs[0].ID != "j1" {
		t.Errorf("Due() after reopen = %v, %v, want the one job", jobs, err)
	}
}

func TestOutboxOrder(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	for i, id := range []string{"late", "early", "future"} {
		at := []time.Time{t0.Add(time.Second), t0, t0.Add(time.Hour)}[i]
		if err := s.Enqueue(store.Job{ID: id, NextAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	jobs, _ := s.Due(t0.Add(time.Minute), 10)
	if len(jobs) != 2 || jobs[0].ID != "early" || jobs[1].ID != "late" {
		t.Fatalf("Due() = %+v, want early then late", jobs)
	}
	moved := jobs[0]
	moved.NextAt = t0.Add(2 * time.Hour)
	if err := s.Reschedule(jobs[0], moved); err != nil {
		t.Fatal(err)
	}
	_ = s.Done(jobs[1])
	at, ok, err := s.NextDue()
	if err != nil || !ok || !at.Equal(t0.Add(time.Hour)) {
		t.Errorf("NextDue() = %v, %v, %v, want %v", at, ok, err, t0.Add(time.Hour))
	}
	if n, _ := s.Depth(); n != 2 {
		t.Errorf("Depth() = %d, want 2", n)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	_, err := store.Open(store.Options{Dir: dir})
	if !errors.Is(err, store.ErrLocked) {
		t.Errorf("second Open() = %v, want ErrLocked", err)
	}
}

// The notice of a change is recorded with the token's end, or not at all.
func TestConsumeAndEnqueue(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	iss, err := s.Issue("alice", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Reserve(iss.Token, t0)
	if err != nil {
		t.Fatal(err)
	}
	notice := store.Job{ID: "notice", Kind: store.KindChanged, User: "alice", NextAt: t0}
	if err := s.ConsumeAndEnqueue(res, t0, notice); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if _, err := s.Check(iss.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(used token) = %v, want ErrInvalidToken", err)
	}
	jobs, err := s.Due(t0, 10)
	if err != nil || len(jobs) != 1 || jobs[0].ID != "notice" || jobs[0].Kind != store.KindChanged {
		t.Errorf("outbox after a restart = %+v, %v; want the notice alone", jobs, err)
	}
}

// A reservation keeps redemptions in this process apart and is not
// written: after a restart the token is usable again at once.
func TestReservationLivesInMemory(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	iss, err := s.Issue("admin", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(iss.Token, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(iss.Token, t0); !errors.Is(err, store.ErrInUse) {
		t.Errorf("Check(reserved) = %v, want ErrInUse", err)
	}
	if _, err := s.Invalidate(iss.Token, t0); !errors.Is(err, store.ErrInUse) {
		t.Errorf("Invalidate(reserved) = %v, want ErrInUse", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	if res, err := s.Reserve(iss.Token, t0); err != nil || res.User != "admin" {
		t.Errorf("Reserve() after a restart = %q, %v, want admin, nil", res.User, err)
	}
}
