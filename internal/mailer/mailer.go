// Package mailer renders the password reset mail, and the notice that a
// password was changed, and sends them over SMTP.
//
// A Mailer is built once from checked settings and opens a fresh SMTP
// connection for every call, so one Mailer is safe for concurrent use. The
// errors it returns never hold the token, the link or the SMTP password.
package mailer

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	gomail "github.com/wneessen/go-mail"
)

// The default subjects.
const (
	defaultSubject        = "Reset your Mission Portal password"
	defaultChangedSubject = "Your Mission Portal password was changed"
)

// defaultTimeout applies when Config.Timeout is zero.
const defaultTimeout = 30 * time.Second

// The values of Config.TLS.
const (
	modeStartTLS = "starttls"
	modeImplicit = "implicit"
	modeNone     = "none"
)

// ErrBadRecipient is returned by SendReset, wrapped, when Reset.To is not
// exactly one plain address (no display name, no list, no comment, no line
// break). Nothing is sent then, and retrying cannot help.
var ErrBadRecipient = errors.New("recipient is not exactly one plain address")

// Config holds the SMTP settings of a Mailer.
type Config struct {
	// Server is the SMTP server as host:port, e.g. "smtp.example.com:587".
	Server string
	// Username, with Password, turns on SMTP AUTH (PLAIN, else LOGIN, else
	// the strongest mechanism the server offers). Default: no AUTH.
	Username string
	// Password is the SMTP AUTH password; it goes only over TLS, or in
	// cleartext to a server on localhost, 127.0.0.1 or ::1.
	Password string
	// From is the sender, one address with an optional display name, e.g.
	// "Mission Portal <noreply@example.com>". Its domain also ends each
	// Message-ID.
	From string
	// TLS is "starttls" (STARTTLS is required; the send fails when the
	// server does not offer it), "implicit" (TLS from the first byte, as on
	// port 465) or "none" (cleartext). Default: "starttls".
	TLS string
	// Timeout bounds connecting and each SMTP exchange. Default: 30s.
	Timeout time.Duration
	// Templates is a directory of templates that replace the built-in ones
	// of the same names: reset.txt.tmpl, reset.html.tmpl (the reset mail),
	// changed.txt.tmpl and changed.html.tmpl (the notice after a reset).
	// Default: the built-in templates only.
	Templates string
	// Subject is the reset mail's subject. Default: "Reset your Mission
	// Portal password".
	Subject string
	// ChangedSubject is the notice's subject. Default: "Your Mission Portal
	// password was changed".
	ChangedSubject string
	// TLSConfig replaces the default TLS settings, e.g. so that tests trust
	// their own CA. An empty ServerName is set to Server's host. Default:
	// the system roots, TLS 1.2 or later.
	TLSConfig *tls.Config
}

// Mailer sends reset mails through one SMTP server. Build it with New.
type Mailer struct {
	addr      string // host:port, joined so IPv6 literals keep their brackets
	host      string
	port      int
	from      *mail.Address
	idDomain  string // right-hand side of every Message-ID
	mode      string
	username  string
	password  string
	timeout   time.Duration
	tlsConfig *tls.Config
	templates *templates
	subject   string
	changed   string // the notice's subject
}

// New checks cfg and returns a Mailer for it. It does not connect: use Ping
// for that. Errors name the field at fault, e.g. "smtp from: ...".
func New(cfg Config) (*Mailer, error) {
	host, port, err := splitServer(cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("smtp server: %w", err)
	}
	from, err := parseFrom(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp from: %w", err)
	}
	mode := cfg.TLS
	if mode == "" {
		mode = modeStartTLS
	}
	if mode != modeStartTLS && mode != modeImplicit && mode != modeNone {
		return nil, fmt.Errorf("smtp tls: unknown mode %q (want starttls, implicit or none)",
			cfg.TLS)
	}
	switch {
	case cfg.Username == "" && cfg.Password != "":
		return nil, errors.New("smtp username: required when a password is set")
	case cfg.Username != "" && cfg.Password == "":
		return nil, errors.New("smtp password: required when a username is set")
	case cfg.Username != "" && mode == modeNone && !isLocalhost(host):
		return nil, errors.New("smtp tls: none would send the password in cleartext " +
			"to a server that is not on loopback")
	}
	subject, changed, err := subjects(cfg)
	if err != nil {
		return nil, err
	}
	tmpl, err := loadTemplates(cfg.Templates)
	if err != nil {
		return nil, err
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	if timeout < 0 {
		return nil, fmt.Errorf("smtp timeout: %v is negative", timeout)
	}

	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
		if tc.MinVersion == 0 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}

	return &Mailer{
		addr:      net.JoinHostPort(host, strconv.Itoa(port)),
		host:      host,
		port:      port,
		from:      from,
		idDomain:  from.Address[strings.LastIndexByte(from.Address, '@')+1:],
		mode:      mode,
		username:  cfg.Username,
		password:  cfg.Password,
		timeout:   timeout,
		tlsConfig: tc,
		templates: tmpl,
		subject:   subject,
		changed:   changed,
	}, nil
}

