package caddymodule

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/mpgate/password-reset/internal/hubsim"
	"github.com/mpgate/password-reset/internal/mailcatch"
)

// shotDir is where the browser tests write their screenshots, for the
// README.
const shotDir = "../docs"

// browser starts one headless Chromium for the whole test, or skips the
// test (fails it in CI) when Debian's chromium package is missing.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		const msg = "browser tests need Debian's chromium package: apt-get install -y chromium"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// the first run starts the browser, bound to ctx, which has no timeout
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// tab is one browser tab of a test, with or without JavaScript.
type tab struct {
	t   *testing.T
	ctx context.Context
	js  bool
}

// newTab opens a tab with a phone-sized viewport.
func newTab(t *testing.T, browser context.Context, js bool) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	// the first run opens the tab, bound to ctx: without a step's timeout
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	b := &tab{t: t, ctx: ctx, js: js}
	b.do(phone)
	if !js {
		b.call(func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled,
				emulation.SetScriptExecutionDisabledParams{Value: true})
			return err
		})
	}
	return b
}

// stepTimeout bounds each step, so that a page in an unexpected state
// fails the test at once.
const stepTimeout = 10 * time.Second

func (b *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v; the page says:\n%s", err, b.pageText())
	}
}

// pageText returns the text of the page, to tell what went wrong.
func (b *tab) pageText() string {
	s, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	return s
}

// in returns the tab for use in the subtest t.
func (b *tab) in(t *testing.T) *tab {
	c := *b
	c.t = t
	return &c
}

func (b *tab) call(f func(ctx context.Context) error) {
	b.t.Helper()
	if err := f(b.ctx); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// open loads a page and waits for the state the page should be in.
func (b *tab) open(url, state string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`main[data-state=`+state+`]`)))
}

// navigating runs an action that loads a new page, and waits for it.
func (b *tab) navigating(a chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, a)); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// text returns the text of the first element sel matches.
func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// has reports whether an element matches sel now.
func (b *tab) has(sel string) bool {
	b.t.Helper()
	nodes, err := chromedp.Run(b.ctx, chromedp.QueryNodeIDs(chromedp.CSS(sel),
		chromedp.AtLeast(0)))
	if err != nil {
		b.t.Fatalf("browser: query %s: %v", sel, err)
	}
	return len(nodes) > 0
}

// eval runs an expression in the page and returns its value.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: evaluating %s: %v", expr, err)
	}
	return v
}

// typeIn types text into a field; with JavaScript on, it empties the field
// first.
func (b *tab) typeIn(id, text string) {
	b.t.Helper()
	if b.js {
		eval[bool](b, `(e => { e.value = ""; e.dispatchEvent(new Event("input")); return true })`+
			`(document.getElementById("`+id+`"))`)
	}
	b.do(chromedp.SendKeys(chromedp.ID(id), text))
}

// shot writes a screenshot of the whole page into docs/ when it changed.
func (b *tab) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	writeShot(b.t, name, png)
}

// wideShot takes the screenshot in a desktop window, then goes back to the
// phone-sized one.
func (b *tab) wideShot(name string) {
	b.t.Helper()
	b.do(chromedp.EmulateViewport(760, 420))
	b.shot(name)
	b.do(phone)
}

// phone is the viewport of a phone held upright.
var phone = chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))

func writeShot(t *testing.T, name string, png []byte) {
	t.Helper()
	path := filepath.Join(shotDir, name)
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, png) {
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Errorf("writing screenshot: %v", err)
	}
}

