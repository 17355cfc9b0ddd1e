package caddymodule

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

func TestReloadKeepsTokens(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	for i := range 3 {
		// a changed config is provisioned while the old one still runs
		s.load(fmt.Sprintf("token_ttl %dm", 60+i))
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
	_, token = tokenOf(t, s.forgot("admin", 2))
	s.expect("DELETE", "/api/auth/password/reset/"+token, "", 202, textInvalidated)
}

func TestRequestAcceptedWhileSMTPDownIsDelivered(t *testing.T) {
	s := newStack(t)
	addr := freeAddr(t)
	s.smtp = addr
	s.load("")
	s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
	s.expect("POST", "/api/auth/password/forgot/carol", "", 200, textForgotOK)
	// let the worker fail a few times against the closed port
	waitUntil(t, func() bool { return jobAttempts(t, s.storage) >= 2 })
	s.startMail(addr)
	msgs := s.waitMail(2)
	for _, m := range msgs {
		_, token := tokenOf(t, m)
		if m.To[0] == "admin@example.test" {
			s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
				200, textResetOK)
		}
	}
}

// jobAttempts returns the highest attempt count in the outbox.
func jobAttempts(t *testing.T, dir string) int {
	t.Helper()
	sh := sharedOf(t, dir)
	jobs, err := sh.store.Due(time.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range jobs {
		n = max(n, j.Attempts)
	}
	return n
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 15s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKillAndRestartKeepsOutbox kills a real Caddy process right after it
// accepted requests it could not yet mail, and checks that the restarted
// process delivers them.
func TestKillAndRestartKeepsOutbox(t *testing.T) {
	s := &stack{t: t, storage: t.TempDir(), client: &http.Client{Timeout: 10 * time.Second}}
	hubSrv := startHub(t, s)
	defer hubSrv.Close()
	s.smtp = freeAddr(t) // nothing listens there yet
	s.base = "http://" + freeAddr(t)
	cfg := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(cfg, []byte(s.caddyfile("")), 0o600); err != nil {
		t.Fatal(err)
	}

	child := startChild(t, cfg)
	s.waitServing()
	s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
	s.expect("POST", "/api/auth/password/forgot/carol", "", 200, textForgotOK)
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()

	s.startMail(s.smtp)
	startChild(t, cfg)
	s.waitServing()
	msgs := s.waitMail(2)
	_, token := tokenOf(t, msgs[0])
	if token == "" {
		t.Fatal("no token in the mail delivered after the restart")
	}
}

// startChild runs the test binary as "caddy run" on the Caddyfile.
func startChild(t *testing.T, cfg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "--", "run", "--adapter", "caddyfile", "--config", cfg)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitServing waits until Caddy answers on the stack's address.
func (s *stack) waitServing() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		resp, err := s.client.Get(s.base + "/api/auth/password/")
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatal("Caddy did not start serving within 20s")
}

// A request still waiting for its mail when the user resets with an earlier
// link is dropped: the user is done, and a fresh link would only invite a
// second reset nobody asked for.
func TestResetDropsWaitingRequests(t *testing.T) {
	s := newStack(t)
	fake := fakeClock(t, time.Now())
	_, token := tokenOf(t, s.forgot("admin", 1))
	// the hub is down for the second request's lookup, which waits for a
	// retry on the held clock
	s.hub.SetDown(true)
	s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
	waitUntil(t, func() bool { return jobAttempts(t, s.storage) >= 1 })
	s.hub.SetDown(false)
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
	fake.advance(time.Minute)
	s.waitOutboxEmpty()
	if n := len(s.resetMails()); n != 1 {
		t.Fatalf("mails = %d, want only the one sent before the reset", n)
	}
	// a request made after the reset is mailed as usual
	fake.advance(time.Second)
	s.forgot("admin", 2)
}
