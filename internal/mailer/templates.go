package mailer

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

//go:embed templates/reset.txt.tmpl templates/reset.html.tmpl
var templateFS embed.FS

// The templates are part of the binary, so a parse error is a build mistake
// that every test run catches.
var (
	textTemplate = texttemplate.Must(
		texttemplate.ParseFS(templateFS, "templates/reset.txt.tmpl"))
	htmlTemplate = htmltemplate.Must(
		htmltemplate.ParseFS(templateFS, "templates/reset.html.tmpl"))
)

// expiryLayout writes an instant as people read it, e.g.
// "Saturday, 5 December 2026 at 21:04 CET".
const expiryLayout = "Monday, 2 January 2006 at 15:04 MST"

// maxNameRunes bounds the display name in the greeting.
const maxNameRunes = 80

// mailData is what both templates see: display-ready text only.
type mailData struct {
	Name     string
	Username string
	Link     string
	Token    string
	Expires  string
}

func newMailData(r Reset) mailData {
	d := mailData{
		Name:     displayText(r.DisplayName, maxNameRunes),
		Username: displayText(r.Username, 0),
		Link:     r.Link,
		Token:    r.Token,
		Expires:  formatExpiry(r.Expires, r.Location),
	}
	if d.Name == "" {
		d.Name = d.Username
	}
	return d
}

// renderBodies renders the text and the HTML body of a reset mail. Errors
// name the template only: the data holds the token and the link.
func renderBodies(d mailData) (text, html string, err error) {
	var tb, hb bytes.Buffer
	if err := textTemplate.Execute(&tb, d); err != nil {
		return "", "", fmt.Errorf("rendering text body: %w", err)
	}
	if err := htmlTemplate.Execute(&hb, d); err != nil {
		return "", "", fmt.Errorf("rendering html body: %w", err)
	}
	return tb.String(), hb.String(), nil
}

// formatExpiry writes t in loc (UTC when nil), naming the zone as well when
// its name says more than the abbreviation.
func formatExpiry(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	s := t.Format(expiryLayout)
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
