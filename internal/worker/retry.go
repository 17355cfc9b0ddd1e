package worker

import (
	"context"
	"errors"
	"fmt"
)

// ErrStopped is returned by RetryNow once the worker has stopped.
var ErrStopped = errors.New("worker stopped")

// retryAsk asks the worker goroutine to make every waiting job due; the
// answer goes to reply, which has room for it.
type retryAsk struct{ reply chan retryAnswer }

type retryAnswer struct {
	moved int
	err   error
}

// RetryNow makes every job that waits for a later try due at once, and
// returns how many it moved. The worker does it itself, between two jobs,
// so that no job is moved while it is being processed; RetryNow waits for
// that until ctx ends.
func (w *Worker) RetryNow(ctx context.Context) (int, error) {
	ask := retryAsk{reply: make(chan retryAnswer, 1)}
	select {
	case w.asks <- ask:
	case <-w.done:
		return 0, fmt.Errorf("making jobs due: %w", ErrStopped)
	case <-ctx.Done():
		return 0, fmt.Errorf("making jobs due: %w", ctx.Err())
	}
	select {
	case a := <-ask.reply:
		return a.moved, a.err
	case <-ctx.Done():
		return 0, fmt.Errorf("making jobs due: %w", ctx.Err())
	}
}

// answerRetry serves one RetryNow in the worker goroutine.
func (w *Worker) answerRetry(ask retryAsk) {
	n, err := w.store.MakeDue(w.now())
	ask.reply <- retryAnswer{n, err}
}
