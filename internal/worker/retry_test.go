package worker

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetryNowMakesWaitingJobsDue(t *testing.T) {
	f := newFixture(t)
	f.mail.err = errors.New("smtp down")
	f.enqueue(t, "admin")
	f.w.drain()
	if jobs, _ := f.st.Due(f.now, 10); len(jobs) != 0 {
		t.Fatalf("a failed job is due at once: %+v", jobs)
	}
	f.mail.mu.Lock()
	f.mail.err = nil
	f.mail.mu.Unlock()

	// the worker's clock stands still: without RetryNow the job waits
	f.w.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if n, err := f.w.RetryNow(ctx); n != 1 || err != nil {
		t.Fatalf("RetryNow() = %d, %v, want 1", n, err)
	}
	for f.depth(t) > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	f.w.Stop()
	if len(f.mail.sent) != 1 {
		t.Errorf("mails sent = %d, want 1", len(f.mail.sent))
	}
	if _, err := f.w.RetryNow(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("RetryNow() after Stop = %v, want ErrStopped", err)
	}
}
