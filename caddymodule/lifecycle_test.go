package caddymodule

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
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

// TestReloadUnderLoad keeps reset requests and passthrough calls running
// while the config is reloaded ten times: no request gets a wrong answer
// and the outbox drains. Caddy itself closes some idle keep-alive
// connections as a reload swaps servers, passthrough ones alike, so a
// client may see a connection closed under a request it just sent; those
// are counted and logged, not failed.
func TestReloadUnderLoad(t *testing.T) {
	s := newStack(t)
	var accepted, failed, dropped atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				path := fmt.Sprintf("/api/auth/password/forgot/user%d-%d", w, i)
				if w == 3 {
					path = "/api/"
				}
				resp, err := s.client.Post(s.base+path, "", nil)
				switch {
				case err != nil:
					dropped.Add(1)
				case w == 3 && resp.StatusCode != 401:
					failed.Add(1) // the hub answers 401 without credentials
					t.Logf("worker %d: %d", w, resp.StatusCode)
				case w != 3 && resp.StatusCode != 200:
					failed.Add(1)
					t.Logf("worker %d: %d", w, resp.StatusCode)
				case w != 3:
					accepted.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	for i := range 10 {
		time.Sleep(30 * time.Millisecond)
		s.load(fmt.Sprintf("token_ttl %dm", 60+i))
	}
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Errorf("failed requests during reloads = %d, want 0", n)
	}
	if accepted.Load() == 0 {
		t.Fatal("no request was accepted: the test proves nothing")
	}
	s.waitOutboxEmpty()
	t.Logf("%d requests accepted during 10 reloads; %d connections closed by the reloads",
		accepted.Load(), dropped.Load())
}
