package caddymodule

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// postForm submits the reset page's form.
func (s *stack) postForm(path string, form url.Values) (*http.Response, string) {
	s.t.Helper()
	return s.do("POST", path, form.Encode(), "Content-Type", formType)
}

func TestPageSetsPassword(t *testing.T) {
	s := newStack(t)
	link, _ := tokenOf(t, s.forgot("admin", 1))
	path := strings.TrimPrefix(link, s.base)

	// a mail scanner or a link preview fetching the link changes nothing
	for range 3 {
		resp, body := s.do("GET", path, "")
		if resp.StatusCode != 200 || !strings.Contains(body, `name="confirm"`) {
			t.Fatalf("GET page = %d, want 200 with the form:\n%s", resp.StatusCode, body)
		}
		checkPageHeaders(t, resp)
		// the person sees whose password this is, and a password manager
		// files the new password under that name
		if !strings.Contains(body, `<strong class="account">admin</strong>`) ||
			!strings.Contains(body, `name="username" value="admin" autocomplete="username"`) {
			t.Errorf("the form does not name the account admin:\n%s", body)
		}
	}

	steps := []struct {
		name      string
		form      url.Values
		status    int
		wantInBdy string
	}{
		{"two different passwords", url.Values{"password": {"N3w-pass-word"},
			"confirm": {"N3w-pass-wort"}}, 422, "do not match"},
		{"an empty password", url.Values{"password": {""}, "confirm": {""}}, 422,
			"Enter a new password"},
		{"a weak password", url.Values{"password": {"weak"}, "confirm": {"weak"}}, 422,
			"password policy"},
		{"a good password", url.Values{"password": {"N3w-pass-word"},
			"confirm": {"N3w-pass-word"}}, 200, "Password changed"},
		{"the same link again", url.Values{"password": {"N3w-pass-word"},
			"confirm": {"N3w-pass-word"}}, 422, "expired, was already used"},
	}
	for _, st := range steps {
		resp, body := s.postForm(path, st.form)
		if resp.StatusCode != st.status || !strings.Contains(body, st.wantInBdy) {
			t.Fatalf("%s: POST page = %d, want %d with %q:\n%s",
				st.name, resp.StatusCode, st.status, st.wantInBdy, body)
		}
		if strings.Contains(body, "N3w-pass-wor") || strings.Contains(body, "weak\"") {
			t.Errorf("%s: the page echoes a posted password", st.name)
		}
		checkPageHeaders(t, resp)
	}
	if !s.hub.CheckPassword("admin", "N3w-pass-word") {
		t.Error("the stand-in hub does not have the new password")
	}
	resp, body := s.do("GET", path, "")
	if resp.StatusCode != 404 || !strings.Contains(body, "expired") {
		t.Errorf("GET used link = %d, want 404 with the expired page", resp.StatusCode)
	}
}

func TestPageCancels(t *testing.T) {
	s := newStack(t)
	link, token := tokenOf(t, s.forgot("admin", 1))
	path := strings.TrimPrefix(link, s.base)
	resp, body := s.postForm(path, url.Values{"action": {"cancel"}})
	if resp.StatusCode != 200 || !strings.Contains(body, "cancelled") {
		t.Fatalf("cancel = %d, want 200 with the cancelled page:\n%s", resp.StatusCode, body)
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		422, textUnprocessed)
}

func TestPageBadLinks(t *testing.T) {
	s := newStack(t)
	for _, path := range []string{
		"/password-reset/v1twknmrLWos",
		"/password-reset/" + strings.Repeat("A", 43), "/password-reset/%00",
	} {
		resp, body := s.do("GET", path, "")
		if resp.StatusCode != 404 || !strings.Contains(body, "expired") {
			t.Errorf("GET %s = %d, want 404 with the expired page", path, resp.StatusCode)
		}
	}
	resp, _ := s.do("PUT", "/password-reset/x", "")
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Errorf("PUT page = %d Allow %q, want 405 GET, HEAD, POST",
			resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, css := s.do("GET", "/password-reset/style.css", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") ||
		!strings.Contains(css, "body") {
		t.Errorf("GET style.css = %d %q, want the stylesheet", resp.StatusCode,
			resp.Header.Get("Content-Type"))
	}
}

func checkPageHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	want := map[string]string{
		"Referrer-Policy": "no-referrer",
		"Cache-Control":   "no-store",
		"Content-Type":    "text/html; charset=utf-8",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("page header %s = %q, want %q", k, got, v)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("page Content-Security-Policy = %q, want default-src 'none'", csp)
	}
}

func TestPageRequestsReset(t *testing.T) {
	s := newStack(t)
	resp, body := s.do("GET", "/password-reset/", "")
	if resp.StatusCode != 200 || !strings.Contains(body, `name="username"`) {
		t.Fatalf("GET request form = %d, want 200 with the form:\n%s", resp.StatusCode, body)
	}
	checkPageHeaders(t, resp)
	var first string
	for _, user := range []string{"admin", "nobody", "ldapbob"} {
		resp, body := s.postForm("/password-reset/", url.Values{"username": {user}})
		if resp.StatusCode != 200 || !strings.Contains(body, "on its way") {
			t.Fatalf("request(%s) = %d, want 200 with the sent page:\n%s", user,
				resp.StatusCode, body)
		}
		if first == "" {
			first = body
		} else if body != first {
			t.Errorf("request(%s) page differs from request(admin)", user)
		}
	}
	s.waitOutboxEmpty()
	if msgs := s.resetMails(); len(msgs) != 1 || msgs[0].To[0] != "admin@example.test" {
		t.Errorf("mails = %d, want one to admin", len(msgs))
	}
	resp, body = s.postForm("/password-reset/", url.Values{"username": {"a/b"}})
	if resp.StatusCode != 422 || !strings.Contains(body, "Enter your user name") {
		t.Errorf("request(a/b) = %d, want 422 asking for the name", resp.StatusCode)
	}
	// the name comes back as typed, escaped, to be fixed
	if !strings.Contains(body, `value="a/b"`) {
		t.Errorf("request(a/b) page does not keep the name typed:\n%s", body)
	}
}

// Over the per-address limit, the request form says when to try again, in
// words that agree with Retry-After, and keeps the name typed.
func TestPageRequestThrottled(t *testing.T) {
	s := newStack(t)
	s.load(`limits {
		forgot_per_address 1 10m
	}`)
	var resp *http.Response
	var body string
	for range 2 {
		resp, body = s.postForm("/password-reset/", url.Values{"username": {"<b>nobody"}})
	}
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second request = %d, want 429", resp.StatusCode)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "600" {
		t.Errorf("Retry-After = %q, want 600", ra)
	}
	if !strings.Contains(body, "Please try again in 10 minutes.") {
		t.Errorf("the throttled form does not say 10 minutes:\n%s", body)
	}
	if !strings.Contains(body, `value="&lt;b&gt;nobody"`) {
		t.Errorf("the throttled form does not keep the name, escaped:\n%s", body)
	}
}

func TestWaitInWords(t *testing.T) {
	for in, want := range map[string]string{
		"": "a minute", "x": "a minute", "1": "a minute", "60": "a minute",
		"61": "2 minutes", "600": "10 minutes",
	} {
		if got := waitInWords(in); got != want {
			t.Errorf("waitInWords(%q) = %q, want %q", in, got, want)
		}
	}
}
