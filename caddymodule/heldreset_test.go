package caddymodule

import (
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hubHold keeps the hub's first password change waiting until the test
// lets it go, so that a test can act while a reset is in flight.
type hubHold struct {
	taken   atomic.Bool
	arrived chan struct{}
	release chan struct{}
	let     func()
}

// newHeldStack is newStack with the hub's first password change held, and
// setup, when not nil, changing the stack before Caddy first loads. The
// test must defer hold.let(), so that no handler is left waiting.
func newHeldStack(t *testing.T, setup func(*stack)) (*stack, *hubHold) {
	h := &hubHold{arrived: make(chan struct{}), release: make(chan struct{})}
	h.let = sync.OnceFunc(func() { close(h.release) })
	s := newStackWith(t, func(s *stack) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/user/") {
				if h.taken.CompareAndSwap(false, true) {
					close(h.arrived)
					<-h.release
				}
			}
			s.hub.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		s.hubURL = srv.URL
		if setup != nil {
			setup(s)
		}
	})
	return s, h
}

// startReset posts a reset in the background; the status arrives on the
// channel.
func (s *stack) startReset(token, password string) <-chan int {
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", s.base+"/api/auth/password/reset/"+token,
			strings.NewReader(resetBody(password)))
		resp, err := s.client.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	return done
}

// answer is the status a request got while a reset was held, and the one
// it should have got.
type answer struct {
	what      string
	got, want int
}

// checkHeldReset checks that the held reset succeeded, that the hub set
// the password once, and what each request made meanwhile got.
func (s *stack) checkHeldReset(status int, meanwhile ...answer) {
	s.t.Helper()
	if status != 200 {
		s.t.Errorf("reset held on the hub = %d, want 200", status)
	}
	for _, a := range meanwhile {
		if a.got != a.want {
			s.t.Errorf("%s during the reset = %d, want %d", a.what, a.got, a.want)
		}
	}
	if sets := s.hub.PasswordSets("admin"); sets != 1 {
		s.t.Errorf("password sets on the hub = %d, want 1", sets)
	}
}

// TestCancelWhileResetWaitsOnHub cancels a link whose reset waits on the
// hub while the module's clock runs on past any lease: the cancellation
// is refused, never reported as done for a request that then changes the
// password.
func TestCancelWhileResetWaitsOnHub(t *testing.T) {
	s, hold := newHeldStack(t, nil)
	defer hold.let()
	fake := fakeClock(t, time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC))
	link, token := tokenOf(t, s.forgot("admin", 1))

	reset := s.startReset(token, "N3w-pass-word")
	<-hold.arrived
	fake.advance(10 * time.Minute)
	cancel, _ := s.do("DELETE", "/api/auth/password/reset/"+token, "")
	page, _ := s.do("GET", strings.TrimPrefix(link, s.base), "")
	hold.let()
	status := <-reset

	s.checkHeldReset(status,
		answer{"cancel", cancel.StatusCode, 422},
		answer{"page (being changed)", page.StatusCode, 409})
	s.expect("DELETE", "/api/auth/password/reset/"+token, "", 422, textUnprocessed)
}

// TestNewerLinkWhileResetWaitsOnHub asks for a second link while the first
// one's reset waits on the hub: the second link can neither set the
// password a second time nor cancel, and the finished reset ends it.
func TestNewerLinkWhileResetWaitsOnHub(t *testing.T) {
	s, hold := newHeldStack(t, nil)
	defer hold.let()
	_, older := tokenOf(t, s.forgot("admin", 1))

	reset := s.startReset(older, "N3w-pass-word")
	<-hold.arrived
	_, newer := tokenOf(t, s.forgot("admin", 2))
	second, _ := s.do("POST", "/api/auth/password/reset/"+newer, resetBody("0ther-pass-word"))
	cancel, _ := s.do("DELETE", "/api/auth/password/reset/"+newer, "")
	hold.let()
	status := <-reset

	s.checkHeldReset(status,
		answer{"reset with the newer link", second.StatusCode, 422},
		answer{"cancel with the newer link", cancel.StatusCode, 422})
	if !s.hub.CheckPassword("admin", "N3w-pass-word") {
		t.Error("the hub does not hold the password of the finished reset")
	}
	s.expect("POST", "/api/auth/password/reset/"+newer, resetBody("Thr1d-pass-word"),
		422, textUnprocessed)
}

