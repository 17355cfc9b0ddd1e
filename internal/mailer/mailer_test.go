package mailer_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"html"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Oslo and friends, even on hosts without zoneinfo

	"github.com/mpgate/password-reset/internal/mailcatch"
	"github.com/mpgate/password-reset/internal/mailer"
)

const (
	token = "q3J5bS1kZW1vLXRva2VuLW5vdC1yZWFsLTAxMjM0NTY"
	link  = "https://hub.example.com/password-reset?token=" + token
)

func location(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func sampleReset(t *testing.T) mailer.Reset {
	return mailer.Reset{
		To:          "alice@example.com",
		Username:    "alice",
		DisplayName: "Alice Example",
		Link:        link,
		Token:       token,
		Expires:     time.Date(2026, 12, 5, 20, 4, 0, 0, time.UTC),
		Location:    location(t, "Europe/Oslo"),
	}
}

func startCatcher(t *testing.T, opts mailcatch.Options) *mailcatch.Server {
	t.Helper()
	s, err := mailcatch.Start(opts)
	if err != nil {
		t.Fatalf("mailcatch.Start = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// plainConfig is a Config that sends to s in cleartext.
func plainConfig(s *mailcatch.Server) mailer.Config {
	return mailer.Config{
		Server:  s.Addr(),
		From:    "Mission Portal <noreply@example.com>",
		TLS:     "none",
		Timeout: 5 * time.Second,
	}
}

func newMailer(t *testing.T, cfg mailer.Config) *mailer.Mailer {
	t.Helper()
	m, err := mailer.New(cfg)
	if err != nil {
		t.Fatalf("New(%+v) = %v, want nil", cfg, err)
	}
	return m
}

// testTLS returns a server config with httptest's certificate for
// 127.0.0.1 and a client config that trusts it.
func testTLS(t *testing.T) (server, client *tls.Config) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(ts.Close)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	server = ts.TLS.Clone()
	server.NextProtos = nil
	return server, &tls.Config{RootCAs: pool}
}

// caught is a received reset mail taken apart.
type caught struct {
	header mail.Header
	text   string // decoded, with \n line ends
	html   string // decoded and HTML-unescaped
}

func parseCaught(t *testing.T, data []byte) caught {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("mail.ReadMessage = %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q, %v, want multipart/alternative",
			msg.Header.Get("Content-Type"), err)
	}
	c := caught{header: msg.Header}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart() // undoes quoted-printable
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading parts: %v", err)
		}
		body, err := io.ReadAll(part)
		if err != nil {
			t.Fatalf("reading part: %v", err)
		}
		switch ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type")); ct {
		case "text/plain":
			c.text = strings.ReplaceAll(string(body), "\r\n", "\n")
		case "text/html":
			c.html = html.UnescapeString(string(body))
		}
	}
	if c.text == "" || c.html == "" {
		t.Fatalf("text part %d bytes, html part %d bytes, want both", len(c.text), len(c.html))
	}
	return c
}

