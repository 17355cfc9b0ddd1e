package caddymodule

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("password_reset", parseCaddyfile)
	// before basic_auth: the reset calls are for people who cannot sign in
	httpcaddyfile.RegisterDirectiveOrder("password_reset", httpcaddyfile.Before, "basic_auth")
}

func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	password_reset {
//		hub_url          <url>
//		hub_user         <name>
//		hub_password     <password>
//		hub_tls_ca       <pem file>
//		hub_tls_insecure
//		public_url       <url>
//		storage          <dir>
//		token_key        <hex>
//		previous_token_keys <hex>...
//		token_ttl        <duration>
//		mail_retry       <first> <max> <give up after>
//		templates        <dir>
//		mail_subject     <text>
//		changed_subject  <text>
//		smtp {
//			server   <host:port>
//			username <name>
//			password <password>
//			from     <address>
//			tls      starttls|implicit|none
//		}
//		limits {
//			forgot_per_address   <events> <period>
//			failures_per_address <events> <period>
//			failures_per_token   <count>
//			mails_per_user       <events> <period> [<events> <period>...]
//			mails_per_minute     <count>
//			tracked_addresses    <count>
//		}
//	}
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive's name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		var err error
		switch d.Val() {
		case "hub_url":
			err = oneArg(d, &h.HubURL)
		case "hub_user":
			err = oneArg(d, &h.HubUser)
		case "hub_password":
			err = oneArg(d, &h.HubPassword)
		case "hub_tls_ca":
			err = oneArg(d, &h.HubTLSCA)
		case "hub_tls_insecure":
			if d.NextArg() {
				return d.Errf("hub_tls_insecure: takes no value")
			}
			h.HubTLSInsecure = true
		case "public_url":
			err = oneArg(d, &h.PublicURL)
		case "storage":
			err = oneArg(d, &h.Storage)
		case "token_key":
			err = oneArg(d, &h.TokenKey)
		case "previous_token_keys":
			keys := d.RemainingArgs()
			if len(keys) == 0 {
				return d.Errf("previous_token_keys: want one or more keys")
			}
			h.PreviousTokenKeys = append(h.PreviousTokenKeys, keys...)
		case "token_ttl":
			err = durationArg(d, &h.TokenTTL)
		case "mail_retry":
			err = h.parseRetry(d)
		case "templates":
			err = oneArg(d, &h.Templates)
		case "mail_subject":
			err = oneArg(d, &h.MailSubject)
		case "changed_subject":
			err = oneArg(d, &h.ChangedSubject)
		case "smtp":
			err = h.SMTP.parse(d)
		case "limits":
			err = h.Limits.parse(d)
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseRetry reads "mail_retry <first> <max> <give up after>".
func (h *Handler) parseRetry(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	if len(args) != 3 {
		return d.Errf("mail_retry: want three durations: first, max and give up after")
	}
	for i, dst := range []*caddy.Duration{&h.MailRetry.First, &h.MailRetry.Max, &h.MailRetry.GiveUp} {
		v, err := caddy.ParseDuration(args[i])
		if err != nil || v <= 0 {
			return d.Errf("mail_retry: %q is not a positive duration", args[i])
		}
		*dst = caddy.Duration(v)
	}
	return nil
}

// parse reads the smtp block.
func (s *SMTP) parse(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "server":
			err = oneArg(d, &s.Server)
		case "username":
			err = oneArg(d, &s.Username)
		case "password":
			err = oneArg(d, &s.Password)
		case "from":
			err = oneArg(d, &s.From)
		case "tls":
			err = oneArg(d, &s.TLS)
			if err == nil && s.TLS != "starttls" && s.TLS != "implicit" && s.TLS != "none" {
				err = d.Errf("smtp tls: want starttls, implicit or none, got %q", s.TLS)
			}
		default:
			err = d.Errf("unrecognized smtp subdirective %q", d.Val())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// oneArg reads exactly one argument of the current subdirective.
func oneArg(d *caddyfile.Dispenser, dst *string) error {
	name := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return d.Errf("%s: want exactly one value", name)
	}
	*dst = args[0]
	return nil
}

// durationArg reads one positive duration such as 48h or 90s.
func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	name := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil || v <= 0 {
		return d.Errf("%s: %q is not a positive duration", name, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

var _ caddyfile.Unmarshaler = (*Handler)(nil)
