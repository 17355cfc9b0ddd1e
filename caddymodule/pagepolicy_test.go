package caddymodule

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPageShowsHubPolicy(t *testing.T) {
	s := newStack(t)
	clock := fakeClock(t, time.Now())
	link, _ := tokenOf(t, s.forgot("admin", 1))
	path := strings.TrimPrefix(link, s.base)

	// a hub that is down gives a form without hints, never a failed page
	s.hub.SetDown(true)
	resp, body := s.do("GET", path, "")
	if resp.StatusCode != 200 || !strings.Contains(body, `name="confirm"`) {
		t.Fatalf("GET page with the hub down = %d, want 200 with the form", resp.StatusCode)
	}
	if strings.Contains(body, `id="rules"`) || strings.Contains(body, "data-min-length") {
		t.Errorf("page with the hub down shows policy hints:\n%s", body)
	}
	s.hub.SetDown(false)

	// the failed read is remembered for a while, then the hub is asked again
	clock.advance(policyRetry)
	_, body = s.do("GET", path, "")
	for _, want := range []string{
		`data-min-length="8"`, `data-classes="2"`, `minlength="8"`,
		"At least 8 characters", "At least 2 of: lowercase letters",
		`aria-describedby="password-error rules"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page with the hub up lacks %q:\n%s", want, body)
		}
	}
}

func TestPolicyHints(t *testing.T) {
	tests := []struct {
		p               *policy
		length, classes string
	}{
		{nil, "", ""},
		{&policy{MinLength: 0, Classes: 1}, "", ""},
		{&policy{MinLength: 10, Classes: 3}, "At least 10 characters",
			"At least 3 of: lowercase letters, uppercase letters, digits, other characters"},
		{&policy{MinLength: 8, Classes: 4}, "At least 8 characters",
			"Lowercase and uppercase letters, digits and other characters"},
	}
	for _, tt := range tests {
		if got := tt.p.LengthHint(); got != tt.length {
			t.Errorf("LengthHint(%+v) = %q, want %q", tt.p, got, tt.length)
		}
		if got := tt.p.ClassesHint(); got != tt.classes {
			t.Errorf("ClassesHint(%+v) = %q, want %q", tt.p, got, tt.classes)
		}
	}
}

// A link that another submission holds right now says so, on the page
// only: the API's answer stays the documented one.
func TestPageTokenInUse(t *testing.T) {
	s := newStack(t)
	link, token := tokenOf(t, s.forgot("admin", 1))
	path := strings.TrimPrefix(link, s.base)
	tok, _ := parseToken(token)
	if _, err := sharedOf(t, s.storage).store.Reserve(tok, clock()); err != nil {
		t.Fatalf("Reserve() = %v", err)
	}
	resp, body := s.do("GET", path, "")
	if resp.StatusCode != 409 || !strings.Contains(body, "being changed") {
		t.Errorf("GET page of a held link = %d, want 409 with the busy page:\n%s",
			resp.StatusCode, body)
	}
	form := url.Values{"password": {"N3w-pass-word"}, "confirm": {"N3w-pass-word"}}
	resp, body = s.postForm(path, form)
	if resp.StatusCode != 422 || !strings.Contains(body, "being used right now") {
		t.Errorf("POST page of a held link = %d, want 422 with the busy page:\n%s",
			resp.StatusCode, body)
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		422, textUnprocessed)
}

// Every state of the page keeps to the Content-Security-Policy: scripts and
// styles come from files of the binary, never from the markup.
func TestPageHasNoInlineCode(t *testing.T) {
	s := newStack(t)
	link, _ := tokenOf(t, s.forgot("admin", 1))
	path := strings.TrimPrefix(link, s.base)
	pages := map[string]string{}
	_, pages["form"] = s.do("GET", path, "")
	_, pages["confirm"] = s.do("GET", path+"?cancel", "")
	_, pages["mismatch"] = s.postForm(path, url.Values{"password": {"a"}, "confirm": {"b"}})
	_, pages["request"] = s.do("GET", "/password-reset/", "")
	_, pages["invalid"] = s.do("GET", "/password-reset/v1twknmrLWos", "")
	_, pages["cancelled"] = s.postForm(path, url.Values{"action": {"cancel"}})

	tag := regexp.MustCompile(`<script[^>]*>`)
	inline := regexp.MustCompile(`(?i)\s(on[a-z]+|style)=|<style|javascript:`)
	for state, body := range pages {
		for _, s := range tag.FindAllString(body, -1) {
			if !strings.Contains(s, ` src="/password-reset/page.js"`) {
				t.Errorf("%s page has a script that is not page.js: %s", state, s)
			}
		}
		if m := inline.FindString(body); m != "" {
			t.Errorf("%s page has inline code or style %q", state, m)
		}
	}
	if !strings.Contains(pages["confirm"], `value="cancel"`) ||
		!strings.Contains(pages["cancelled"], "was cancelled") {
		t.Error("the question and the cancelled page are not as expected")
	}

	resp, js := s.do("GET", "/password-reset/page.js", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		!strings.Contains(js, "use strict") {
		t.Errorf("GET page.js = %d %q, want the script", resp.StatusCode,
			resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy = %q, want script-src 'self' and nothing unsafe", csp)
	}
}