// TestBrowser takes the reset page through a real Chromium: the link from
// a caught mail, two different entries, a weak password, a good one, and a
// cancelled request; with JavaScript on and with it off.
func TestBrowser(t *testing.T) {
	ctx := browser(t)
	s := newStack(t)
	// a fixed clock keeps the screenshot of the mail the same from run to run
	clock := fakeClock(t, time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC))
	mails := 0
	link := func() string {
		t.Helper()
		if mails > 0 {
			// a request made at the instant of a reset would count as
			// made before it, and be dropped
			clock.advance(time.Minute)
		}
		mails++
		l, _ := tokenOf(t, s.forgot("admin", mails))
		return l
	}

	t.Run("with JavaScript", func(t *testing.T) {
		b := newTab(t, ctx, true)
		url := link()
		setPasswordWithScript(t, s, b, url)
		cancelRequest(t, b, link(), true)
	})
	t.Run("without JavaScript", func(t *testing.T) {
		b := newTab(t, ctx, false)
		setPasswordWithoutScript(t, s, b, link())
		cancelRequest(t, b, link(), false)
	})
	t.Run("the mail", func(t *testing.T) {
		shootMail(t, ctx, s, s.mail.Messages()[0])
	})
}

// setPasswordWithScript checks the form with its script: live hints, the
// checks before submitting, and the hub's refusal all the same.
func setPasswordWithScript(t *testing.T, s *stack, b *tab, url string) {
	b.open(url, "form")
	b.do(chromedp.WaitVisible(chromedp.CSS(`html[data-js=on] .show`)))
	rules := b.text("#rules")
	if !strings.Contains(rules, "At least 8 characters") ||
		!strings.Contains(rules, "At least 2 of: lowercase letters") {
		t.Errorf("policy hints = %q, want the stand-in's length 8 and complexity 2", rules)
	}
	b.shot("page-form.png")

	// the keyboard goes through the form in reading order
	want := []string{"password", "confirm", "show", "submit", "cancel"}
	var got []string
	for i := range want {
		if i > 0 {
			b.do(chromedp.KeyEvent("\t"))
		}
		got = append(got, eval[string](b, `(e => e.id || (e.type === "submit" ? "submit" : `+
			`e.getAttribute("href") === "?cancel" ? "cancel" : e.tagName))(document.activeElement)`))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("focus order = %v, want %v", got, want)
	}

	setsBefore := len(s.hubCalls())
	t.Run("two different entries", func(t *testing.T) {
		b := b.in(t)
		b.typeIn("password", "N3w-pass-word")
		b.typeIn("confirm", "N3w-pass-wort")
		if m := b.text("#match"); !strings.Contains(m, "do not match") {
			t.Errorf("live match hint = %q, want it to say they do not match", m)
		}
		b.do(chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("confirm-error")))
		if msg := b.text("#confirm-error"); !strings.Contains(msg, "do not match") {
			t.Errorf("error under the second entry = %q, want do not match", msg)
		}
		if id := eval[string](b, `document.activeElement.id`); id != "confirm" {
			t.Errorf("focus after the error = %q, want confirm", id)
		}
		if v := eval[string](b, `document.getElementById("confirm").getAttribute("aria-invalid")`); v != "true" {
			t.Errorf("confirm aria-invalid = %q, want true", v)
		}
		b.shot("page-mismatch.png")
	})
	t.Run("show the passwords", func(t *testing.T) {
		b := b.in(t)
		b.do(chromedp.Click(chromedp.ID("show")))
		if typ := eval[string](b, `document.getElementById("password").type`); typ != "text" {
			t.Errorf("password type with show on = %q, want text", typ)
		}
		b.do(chromedp.Click(chromedp.ID("show")))
		if typ := eval[string](b, `document.getElementById("confirm").type`); typ != "password" {
			t.Errorf("confirm type with show off = %q, want password", typ)
		}
	})
	t.Run("a password the policy refuses", func(t *testing.T) {
		b := b.in(t)
		b.typeIn("password", "weak")
		b.typeIn("confirm", "weak")
		b.do(chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("password-error")))
		if msg := b.text("#password-error"); !strings.Contains(msg, "at least 8 characters") {
			t.Errorf("error under the password = %q, want the length rule", msg)
		}
		if !b.has(`#rules li.unmet[data-rule=length]`) {
			t.Error("the length rule is not marked unmet")
		}
		if calls := s.hubCalls()[setsBefore:]; strings.Contains(strings.Join(calls, " "), "POST") {
			t.Errorf("hub calls = %v, want none that sets a password", calls)
		}
	})
	t.Run("a password over 72 bytes", func(t *testing.T) {
		b := b.in(t)
		// 40 characters, 80 bytes: under the field's maxlength, over the hub's
		long := strings.Repeat("Жж", 20)
		b.typeIn("password", long)
		b.typeIn("confirm", long)
		b.do(chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("password-error")))
		if msg := b.text("#password-error"); !strings.Contains(msg, "at most 72 bytes") {
			t.Errorf("error under the password = %q, want the 72-byte rule", msg)
		}
		if calls := s.hubCalls()[setsBefore:]; strings.Contains(strings.Join(calls, " "), "POST") {
			t.Errorf("hub calls = %v, want none that sets a password", calls)
		}
	})
	t.Run("a password the hub refuses", func(t *testing.T) {
		b := b.in(t)
		// the hub's rules change after the page was shown: its answer decides
		s.hub.SetSettings(hubsim.Settings{MinPasswordLength: 12, PasswordComplexity: 2})
		b.typeIn("password", "Short-pw-1")
		b.typeIn("confirm", "Short-pw-1")
		b.navigating(chromedp.KeyEvent("\r"))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=form][data-error=password]`)))
		if msg := b.text("#password-error"); !strings.Contains(msg, "refused this password") {
			t.Errorf("error under the password = %q, want the hub's refusal", msg)
		}
		if rules := b.text("#rules"); !strings.Contains(rules, "At least 12 characters") {
			t.Errorf("policy hints after the refusal = %q, want the hub's new length", rules)
		}
		b.shot("page-weak.png")
	})
	t.Run("a good password", func(t *testing.T) {
		b := b.in(t)
		b.typeIn("password", "Brand-new-pass-42")
		b.typeIn("confirm", "Brand-new-pass-42")
		b.navigating(chromedp.KeyEvent("\r"))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=changed]`)))
		checkNewPassword(t, s, b, "Brand-new-pass-42")
		b.wideShot("page-changed.png")
	})
	t.Run("the used link", func(t *testing.T) {
		b := b.in(t)
		b.open(url, "invalid")
		if h := b.text("h1"); h != "This link no longer works" {
			t.Errorf("heading of a used link = %q, want This link no longer works", h)
		}
		b.wideShot("page-expired.png")
	})
}

