package mailer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/mailcatch"
	"github.com/mpgate/password-reset/internal/mailer"
)

func sampleChanged(t *testing.T) mailer.Changed {
	return mailer.Changed{
		To:          "alice@example.com",
		Username:    "alice",
		DisplayName: "Alice Example",
		At:          time.Date(2026, 12, 3, 20, 14, 0, 0, time.UTC),
		From:        "192.0.2.7",
		LoginLink:   "https://hub.example.com/",
		Location:    location(t, "Europe/Oslo"),
	}
}

// catchOne waits for the one mail send delivers to a fresh catcher.
func catchOne(t *testing.T, cfg func(*mailer.Config), send func(*mailer.Mailer) error) caught {
	t.Helper()
	s := startCatcher(t, mailcatch.Options{})
	c := plainConfig(s)
	if cfg != nil {
		cfg(&c)
	}
	if err := send(newMailer(t, c)); err != nil {
		t.Fatalf("send = %v, want nil", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	msgs, err := s.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("Wait(1) = %v", err)
	}
	if len(msgs) != 1 || len(msgs[0].To) != 1 || msgs[0].To[0] != "alice@example.com" {
		t.Fatalf("caught %+v, want one mail to alice@example.com", msgs)
	}
	return parseCaught(t, msgs[0].Data)
}

func wantInBoth(t *testing.T, c caught, wants ...string) {
	t.Helper()
	for _, want := range wants {
		for part, body := range map[string]string{"text": c.text, "html": c.html} {
			if !strings.Contains(strings.Join(strings.Fields(body), " "), want) {
				t.Errorf("%s part lacks %q:\n%s", part, want, body)
			}
		}
	}
}

func TestResetSaysWhenAndWhereFromAndHowToCancel(t *testing.T) {
	r := sampleReset(t)
	r.RequestedAt = time.Date(2026, 12, 3, 20, 4, 0, 0, time.UTC)
	r.RequestedFrom = "2001:db8::1\r\nBcc: x@evil.example"
	r.CancelLink = link + "?cancel"
	c := catchOne(t, nil, func(m *mailer.Mailer) error { return m.SendReset(t.Context(), r) })
	wantInBoth(t, c, "on Thursday, 3 December 2026 at 21:04 CET (Europe/Oslo)",
		"from the address 2001:db8::1 Bcc: x@evil.example", r.CancelLink)
	if c.header.Get("Bcc") != "" {
		t.Error("the client address added a header")
	}
}

func TestChangedNotice(t *testing.T) {
	n := sampleChanged(t)
	c := catchOne(t, nil, func(m *mailer.Mailer) error { return m.SendChanged(t.Context(), n) })
	wantInBoth(t, c, "Hello Alice Example,", "alice",
		"changed on Thursday, 3 December 2026 at 21:14 CET (Europe/Oslo)",
		"from the address 192.0.2.7", n.LoginLink, "tell your Mission Portal administrator")
	for name, want := range map[string]string{
		"Subject":        "Your Mission Portal password was changed",
		"Auto-Submitted": "auto-generated",
	} {
		if got := c.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if c.header.Get("Message-ID") == "" || c.header.Get("Date") == "" {
		t.Error("the notice lacks a Message-ID or a Date")
	}
	for _, body := range []string{c.text, c.html} {
		if strings.Contains(body, "/password-reset/") {
			t.Error("the notice holds a reset link")
		}
	}
}

func TestChangedNoticeRefusals(t *testing.T) {
	s := startCatcher(t, mailcatch.Options{})
	m := newMailer(t, plainConfig(s))
	for name, change := range map[string]func(*mailer.Changed){
		"two recipients":   func(n *mailer.Changed) { n.To = "alice@example.com, eve@example.com" },
		"no username":      func(n *mailer.Changed) { n.Username = " " },
		"no time":          func(n *mailer.Changed) { n.At = time.Time{} },
		"a javascript URL": func(n *mailer.Changed) { n.LoginLink = "javascript:alert(1)" },
	} {
		n := sampleChanged(t)
		change(&n)
		if err := m.SendChanged(t.Context(), n); err == nil {
			t.Errorf("%s: SendChanged = nil, want an error", name)
		}
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d mails went out, want none", n)
	}
}

func TestTemplatesAndSubjectsFromTheConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("reset.txt.tmpl", "Hei {{.Name}}! Lenke: {{.Link}} Kode: {{.Token}} Til: {{.Expires}}\n")
	write("changed.html.tmpl", "<p>Endret for {{.Username}} {{.ChangedAt}}</p>\n")
	cfg := func(c *mailer.Config) {
		c.Templates = dir
		c.Subject = "Tilbakestill passordet"
		c.ChangedSubject = "Passordet er endret"
	}
	r := sampleReset(t)
	c := catchOne(t, cfg, func(m *mailer.Mailer) error { return m.SendReset(t.Context(), r) })
	if !strings.HasPrefix(c.text, "Hei Alice Example! Lenke: "+link) {
		t.Errorf("text part = %q, want the template from the directory", c.text)
	}
	if !strings.Contains(c.html, "Choose a new password") {
		t.Error("the html part is not the built-in one, though the directory has none")
	}
	if got := c.header.Get("Subject"); got != "Tilbakestill passordet" {
		t.Errorf("Subject = %q", got)
	}
	n := sampleChanged(t)
	c = catchOne(t, cfg, func(m *mailer.Mailer) error { return m.SendChanged(t.Context(), n) })
	if !strings.Contains(c.html, "Endret for alice Thursday, 3 December 2026") {
		t.Errorf("html part = %q, want the template from the directory", c.html)
	}
	if got := c.header.Get("Subject"); got != "Passordet er endret" {
		t.Errorf("Subject = %q", got)
	}
}

func TestBadTemplatesFailAtNew(t *testing.T) {
	tests := map[string]struct{ file, text string }{
		"a syntax error":     {"reset.html.tmpl", "<p>{{.Link</p>"},
		"an unknown field":   {"reset.txt.tmpl", "{{.Password}}"},
		"in the notice, too": {"changed.txt.tmpl", "{{.Nonsense}}"},
	}
	for name, tt := range tests {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := mailer.New(mailer.Config{Server: "127.0.0.1:25", From: "a@example.com",
			TLS: "none", Templates: dir})
		if err == nil || !strings.HasPrefix(err.Error(), "templates: ") ||
			!strings.Contains(err.Error(), tt.file) {
			t.Errorf("%s: New = %v, want a templates error naming %s", name, err, tt.file)
		}
	}
	_, err := mailer.New(mailer.Config{Server: "127.0.0.1:25", From: "a@example.com",
		TLS: "none", Subject: "Reset\r\nBcc: eve@example.com"})
	if err == nil || !strings.HasPrefix(err.Error(), "subject: ") {
		t.Errorf("New with a two-line subject = %v, want a subject error", err)
	}
}
