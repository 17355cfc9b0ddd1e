package store_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mpgate/password-reset/internal/store"
)

// Jobs enqueued together share commits; every one of them must be on disk
// when its Enqueue returns, and none may be lost or doubled.
func TestConcurrentEnqueuesAllLand(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	const n = 600 // more than one commit's worth
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- s.Enqueue(store.Job{ID: fmt.Sprintf("job%04d", i), User: "u", NextAt: t0})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Enqueue() = %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, dir)
	defer s.Close()
	jobs, err := s.Due(t0, 2*n)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		if seen[j.ID] {
			t.Errorf("job %s is in the outbox twice", j.ID)
		}
		seen[j.ID] = true
	}
	if len(seen) != n {
		t.Errorf("after a restart the outbox holds %d distinct jobs, want %d", len(seen), n)
	}
}

func TestEnqueueAfterCloseFails(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(store.Job{ID: "late", NextAt: t0}); err == nil {
		t.Error("Enqueue() on a closed store = nil, want an error")
	}
}
