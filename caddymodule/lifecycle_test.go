package caddymodule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// validate adapts a Caddyfile and validates it as "caddy validate" does.
func validate(text string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), nil)
	if err != nil {
		return err
	}
	return caddy.Validate(mustConfig(cfg))
}

// TestValidateHasNoSideEffects validates the running config: it must not
// fail on the store's lock. With Caddy stopped and mail waiting, it must
// not send it.
func TestValidateHasNoSideEffects(t *testing.T) {
	s := newStack(t)
	if err := validate(s.caddyfile("")); err != nil {
		t.Fatalf("validating the running config = %v, want nil", err)
	}
	s.smtp = freeAddr(t) // nothing listens: the request stays queued
	s.load("")
	s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	s.startMail(s.smtp)
	if err := validate(s.caddyfile("")); err != nil {
		t.Fatalf("validating a stopped config = %v, want nil", err)
	}
	time.Sleep(300 * time.Millisecond) // the retry backoff of the test config is 50ms
	if n := len(s.resetMails()); n != 0 {
		t.Fatalf("validation sent %d mails, want 0", n)
	}
	s.client.CloseIdleConnections()
	s.load("")
	s.waitMail(1) // started for real, the queued mail goes out
}

// TestSitesSharingStorageMustShareTheHub refuses two sites whose handlers
// share a store but not their hub; by default each site has its own store.
func TestSitesSharingStorageMustShareTheHub(t *testing.T) {
	s := newStack(t)
	site := func(port, hub, storage string) string {
		return fmt.Sprintf(`
http://127.0.0.1:%[1]s {
	password_reset {
		hub_url %[2]s
		hub_user u
		hub_password p
		public_url http://127.0.0.1:%[1]s
		%[3]s
		smtp {
			server %[4]s
			from a@example.test
			tls none
		}
	}
}`, port, hub, storage, s.smtp)
	}
	port := func() string { a := freeAddr(t); return a[strings.LastIndex(a, ":")+1:] }
	shared := "storage " + t.TempDir()
	cfg := "{\n admin off\n}" + site(port(), "http://127.0.0.1:1", shared) +
		site(port(), "http://127.0.0.1:2", shared)
	err := loadCaddyfile(cfg)
	if err == nil || !strings.Contains(err.Error(), "used by two handlers") {
		t.Fatalf("two hubs on one storage = %v, want an error saying so", err)
	}
	if err := stopCaddy(); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	cfg = "{\n admin off\n}" + site(port(), "http://127.0.0.1:1", "") +
		site(port(), "http://127.0.0.1:2", "")
	if err := loadCaddyfile(cfg); err != nil {
		t.Fatalf("two sites with default storage = %v, want each its own store", err)
	}
}
