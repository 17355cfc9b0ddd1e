package caddymodule

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

const examplePath = "../Caddyfile.example"

func TestExampleAdapts(t *testing.T) {
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(raw, nil)
	if err != nil {
		t.Fatalf("adapting Caddyfile.example: %v", err)
	}
	for _, w := range warnings {
		t.Errorf("adapting Caddyfile.example warns: %s", w.String())
	}
	if !strings.Contains(string(cfg), `"handler":"password_reset"`) {
		t.Error("Caddyfile.example has no password_reset handler")
	}
}

// TestExampleLogFilterHidesTokens runs the access-log block of
// Caddyfile.example in the test stack and checks that no token of a whole
// flow reaches the log file.
func TestExampleLogFilterHidesTokens(t *testing.T) {
	block := exampleLogBlock(t)
	logFile := filepath.Join(t.TempDir(), "access.log")
	block = regexp.MustCompile(`output file \S+`).ReplaceAllString(block, "output file "+logFile)

	s := newStack(t)
	s.siteExtra = block
	s.load("")
	link, token := tokenOf(t, s.forgot("admin", 1))
	page := strings.TrimPrefix(link, s.base)
	s.do("GET", page, "")
	s.do("GET", page+"?x=1", "")
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("weak"), 422, textWeakPass)
	_, token2 := tokenOf(t, s.forgot("admin", 2))
	s.expect("DELETE", "/api/auth/password/reset/"+token2, "", 202, textInvalidated)

	s.load("") // flushes and closes the log writer of the config above
	raw, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	log := string(raw)
	if !strings.Contains(log, "/password-reset/REDACTED") ||
		!strings.Contains(log, "/api/auth/password/reset/REDACTED") {
		t.Errorf("access log has no redacted URIs:\n%s", log)
	}
	for _, tok := range []string{token, token2} {
		if strings.Contains(log, tok) {
			t.Errorf("access log holds a token:\n%s", log)
		}
	}
}

// exampleLogBlock returns the site's log block of Caddyfile.example.
func exampleLogBlock(t *testing.T) string {
	t.Helper()
	return exampleBlock(t, "\tlog {")
}

// exampleBlock returns the first block of Caddyfile.example that starts
// with opening, to its closing brace.
func exampleBlock(t *testing.T, opening string) string {
	t.Helper()
	raw, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, opening)
	if start < 0 {
		t.Fatalf("Caddyfile.example has no block %q", opening)
	}
	depth := 0
	for i := start; i < len(text); i++ {
		switch text[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return text[start : i+1]
			}
		}
	}
	t.Fatalf("Caddyfile.example's block %q does not end", opening)
	return ""
}
