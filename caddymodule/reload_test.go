package caddymodule

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The load's client behaves as real clients do, and the site listens on a
// socket handed to Caddy, as systemd's socket activation does. What a
// reload costs a client, none of it the module's doing:
//
//   - Caddy's reload shuts the old server down, and a server that shuts
//     down closes its idle keep-alive connections; a request written on one
//     at that moment meets a closed connection. Every HTTP/1.1 server has
//     this race; clients retry idempotent requests after it, and Go's
//     transport also those with an Idempotency-Key header, which the load
//     sends.
//   - On its own, Caddy opens a new listening socket per config (with
//     SO_REUSEPORT) and closes the old one: Linux resets the connections
//     still queued on the old socket, unless net.ipv4.tcp_migrate_req is 1.
//     A socket shared by both configs, as here, keeps its queue.
//   - Go's HTTP server drops, unanswered, a request it reads on a fresh
//     connection once it is shutting down. Such a request never reached a
//     handler, but no transport retries a fresh connection, so the load
//     sends it once more, and counts it.
func loadClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }

// loadRecord collects what the load saw.
type loadRecord struct {
	mu       sync.Mutex
	failures []string
	accepted map[string]int // forgot accepted, by mailable address
	calls    int
	resent   int // requests dropped unanswered by a server shutting down
}

