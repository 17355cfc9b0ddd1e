package mailcatch_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/smtp"
	"strings"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/mailcatch"
)

// sample is a multipart/alternative message with a quoted-printable text
// part and a base64 HTML part, as mail clients send them.
const sample = "From: Sender <sender@example.com>\r\n" +
	"To: alice@example.com\r\n" +
	"Subject: =?utf-8?q?Caf=C3=A9_news?=\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=b1\r\n" +
	"\r\n" +
	"--b1\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Caf=C3=A9 is open. See https://example.com/menu?day=3Dmon.\r\n" +
	"<b>not markup</b>\r\n" +
	"--b1\r\n" +
	"Content-Type: text/html; charset=utf-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+Q2Fmw6kgaXMgPGk+b3BlbjwvaT4uPC9wPg==\r\n" +
	"--b1--\r\n"

func start(t *testing.T, opts mailcatch.Options) *mailcatch.Server {
	t.Helper()
	s, err := mailcatch.Start(opts)
	if err != nil {
		t.Fatalf("Start(%+v) = %v", opts, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func send(s *mailcatch.Server, auth smtp.Auth, to []string, msg string) error {
	return smtp.SendMail(s.Addr(), auth, "sender@example.com", to, []byte(msg))
}

func TestCatch(t *testing.T) {
	s := start(t, mailcatch.Options{})
	to := []string{"alice@example.com", "bob@example.com"}
	if err := send(s, nil, to, sample); err != nil {
		t.Fatalf("send = %v, want nil", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := s.Wait(ctx, 1)
	if err != nil {
		t.Fatalf("Wait(1) = %v, want nil", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Wait(1) got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.From != "sender@example.com" {
		t.Errorf("From = %q, want %q", m.From, "sender@example.com")
	}
	if got := strings.Join(m.To, ","); got != strings.Join(to, ",") {
		t.Errorf("To = %q, want %q", got, to)
	}
	if !strings.Contains(string(m.Data), "Subject: =?utf-8?q?Caf=C3=A9_news?=") {
		t.Errorf("Data lacks the subject header:\n%s", m.Data)
	}
	if m.Received.IsZero() {
		t.Error("Received is zero, want the time of arrival")
	}

	// what callers get is theirs to change
	m.Data[0] = 'X'
	m.To[0] = "mallory@example.com"
	again := s.Messages()
	if again[0].Data[0] != 'F' || again[0].To[0] != "alice@example.com" {
		t.Error("Messages() shares memory with an earlier result, want a copy")
	}
}

func TestWait(t *testing.T) {
	t.Run("wakes when the mail arrives", func(t *testing.T) {
		s := start(t, mailcatch.Options{})
		done := make(chan error, 1)
		go func() {
			_, err := s.Wait(context.Background(), 2)
			done <- err
		}()
		for range 2 {
			if err := send(s, nil, []string{"alice@example.com"}, sample); err != nil {
				t.Fatalf("send = %v, want nil", err)
			}
		}
		if err := <-done; err != nil {
			t.Errorf("Wait(2) = %v, want nil", err)
		}
	})
	t.Run("stops when the context is done", func(t *testing.T) {
		s := start(t, mailcatch.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Wait(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("Wait(canceled, 1) = %v, want context.Canceled", err)
		}
	})
	t.Run("stops when the server closes", func(t *testing.T) {
		s := start(t, mailcatch.Options{})
		done := make(chan error, 1)
		go func() {
			_, err := s.Wait(context.Background(), 1)
			done <- err
		}()
		if err := s.Close(); err != nil {
			t.Fatalf("Close() = %v, want nil", err)
		}
		if err := <-done; !errors.Is(err, mailcatch.ErrClosed) {
			t.Errorf("Wait(1) after Close = %v, want ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close() = %v, want nil", err)
		}
	})
	t.Run("returns at once when enough were caught", func(t *testing.T) {
		s := start(t, mailcatch.Options{})
		if msgs, err := s.Wait(context.Background(), 0); err != nil || len(msgs) != 0 {
			t.Errorf("Wait(0) = %d messages, %v, want 0, nil", len(msgs), err)
		}
	})
}

func TestAuth(t *testing.T) {
	s := start(t, mailcatch.Options{Username: "robot", Password: "s3cret"})
	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		auth smtp.Auth
		ok   bool
	}{
		{"no credentials are refused", nil, false},
		{"a wrong password is refused", smtp.PlainAuth("", "robot", "wrong", host), false},
		{"a wrong username is refused", smtp.PlainAuth("", "root", "s3cret", host), false},
		{"the right credentials are accepted", smtp.PlainAuth("", "robot", "s3cret", host), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Messages())
			err := send(s, tt.auth, []string{"alice@example.com"}, sample)
			if (err == nil) != tt.ok {
				t.Fatalf("send = %v, want ok %v", err, tt.ok)
			}
			want := before
			if tt.ok {
				want++
			}
			if got := len(s.Messages()); got != want {
				t.Errorf("caught %d messages, want %d", got, want)
			}
		})
	}
}

func TestSizeCap(t *testing.T) {
	s := start(t, mailcatch.Options{})
	big := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 11<<10)
	if err := send(s, nil, []string{"alice@example.com"}, big); err == nil {
		t.Error("send(11 MiB) = nil, want an error")
	}
	if got := len(s.Messages()); got != 0 {
		t.Errorf("caught %d messages, want 0", got)
	}
}

func TestInbox(t *testing.T) {
	s := start(t, mailcatch.Options{})
	first := strings.Replace(sample, "=?utf-8?q?Caf=C3=A9_news?=", "Older", 1)
	for _, msg := range []string{first, sample} {
		if err := send(s, nil, []string{"alice@example.com"}, msg); err != nil {
			t.Fatalf("send = %v, want nil", err)
		}
	}
	web := httptest.NewServer(s.Handler())
	defer web.Close()

	tests := []struct {
		name   string
		path   string
		status int
		want   []string // in this order
		csp    string
	}{
		{
			name: "the list shows the newest first", path: "/", status: http.StatusOK,
			want: []string{`<a href="m/1">Café news</a>`, "alice@example.com", `href="m/0">Older`},
			csp:  "default-src 'none'",
		},
		{
			name: "a message shows its decoded text with live links", path: "/m/1",
			status: http.StatusOK,
			want: []string{
				"<h1>Café news</h1>",
				`<a href="1/html">`,
				`Café is open. See <a href="https://example.com/menu?day=mon" ` +
					`rel="noreferrer">https://example.com/menu?day=mon</a>.`,
				"&lt;b&gt;not markup&lt;/b&gt;",
			},
			csp: "default-src 'none'",
		},
		{
			name: "the html part is served raw in a sandbox", path: "/m/1/html",
			status: http.StatusOK, want: []string{"<p>Café is <i>open</i>.</p>"},
			csp: "sandbox",
		},
		{name: "an unknown message is not found", path: "/m/2", status: http.StatusNotFound},
		{name: "a bad index is not found", path: "/m/x", status: http.StatusNotFound},
		{name: "a negative index is not found", path: "/m/-1/html", status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := http.Get(web.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.status {
				t.Fatalf("GET %s = %d, want %d", tt.path, res.StatusCode, tt.status)
			}
			rest := string(body)
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("GET %s lacks %q (in order) in:\n%s", tt.path, w, body)
				}
				rest = rest[i+len(w):]
			}
			csp := res.Header.Get("Content-Security-Policy")
			if !strings.HasPrefix(csp, tt.csp) {
				t.Errorf("GET %s CSP = %q, want prefix %q", tt.path, csp, tt.csp)
			}
		})
	}
}

// A stalled message is neither caught nor answered until Stall returns.
func TestStallHoldsTheSender(t *testing.T) {
	stalled, release := make(chan mailcatch.Message), make(chan struct{})
	s := start(t, mailcatch.Options{Stall: func(m mailcatch.Message) {
		stalled <- m
		<-release
	}})
	sent := make(chan error, 1)
	go func() { sent <- send(s, nil, []string{"alice@example.com"}, sample) }()
	m := <-stalled
	if !strings.Contains(string(m.Data), "Caf=C3=A9 is open") {
		t.Errorf("stalled message lacks its body:\n%s", m.Data)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("messages while stalled = %d, want 0", n)
	}
	close(release)
	if err := <-sent; err != nil {
		t.Fatalf("send = %v, want nil", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("messages after the stall = %d, want 1", n)
	}
}
