package worker

import (
	"context"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/mailer"
)

// heldSender holds every reset mail until release is closed, or until its
// context ends when release is nil, and reports the context's error then.
type heldSender struct {
	started chan struct{}
	release chan struct{}
	ctxErr  chan error
}

func newHeldSender(release chan struct{}) *heldSender {
	return &heldSender{started: make(chan struct{}), release: release, ctxErr: make(chan error, 1)}
}

func (h *heldSender) SendReset(ctx context.Context, _ mailer.Reset) error {
	close(h.started)
	select {
	case <-h.release:
	case <-ctx.Done():
	}
	h.ctxErr <- ctx.Err()
	return ctx.Err()
}

func (h *heldSender) SendChanged(context.Context, mailer.Changed) error { return nil }

// hold makes the fixture's worker send through h and starts it on one job.
func (f *fixture) hold(t *testing.T, h *heldSender) {
	t.Helper()
	deps := *f.w.deps()
	deps.Mail = h
	f.w.deps = func() *Deps { return &deps }
	f.enqueue(t, "admin")
	f.w.Start()
	<-h.started
}

// Stopping the worker in the middle of a send lets it finish: the stop does
// not cancel the send's context, and the job leaves the outbox.
func TestStopLetsTheSendInFlightFinish(t *testing.T) {
	f := newFixture(t)
	h := newHeldSender(make(chan struct{}))
	f.hold(t, h)
	stopped := make(chan struct{})
	go func() {
		f.w.Stop()
		close(stopped)
	}()
	<-f.w.Stopping()
	close(h.release)
	if err := <-h.ctxErr; err != nil {
		t.Errorf("send's context after Stop = %v, want not cancelled", err)
	}
	<-stopped
	if n := f.depth(t); n != 0 {
		t.Errorf("outbox depth after a send finished during Stop = %d, want 0", n)
	}
}

// A send that outlasts the grace is cancelled, so that Stop returns; its
// job stays in the outbox for the next start.
func TestStopCancelsASendPastTheGrace(t *testing.T) {
	f := newFixture(t)
	f.w.grace = time.Millisecond
	h := newHeldSender(nil)
	f.hold(t, h)
	f.w.Stop()
	if err := <-h.ctxErr; err == nil {
		t.Error("send's context after the grace = nil, want cancelled")
	}
	jobs, err := f.st.Due(f.now.Add(time.Hour), 10)
	if err != nil || len(jobs) != 1 || jobs[0].Attempts != 1 {
		t.Fatalf("outbox after a cancelled send = %+v, %v, want the job once, to retry", jobs, err)
	}
}
