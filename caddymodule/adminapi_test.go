package caddymodule

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// newAdminStack starts a stack with Caddy's admin endpoint on a free
// loopback port, and returns the endpoint's base URL.
func newAdminStack(t *testing.T) (*stack, string) {
	t.Helper()
	addr := freeAddr(t)
	s := newStackWith(t, func(s *stack) { s.admin = addr })
	return s, "http://" + addr
}

// adminCall sends a request to Caddy's admin endpoint and checks the status.
func (s *stack) adminCall(admin, method, path string, want int) string {
	s.t.Helper()
	req, err := http.NewRequest(method, admin+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s = %d %s, want %d", method, path, resp.StatusCode, raw, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		s.t.Errorf("%s %s: Content-Type = %q, want application/json", method, path, ct)
	}
	return string(raw)
}

// adminStorages sends a call that succeeds and decodes each storage's part
// of the answer into a value of T.
func adminStorages[T any](s *stack, admin, method, path string) []T {
	s.t.Helper()
	var answer struct{ Storages []T }
	body := s.adminCall(admin, method, path, http.StatusOK)
	if err := json.Unmarshal([]byte(body), &answer); err != nil {
		s.t.Fatalf("%s %s: answer %s does not decode: %v", method, path, body, err)
	}
	return answer.Storages
}

// waitAttempts waits until the outbox holds n jobs, each tried once.
func (s *stack) waitAttempts(admin string, n int) {
	s.t.Helper()
	waitUntil(s.t, func() bool {
		v := adminStorages[outboxView](s, admin, "GET", "/password_reset/outbox?jobs=true")[0]
		tried := 0
		for _, j := range v.Jobs {
			if j.Attempts == 1 {
				tried++
			}
		}
		return tried == n && v.Depth == n
	})
}

func TestAdminOutboxAndRevoke(t *testing.T) {
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	fakeClock(t, start)
	s, admin := newAdminStack(t)
	s.hub.SetDown(true)

	views := adminStorages[outboxView](s, admin, "GET", "/password_reset/outbox")
	if len(views) != 1 || views[0].Storage != s.storage || views[0].Depth != 0 ||
		views[0].OldestAgeSeconds != nil || views[0].NextDueAt != nil {
		t.Fatalf("outbox of an idle gate = %+v, want one empty storage %s", views, s.storage)
	}

	// with the hub down, the requests fail once and wait: the clock
	// stands still
	for _, name := range []string{"admin", "carol", "jos%C3%A9"} {
		s.expect("POST", "/api/auth/password/forgot/"+name, "", 200, textForgotOK)
	}
	s.waitAttempts(admin, 3)
	body := s.adminCall(admin, "GET", "/password_reset/outbox", http.StatusOK)
	if strings.Contains(body, "carol") || strings.Contains(body, `"jobs"`) {
		t.Errorf("outbox without jobs=true = %s, want no users named", body)
	}
	v := adminStorages[outboxView](s, admin, "GET", "/password_reset/outbox")[0]
	if v.Depth != 3 || v.Due != 0 || v.OldestAgeSeconds == nil || *v.OldestAgeSeconds != 0 ||
		!v.NextDueAt.Equal(start.Add(50*time.Millisecond)) {
		t.Errorf("outbox = %+v, want 3 jobs, none due, the next at +50ms", v)
	}
	body = s.adminCall(admin, "GET", "/password_reset/outbox?jobs=1", http.StatusOK)
	if strings.Contains(strings.ToLower(body), "token") {
		t.Errorf("outbox lists a token: %s", body)
	}
	v = adminStorages[outboxView](s, admin, "GET", "/password_reset/outbox?jobs=1")[0]
	users := map[string]jobView{}
	for _, j := range v.Jobs {
		users[j.User] = j
	}
	if j := users["jos\u00e9"]; len(v.Jobs) != 3 || j.Kind != "reset" || j.Attempts != 1 ||
		!j.NextAt.Equal(start.Add(50*time.Millisecond)) {
		t.Errorf("jobs = %+v, want admin, carol and jos\u00e9, each tried once", v.Jobs)
	}

	type revoked struct {
		TokenRevoked  bool `json:"token_revoked"`
		RequestsEnded int  `json:"requests_ended"`
	}
	tests := []struct {
		name, seg string
		want      revoked
	}{
		{"another spelling of a name ends nothing", "jose%CC%81", revoked{}},
		{"the exact bytes end the request", "jos%C3%A9", revoked{RequestsEnded: 1}},
		{"a user without a token", "carol", revoked{RequestsEnded: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := adminStorages[revoked](s, admin, "POST", "/password_reset/revoke/"+tt.seg)
			if len(got) != 1 || got[0] != tt.want {
				t.Errorf("revoke/%s = %+v, want %+v", tt.seg, got, tt.want)
			}
		})
	}

	// the hub is back: retry makes admin's request due at once
	s.hub.SetDown(false)
	retried := adminStorages[struct {
		MadeDue int `json:"made_due"`
	}](s, admin, "POST",
		"/password_reset/retry")
	if len(retried) != 1 || retried[0].MadeDue != 1 {
		t.Fatalf("retry = %+v, want one job made due", retried)
	}
	_, token := tokenOf(t, s.waitMail(1)[0])
	s.waitOutboxEmpty()
	if n := len(s.resetMails()); n != 1 {
		t.Errorf("%d reset mails, want admin's alone: revoked requests are not mailed", n)
	}

	got := adminStorages[revoked](s, admin, "POST", "/password_reset/revoke/admin")
	if len(got) != 1 || got[0] != (revoked{TokenRevoked: true}) {
		t.Errorf("revoke/admin = %+v, want the token revoked", got)
	}
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		422, textUnprocessed)
}