// setPasswordWithoutScript checks that the server alone does it all.
func setPasswordWithoutScript(t *testing.T, s *stack, b *tab, url string) {
	b.open(url, "form")
	if b.has(`html[data-js]`) {
		t.Fatal("the page script ran in a tab without JavaScript")
	}
	if !b.has("#rules") || b.has(".show:not([hidden])") {
		t.Error("without JavaScript the hints should show and the show-password box should not")
	}
	steps := []struct {
		name, password, confirm string
		state, field, want      string
	}{
		{"two different entries", "Brand-new-pass-43", "Brand-new-pass-44",
			"form", "confirm", "do not match"},
		{"a password the hub refuses", "alllowercasepass", "alllowercasepass",
			"form", "password", "refused this password"},
		{"a good password", "Brand-new-pass-43", "Brand-new-pass-43", "changed", "", ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			b := b.in(t)
			b.typeIn("password", st.password)
			b.typeIn("confirm", st.confirm)
			b.navigating(chromedp.KeyEvent("\r"))
			sel := `main[data-state=` + st.state + `]`
			if st.field != "" {
				sel = `main[data-state=` + st.state + `][data-error=` + st.field + `]`
			}
			b.do(chromedp.WaitVisible(chromedp.CSS(sel)))
			if st.field == "" {
				return
			}
			if msg := b.text("#" + st.field + "-error"); !strings.Contains(msg, st.want) {
				t.Errorf("error under %s = %q, want %q", st.field, msg, st.want)
			}
			if id := eval[string](b, `document.activeElement.id`); id != st.field {
				t.Errorf("focus = %q, want %s", id, st.field)
			}
		})
	}
	checkNewPassword(t, s, b, "Brand-new-pass-43")
	b.open(url, "invalid")
}

