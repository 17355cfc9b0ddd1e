package caddymodule

import (
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentRedemptions redeems one token from many clients at once,
// through the API and the page: exactly one succeeds, and the hub sets the
// password exactly once.
func TestConcurrentRedemptions(t *testing.T) {
	s := newStack(t)
	link, token := tokenOf(t, s.forgot("admin", 1))
	page := strings.TrimPrefix(link, s.base)
	const n = 24
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				resp, _ := s.do("POST", "/api/auth/password/reset/"+token,
					resetBody("N3w-pass-word"))
				codes <- resp.StatusCode
				return
			}
			form := url.Values{"password": {"N3w-pass-word"}, "confirm": {"N3w-pass-word"}}
			resp, _ := s.postForm(page, form)
			codes <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		switch c {
		case 200:
			ok++
		case 422:
		default:
			t.Errorf("a concurrent redemption got %d, want 200 or 422", c)
		}
	}
	if ok != 1 {
		t.Errorf("successful redemptions = %d, want 1", ok)
	}
	if sets := s.hub.PasswordSets("admin"); sets != 1 {
		t.Errorf("password sets on the hub = %d, want 1", sets)
	}
}

// TestForgotAndResetTogether races a new request against a redemption of
// the user's token: the redemption either wins, ending the user's tokens
// and the request if its mail has not gone yet, or finds the token replaced,
// and then the newest mail's token works.
func TestForgotAndResetTogether(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	var wg sync.WaitGroup
	var status int
	wg.Add(2)
	go func() {
		defer wg.Done()
		resp, _ := s.do("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"))
		status = resp.StatusCode
	}()
	go func() {
		defer wg.Done()
		s.do("POST", "/api/auth/password/forgot/admin", "")
	}()
	wg.Wait()
	s.waitOutboxEmpty()
	msgs := s.resetMails()
	switch {
	case status == 200 && s.hub.PasswordSets("admin") != 1:
		t.Errorf("password sets = %d, want 1", s.hub.PasswordSets("admin"))
	case status == 422 && len(msgs) != 2:
		t.Fatalf("the reset lost to the new request, but %d mails went out, want 2", len(msgs))
	case status != 200 && status != 422:
		t.Fatalf("reset during forgot = %d, want 200 or 422", status)
	}
	if len(msgs) == 2 {
		// when the new token replaced the old one first, it must work; when
		// the reset won, it ended every token of the user, maybe this one
		_, fresh := tokenOf(t, msgs[1])
		resp, body := s.do("POST", "/api/auth/password/reset/"+fresh, resetBody("0ther-pass-word"))
		if status == 422 && resp.StatusCode != 200 {
			t.Errorf("fresh token after a lost race = %d %q, want 200", resp.StatusCode, body)
		}
		if resp.StatusCode != 200 && resp.StatusCode != 422 {
			t.Errorf("fresh token = %d, want 200 or 422", resp.StatusCode)
		}
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("Thr1d-pass-word"),
		422, textUnprocessed)
}

// TestTokenLifetime moves the module's clock: a token works one second
// before its expiry and not at it; a used token stays used after a restart.
func TestTokenLifetime(t *testing.T) {
	s := newStack(t)
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	fake := fakeClock(t, start)
	s.load("token_ttl 90s")
	link, token := tokenOf(t, s.forgot("admin", 1))
	page := strings.TrimPrefix(link, s.base)

	fake.advance(89 * time.Second)
	if resp, _ := s.do("GET", page, ""); resp.StatusCode != 200 {
		t.Errorf("page one second before the expiry = %d, want 200", resp.StatusCode)
	}
	fake.advance(time.Second)
	if resp, _ := s.do("GET", page, ""); resp.StatusCode != 404 {
		t.Errorf("page at the expiry = %d, want 404", resp.StatusCode)
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		422, textUnprocessed)
	s.expect("DELETE", "/api/auth/password/reset/"+token, "", 422, textUnprocessed)

	_, token = tokenOf(t, s.forgot("admin", 2))
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
	s.restart("token_ttl 90s")
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("0ther-pass-word"),
		422, textUnprocessed)
}
