package caddymodule

import (
	"net/http"
	"strings"
	"testing"
)

// The documented curl calls send JSON without a Content-Type header, so
// curl labels it as a form; tests send it the same way.
const formType = "application/x-www-form-urlencoded"

func resetBody(password string) string { return `{"password": "` + password + `"}` }

func TestDocumentedFlow(t *testing.T) {
	s := newStack(t)
	m := s.forgot("admin", 1)

	if len(m.To) != 1 || m.To[0] != "admin@example.test" {
		t.Errorf("mail recipients = %v, want only admin@example.test", m.To)
	}
	link, token := tokenOf(t, m)
	if !strings.HasPrefix(link, s.base+"/password-reset/") {
		t.Errorf("link = %q, want it under %s/password-reset/", link, s.base)
	}
	text, _ := mailText(t, m)
	if !strings.Contains(text, "\n"+token+"\n") {
		t.Errorf("mail text has no line holding only the token:\n%s", text)
	}

	resp, body := s.do("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		"Content-Type", formType)
	if resp.StatusCode != 200 || body != textResetOK {
		t.Fatalf("reset = %d %q, want 200 %q", resp.StatusCode, body, textResetOK)
	}
	if !s.hub.CheckPassword("admin", "N3w-pass-word") {
		t.Error("the stand-in hub does not have the new password")
	}
	if n := s.hub.PasswordSets("admin"); n != 1 {
		t.Errorf("password sets on the hub = %d, want 1", n)
	}
	// the new password works on the hub, through Caddy's passthrough
	req, _ := http.NewRequest("GET", s.base+"/api/", nil)
	req.SetBasicAuth("admin", "N3w-pass-word")
	if resp, err := s.client.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET /api/ as admin with the new password = %v, %v, want 200", resp, err)
	} else {
		resp.Body.Close()
	}

	t.Run("a used token is refused", func(t *testing.T) {
		s.expect("POST", "/api/auth/password/reset/"+token, resetBody("An0ther-pass"),
			422, textUnprocessed)
		s.expect("DELETE", "/api/auth/password/reset/"+token, "", 422, textUnprocessed)
	})
}

func TestInvalidate(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	s.expect("DELETE", "/api/auth/password/reset/"+token, "", 202, textInvalidated)
	s.expect("DELETE", "/api/auth/password/reset/"+token, "", 422, textUnprocessed)
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		422, textUnprocessed)
	if n := s.hub.PasswordSets("admin"); n != 0 {
		t.Errorf("password sets on the hub = %d, want 0", n)
	}
}

func TestNewRequestReplacesEarlierToken(t *testing.T) {
	s := newStack(t)
	_, first := tokenOf(t, s.forgot("admin", 1))
	_, second := tokenOf(t, s.forgot("admin", 2))
	s.expect("POST", "/api/auth/password/reset/"+first, resetBody("N3w-pass-word"),
		422, textUnprocessed)
	s.expect("POST", "/api/auth/password/reset/"+second, resetBody("N3w-pass-word"),
		200, textResetOK)
}

func TestRefusedPasswordKeepsToken(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	tests := []struct {
		name string
		body string
		want string
	}{
		{"a too short password", resetBody("Ab1"), textWeakPass},
		{"a too simple password", resetBody("alllowercase"), textWeakPass},
		{"an empty password", resetBody(""), textEmptyPass},
		{"a body that is not JSON", "password=x", textUnprocessed},
		{"a password that is not a string", `{"password": 12345678}`, textUnprocessed},
		{"no password at all", `{}`, textUnprocessed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.expect("POST", "/api/auth/password/reset/"+token, tt.body, 422, tt.want)
		})
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("G00d-enough-pass"),
		200, textResetOK)
	if !s.hub.CheckPassword("admin", "G00d-enough-pass") {
		t.Error("the stand-in hub does not have the new password")
	}
}

func TestHubDownKeepsToken(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	s.hub.SetDown(true)
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		422, textHubDown)
	s.hub.SetDown(false)
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
}

