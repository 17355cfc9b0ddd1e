package mailer_test

import (
	"context"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/mailcatch"
)

// A cancelled send gives up while the server holds its answer to DATA,
// instead of waiting out the SMTP timeout.
func TestCancelledSendGivesUp(t *testing.T) {
	stalled, release := make(chan struct{}, 1), make(chan struct{})
	s := startCatcher(t, mailcatch.Options{Stall: func(mailcatch.Message) {
		stalled <- struct{}{}
		<-release
	}})
	t.Cleanup(func() { close(release) })
	cfg := plainConfig(s)
	cfg.Timeout = time.Hour
	m := newMailer(t, cfg)

	ctx, cancel := context.WithCancel(t.Context())
	sent := make(chan error, 1)
	go func() { sent <- m.SendReset(ctx, sampleReset(t)) }()
	<-stalled
	cancel()
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("cancelled send = nil, want an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled send still waits for the server's answer after 10s")
	}
}
