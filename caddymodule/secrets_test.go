package caddymodule

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/mpgate/password-reset/internal/mailcatch"
)

// recorder keeps a dump of every response the client gets.
type recorder struct {
	mu    sync.Mutex
	dumps []string
	next  http.RoundTripper
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	dump, err := httputil.DumpResponse(resp, true)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.dumps = append(r.dumps, string(dump))
	r.mu.Unlock()
	return resp, nil
}

// TestNoSecretInLogsOrAnswers runs whole flows with Caddy logging at DEBUG
// and finds no token, password or credential in any log line, in the
// access log or in any answer.
func TestNoSecretInLogsOrAnswers(t *testing.T) {
	const smtpUser, smtpPass = "mailer", "Smtp-Secret-77"
	s := newStack(t)
	dir := t.TempDir()
	debugLog, accessLog := filepath.Join(dir, "debug.log"), filepath.Join(dir, "access.log")
	s.globalExtra = "log {\n output file " + debugLog + "\n level DEBUG\n }"
	block := exampleLogBlock(t)
	s.siteExtra = regexp.MustCompile(`output file \S+`).ReplaceAllString(block,
		"output file "+accessLog)
	// a mail server that wants credentials, so that they are in play
	m, err := mailcatch.Start(mailcatch.Options{Username: smtpUser, Password: smtpPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s.mail, s.smtp = m, m.Addr()
	rec := &recorder{next: http.DefaultTransport}
	s.client.Transport = rec
	// secrets come from placeholders, as the README tells: Caddy itself
	// logs its whole config at DEBUG
	t.Setenv("MPGATE_TEST_SMTP_PASSWORD", smtpPass)
	s.load("smtp {\n username " + smtpUser + "\n password {env.MPGATE_TEST_SMTP_PASSWORD}\n }")

	secrets := []string{svcPass, smtpPass, adminPass}
	passwords := []string{"weak", "Mismatch-1", "N3w-pass-word", "Fresh-pass-42"}
	secrets = append(secrets, passwords[1:]...)

	link, token := tokenOf(t, s.forgot("admin", 1))
	page := strings.TrimPrefix(link, s.base)
	s.do("GET", page, "")
	s.postForm(page, url.Values{"password": {passwords[1]}, "confirm": {"other"}})
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody(passwords[0]),
		422, textWeakPass)
	s.hub.SetDown(true)
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody(passwords[2]),
		422, textHubDown)
	s.hub.SetDown(false)
	s.postForm(page, url.Values{"password": {passwords[2]}, "confirm": {passwords[2]}})
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody(passwords[2]),
		422, textUnprocessed)
	_, token2 := tokenOf(t, s.forgot("admin", 2))
	s.expect("DELETE", "/api/auth/password/reset/"+token2, "", 202, textInvalidated)
	_, token3 := tokenOf(t, s.forgot("admin", 3))
	s.expect("POST", "/api/auth/password/reset/"+token3, resetBody(passwords[3]),
		200, textResetOK)
	// a passthrough call with the new password in Basic auth
	req, _ := http.NewRequest("GET", s.base+"/api/", nil)
	req.SetBasicAuth("admin", passwords[3])
	if resp, err := s.client.Do(req); err == nil {
		resp.Body.Close()
	}
	secrets = append(secrets, token, token2, token3, strings.TrimPrefix(page, "/password-reset/"))

	s.restart("")
	sources := map[string]string{"answers": strings.Join(rec.dumps, "\n")}
	for _, f := range []string{debugLog, accessLog} {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources[filepath.Base(f)] = string(raw)
	}
	if !strings.Contains(sources["debug.log"], "password_reset") {
		t.Fatal("the debug log holds nothing of the module: the test would prove nothing")
	}
	for name, text := range sources {
		for _, sec := range secrets {
			if strings.Contains(text, sec) {
				t.Errorf("%s holds the secret %.6s…", name, sec)
			}
		}
	}
}