// TestReloadWhileResetWaitsOnHub rotates the token key by a reload while
// a reset waits on the hub: the store and its reservations outlive the old
// config, so the new config refuses to cancel the held link, and the reset
// of the old config ends the link under the key that now only verifies.
func TestReloadWhileResetWaitsOnHub(t *testing.T) {
	oldKey, newKey := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	s, hold := newHeldStack(t, nil)
	defer hold.let()
	s.load("token_key " + oldKey)
	_, token := tokenOf(t, s.forgot("admin", 1))

	reset := s.startReset(token, "N3w-pass-word")
	<-hold.arrived
	// the old config's server waits for the held request before the load
	// returns; the new config serves as soon as its handler has the keys
	reloaded := make(chan error, 1)
	go func() {
		reloaded <- loadCaddyfile(s.caddyfile("token_key " + newKey +
			"\nprevious_token_keys " + oldKey))
	}()
	sh := sharedOf(t, s.storage)
	for !sh.hasIssueKey(newKey) {
		select {
		case err := <-reloaded:
			t.Fatalf("reload ended before the new config took its keys: %v", err)
		default:
			runtime.Gosched()
		}
	}
	s.client.CloseIdleConnections()
	cancel := s.cancelDuringReload(token)
	hold.let()
	if err := <-reloaded; err != nil {
		t.Fatalf("reload during a reset: %v", err)
	}
	waitChecks(t)
	s.checkHeldReset(<-reset, answer{"cancel by the new config", cancel, 422})
	s.client.CloseIdleConnections()
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("0ther-pass-word"),
		422, textUnprocessed)
}

// TestRevokeWhileResetWaitsOnHub revokes a user from the admin endpoint
// while the user's reset waits on the hub: the operator is told to try
// again, not that the user's tokens ended, since the password is about to
// change; once the reset is done, the revocation goes through.
func TestRevokeWhileResetWaitsOnHub(t *testing.T) {
	addr := freeAddr(t)
	s, hold := newHeldStack(t, func(s *stack) { s.admin = addr })
	defer hold.let()
	admin := "http://" + addr
	_, token := tokenOf(t, s.forgot("admin", 1))

	reset := s.startReset(token, "N3w-pass-word")
	<-hold.arrived
	body := s.adminCall(admin, "POST", "/password_reset/revoke/admin", http.StatusConflict)
	hold.let()
	s.checkHeldReset(<-reset)
	if !strings.Contains(body, "try again") {
		t.Errorf("revoke during a reset answered %s, want to be told to try again", body)
	}
	s.adminCall(admin, "POST", "/password_reset/revoke/admin", http.StatusOK)
}

// TestStopWhileResetWaitsOnHub stops Caddy while a reset waits on the hub:
// the stop lets the reset finish, and after the next start its link stays
// used and the notice of the change, queued with the link's end, goes out.
func TestStopWhileResetWaitsOnHub(t *testing.T) {
	s, hold := newHeldStack(t, nil)
	defer hold.let()
	_, token := tokenOf(t, s.forgot("admin", 1))

	reset := s.startReset(token, "N3w-pass-word")
	<-hold.arrived
	sh := sharedOf(t, s.storage)
	stopped := make(chan error, 1)
	go func() { stopped <- stopCaddy() }()
	// Caddy stops its apps in no fixed order: the stop has begun once the
	// site's socket refuses connections, or once the store's users stop
	// its worker and wait for the reset to leave the store
	waitUntil(t, func() bool {
		select {
		case <-sh.worker.Stopping():
			return true
		default:
		}
		c, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	hold.let()
	s.checkHeldReset(<-reset)
	if err := <-stopped; err != nil {
		t.Fatalf("stop during a reset: %v", err)
	}

	s.client.CloseIdleConnections()
	s.load("")
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("0ther-pass-word"),
		422, textUnprocessed)
	s.waitOutboxEmpty()
	if n := len(s.notices()); n != 1 {
		t.Errorf("notices after the restart = %d, want 1", n)
	}
}

// cancelDuringReload cancels token and returns the status; a connection
// that a reload cuts (see the README) is tried again, as a client would.
func (s *stack) cancelDuringReload(token string) int {
	s.t.Helper()
	var err error
	for range 20 {
		var req *http.Request
		req, err = http.NewRequest("DELETE", s.base+"/api/auth/password/reset/"+token, nil)
		if err != nil {
			s.t.Fatal(err)
		}
		var resp *http.Response
		if resp, err = s.client.Do(req); err == nil {
			resp.Body.Close()
			return resp.StatusCode
		}
	}
	s.t.Fatalf("cancel during a reload: %v", err)
	return 0
}

// hasIssueKey reports whether the store issues tokens under the hex key.
func (s *shared) hasIssueKey(hexKey string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return hex.EncodeToString(s.keys.issue) == hexKey
}
