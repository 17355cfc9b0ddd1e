package caddymodule

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	"github.com/mpgate/password-reset/internal/hubsim"
	"github.com/mpgate/password-reset/internal/mailcatch"
)

// hubPassEnv holds the service account's password in the tests, as a
// deployment would keep it out of the Caddyfile.
const hubPassEnv = "MPGATE_TEST_HUB_PASSWORD"

// The stand-in hub's users in every test.
const (
	adminPass = "Adm1n-start-pass"
	svcUser   = "mpgate"
	svcPass   = "svc-Secret-42"
)

func testUsers() hubsim.Data {
	return hubsim.Data{
		Users: []hubsim.User{
			{ID: "admin", Password: adminPass, Email: "admin@example.test",
				Name: "Hub Administrator", TimeZone: "Europe/Oslo", Roles: []string{"admin"}},
			{ID: "alice", Password: "Alice-pass-1", Roles: []string{"reader"}},
			{ID: "ldapbob", Password: "Bob-pass-123", Email: "bob@example.test",
				External: true, Roles: []string{"reader"}},
			{ID: "carol", Password: "Carol-pass-1", Email: "carol@example.test",
				Roles: []string{"reader"}},
			{ID: svcUser, Password: svcPass, Roles: []string{"admin"}},
			// names that try to smuggle headers and recipients into the mail
			{ID: `o'brien,"x"<y@evil.test>`, Password: "Obrien-pass-1",
				Email: "obrien@example.test", Name: "Eve\r\nBcc: attacker@evil.test",
				Roles: []string{"reader"}},
			{ID: "jos\u00e9", Password: "Jose-pass-123", Email: "jose@example.test",
				Roles: []string{"reader"}},
		},
		Settings: hubsim.Settings{MinPasswordLength: 8, PasswordComplexity: 2},
	}
}

// stack is a Caddy loaded in-process from a Caddyfile, in front of the
// stand-in hub over real HTTP, sending mail to a real SMTP server.
type stack struct {
	t       *testing.T
	hub     *hubsim.Server
	hubURL  string
	mail    *mailcatch.Server
	smtp    string // the address in the config; the catcher may not be there
	storage string
	base    string // http://127.0.0.1:port
	client  *http.Client
	// siteExtra goes into the site block, beside password_reset.
	siteExtra string
	// globalExtra goes into the global options block.
	globalExtra string
	// admin is the admin endpoint's address; "" turns it off.
	admin string
	// bind is the site's bind address. Default: 127.0.0.1.
	bind string

	hubMu    sync.Mutex
	hubPaths []string // method and escaped path of every call the hub got
}

// hubCalls returns the calls the hub got so far.
func (s *stack) hubCalls() []string {
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	return append([]string(nil), s.hubPaths...)
}

// newStack starts the hub stand-in and a mail catcher and loads Caddy.
func newStack(t *testing.T) *stack { return newStackWith(t, nil) }

// newStackWith is newStack with setup, when not nil, changing the stack
// before Caddy first loads.
func newStackWith(t *testing.T, setup func(*stack)) *stack {
	t.Helper()
	s := &stack{t: t, storage: t.TempDir(), client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(startHub(t, s).Close)
	s.startMail("127.0.0.1:0")
	s.smtp = s.mail.Addr()
	s.base = "http://" + freeAddr(t)
	if setup != nil {
		setup(s)
	}
	s.load("")
	t.Cleanup(func() {
		if err := caddy.Stop(); err != nil {
			t.Errorf("caddy.Stop() = %v", err)
		}
	})
	return s
}

// startHub starts the stand-in hub over real HTTP for the stack.
func startHub(t *testing.T, s *stack) *httptest.Server {
	t.Helper()
	s.hub = hubsim.New(testUsers())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hubMu.Lock()
		s.hubPaths = append(s.hubPaths, r.Method+" "+r.URL.EscapedPath())
		s.hubMu.Unlock()
		s.hub.ServeHTTP(w, r)
	}))
	s.hubURL = srv.URL
	return srv
}

func (s *stack) startMail(addr string) {
	s.t.Helper()
	m, err := mailcatch.Start(mailcatch.Options{Addr: addr})
	if err != nil {
		s.t.Fatalf("starting mail catcher: %v", err)
	}
	s.t.Cleanup(func() { _ = m.Close() })
	s.mail = m
}

// caddyfile returns the stack's Caddyfile; extra goes into the
// password_reset block.
func (s *stack) caddyfile(extra string) string {
	admin := s.admin
	if admin == "" {
		admin = "off"
	}
	return fmt.Sprintf(`{
	admin %[11]s
	%[9]s
}
http://:%[10]s {
	bind %[12]s
	password_reset {
		hub_url      %[2]s
		hub_user     %[3]s
		hub_password %[4]s
		public_url   %[1]s
		storage      %[5]s
		token_ttl    1h
		mail_retry   50ms 200ms 1h
		smtp {
			server %[6]s
			from   "Mission Portal <noreply@example.test>"
			tls    none
		}
		# loose limits; the tests of the limits set their own below
		limits {
			forgot_per_address   1000 1m
			failures_per_address 1000 1m
			mails_per_user       1000 1m
			mails_per_minute     1000
		}
		%[7]s
	}
	reverse_proxy %[2]s
	%[8]s
}
`, s.base, s.hubURL, svcUser, "{env."+hubPassEnv+"}", s.storage, s.smtp, extra, s.siteExtra, s.globalExtra,
		s.base[strings.LastIndex(s.base, ":")+1:], admin, cmp.Or(s.bind, "127.0.0.1"))
}