// sendAndCatch sends r through a fresh catcher and returns what arrived.
func sendAndCatch(t *testing.T, r mailer.Reset) (mailcatch.Message, caught) {
	t.Helper()
	s := startCatcher(t, mailcatch.Options{})
	if err := newMailer(t, plainConfig(s)).SendReset(t.Context(), r); err != nil {
		t.Fatalf("SendReset = %v, want nil", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	msgs, err := s.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("Wait(1) = %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("caught %d messages, want 1", len(msgs))
	}
	return msgs[0], parseCaught(t, msgs[0].Data)
}

func TestSendReset(t *testing.T) {
	env, c := sendAndCatch(t, sampleReset(t))
	to, err := c.header.AddressList("To")
	if err != nil {
		t.Fatalf("To header: %v", err)
	}
	date, err := c.header.Date()
	if err != nil || time.Since(date) > time.Hour {
		t.Errorf("Date = %q, %v, want the time of sending", c.header.Get("Date"), err)
	}

	equal := []struct {
		name, got, want string
	}{
		{"the envelope has one recipient", strings.Join(env.To, ","), "alice@example.com"},
		{"the envelope sender is the from address", env.From, "noreply@example.com"},
		{"the to header has one address", addresses(to), "alice@example.com"},
		{"there is no cc", c.header.Get("Cc") + c.header.Get("Bcc"), ""},
		{"the from header", c.header.Get("From"), `"Mission Portal" <noreply@example.com>`},
		{"the subject", c.header.Get("Subject"), "Reset your Mission Portal password"},
		{"it is marked automatic", c.header.Get("Auto-Submitted"), "auto-generated"},
	}
	for _, tt := range equal {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	t.Run("the message id is on the sender's domain", func(t *testing.T) {
		id := c.header.Get("Message-ID")
		if !regexp.MustCompile(`^<[A-Za-z0-9]{20,}@example\.com>$`).MatchString(id) {
			t.Errorf("Message-ID = %q, want <random@example.com>", id)
		}
	})
	t.Run("the token is on a line of its own in the text", func(t *testing.T) {
		if !slices.Contains(strings.Split(c.text, "\n"), token) {
			t.Errorf("text part has no line that is just the token:\n%s", c.text)
		}
	})
	t.Run("the account is named", func(t *testing.T) {
		if !strings.Contains(c.text, `"alice"`) || !strings.Contains(c.html, ">alice<") {
			t.Errorf("text or html part lacks the username:\n%s\n%s", c.text, c.html)
		}
	})
}

func addresses(list []*mail.Address) string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = a.Address
	}
	return strings.Join(out, ",")
}

func TestBody(t *testing.T) {
	newYork := location(t, "America/New_York")
	summer := time.Date(2026, 7, 4, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		name   string
		change func(*mailer.Reset)
		want   string // in both parts
	}{
		{"the greeting uses the display name", func(*mailer.Reset) {}, "Hello Alice Example,"},
		{"the link is there", func(*mailer.Reset) {}, link},
		{"the token is there", func(*mailer.Reset) {}, token},
		{"the api call is explained", func(*mailer.Reset) {}, "/api/auth/password/reset/TOKEN"},
		{"the expiry is in the user's zone", func(*mailer.Reset) {},
			"Saturday, 5 December 2026 at 21:04 CET (Europe/Oslo)"},
		{"it says what to do when it was not them", func(*mailer.Reset) {},
			"ignore this mail"},
		{"no display name greets the username", func(r *mailer.Reset) { r.DisplayName = "" },
			"Hello alice,"},
		{"a blank display name greets the username", func(r *mailer.Reset) {
			r.DisplayName = " \t "
		}, "Hello alice,"},
		{"line breaks in the display name are flattened", func(r *mailer.Reset) {
			r.DisplayName = "Alice\r\nClick evil.example\u202e"
		}, "Hello Alice Click evil.example,"},
		{"summer time is named", func(r *mailer.Reset) { r.Expires = summer },
			"Saturday, 4 July 2026 at 10:30 CEST (Europe/Oslo)"},
		{"no location means utc", func(r *mailer.Reset) { r.Location = nil },
			"Saturday, 5 December 2026 at 20:04 UTC"},
		{"another zone", func(r *mailer.Reset) { r.Location = newYork },
			"Saturday, 5 December 2026 at 15:04 EST (America/New_York)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleReset(t)
			tt.change(&r)
			_, c := sendAndCatch(t, r)
			for part, body := range map[string]string{"text": c.text, "html": c.html} {
				if !strings.Contains(body, tt.want) {
					t.Errorf("%s part lacks %q:\n%s", part, tt.want, body)
				}
			}
		})
	}
}

