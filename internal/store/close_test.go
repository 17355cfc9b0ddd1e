package store_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/mpgate/password-reset/internal/store"
)

// Closing the store while requests are still being enqueued neither hangs
// nor panics, and every job whose Enqueue succeeded is there after a
// restart. A second Close is harmless.
func TestCloseWithEnqueuesInFlight(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	var (
		mu      sync.Mutex
		acked   []string
		started = make(chan struct{})
		once    sync.Once
		wg      sync.WaitGroup
	)
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%02d-%06d", g, i)
				if err := s.Enqueue(store.Job{ID: id, User: "u", NextAt: t0}); err != nil {
					return
				}
				mu.Lock()
				acked = append(acked, id)
				if len(acked) >= 200 {
					once.Do(func() { close(started) })
				}
				mu.Unlock()
			}
		})
	}
	<-started
	if err := s.Close(); err != nil {
		t.Fatalf("Close() with enqueues in flight = %v", err)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}

	s = open(t, dir)
	defer s.Close()
	jobs, err := s.Due(t0, len(acked)+1000)
	if err != nil {
		t.Fatal(err)
	}
	there := map[string]bool{}
	for _, j := range jobs {
		there[j.ID] = true
	}
	for _, id := range acked {
		if !there[id] {
			t.Errorf("acknowledged job %s is lost after a restart", id)
		}
	}
}
