package caddymodule

import (
	"sync"
	"testing"

	"github.com/mpgate/password-reset/internal/mailcatch"
	"github.com/mpgate/password-reset/internal/store"
)

// TestStopLetsTheMailInFlightFinish stops Caddy while the SMTP server holds
// its answer to a reset mail: the send finishes, the mail arrives once, its
// job leaves the outbox and is not sent again after a restart, and the
// mailed link works.
func TestStopLetsTheMailInFlightFinish(t *testing.T) {
	s := newStack(t)
	stalled, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	m, err := mailcatch.Start(mailcatch.Options{Stall: func(mailcatch.Message) {
		first.Do(func() {
			close(stalled)
			<-release
		})
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s.mail, s.smtp = m, m.Addr()
	s.load("")

	s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
	<-stalled
	sh := sharedOf(t, s.storage)
	stopped := make(chan error, 1)
	go func() { stopped <- stopCaddy() }()
	<-sh.worker.Stopping()
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("caddy.Stop() = %v", err)
	}
	if n := len(s.resetMails()); n != 1 {
		t.Fatalf("mails after the stop = %d, want the one in flight", n)
	}
	st, err := store.Open(store.Options{Dir: s.storage})
	if err != nil {
		t.Fatal(err)
	}
	depth, err := st.Depth()
	_ = st.Close()
	if err != nil || depth != 0 {
		t.Fatalf("outbox depth after the stop = %d, %v, want 0", depth, err)
	}

	s.client.CloseIdleConnections()
	s.load("")
	// jobs go out in order: a second admin mail would come before carol's
	s.expect("POST", "/api/auth/password/forgot/carol", "", 200, textForgotOK)
	msgs := s.waitMail(2)
	if len(msgs) != 2 || msgs[1].To[0] != "carol@example.test" {
		t.Fatalf("mails after the restart: %d, the second to %v, want only carol's", len(msgs), msgs[1].To)
	}
	_, token := tokenOf(t, msgs[0])
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
}
