package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitChecks waits until no startup check is running.
func waitChecks(t *testing.T) {
	t.Helper()
	waitUntil(t, func() bool {
		checks.Lock()
		defer checks.Unlock()
		for _, st := range checks.m {
			if st.running {
				return false
			}
		}
		return true
	})
}

// logToFile makes the stack's Caddy log at INFO to a file, and returns it.
func logToFile(s *stack) string {
	file := filepath.Join(s.t.TempDir(), "caddy.log")
	s.globalExtra = "log {\n output file " + file + "\n level INFO\n }"
	return file
}

// logEntries returns the entries of a JSON log file with the message msg.
func logEntries(t *testing.T, file, msg string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var e map[string]any
		if json.Unmarshal(sc.Bytes(), &e) == nil && e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

// waitLog waits for the n-th entry with the message msg and returns it.
func waitLog(t *testing.T, file, msg string, n int) map[string]any {
	t.Helper()
	var got []map[string]any
	waitUntil(t, func() bool {
		got = logEntries(t, file, msg)
		return len(got) >= n
	})
	return got[n-1]
}

// noSecretIn fails the test when the file holds one of secrets.
func noSecretIn(t *testing.T, file string, secrets ...string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range secrets {
		if strings.Contains(string(raw), sec) {
			t.Errorf("the log holds the secret %q", sec)
		}
	}
}

// Caddy starts whatever the state of the hub and the SMTP server; a failed
// check says which part and what to look at, requests are accepted, and
// the mail goes out once the part is back.
func TestStartChecksWarnAndKeepServing(t *testing.T) {
	const wrongPass = "Wrong-svc-pass-7"
	tests := []struct {
		name   string
		break_ func(s *stack)
		mend   func(s *stack)
		failed string
		hint   string
		passed string
	}{
		{
			name:   "hub down",
			break_: func(s *stack) { s.hub.SetDown(true) },
			mend:   func(s *stack) { s.hub.SetDown(false) },
			failed: "hub check failed", hint: hintHubDown, passed: "smtp check passed",
		},
		{
			name:   "wrong hub credentials",
			break_: func(s *stack) { s.t.Setenv(hubPassEnv, wrongPass) },
			mend: func(s *stack) {
				s.t.Setenv(hubPassEnv, svcPass)
				s.load("")
			},
			failed: "hub check failed", hint: hintHubCredentials, passed: "smtp check passed",
		},
		{
			name:   "smtp down",
			break_: func(s *stack) { s.smtp = freeAddr(s.t) },
			mend:   func(s *stack) { s.startMail(s.smtp) },
			failed: "smtp check failed", hint: hintSMTP, passed: "hub check passed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logFile string
			s := newStackWith(t, func(s *stack) {
				logFile = logToFile(s)
				tt.break_(s)
			})
			warn := waitLog(t, logFile, tt.failed, 1)
			if msg, _ := warn["error"].(string); warn["level"] != "warn" || warn["hint"] != tt.hint ||
				msg == "" {
				t.Errorf("warning = %v, want level warn, hint %q and the error", warn, tt.hint)
			}
			if pass := waitLog(t, logFile, tt.passed, 1); pass["level"] != "info" {
				t.Errorf("%s logged at %v, want info", tt.passed, pass["level"])
			}
			s.expect("POST", "/api/auth/password/forgot/admin", "", 200, textForgotOK)
			tt.mend(s)
			s.waitMail(1)
			noSecretIn(t, logFile, svcPass, wrongPass)
		})
	}
}

// A check that passed stands for a while for every start with the same
// settings: a storm of reloads asks the hub once.
func TestStartChecksRunOncePerSettings(t *testing.T) {
	clk := fakeClock(t, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	var logFile string
	s := newStackWith(t, func(s *stack) { logFile = logToFile(s) })
	waitLog(t, logFile, "hub check passed", 1)
	waitLog(t, logFile, "smtp check passed", 1)
	for range 3 {
		clk.advance(time.Second)
		s.load("")
	}
	pings := func() int {
		n := 0
		for _, c := range s.hubCalls() {
			if c == "GET /api/" {
				n++
			}
		}
		return n
	}
	// which checks run is settled when Caddy has started
	if n := pings(); n != 1 {
		t.Errorf("the hub was checked %d times over 4 starts, want once", n)
	}
	if n := len(logEntries(t, logFile, "hub check passed")); n != 1 {
		t.Errorf("%d hub checks passed over 4 starts, want 1", n)
	}
	clk.advance(recheckAfter)
	s.load("")
	waitLog(t, logFile, "hub check passed", 2)
	if n := pings(); n != 2 {
		t.Errorf("the hub was checked %d times, want twice once the check is old", n)
	}
}
