package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondCaddyOnSameStorageFails starts a second Caddy process on the
// storage directory of a running one: it must stop at once, saying that the
// directory is in use by another Caddy, while the first keeps serving.
func TestSecondCaddyOnSameStorageFails(t *testing.T) {
	s := &stack{t: t, storage: t.TempDir(), client: &http.Client{Timeout: 10 * time.Second}}
	defer startHub(t, s).Close()
	s.startMail("127.0.0.1:0")
	s.smtp = s.mail.Addr()
	s.base = "http://" + freeAddr(t)
	first := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(first, []byte(s.caddyfile("")), 0o600); err != nil {
		t.Fatal(err)
	}
	startChild(t, first)
	s.waitServing()

	// the same storage, on another port
	firstBase := s.base
	s.base = "http://" + freeAddr(t)
	second := filepath.Join(t.TempDir(), "Caddyfile")
	if err := os.WriteFile(second, []byte(s.caddyfile("")), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "--", "run", "--adapter", "caddyfile", "--config", second)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || ctx.Err() != nil {
		t.Fatalf("second Caddy on the same storage = %v, want it to exit with an error at once", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "in use") {
			t.Logf("second Caddy: %s", line)
		}
	}
	for _, want := range []string{"password_reset storage", s.storage, "in use by another Caddy"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("second Caddy's output lacks %q:\n%s", want, out)
		}
	}

	s.base = firstBase
	s.forgot("admin", 1) // the first one still serves and mails
}
