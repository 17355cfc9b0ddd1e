package caddymodule

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rawRequest sends bytes as they are to Caddy and returns the status.
func (s *stack) rawRequest(raw string) int {
	s.t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(raw)); err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		s.t.Fatalf("reading answer to %q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLinkPoisoning sends reset requests whose every header names another
// host, and checks that every mailed link is built on public_url alone.
func TestLinkPoisoning(t *testing.T) {
	s := newStack(t)
	path := "/api/auth/password/forgot/admin"
	requests := []string{
		"POST " + path + " HTTP/1.1\r\nHost: evil.test\r\nContent-Length: 0\r\n\r\n",
		"POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Host: evil.test\r\n" +
			"X-Forwarded-Proto: https\r\nX-Forwarded-Port: 444\r\nContent-Length: 0\r\n\r\n",
		"POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
			"Forwarded: for=1.2.3.4;host=evil.test;proto=https\r\nContent-Length: 0\r\n\r\n",
		"POST http://evil.test" + path + " HTTP/1.1\r\nHost: evil.test\r\n" +
			"Content-Length: 0\r\n\r\n",
		"POST " + path + " HTTP/1.1\r\nHost: evil.test:8080\r\nX-Original-URL: //evil.test/\r\n" +
			"X-Rewrite-URL: //evil.test/\r\nContent-Length: 0\r\n\r\n",
	}
	for i, raw := range requests {
		if got := s.rawRequest(raw); got != 200 {
			t.Fatalf("request %d = %d, want 200", i, got)
		}
		m := s.waitMail(i + 1)[i]
		if strings.Contains(strings.ToLower(string(m.Data)), "evil") {
			t.Errorf("mail %d names the forged host:\n%s", i, m.Data)
		}
		link, _ := tokenOf(t, m)
		if !strings.HasPrefix(link, s.base+"/password-reset/") {
			t.Errorf("mail %d link = %q, want it under %s", i, link, s.base)
		}
	}
}

// TestMailGoesOnlyToTheHubAddress asks for resets with names full of mail
// syntax and checks recipients and headers of what is sent.
func TestMailGoesOnlyToTheHubAddress(t *testing.T) {
	s := newStack(t)
	names := []string{
		`o'brien,"x"<y@evil.test>`, // a real account on the stand-in
		"admin,attacker@evil.test", "admin\r\nBcc: attacker@evil.test",
		"<attacker@evil.test>", `"admin"@evil.test`, "admin%00", "admin%0d%0aBcc:x",
	}
	for _, n := range names {
		s.do("POST", "/api/auth/password/forgot/"+url.PathEscape(n), "")
	}
	s.waitOutboxEmpty()
	msgs := s.mail.Messages()
	if len(msgs) != 1 {
		t.Fatalf("mails = %d, want 1 (to the account with the odd name)", len(msgs))
	}
	m := msgs[0]
	if len(m.To) != 1 || m.To[0] != "obrien@example.test" {
		t.Errorf("recipients = %v, want only obrien@example.test", m.To)
	}
	_, hdr := mailText(t, m)
	for _, k := range []string{"Bcc", "Cc", "Reply-To"} {
		if v := hdr.Header.Get(k); v != "" {
			t.Errorf("header %s = %q, want none", k, v)
		}
	}
	if to := hdr.Header.Get("To"); !strings.Contains(to, "obrien@example.test") ||
		strings.Contains(to, "evil") {
		t.Errorf("To = %q, want only the hub's address", to)
	}
	if strings.Contains(string(m.Data), "\r\nBcc:") {
		t.Error("the display name injected a header")
	}
}

// TestUsernameSmuggling checks that no name can change the hub path it is
// looked up under, and that names are compared byte for byte.
func TestUsernameSmuggling(t *testing.T) {
	s := newStack(t)
	tests := []struct {
		name, seg string
		status    int
		hubPath   string // the call the hub must get, if any
	}{
		{"a dot-dot name", "..", 422, ""},
		{"an escaped dot-dot", "%2e%2e", 422, ""},
		{"an escaped slash", "..%2Fsettings", 422, ""},
		{"a NUL", "admin%00", 422, ""},
		{"a too long name", strings.Repeat("a", 257), 422, ""},
		{"not UTF-8", "%ff%fe", 422, ""},
		{"a backslash", "..%5Csettings", 422, ""},
		{"a question mark", "admin%3Fx=1", 200, "GET /api/user/admin%3Fx=1"},
		{"a hash", "admin%23x", 200, "GET /api/user/admin%23x"},
		{"a space", "ad%20min", 200, "GET /api/user/ad%20min"},
		{"a decomposed é", "jose%CC%81", 200, "GET /api/user/jose%CC%81"},
		{"a composed é", "jos%C3%A9", 200, "GET /api/user/jos%C3%A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.hubCalls())
			resp, _ := s.do("POST", "/api/auth/password/forgot/"+tt.seg, "")
			if resp.StatusCode != tt.status {
				t.Fatalf("forgot(%s) = %d, want %d", tt.seg, resp.StatusCode, tt.status)
			}
			s.waitOutboxEmpty()
			calls := s.hubCalls()[before:]
			want := []string{}
			if tt.hubPath != "" {
				want = []string{tt.hubPath}
			}
			if strings.Join(calls, "|") != strings.Join(want, "|") {
				t.Errorf("hub calls = %q, want %q", calls, want)
			}
		})
	}
	// only the composed spelling is the stand-in's account
	msgs := s.mail.Messages()
	if len(msgs) != 1 || msgs[0].To[0] != "jose@example.test" {
		t.Errorf("mails = %d, want one, to jose@example.test", len(msgs))
	}
}