func TestForgotAnswersAlike(t *testing.T) {
	s := newStack(t)
	type answer struct {
		status int
		header http.Header
		body   string
	}
	var first *answer
	for _, user := range []string{"admin", "nobody", "ldapbob", "alice", "carol"} {
		resp, body := s.do("POST", "/api/auth/password/forgot/"+user, "")
		resp.Header.Del("Date")
		got := &answer{resp.StatusCode, resp.Header, body}
		if got.status != 200 || got.body != textForgotOK {
			t.Errorf("forgot(%s) = %d %q, want 200 %q", user, got.status, got.body, textForgotOK)
		}
		if first == nil {
			first = got
			continue
		}
		if !equalHeaders(first.header, got.header) {
			t.Errorf("forgot(%s) headers = %v, want %v", user, got.header, first.header)
		}
	}
	s.waitOutboxEmpty()
	var to []string
	for _, m := range s.resetMails() {
		to = append(to, m.To...)
	}
	want := "admin@example.test carol@example.test"
	if strings.Join(to, " ") != want {
		t.Errorf("mail went to %v, want %s", to, want)
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return true
}

func TestRouting(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name, method, path string
		status             int
		allow              string
	}{
		{"forgot by GET", "GET", "/api/auth/password/forgot/admin", 405, "POST"},
		{"reset by PUT", "PUT", "/api/auth/password/reset/abc", 405, "POST, DELETE"},
		{"reset by GET", "GET", "/api/auth/password/reset/abc", 405, "POST, DELETE"},
		{"an unknown call", "POST", "/api/auth/password/other/admin", 404, ""},
		{"the bare prefix", "GET", "/api/auth/password/", 404, ""},
		{"the prefix without slash", "GET", "/api/auth/password", 404, ""},
		{"a doubled slash", "POST", "//api/auth/password/forgot/admin", 404, ""},
		{"a dot segment", "POST", "/api/auth/x/../password/forgot/admin", 404, ""},
		{"another letter case", "POST", "/API/Auth/Password/forgot/admin", 404, ""},
		{"an escaped slash", "POST", "/api/auth/password%2Fforgot/admin", 404, ""},
		{"a malformed token", "POST", "/api/auth/password/reset/v1twknmrLWos", 422, ""},
		{"an empty token", "DELETE", "/api/auth/password/reset/", 422, ""},
		{"a slash in the username", "POST", "/api/auth/password/forgot/a%2Fb", 422, ""},
	}
	calls := s.hub.Calls()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := s.do(tt.method, tt.path, "")
			if resp.StatusCode != tt.status {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Allow"); got != tt.allow {
				t.Errorf("%s %s Allow = %q, want %q", tt.method, tt.path, got, tt.allow)
			}
		})
	}
	s.waitOutboxEmpty()
	if got := s.hub.Calls(); got != calls {
		t.Errorf("hub calls = %d, want %d: a reset path reached the hub", got, calls)
	}

	t.Run("other requests pass through to the hub", func(t *testing.T) {
		req, _ := http.NewRequest("GET", s.base+"/api/", nil)
		req.SetBasicAuth("admin", adminPass)
		resp, err := s.client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/ = %v, %v, want 200 from the hub", resp, err)
		}
		resp.Body.Close()
		if got := s.hub.Calls(); got != calls+1 {
			t.Errorf("hub calls = %d, want %d", got, calls+1)
		}
	})
}

// TestMailContents checks what the reset mail tells its reader and the
// notice that follows a reset: to the same address, with no link to reset
// again and no token.
func TestMailContents(t *testing.T) {
	s := newStack(t)
	m := s.forgot("admin", 1)
	link, token := tokenOf(t, m)
	text, msg := mailText(t, m)
	flat := strings.Join(strings.Fields(text), " ")
	for _, want := range []string{"Hello Hub Administrator,", "from the address 127.0.0.1",
		link + "?cancel", " on "} {
		if !strings.Contains(flat, want) {
			t.Errorf("reset mail lacks %q:\n%s", want, text)
		}
	}
	for _, h := range []string{"Message-Id", "Date"} {
		if msg.Header.Get(h) == "" {
			t.Errorf("reset mail has no %s header", h)
		}
	}
	if got := msg.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted = %q, want auto-generated", got)
	}
	if len(s.notices()) != 0 {
		t.Fatal("a notice before any reset")
	}

	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
	s.waitOutboxEmpty()
	notices := s.notices()
	if len(notices) != 1 || len(notices[0].To) != 1 || notices[0].To[0] != "admin@example.test" {
		t.Fatalf("notices = %+v, want one to admin@example.test", notices)
	}
	text, _ = mailText(t, notices[0])
	flat = strings.Join(strings.Fields(text), " ")
	for _, want := range []string{`"admin" was changed on`, "from the address 127.0.0.1",
		s.base + "/"} {
		if !strings.Contains(flat, want) {
			t.Errorf("notice lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(string(notices[0].Data), token) ||
		strings.Contains(string(notices[0].Data), "/password-reset/") {
		t.Error("the notice holds the token or a reset link")
	}
	// a refused password sends no notice
	_, token = tokenOf(t, s.forgot("admin", 2))
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("weak"), 422, textWeakPass)
	s.waitOutboxEmpty()
	if n := len(s.notices()); n != 1 {
		t.Errorf("notices = %d after a refused password, want still 1", n)
	}
}