// subjects returns the subjects of cfg with their defaults. A subject is one
// line: go-mail would encode a line break, but it is a mistake all the same.
func subjects(cfg Config) (subject, changed string, err error) {
	subject, changed = cfg.Subject, cfg.ChangedSubject
	if subject == "" {
		subject = defaultSubject
	}
	if changed == "" {
		changed = defaultChangedSubject
	}
	for _, s := range []string{subject, changed} {
		if strings.ContainsFunc(s, unicode.IsControl) {
			return "", "", errors.New("subject: must be one line without control characters")
		}
	}
	return subject, changed, nil
}

// Reset is one reset mail to send.
type Reset struct {
	// To is the user's address from the hub: one bare address.
	To string
	// Username is the login name the reset is for.
	Username string
	// DisplayName is the user's name from the hub, used in the greeting
	// when not empty.
	DisplayName string
	// Link opens the reset page; it must be an absolute http(s) URL.
	Link string
	// Token is the reset token, shown on a line of its own for API users.
	Token string
	// Expires is when the link and the token stop working.
	Expires time.Time
	// CancelLink opens the reset page at the question whether to cancel
	// the request, for a reset the user did not ask for. Optional.
	CancelLink string
	// RequestedAt is when the reset was asked for, and RequestedFrom the
	// client address it was asked from. Optional.
	RequestedAt   time.Time
	RequestedFrom string
	// Location is the user's time zone for showing times. Default: UTC.
	Location *time.Location
}

// Changed is the notice that a user's password was changed.
type Changed struct {
	// To is the user's address from the hub: one bare address.
	To string
	// Username is the login name whose password changed.
	Username string
	// DisplayName is the user's name from the hub, used in the greeting
	// when not empty.
	DisplayName string
	// At is when the password was changed, and From the client address
	// that changed it.
	At   time.Time
	From string
	// LoginLink is the Mission Portal sign-in page.
	LoginLink string
	// Location is the user's time zone for showing At. Default: UTC.
	Location *time.Location
}

// SendReset renders the reset mail for r and sends it to r.To, and to no one
// else. It returns an error wrapping ErrBadRecipient, without connecting,
// when r.To is not one plain address.
func (m *Mailer) SendReset(ctx context.Context, r Reset) error {
	msg, err := m.resetMessage(r)
	if err != nil {
		return fmt.Errorf("sending reset mail: %w", err)
	}
	if err := m.send(ctx, msg); err != nil {
		return fmt.Errorf("sending reset mail: %w", err)
	}
	return nil
}

// SendChanged renders the notice for c and sends it to c.To, and to no one
// else, as SendReset does.
func (m *Mailer) SendChanged(ctx context.Context, c Changed) error {
	msg, err := m.changedMessage(c)
	if err != nil {
		return fmt.Errorf("sending change notice: %w", err)
	}
	if err := m.send(ctx, msg); err != nil {
		return fmt.Errorf("sending change notice: %w", err)
	}
	return nil
}

func (m *Mailer) send(ctx context.Context, msg *gomail.Msg) error {
	client, release, err := m.client()
	if err != nil {
		return err
	}
	defer release()
	// go-mail heeds ctx only while dialing; closing the connection makes
	// a cancelled send give up whatever exchange it waits in
	defer context.AfterFunc(ctx, release)()
	return client.DialAndSendWithContext(ctx, msg)
}

// Ping connects to the server, does STARTTLS and AUTH as configured, and
// quits without sending anything.
func (m *Mailer) Ping(ctx context.Context) error {
	client, release, err := m.client()
	if err != nil {
		return fmt.Errorf("checking smtp server: %w", err)
	}
	defer release()
	conn, err := client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("checking smtp server: %w", err)
	}
	if err := client.CloseWithSMTPClient(conn); err != nil {
		return fmt.Errorf("checking smtp server: %w", err)
	}
	return nil
}

// resetMessage builds the mail for r, checking r first.
func (m *Mailer) resetMessage(r Reset) (*gomail.Msg, error) {
	to, err := parseRecipient(r.To)
	if err != nil {
		return nil, err
	}
	if err := checkReset(r); err != nil {
		return nil, err
	}
	text, html, err := m.templates.render(true, resetData(r))
	if err != nil {
		return nil, err
	}
	return m.message(to, m.subject, text, html)
}

// changedMessage builds the notice for c, checking c first.
func (m *Mailer) changedMessage(c Changed) (*gomail.Msg, error) {
	to, err := parseRecipient(c.To)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.TrimSpace(c.Username) == "":
		return nil, errors.New("notice has no username")
	case c.At.IsZero():
		return nil, errors.New("notice has no time")
	case c.LoginLink != "" && !isWebLink(c.LoginLink):
		return nil, errors.New("notice's sign-in link is not an absolute http or https url")
	}
	text, html, err := m.templates.render(false, changedData(c))
	if err != nil {
		return nil, err
	}
	return m.message(to, m.changed, text, html)
}

