package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
)

// site is one Caddy under test: plain reverse_proxy, or the same with
// password_reset in front of it.
type site struct {
	addr     string // where Caddy listens
	admin    string // where Caddy's admin endpoint listens
	upstream string // where reverse_proxy sends requests
	module   bool
	hub      string // the stand-in hub's address
	smtp     string // the mail sink's address
	storage  string
	limits   string // the module's limits block, without braces
}

// raisedLimits lets one client address ask for as many resets as the
// bench sends, and mail go out as fast as the worker can send it.
const raisedLimits = `
			forgot_per_address   1000000000 1s
			failures_per_address 1000000000 1s
			mails_per_user       1000000000 1s
			mails_per_minute     1000000000
			tracked_addresses    100000`

// defaultLimits are the module's defaults, written out; only the global
// mail cap is raised so that mail never waits.
const defaultLimits = `
			forgot_per_address   5 10m
			failures_per_address 10 1m
			mails_per_minute     1000000000
			tracked_addresses    100000`

// caddyfile returns the configuration of a site. Both kinds trust the
// loopback network as a proxy, so that X-Forwarded-For names the client,
// and both keep Caddy's admin endpoint on loopback, for its heap profile.
func (s site) caddyfile() string {
	host, _, _ := net.SplitHostPort(s.addr)
	var b strings.Builder
	fmt.Fprintf(&b, `{
	admin %s
	persist_config off
	servers {
		trusted_proxies static 127.0.0.1/8
	}
}

http://%s {
	bind %s
`, s.admin, s.addr, host)
	if s.module {
		fmt.Fprintf(&b, `	password_reset {
		hub_url      http://%s
		hub_user     %s
		hub_password %s
		public_url   http://%s
		storage      %s
		token_key    %s
		smtp {
			server %s
			from   "Mission Portal <noreply@mission-portal.test>"
			tls    none
		}
		limits {%s
		}
	}
`, s.hub, serviceUser, servicePassword, s.addr, filepath.Clean(s.storage),
			tokenKeyHex, s.smtp, s.limits)
	}
	fmt.Fprintf(&b, "\treverse_proxy %s\n}\n", s.upstream)
	return b.String()
}