func TestAdminPurge(t *testing.T) {
	start := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clk := fakeClock(t, start)
	s, admin := newAdminStack(t)
	s.adminCall(admin, "POST", "/password_reset/revoke/alice", http.StatusOK)
	clk.advance(time.Second)
	s.forgot("carol", 1)
	s.waitOutboxEmpty()

	// carol's token expires after the token_ttl of 1h; alice's ended
	// marker waits for no request; the mails are past every budget
	clk.advance(2 * time.Hour)
	type purged struct {
		ExpiredTokens int `json:"expired_tokens"`
		EndedMarkers  int `json:"ended_markers"`
		MailBudgets   int `json:"mail_budgets"`
	}
	want := purged{ExpiredTokens: 1, EndedMarkers: 1, MailBudgets: 1}
	if got := adminStorages[purged](s, admin, "POST", "/password_reset/purge"); len(got) != 1 ||
		got[0] != want {
		t.Errorf("purge = %+v, want %+v", got, want)
	}
	if got := adminStorages[purged](s, admin, "POST", "/password_reset/purge"); got[0] != (purged{}) {
		t.Errorf("purge again = %+v, want nothing left", got)
	}
}

func TestAdminRefusals(t *testing.T) {
	s, admin := newAdminStack(t)
	tests := []struct {
		name, method, path string
		want               int
		allow              string
	}{
		{"outbox takes GET only", "POST", "/password_reset/outbox", 405, "GET"},
		{"retry takes POST only", "GET", "/password_reset/retry", 405, "POST"},
		{"purge takes POST only", "DELETE", "/password_reset/purge", 405, "POST"},
		{"revoke takes POST only", "GET", "/password_reset/revoke/admin", 405, "POST"},
		{"an unknown call", "GET", "/password_reset/tokens", 404, ""},
		{"revoke without a name", "POST", "/password_reset/revoke/", 400, ""},
		{"a name with a slash", "POST", "/password_reset/revoke/a%2Fb", 400, ""},
		{"a name with NUL", "POST", "/password_reset/revoke/a%00b", 400, ""},
		{"a name of dots", "POST", "/password_reset/revoke/%2E%2E", 400, ""},
		{"a storage not open", "GET", "/password_reset/outbox?storage=" +
			url.QueryEscape(s.storage+"-other"), 404, ""},
		{"jobs not a boolean", "GET", "/password_reset/outbox?jobs=maybe", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, admin+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var answer struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Error == "" {
				t.Errorf("answer does not decode to an error: %v", err)
			}
			if resp.StatusCode != tt.want || resp.Header.Get("Allow") != tt.allow {
				t.Errorf("%s %s = %d, Allow %q, want %d, Allow %q", tt.method, tt.path,
					resp.StatusCode, resp.Header.Get("Allow"), tt.want, tt.allow)
			}
		})
	}
	got := adminStorages[outboxView](s, admin, "GET",
		"/password_reset/outbox?storage="+url.QueryEscape(s.storage))
	if len(got) != 1 || got[0].Storage != s.storage {
		t.Errorf("outbox of storage %s = %+v, want it alone", s.storage, got)
	}
}
