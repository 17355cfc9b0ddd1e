package caddymodule

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// auditLogger is the name an operator routes the audit log by.
const auditLogger = "http.handlers.password_reset.audit"

// auditEvent is one line of the audit log.
type auditEvent map[string]any

func (e auditEvent) str(key string) string { s, _ := e[key].(string); return s }

// readAudit returns the events of an audit log file so far.
func readAudit(t *testing.T, path string) []auditEvent {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []auditEvent
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e auditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

// TestAuditLogHasOneEventPerDecision routes the audit logger to a file of
// its own with the global log blocks of Caddyfile.example, runs the watched
// flow, and checks every event with its fields, and that no token or
// password is in it.
func TestAuditLogHasOneEventPerDecision(t *testing.T) {
	dir := t.TempDir()
	path, mainLog := filepath.Join(dir, "audit.log"), filepath.Join(dir, "caddy.log")
	audit := regexp.MustCompile(`output file \S+`).ReplaceAllString(
		exampleBlock(t, "\tlog audit {"), "output file "+path)
	main := strings.Replace(exampleBlock(t, "\tlog default {"), "{",
		"{\n output file "+mainLog, 1)
	s := newWatchedStack(t, audit+"\n"+main)
	tokens := watchedFlow(t, s)

	// what each event must say: its message, user and reason or limiter
	want := []string{
		"requested admin", "requested nobody", "requested ldapbob", "requested alice",
		"requested admin", "requested carol",
		"sent admin reset", "sent admin reset", "sent admin changed", "sent carol reset",
		"suppressed nobody reset unknown_user", "suppressed ldapbob reset external",
		"suppressed alice reset no_email",
		"rejected admin password_refused", "rejected unknown_token", "rejected unknown_token",
		"redeemed admin", "invalidated admin",
		"throttled admin forgot_per_address", "throttled failures_per_address",
	}
	var events []auditEvent
	waitUntil(t, func() bool {
		events = readAudit(t, path)
		sent := 0
		for _, e := range events {
			if e["msg"] == "sent" {
				sent++
			}
		}
		return sent == 4
	})
	got := map[string]int{}
	failures := 0
	for _, e := range events {
		if e.str("logger") != auditLogger {
			t.Errorf("event %v from logger %q, want %q", e, e.str("logger"), auditLogger)
		}
		if e.str("client_ip") != watchedClient {
			t.Errorf("event %v has client_ip %q, want %q", e, e.str("client_ip"), watchedClient)
		}
		if e.str("msg") == "send failed" {
			failures++
			if e.str("user") != "carol" || e.str("reason") != "hub_unavailable" {
				t.Errorf("send failed event %v, want carol and hub_unavailable", e)
			}
			continue
		}
		words := []string{e.str("msg")}
		for _, k := range []string{"user", "mail", "reason", "limiter"} {
			if v := e.str(k); v != "" {
				words = append(words, v)
			}
		}
		got[strings.Join(words, " ")]++
	}
	for _, w := range want {
		got[w]--
	}
	for k, n := range got {
		if n != 0 {
			t.Errorf("audit event %q seen %+d times more than wanted", k, n)
		}
	}
	if failures < 1 {
		t.Error("no send failed event for the mail that waited for the hub")
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range append(tokens, watchedWeak, watchedGood, svcPass, "/password-reset/") {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds %q", secret)
		}
	}
	// the default log does not repeat the audit log
	if main, _ := os.ReadFile(mainLog); strings.Contains(string(main), auditLogger) {
		t.Errorf("the default log holds audit events:\n%s", main)
	}
}