func TestBadRecipient(t *testing.T) {
	s := startCatcher(t, mailcatch.Options{})
	m := newMailer(t, plainConfig(s))
	for _, to := range []string{
		"", "   ", "alice", "alice@", "alice@example.com>", "<alice@example.com>",
		"alice@example.com, bob@example.com", "alice@example.com,bob@example.com",
		"alice@example.com;bob@example.com", "alice@example.com bob@example.com",
		"Alice <alice@example.com>", "bob@example.com <alice@example.com>",
		"alice@example.com\r\nBcc: bob@example.com", "alice@example.com\nBcc: bob@example.com",
		"alice@example.com\x00bob@example.com", "alice@example.com\tbob@example.com",
		`"alice,bob"@example.com`, "alice@example.com (Alice)", "alice(x)@example.com",
		"team: alice@example.com, bob@example.com;",
	} {
		t.Run(strings.ReplaceAll(to, "\n", `\n`), func(t *testing.T) {
			r := sampleReset(t)
			r.To = to
			if err := m.SendReset(t.Context(), r); !errors.Is(err, mailer.ErrBadRecipient) {
				t.Errorf("SendReset(To: %q) = %v, want ErrBadRecipient", to, err)
			}
		})
	}
	if got := len(s.Messages()); got != 0 {
		t.Errorf("caught %d messages, want 0", got)
	}
}

func TestNew(t *testing.T) {
	ok := mailer.Config{Server: "smtp.example.com:587", From: "noreply@example.com"}
	tests := []struct {
		name   string
		change func(*mailer.Config)
		want   string // error prefix; empty for success
	}{
		{"defaults are fine", func(*mailer.Config) {}, ""},
		{"an ipv6 server is fine", func(c *mailer.Config) { c.Server = "[2001:db8::25]:25" }, ""},
		{"implicit with credentials is fine", func(c *mailer.Config) {
			c.TLS, c.Username, c.Password = "implicit", "robot", "pw"
		}, ""},
		{"none with credentials to loopback is fine", func(c *mailer.Config) {
			c.Server, c.TLS, c.Username, c.Password = "127.0.0.1:25", "none", "robot", "pw"
		}, ""},
		{"a server without port", func(c *mailer.Config) { c.Server = "smtp" }, "smtp server: "},
		{"a server without host", func(c *mailer.Config) { c.Server = ":25" }, "smtp server: "},
		{"a port out of range", func(c *mailer.Config) { c.Server = "smtp:0" }, "smtp server: "},
		{"a named port", func(c *mailer.Config) { c.Server = "smtp:smtp" }, "smtp server: "},
		{"an empty from", func(c *mailer.Config) { c.From = "" }, "smtp from: "},
		{"two senders", func(c *mailer.Config) { c.From = "a@x.org, b@x.org" }, "smtp from: "},
		{"a header in from", func(c *mailer.Config) { c.From = "a@x.org\nBcc: b@x" }, "smtp from: "},
		{"an unknown tls mode", func(c *mailer.Config) { c.TLS = "x" },
			`smtp tls: unknown mode "x" (want starttls, implicit or none)`},
		{"a username alone", func(c *mailer.Config) { c.Username = "robot" }, "smtp password: "},
		{"a password alone", func(c *mailer.Config) { c.Password = "pw" }, "smtp username: "},
		{"a password in cleartext to a remote server", func(c *mailer.Config) {
			c.TLS, c.Username, c.Password = "none", "robot", "pw"
		}, "smtp tls: "},
		{"a negative timeout", func(c *mailer.Config) { c.Timeout = -time.Second },
			"smtp timeout: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			_, err := mailer.New(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("New(%+v) = %v, want nil", cfg, err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("New(%+v) = %v, want an error starting %q", cfg, err, tt.want)
			}
		})
	}
}

