package caddymodule

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// retryAfter returns the Retry-After seconds of an answer, or fails.
func retryAfter(t *testing.T, got string, lo, hi int) {
	t.Helper()
	n, err := strconv.Atoi(got)
	if err != nil || n < lo || n > hi {
		t.Errorf("Retry-After = %q, want seconds in [%d, %d]", got, lo, hi)
	}
}

func TestForgotPerAddress(t *testing.T) {
	s := newStack(t)
	s.load("limits {\n forgot_per_address 3 10m\n }")
	for i := range 3 {
		// a spoofed X-Forwarded-For from an untrusted peer buys nothing
		resp, _ := s.do("POST", "/api/auth/password/forgot/nobody", "",
			"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i))
		if resp.StatusCode != 200 {
			t.Fatalf("forgot #%d = %d, want 200", i+1, resp.StatusCode)
		}
	}
	resp, body := s.do("POST", "/api/auth/password/forgot/admin", "",
		"X-Forwarded-For", "198.51.100.99")
	if resp.StatusCode != 422 || body != textForgotFailed {
		t.Fatalf("forgot over the limit = %d %q, want 422 %q", resp.StatusCode, body,
			textForgotFailed)
	}
	retryAfter(t, resp.Header.Get("Retry-After"), 199, 200)
}

func TestTrustedProxyAddressesAndIPv6Networks(t *testing.T) {
	s := newStack(t)
	s.globalExtra = "servers {\n trusted_proxies static 127.0.0.1/8\n }"
	s.load("limits {\n forgot_per_address 1 10m\n }")
	tests := []struct {
		name, client string
		status       int
	}{
		{"a first client", "192.0.2.1", 200},
		{"the same client again", "192.0.2.1", 422},
		{"another client behind the proxy", "192.0.2.2", 200},
		{"an IPv6 client", "2001:db8:1:2::1", 200},
		{"another host of the same /64", "2001:db8:1:2:abcd::9", 422},
		{"a host of another /64", "2001:db8:1:3::1", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := s.do("POST", "/api/auth/password/forgot/nobody", "",
				"X-Forwarded-For", tt.client)
			if resp.StatusCode != tt.status {
				t.Errorf("forgot from %s = %d, want %d", tt.client, resp.StatusCode, tt.status)
			}
		})
	}
}

func TestFailuresPerAddress(t *testing.T) {
	s := newStack(t)
	s.load("limits {\n failures_per_address 3 1m\n }")
	_, token := tokenOf(t, s.forgot("admin", 1))
	bad := "/api/auth/password/reset/" + flip(token)
	for range 3 {
		s.expect("POST", bad, resetBody("N3w-pass-word"), 422, textUnprocessed)
	}
	for _, tt := range []struct{ method, path, body string }{
		{"POST", bad, resetBody("N3w-pass-word")},
		{"DELETE", bad, ""},
		// a good token does not get through either while the address is blocked
		{"POST", "/api/auth/password/reset/" + token, resetBody("N3w-pass-word")},
	} {
		resp, body := s.do(tt.method, tt.path, tt.body)
		if resp.StatusCode != 429 || body != textTooMany {
			t.Errorf("%s over the limit = %d %q, want 429 %q", tt.method, resp.StatusCode,
				body, textTooMany)
		}
		retryAfter(t, resp.Header.Get("Retry-After"), 19, 20)
	}
	resp, _ := s.do("GET", "/password-reset/"+token, "")
	if resp.StatusCode != 429 {
		t.Errorf("page over the limit = %d, want 429", resp.StatusCode)
	}
	if n := s.hub.PasswordSets("admin"); n != 0 {
		t.Errorf("password sets = %d, want 0", n)
	}
}

func TestTokenBurnsAfterRefusedPasswords(t *testing.T) {
	s := newStack(t)
	s.load("limits {\n failures_per_token 2\n }")
	_, token := tokenOf(t, s.forgot("admin", 1))
	path := "/api/auth/password/reset/" + token
	s.expect("POST", path, resetBody("weak"), 422, textWeakPass)
	s.expect("POST", path, resetBody("weak"), 422, textWeakPass)
	s.expect("POST", path, resetBody("N3w-pass-word"), 422, textUnprocessed)
}

func TestMailBudgetPerUserIsSilentAndSurvivesRestart(t *testing.T) {
	s := newStack(t)
	cfg := "limits {\n mails_per_user 1 1h\n }"
	s.load(cfg)
	s.forgot("admin", 1)
	for range 2 {
		resp, body := s.do("POST", "/api/auth/password/forgot/admin", "")
		if resp.StatusCode != 200 || body != textForgotOK {
			t.Fatalf("forgot over the user's budget = %d %q, want 200 %q", resp.StatusCode,
				body, textForgotOK)
		}
	}
	s.waitOutboxEmpty()
	// a stop closes the store; the budget is read back from it
	s.restart(cfg)
	s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
	s.waitOutboxEmpty()
	if n := len(s.resetMails()); n != 1 {
		t.Errorf("mails = %d, want 1", n)
	}
	s.forgot("carol", 2) // another user has a budget of her own
}

func TestGlobalMailCapDelaysMail(t *testing.T) {
	s := newStack(t)
	fake := fakeClock(t, time.Now())
	s.load("limits {\n mails_per_minute 2\n }")
	for _, u := range []string{"admin", "carol", "admin"} {
		s.expect("POST", "/api/auth/password/forgot/"+u, "", 200, textForgotOK)
	}
	s.waitMail(2)
	waitUntil(t, func() bool {
		jobs, _ := sharedOf(t, s.storage).store.Due(fake.now().Add(time.Hour), 10)
		return len(jobs) == 1 && jobs[0].NextAt.After(fake.now())
	})
	if n := len(s.resetMails()); n != 2 {
		t.Fatalf("mails = %d before the cap refills, want 2", n)
	}
	fake.advance(30 * time.Second)
	sharedOf(t, s.storage).worker.Wake()
	s.waitMail(3)
}

// TestLimiterMapsStayBounded hits the forgot limiter from many distinct
// addresses through a trusted proxy and checks the map keeps to its cap.
func TestLimiterMapsStayBounded(t *testing.T) {
	s := newStack(t)
	s.globalExtra = "servers {\n trusted_proxies static 127.0.0.1/8\n }"
	s.load("limits {\n tracked_addresses 500\n }")
	for i := range 5000 {
		addr := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		// a malformed name: the limiter counts it, nothing is queued
		resp, _ := s.do("POST", "/api/auth/password/forgot/%2F", "", "X-Forwarded-For", addr)
		if resp.StatusCode != 422 {
			t.Fatalf("forgot = %d, want 422", resp.StatusCode)
		}
	}
	var lim *limiters
	sh := sharedOf(t, s.storage)
	sh.mu.Lock()
	for k, l := range sh.limiters {
		if k.tracked == 500 {
			lim = l
		}
	}
	sh.mu.Unlock()
	if lim == nil {
		t.Fatal("no limiters with the configured cap")
	}
	if n := lim.forgot.Len(); n > 500 || n < 100 {
		t.Errorf("forgot limiter keys = %d, want at most 500 (and some)", n)
	}
}