// load (re)loads Caddy with the stack's Caddyfile.
func (s *stack) load(extra string) {
	s.t.Helper()
	if err := loadCaddyfile(s.caddyfile(extra)); err != nil {
		s.t.Fatalf("loading Caddy: %v", err)
	}
	// the startup checks' calls to the hub must not mix with the test's
	waitChecks(s.t)
	// Caddy closes the old config's idle connections; a request already on
	// its way over one would fail with EOF
	s.client.CloseIdleConnections()
}

func loadCaddyfile(text string) error {
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(text), nil)
	if err != nil {
		return fmt.Errorf("adapting: %w", err)
	}
	return caddy.Load(cfg, true)
}

// do sends a request through Caddy and returns the response and its body.
func (s *stack) do(method, path, body string, hdr ...string) (*http.Response, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

// expect sends a request and checks its status and body.
func (s *stack) expect(method, path, body string, status int, text string) *http.Response {
	s.t.Helper()
	resp, got := s.do(method, path, body)
	if resp.StatusCode != status || (text != "" && got != text) {
		s.t.Fatalf("%s %s = %d %q, want %d %q", method, path, resp.StatusCode, got, status, text)
	}
	return resp
}

// forgot requests a reset for user and waits for the n-th mail.
func (s *stack) forgot(user string, n int) mailcatch.Message {
	s.t.Helper()
	s.expect("POST", "/api/auth/password/forgot/"+user, "", 200, textForgotOK)
	msgs := s.waitMail(n)
	return msgs[n-1]
}

// waitMail waits for n reset mails and returns the reset mails caught.
func (s *stack) waitMail(n int) []mailcatch.Message {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		msgs := s.resetMails()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for reset mail %d: caught %d", n, len(msgs))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// resetMails returns the reset mails caught so far, in order.
func (s *stack) resetMails() []mailcatch.Message { return s.caught(false) }

// notices returns the notices of a changed password caught so far.
func (s *stack) notices() []mailcatch.Message { return s.caught(true) }

func (s *stack) caught(notices bool) []mailcatch.Message {
	var out []mailcatch.Message
	for _, m := range s.mail.Messages() {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			s.t.Fatalf("caught mail does not parse: %v", err)
		}
		isNotice := msg.Header.Get("Subject") == "Your Mission Portal password was changed"
		if isNotice == notices {
			out = append(out, m)
		}
	}
	return out
}

// waitOutboxEmpty waits until the worker has finished every job.
func (s *stack) waitOutboxEmpty() {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if n := outboxDepth(s.t, s.storage); n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.t.Fatalf("outbox depth = %d after 15s, want 0", outboxDepth(s.t, s.storage))
}

func outboxDepth(t *testing.T, dir string) int {
	t.Helper()
	n, err := sharedOf(t, dir).store.Depth()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sharedOf returns the in-process shared state of a storage directory.
func sharedOf(t *testing.T, dir string) *shared {
	t.Helper()
	var sh *shared
	pool.Range(func(key, val any) bool {
		if key == dir {
			sh = val.(*shared)
		}
		return sh == nil
	})
	if sh == nil {
		t.Fatalf("no shared state for %s", dir)
	}
	return sh
}

var linkRE = regexp.MustCompile(`https?://[^\s"<>]+/password-reset/([A-Za-z0-9_-]{43})`)

// mailText returns the decoded text/plain part of a caught message.
func mailText(t *testing.T, m mailcatch.Message) (string, *mail.Message) {
	t.Helper()
	text, msg, err := readMailText(m)
	if err != nil {
		t.Fatal(err)
	}
	return text, msg
}

// readMailText is mailText for goroutines other than the test's own.
func readMailText(m mailcatch.Message) (string, *mail.Message, error) {
	msg, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
	if err != nil {
		return "", nil, fmt.Errorf("parsing mail: %w", err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return "", nil, fmt.Errorf("mail content type: %w", err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			return "", nil, fmt.Errorf("no text/plain part: %w", err)
		}
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			var r io.Reader = p
			if p.Header.Get("Content-Transfer-Encoding") == "quoted-printable" {
				r = quotedprintable.NewReader(p)
			}
			raw, _ := io.ReadAll(r)
			return strings.ReplaceAll(string(raw), "\r\n", "\n"), msg, nil
		}
	}
}

// tokenOf returns the link and the token of a reset mail.
func tokenOf(t *testing.T, m mailcatch.Message) (link, token string) {
	t.Helper()
	text, _ := mailText(t, m)
	match := linkRE.FindStringSubmatch(text)
	if match == nil {
		t.Fatalf("no reset link in mail:\n%s", text)
	}
	return match[0], match[1]
}

// freeAddr returns a loopback address with a port free at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// flip returns a well-formed token that differs from token in its last
// character.
func flip(token string) string {
	last := byte('A')
	if token[len(token)-1] == 'A' {
		last = 'B'
	}
	return token[:len(token)-1] + string(last)
}

func stopCaddy() error { return caddy.Stop() }

// restart stops Caddy, which closes the store, and loads it again.
func (s *stack) restart(extra string) {
	s.t.Helper()
	if err := caddy.Stop(); err != nil {
		s.t.Fatal(err)
	}
	s.client.CloseIdleConnections()
	s.load(extra)
}

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// fakeClock makes the module read the time from a test clock until the
// test ends.
func fakeClock(t *testing.T, start time.Time) *testClock {
	c := &testClock{t: start}
	f := c.now
	old := now.Swap(&f)
	t.Cleanup(func() { now.Store(old) })
	return c
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