func (r *loadRecord) fail(format string, args ...any) {
	r.mu.Lock()
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// call sends one request and checks that its answer is one of want, given
// as "status body" or "status" alone; it returns the status.
func (r *loadRecord) call(c *http.Client, method, url, body string, want ...string) int {
	var resp *http.Response
	var err error
	for attempt := range 2 {
		req, rerr := http.NewRequest(method, url, strings.NewReader(body))
		if rerr != nil {
			r.fail("%s %s: %v", method, url, rerr)
			return 0
		}
		if method != "GET" {
			req.Header.Set("Idempotency-Key", rand.Text())
		}
		resp, err = c.Do(req)
		if attempt == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
			r.mu.Lock()
			r.resent++
			r.mu.Unlock()
			continue
		}
		break
	}
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	if err != nil {
		r.fail("%s %s: %s", method, redactPath(url), tokenRE.ReplaceAllString(err.Error(), "TOKEN"))
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	got := fmt.Sprintf("%d %s", resp.StatusCode, raw)
	for _, w := range want {
		if got == w || fmt.Sprint(resp.StatusCode) == w {
			return resp.StatusCode
		}
	}
	r.fail("%s %s = %q, want one of %q", method, redactPath(url), got, want)
	return resp.StatusCode
}

var tokenRE = regexp.MustCompile(`[A-Za-z0-9_-]{43}`)

// redactPath keeps tokens out of failure messages.
func redactPath(url string) string {
	if i := strings.Index(url, "/reset/"); i >= 0 {
		return url[:i] + "/reset/TOKEN"
	}
	return url
}

// TestReloadUnderLoad keeps passthrough calls and every reset call running
// from several goroutines while the config is reloaded ten times through
// Caddy's own config load: every answer must be one the API documents,
// never a transport error or a 5xx, and every request accepted for a user
// who can get mail must end in a mail.
func TestReloadUnderLoad(t *testing.T) {
	s := newStack(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	socket, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.Close() // the copy in socket keeps listening
	t.Cleanup(func() { _ = socket.Close() })
	s.base, s.bind = "http://"+ln.Addr().String(), fmt.Sprintf("fd/%d", socket.Fd())
	s.load("")
	c := loadClient()
	rec := &loadRecord{accepted: map[string]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(pause time.Duration, max int, fn func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < max; i++ {
				select {
				case <-stop:
					return
				case <-time.After(pause):
				}
				fn(i)
			}
		}()
	}
	forgot := "200 " + textForgotOK
	// the users who get mail, and some who do not: one forgot each time
	names := []struct{ path, address string }{
		{"carol", "carol@example.test"}, {"jos%C3%A9", "jose@example.test"},
		{"ldapbob", ""}, {"alice", ""}, {"", ""},
	}
	for g := range 2 {
		loop(2*time.Millisecond, 150, func(i int) {
			n := names[(i+g)%len(names)]
			path := n.path
			if path == "" {
				path = fmt.Sprintf("nobody-%d-%d", g, i)
			}
			code := rec.call(c, "POST", s.base+"/api/auth/password/forgot/"+path, "", forgot)
			if code == 200 && n.address != "" {
				rec.mu.Lock()
				rec.accepted[n.address]++
				rec.mu.Unlock()
			}
		})
	}
	// passthrough, to the hub, which wants credentials
	loop(time.Millisecond, 1000, func(int) { rec.call(c, "GET", s.base+"/api/", "", "401") })
	loop(time.Millisecond, 1000, func(int) { rec.call(c, "POST", s.base+"/api/", "{}", "401") })
	// bad tokens, and the answer to a token of the right shape that is unknown
	loop(2*time.Millisecond, 200, func(i int) {
		bad := s.base + "/api/auth/password/reset/" + strings.Repeat("A", 42) + fmt.Sprint(i%10)
		rec.call(c, "POST", bad, resetBody("N3w-pass-word"), "422 "+textUnprocessed)
		rec.call(c, "DELETE", bad, "", "422 "+textUnprocessed)
	})
	// a user who asks, gets the mail and resets or cancels, over and over
	cycles := make(chan int, 100)
	loop(0, 50, func(i int) {
		msgs, err := mailsTo(s, "admin@example.test")
		before := len(msgs)
		rec.call(c, "POST", s.base+"/api/auth/password/forgot/admin", "", forgot)
		deadline := time.Now().Add(15 * time.Second)
		for err == nil && len(msgs) <= before {
			if time.Now().After(deadline) {
				err = errors.New("no reset mail within 15s")
				break
			}
			time.Sleep(5 * time.Millisecond)
			msgs, err = mailsTo(s, "admin@example.test")
		}
		if err != nil {
			rec.fail("cycle %d: %v", i, err)
			return
		}
		path := s.base + "/api/auth/password/reset/" + msgs[len(msgs)-1]
		if i%2 == 0 {
			rec.call(c, "POST", path, resetBody(fmt.Sprintf("N3w-pass-word-%d", i)),
				"200 "+textResetOK)
		} else {
			rec.call(c, "DELETE", path, "", "202 "+textInvalidated)
		}
		cycles <- i
	})

	<-cycles // the load is under way
	for i := range 10 {
		time.Sleep(30 * time.Millisecond)
		if err := loadCaddyfile(s.caddyfile(fmt.Sprintf("token_ttl %dm", 60+i))); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
	}
	close(stop)
	wg.Wait()
	s.waitOutboxEmpty()

	for _, f := range rec.failures {
		t.Error(f)
	}
	if len(cycles) < 2 || len(rec.accepted) < 2 {
		t.Fatalf("%d reset cycles and mail for %d users during the reloads: the load did not run",
			len(cycles)+1, len(rec.accepted))
	}
	for address, n := range rec.accepted {
		tokens, err := mailsTo(s, address)
		if err != nil {
			t.Fatal(err)
		}
		// a request sent again was dropped unanswered, before any handler
		if got := len(tokens); got < n || got > n+rec.resent {
			t.Errorf("mails to %s = %d, want one for each of %d requests accepted", address, got, n)
		}

	}
	t.Logf("%d calls during 10 reloads, %d sent again after a server dropped them, "+
		"%d reset cycles, forgot accepted %v", rec.calls, rec.resent, len(cycles)+1, rec.accepted)
}

// mailsTo returns the tokens of the reset mails caught for an address. It
// may run in any goroutine.
func mailsTo(s *stack, address string) ([]string, error) {
	var tokens []string
	for _, m := range s.mail.Messages() {
		if len(m.To) != 1 || m.To[0] != address {
			continue
		}
		text, msg, err := readMailText(m)
		if err != nil {
			return nil, err
		}
		if msg.Header.Get("Subject") == "Your Mission Portal password was changed" {
			continue
		}
		match := linkRE.FindStringSubmatch(text)
		if match == nil {
			return nil, errors.New("no reset link in a reset mail")
		}
		tokens = append(tokens, match[1])
	}
	return tokens, nil
}
