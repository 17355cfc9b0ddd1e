package mailer

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

//go:embed templates/*.tmpl
var builtinFS embed.FS

// The template files. A directory named in Config.Templates may hold any of
// them; the ones it lacks are the built-in ones.
const (
	resetText   = "reset.txt.tmpl"
	resetHTML   = "reset.html.tmpl"
	changedText = "changed.txt.tmpl"
	changedHTML = "changed.html.tmpl"
)

// templates are the parsed bodies of both mails.
type templates struct {
	resetText, changedText *texttemplate.Template
	resetHTML, changedHTML *htmltemplate.Template
}

// loadTemplates parses the built-in templates, each replaced by the file of
// the same name in dir when dir is set and has one, and renders each once
// with sample data, so that a template naming a field that does not exist
// fails here, when Caddy loads the config, rather than at the first mail.
func loadTemplates(dir string) (*templates, error) {
	read := func(name string) (string, error) {
		if dir != "" {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err == nil {
				return string(b), nil
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return "", fmt.Errorf("templates: %w", err)
			}
		}
		b, err := builtinFS.ReadFile("templates/" + name)
		return string(b), err
	}
	if dir != "" {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("templates: %s is not a directory", dir)
		}
	}
	var t templates
	for _, name := range []string{resetText, changedText} {
		src, err := read(name)
		if err != nil {
			return nil, err
		}
		tt, err := texttemplate.New(name).Parse(src)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if name == resetText {
			t.resetText = tt
		} else {
			t.changedText = tt
		}
	}
	for _, name := range []string{resetHTML, changedHTML} {
		src, err := read(name)
		if err != nil {
			return nil, err
		}
		ht, err := htmltemplate.New(name).Parse(src)
		if err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if name == resetHTML {
			t.resetHTML = ht
		} else {
			t.changedHTML = ht
		}
	}
	if _, _, err := t.render(true, sampleData); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if _, _, err := t.render(false, sampleData); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	return &t, nil
}

// sampleData tries the templates out when they are loaded.
var sampleData = mailData{
	Name: "Sample User", Username: "sample", Link: "https://hub.example.com/password-reset/x",
	CancelLink: "https://hub.example.com/password-reset/x?cancel", Token: "x",
	Expires: "Saturday, 5 December 2026 at 21:04 UTC", RequestedAt: "Thursday, 3 December 2026 at 21:04 UTC",
	RequestedFrom: "192.0.2.1", ChangedAt: "Thursday, 3 December 2026 at 21:14 UTC",
	LoginLink: "https://hub.example.com/",
}

// timeLayout writes an instant as people read it, e.g.
// "Saturday, 5 December 2026 at 21:04 CET".
const timeLayout = "Monday, 2 January 2006 at 15:04 MST"

// maxNameRunes bounds the display name in the greeting.
const maxNameRunes = 80

// mailData is what the templates see: display-ready text only. A field a
// mail has no use for is empty.
type mailData struct {
	// Name greets the user: the hub's display name, or else the username.
	Name     string
	Username string
	// Link opens the reset page; CancelLink opens it at the question
	// whether to cancel the request.
	Link, CancelLink string
	Token            string
	Expires          string
	// RequestedAt and RequestedFrom say when and from which client
	// address the reset was asked for.
	RequestedAt, RequestedFrom string
	// ChangedAt is when the password was changed; LoginLink is the
	// Mission Portal sign-in.
	ChangedAt, LoginLink string
}

func resetData(r Reset) mailData {
	return mailData{
		Name:          greeting(r.DisplayName, r.Username),
		Username:      displayText(r.Username, 0),
		Link:          r.Link,
		CancelLink:    r.CancelLink,
		Token:         r.Token,
		Expires:       formatTime(r.Expires, r.Location),
		RequestedAt:   formatTime(r.RequestedAt, r.Location),
		RequestedFrom: displayText(r.RequestedFrom, 64),
	}
}

func changedData(c Changed) mailData {
	return mailData{
		Name:          greeting(c.DisplayName, c.Username),
		Username:      displayText(c.Username, 0),
		ChangedAt:     formatTime(c.At, c.Location),
		RequestedFrom: displayText(c.From, 64),
		LoginLink:     c.LoginLink,
	}
}

func greeting(display, username string) string {
	if name := displayText(display, maxNameRunes); name != "" {
		return name
	}
	return displayText(username, 0)
}

// render renders the text and the HTML body of the reset mail or of the
// notice. Errors name the template only: the data holds the token and the
// link.
func (t *templates) render(reset bool, d mailData) (text, html string, err error) {
	tt, ht := t.changedText, t.changedHTML
	if reset {
		tt, ht = t.resetText, t.resetHTML
	}
	var tb, hb bytes.Buffer
	if err := tt.Execute(&tb, d); err != nil {
		return "", "", fmt.Errorf("rendering %s: %w", tt.Name(), scrub(err))
	}
	if err := ht.Execute(&hb, d); err != nil {
		return "", "", fmt.Errorf("rendering %s: %w", ht.Name(), scrub(err))
	}
	return tb.String(), hb.String(), nil
}

// scrub keeps a template's execution error to its first line, which names
// the template and the action at fault and never the data.
func scrub(err error) error {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return errors.New(msg)
}

// formatTime writes t in loc (UTC when nil), naming the zone as well when
// its name says more than the abbreviation. The zero time is "".
func formatTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	s := t.Format(timeLayout)
	abbrev, _ := t.Zone()
	// "Local" names no place the reader would recognise
	if name := loc.String(); name != abbrev && name != "Local" && name != "" {
		s += " (" + name + ")"
	}
	return s
}

// displayText makes s fit for one line of a mail: control characters, line
// and paragraph separators and bidirectional overrides (which could make the
// name rewrite the text around it) become spaces, white space collapses, and
// the result is cut to limit runes when limit > 0.
func displayText(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if runes := []rune(s); limit > 0 && len(runes) > limit {
		s = string(runes[:limit-1]) + "…"
	}
	return s
}
