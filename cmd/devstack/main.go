// Command devstack runs a complete local stack to try the password reset by
// hand: Caddy with the password_reset module on 127.0.0.1:8080, in front of
// the stand-in hub (not a real Mission Portal hub: it serves only the user
// API), and a mail catcher whose inbox is a web page, so that the mailed link
// can be opened. Everything stays on loopback; state lives in -dir.
//
// Usage, from the repository's root:
//
//	go run ./cmd/devstack
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/mpgate/password-reset/caddymodule"
	"github.com/mpgate/password-reset/internal/hubsim"
	"github.com/mpgate/password-reset/internal/mailcatch"
)

type options struct {
	listen, hub, smtp, inbox, admin, users, dir string
}

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address of Caddy with the module")
	flag.StringVar(&o.hub, "hub", "127.0.0.1:9080", "address of the stand-in hub")
	flag.StringVar(&o.smtp, "smtp", "127.0.0.1:2525", "address of the mail catcher's SMTP server")
	flag.StringVar(&o.inbox, "inbox", "127.0.0.1:8025", "address of the caught mail's web inbox")
	flag.StringVar(&o.admin, "admin", "localhost:2019", "address of Caddy's admin endpoint; \"off\" turns it off")
	flag.StringVar(&o.users, "users", "cmd/hubsim/users.example.json", "users of the stand-in hub")
	flag.StringVar(&o.dir, "dir", ".devstack", "directory for the module's storage")
	flag.Parse()
	log.SetFlags(0)
	if err := run(o); err != nil {
		log.Fatalf("devstack: %v", err)
	}
}

func run(o options) error {
	data, err := hubsim.Load(o.users)
	if err != nil {
		return err
	}
	hubSrv, err := serve(o.hub, hubsim.New(data))
	if err != nil {
		return fmt.Errorf("stand-in hub: %w", err)
	}
	defer hubSrv.Close()

	catcher, err := mailcatch.Start(mailcatch.Options{Addr: o.smtp})
	if err != nil {
		return err
	}
	defer catcher.Close()
	inboxSrv, err := serve(o.inbox, catcher.Handler())
	if err != nil {
		return fmt.Errorf("mail inbox: %w", err)
	}
	defer inboxSrv.Close()

	storage, err := filepath.Abs(filepath.Join(o.dir, "storage"))
	if err != nil {
		return err
	}
	// Caddy's own data (instance ID, locks) and its autosaved config stay in
	// the stack's directory too, not in the user's home
	for env, sub := range map[string]string{"XDG_DATA_HOME": "data", "XDG_CONFIG_HOME": "config"} {
		if err := os.Setenv(env, filepath.Join(filepath.Dir(storage), sub)); err != nil {
			return err
		}
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile(o, storage)), nil)
	if err != nil {
		return fmt.Errorf("adapting the Caddyfile: %w", err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("starting Caddy: %w", err)
	}
	defer func() { _ = caddy.Stop() }()

	fmt.Printf(`
mpgate local stack is up.

  Caddy with password_reset   http://%[1]s
  stand-in hub (not a hub)    http://%[2]s/api/
  caught mail                 http://%[3]s
  metrics                     http://%[1]s/metrics

Ask for a reset of the stand-in's "admin" account:

  curl -X POST http://%[1]s/api/auth/password/forgot/admin

(or use the form at http://%[1]s/password-reset/), then open the caught
mail at http://%[3]s, follow its link and set a new password. Check that
the stand-in hub takes it:

  curl -u admin:NEW-PASSWORD http://%[1]s/api/
%[4]s
Press Ctrl+C to stop.
`, o.listen, o.hub, o.inbox, adminHint(o.admin))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// caddyfile is the stack's configuration: the module in front of the
// stand-in hub, mailing through the catcher without TLS.
func caddyfile(o options, storage string) string {
	return fmt.Sprintf(`{
	admin %[6]s
	persist_config off
}

http://%[1]s {
	bind %[5]s
	password_reset {
		hub_url      http://%[2]s
		hub_user     mpgate
		hub_password svc-Secret-42
		public_url   http://%[1]s
		storage      %[4]s
		smtp {
			server %[3]s
			from   "Mission Portal <noreply@mission-portal.test>"
			tls    none
		}
	}
	# the module's counters, with Caddy's own, for a look while trying it
	metrics /metrics
	reverse_proxy %[2]s
}
`, o.listen, o.hub, o.smtp, storage, host(o.listen), o.admin)
}

// adminHint tells where the module's admin calls are, when the admin
// endpoint is on.
func adminHint(addr string) string {
	if addr == "off" {
		return ""
	}
	return fmt.Sprintf("\nSee the outbox on Caddy's admin endpoint:\n\n  curl http://%s/password_reset/outbox\n", addr)
}

// host returns the host part of a host:port address.
func host(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// serve runs h on addr in the background.
func serve(addr string, h http.Handler) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Printf("devstack: serving %s: %v", addr, err)
		}
	}()
	return srv, nil
}
