package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/store"
)

func TestOutboxStats(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	if st, _, err := s.OutboxJobs(t0, 0); err != nil || st.Depth != 0 || !st.Oldest.IsZero() {
		t.Fatalf("OutboxJobs() of an empty outbox = %+v, %v, want 0 jobs and no oldest", st, err)
	}
	// the oldest request is due last: the age is by request, not by due time
	jobs := []store.Job{
		{ID: "a", User: "admin", RequestedAt: t0, NextAt: t0.Add(time.Hour)},
		{ID: "b", User: "carol", RequestedAt: t0.Add(time.Minute), NextAt: t0},
		{ID: "c", User: "alice", RequestedAt: t0.Add(2 * time.Minute), NextAt: t0},
	}
	for _, j := range jobs {
		if err := s.Enqueue(j); err != nil {
			t.Fatal(err)
		}
	}
	st, _, err := s.OutboxJobs(t0, 0)
	if err != nil || st.Depth != 3 || !st.Oldest.Equal(t0) {
		t.Fatalf("OutboxJobs() = %+v, %v, want 3 jobs, oldest %v", st, err, t0)
	}
	if err := s.Done(jobs[0]); err != nil {
		t.Fatal(err)
	}
	st, _, err = s.OutboxJobs(t0, 0)
	if err != nil || st.Depth != 2 || !st.Oldest.Equal(jobs[1].RequestedAt) {
		t.Fatalf("OutboxJobs() after Done = %+v, %v, want 2 jobs, oldest %v", st, err,
			jobs[1].RequestedAt)
	}
}

func TestExpiredToldApart(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, err := s.Issue("admin", t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := store.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(other, t0); errors.Is(err, store.ErrExpired) ||
		!errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(unknown token) = %v, want ErrInvalidToken, not ErrExpired", err)
	}
	late := t0.Add(time.Hour)
	if _, err := s.Reserve(iss.Token, late); !errors.Is(err, store.ErrExpired) {
		t.Errorf("Reserve(at expiry) = %v, want ErrExpired", err)
	}
	if _, err := s.Invalidate(iss.Token, late); !errors.Is(err, store.ErrExpired) {
		t.Errorf("Invalidate(at expiry) = %v, want ErrExpired", err)
	}
}