func TestTransport(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	plain := startCatcher(t, mailcatch.Options{})
	withTLS := startCatcher(t, mailcatch.Options{TLSConfig: serverTLS})
	const user, pass, wrong = "robot", "s3cret", "wrong-pass"
	plainAuth := startCatcher(t, mailcatch.Options{Username: user, Password: pass})
	tlsAuth := startCatcher(t, mailcatch.Options{
		TLSConfig: serverTLS, Username: user, Password: pass})

	tests := []struct {
		name       string
		server     *mailcatch.Server
		mode       string
		trust      *tls.Config
		user, pass string
		ok         bool
		pingOK     bool // Ping only checks what is configured, so may pass where sending fails
	}{
		{"none against a plain server works", plain, "none", nil, "", "", true, true},
		{"starttls against a plain server fails", plain, "starttls", nil, "", "", false, false},
		{"the default mode requires starttls", plain, "", nil, "", "", false, false},
		{"implicit against a plain server fails", plain, "implicit", nil, "", "", false, false},
		{"starttls with a trusted certificate works", withTLS, "starttls", clientTLS, "", "",
			true, true},
		{"starttls with an untrusted certificate fails", withTLS, "starttls", nil, "", "",
			false, false},
		{"auth on loopback works", plainAuth, "none", nil, user, pass, true, true},
		{"auth with a wrong password fails", plainAuth, "none", nil, user, wrong, false, false},
		{"sending without auth where it is required fails", plainAuth, "none", nil, "", "",
			false, true},
		{"auth after starttls works", tlsAuth, "starttls", clientTLS, user, pass, true, true},
		{"auth after starttls with a wrong password fails", tlsAuth, "starttls", clientTLS,
			user, wrong, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := plainConfig(tt.server)
			cfg.TLS, cfg.TLSConfig, cfg.Username, cfg.Password = tt.mode, tt.trust, tt.user, tt.pass
			m := newMailer(t, cfg)
			before := len(tt.server.Messages())

			pingErr := m.Ping(t.Context())
			sendErr := m.SendReset(t.Context(), sampleReset(t))
			if (pingErr == nil) != tt.pingOK {
				t.Errorf("Ping = %v, want ok %v", pingErr, tt.pingOK)
			}
			if (sendErr == nil) != tt.ok {
				t.Errorf("SendReset = %v, want ok %v", sendErr, tt.ok)
			}
			want := before
			if tt.ok {
				want++
			}
			if got := len(tt.server.Messages()); got != want {
				t.Errorf("caught %d messages after Ping and SendReset, want %d", got, want)
			}
			for _, err := range []error{pingErr, sendErr} {
				if err != nil && strings.Contains(err.Error(), wrong) {
					t.Errorf("error %q holds the password", err)
				}
			}
		})
	}
}

func TestErrorsHoldNoSecrets(t *testing.T) {
	gone := startCatcher(t, mailcatch.Options{})
	closed := plainConfig(gone)
	if err := gone.Close(); err != nil {
		t.Fatal(err)
	}
	live := plainConfig(startCatcher(t, mailcatch.Options{}))

	tests := []struct {
		name   string
		cfg    mailer.Config
		change func(*mailer.Reset)
	}{
		{"an unreachable server", closed, func(*mailer.Reset) {}},
		{"a link that is not http", live, func(r *mailer.Reset) {
			r.Link = "javascript:alert('" + token + "')"
		}},
		{"a token with a line break", live, func(r *mailer.Reset) { r.Token += "\n" + token }},
		{"no username", live, func(r *mailer.Reset) { r.Username = "" }},
		{"no expiry", live, func(r *mailer.Reset) { r.Expires = time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sampleReset(t)
			tt.change(&r)
			err := newMailer(t, tt.cfg).SendReset(t.Context(), r)
			if err == nil {
				t.Fatal("SendReset = nil, want an error")
			}
			if errors.Is(err, mailer.ErrBadRecipient) {
				t.Errorf("SendReset = %v, want an error other than ErrBadRecipient", err)
			}
			if msg := err.Error(); strings.Contains(msg, token) || strings.Contains(msg, "hub.") {
				t.Errorf("SendReset = %q, want no token or link in it", msg)
			}
		})
	}
}