// checkNewPassword checks the changed page and that the hub takes the new
// password.
func checkNewPassword(t *testing.T, s *stack, b *tab, password string) {
	t.Helper()
	href := eval[string](b, `document.querySelector("main a.button").href`)
	if href != s.base+"/" {
		t.Errorf("login link = %q, want %s/", href, s.base)
	}
	if !s.hub.CheckPassword("admin", password) {
		t.Error("the stand-in hub does not have the new password")
	}
}

// cancelRequest cancels a request from the page, after the question.
func cancelRequest(t *testing.T, b *tab, url string, shots bool) {
	t.Run("cancel the request", func(t *testing.T) {
		b := b.in(t)
		b.open(url, "form")
		b.navigating(chromedp.Click(chromedp.CSS(`a[href="?cancel"]`)))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=confirm]`)))
		if shots {
			b.wideShot("page-cancel-confirm.png")
		}
		// the way back keeps the request
		b.navigating(chromedp.Click(chromedp.CSS(`main a.secondary`)))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=form]`)))
		b.navigating(chromedp.Click(chromedp.CSS(`a[href="?cancel"]`)))
		b.navigating(chromedp.Click(chromedp.CSS(`button.danger`)))
		b.do(chromedp.WaitVisible(chromedp.CSS(`main[data-state=cancelled]`)))
		if shots {
			b.wideShot("page-cancelled.png")
		}
		b.open(url, "invalid")
	})
}

// shootMail renders the HTML part of a caught mail, with the link's address
// and token replaced by example ones, and takes its picture.
func shootMail(t *testing.T, browser context.Context, s *stack, m mailcatch.Message) {
	html := mailHTML(t, m)
	_, token := tokenOf(t, m)
	html = strings.ReplaceAll(html, token, "pX7rM2kQ9vL4tW8nB3cF6yH1jD5sG0aZ-eU_iO7wRqE")
	html = strings.ReplaceAll(html, s.base, "https://hub.example.com")
	b := newTab(t, browser, false)
	b.do(chromedp.EmulateViewport(720, 900))
	b.do(chromedp.Navigate("about:blank"))
	b.call(func(ctx context.Context) error {
		tree, err := chromedp.Call(ctx, page.GetFrameTree, struct{}{})
		if err != nil {
			return err
		}
		_, err = chromedp.Call(ctx, page.SetDocumentContent, page.SetDocumentContentParams{
			FrameID: tree.FrameTree.Frame.ID, HTML: html})
		return err
	})
	b.shot("mail.png")
}

// mailHTML returns the decoded text/html part of a caught message.
func mailHTML(t *testing.T, m mailcatch.Message) string {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		t.Fatalf("parsing mail: %v", err)
	}
	html, ok := findHTML(msg.Header.Get("Content-Type"),
		msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if !ok {
		t.Fatal("the mail has no text/html part")
	}
	return html
}

// findHTML walks a MIME entity for its first text/html part.
func findHTML(ctype, encoding string, body io.Reader) (string, bool) {
	media, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return "", false
	}
	if strings.HasPrefix(media, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return "", false
			}
			if html, ok := findHTML(p.Header.Get("Content-Type"),
				p.Header.Get("Content-Transfer-Encoding"), p); ok {
				return html, true
			}
		}
	}
	if media != "text/html" {
		return "", false
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body)
	}
	raw, err := io.ReadAll(body)
	return string(raw), err == nil
}