// TestTokenPathShapes sends malformed tokens to every call and the page:
// a clear 4xx, never a 5xx, never a hub call.
func TestTokenPathShapes(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	shapes := []string{
		"", "/", token + "/", token + "/x", "%41" + token[1:], token[:42],
		token + "A", strings.Repeat("A", 4096), token[:42] + "=", token[:42] + "+",
		token[:42] + "%2F", token[:42] + ".", "..", token[:42] + "%00",
	}
	before := len(s.hubCalls())
	for _, shape := range shapes {
		for _, m := range []string{"POST", "DELETE"} {
			resp, body := s.do(m, "/api/auth/password/reset/"+shape, resetBody("N3w-pass-word"))
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("%s reset/%.50s = %d %q, want 4xx", m, shape, resp.StatusCode, body)
			}
		}
		if shape == "" {
			continue // the page's root is the request form
		}
		resp, _ := s.do("GET", "/password-reset/"+shape, "")
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("GET page/%.50s = %d, want 4xx", shape, resp.StatusCode)
		}
	}
	for _, raw := range []string{
		"POST /api/auth/password/reset/%zz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
		"DELETE /api/auth/password/reset/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /password-reset/%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		if got := s.rawRequest(raw); got < 400 || got >= 500 {
			t.Errorf("%q = %d, want 4xx", raw, got)
		}
	}
	if calls := s.hubCalls()[before:]; len(calls) != 0 {
		t.Errorf("hub calls = %q, want none", calls)
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
}

// TestJSONBodies sends malformed and borderline bodies: 4xx, never 5xx,
// and the token keeps working.
func TestJSONBodies(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	path := "/api/auth/password/reset/" + token
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	tests := []struct {
		name, body, want string
	}{
		{"an empty body", "", textUnprocessed},
		{"not JSON", "password=N3w-pass-word", textUnprocessed},
		{"null", "null", textUnprocessed},
		{"an array", `["N3w-pass-word"]`, textUnprocessed},
		{"a number", "42", textUnprocessed},
		{"a string", `"N3w-pass-word"`, textUnprocessed},
		{"a null password", `{"password": null}`, textUnprocessed},
		{"a number password", `{"password": 12345678}`, textUnprocessed},
		{"an array password", `{"password": ["N3w-pass-word"]}`, textUnprocessed},
		{"an object password", `{"password": {"a": "b"}}`, textUnprocessed},
		{"duplicate keys", `{"password": "N3w-pass-word", "password": "0ther-pass-word"}`,
			textUnprocessed},
		{"two objects", `{"password": "N3w-pass-word"}{"password": "x"}`, textUnprocessed},
		{"an unterminated object", `{"password": "N3w-pass-word"`, textUnprocessed},
		{"a 2 MiB body", `{"password": "` + strings.Repeat("a", 2<<20) + `"}`, textUnprocessed},
		{"deep nesting", `{"x": ` + deep + `, "password": "N3w-pass-word"}`, textUnprocessed},
		{"an empty password", `{"password": ""}`, textEmptyPass},
		{"73 bytes", resetBody("Aa1" + strings.Repeat("x", 70)), textLongPass},
		{"a NUL", `{"password": "N3w-pass\u0000word"}`, textBadChars},
		{"a line break", `{"password": "N3w-pass\nword"}`, textBadChars},
		{"a lone surrogate", `{"password": "N3w-pass-\ud800"}`, textBadChars},
		{"a replacement character", "{\"password\": \"N3w-pass-\uFFFD\"}", textBadChars},
		{"invalid UTF-8", "{\"password\": \"N3w-pass-\xff\"}", textUnprocessed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := s.do("POST", path, tt.body, "Content-Type", "application/json")
			if resp.StatusCode != 422 || body != tt.want {
				t.Errorf("reset(%.40s) = %d %q, want 422 %q", tt.body, resp.StatusCode, body,
					tt.want)
			}
		})
	}
	if n := s.hub.PasswordSets("admin"); n != 0 {
		t.Fatalf("password sets = %d, want 0", n)
	}
	// unknown keys are ignored; spaces at either end are kept, not trimmed;
	// 72 bytes is the longest password taken
	long := "Aa1" + strings.Repeat("x", 69)
	s.expect("POST", path, fmt.Sprintf(`{"note": {"a": [1]}, "password": "%s"}`, long),
		200, textResetOK)
	if !s.hub.CheckPassword("admin", long) {
		t.Error("the hub does not have the 72-byte password")
	}
	_, token = tokenOf(t, s.forgot("admin", 2))
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody(" Spaced-0ut "), 200, textResetOK)
	if !s.hub.CheckPassword("admin", " Spaced-0ut ") {
		t.Error("the hub does not have the password with its spaces")
	}
}