// message puts a mail together: one recipient, a fresh Message-ID, the
// date, and the headers that keep auto-responders quiet.
func (m *Mailer) message(to, subject, text, html string) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(m.from)
	// go-mail parses the address again; it must agree that it is one
	if err := msg.To(to); err != nil || len(msg.GetTo()) != 1 {
		return nil, ErrBadRecipient
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(rand.Text() + "@" + m.idDomain)
	msg.SetDate()
	// RFC 3834: keeps vacation responders and the like from answering
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	msg.SetBodyString(gomail.TypeTextPlain, text)
	msg.AddAlternativeString(gomail.TypeTextHTML, html)
	return msg, nil
}

// client returns a go-mail client for one call and a release func that
// closes the call's connection. go-mail leaves the connection open when
// the greeting, STARTTLS or AUTH fails, and a worker that retries for hours
// must not leak one per attempt.
func (m *Mailer) client() (*gomail.Client, func(), error) {
	var (
		mu   sync.Mutex
		conn net.Conn
	)
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		c, err := m.dial(ctx)
		mu.Lock()
		conn = c
		mu.Unlock()
		return c, err
	}
	// release may run twice, and from another goroutine than the dial
	release := func() {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	}

	policy := gomail.NoTLS
	if m.mode == modeStartTLS {
		policy = gomail.TLSMandatory
	}
	opts := []gomail.Option{
		gomail.WithPort(m.port),
		gomail.WithTimeout(m.timeout),
		gomail.WithTLSPolicy(policy),
		gomail.WithTLSConfig(m.tlsConfig),
		gomail.WithDialContextFunc(dial),
	}
	if m.username != "" {
		// PLAIN and LOGIN refuse to run in cleartext except to localhost,
		// and New refused "none" with a password to anything else
		opts = append(opts,
			gomail.WithUsername(m.username),
			gomail.WithPassword(m.password),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
	}
	client, err := gomail.NewClient(m.host, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("configuring smtp client: %w", err)
	}
	return client, release, nil
}

// dial connects to the server, doing the TLS handshake in implicit mode.
// go-mail's own address is not used: it joins host and port with a bare
// colon, which breaks IPv6 literals.
func (m *Mailer) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil || m.mode != modeImplicit {
		return conn, err
	}
	tlsConn := tls.Client(conn, m.tlsConfig)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tlsConn, nil
}

// splitServer splits host:port and checks both.
func splitServer(server string) (string, int, error) {
	host, portText, err := net.SplitHostPort(server)
	if err != nil || host == "" {
		return "", 0, fmt.Errorf("want host:port, got %q", server)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number from 1 to 65535", portText)
	}
	return host, port, nil
}

// parseFrom parses the sender: exactly one address, display name allowed.
func parseFrom(from string) (*mail.Address, error) {
	if strings.ContainsAny(from, "\r\n\x00") {
		return nil, errors.New("contains a line break or NUL")
	}
	addr, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("want one address like %q: %w",
			"Mission Portal <noreply@example.com>", err)
	}
	return addr, nil
}

// parseRecipient accepts exactly one bare addr-spec. The address comes from
// the hub, where users may be able to edit it, so anything that could add a
// second recipient or a header is refused rather than repaired.
func parseRecipient(to string) (string, error) {
	to = strings.TrimSpace(to)
	if to == "" || strings.ContainsAny(to, "\r\n\x00,;<>\"") ||
		strings.ContainsFunc(to, isSpaceOrControl) {
		return "", ErrBadRecipient
	}
	addr, err := mail.ParseAddress(to)
	// a parsed address that differs from the input had a comment or a name
	if err != nil || addr.Name != "" || addr.Address != to {
		return "", ErrBadRecipient
	}
	return addr.Address, nil
}

// checkReset checks the parts of r that the mail cannot do without. The
// errors never quote the token or the link.
func checkReset(r Reset) error {
	switch {
	case strings.TrimSpace(r.Username) == "":
		return errors.New("reset has no username")
	case r.Expires.IsZero():
		return errors.New("reset has no expiry")
	case r.Token == "" || strings.ContainsFunc(r.Token, isSpaceOrControl):
		return errors.New("reset token is empty or holds spaces or control characters")
	case !isWebLink(r.Link):
		return errors.New("reset link is not an absolute http or https url")
	case r.CancelLink != "" && !isWebLink(r.CancelLink):
		return errors.New("cancel link is not an absolute http or https url")
	}
	return nil
}

func isWebLink(link string) bool {
	if strings.ContainsFunc(link, isSpaceOrControl) {
		return false
	}
	u, err := url.Parse(link)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

func isSpaceOrControl(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r)
}

// isLocalhost matches the hosts to which go-mail lets PLAIN and LOGIN send a
// password without TLS.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
