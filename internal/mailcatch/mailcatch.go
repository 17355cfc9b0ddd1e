// Package mailcatch is an SMTP server that keeps every message it receives in
// memory instead of delivering it. It is meant for tests and for local
// development only: it accepts any sender and any recipient, keeps mail until
// it is closed, and offers a small web inbox to read what it caught.
package mailcatch

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// maxMessageBytes caps the size of one message; larger ones are refused.
const maxMessageBytes = 10 << 20

// ErrClosed is returned by Wait when the server is closed before enough
// messages arrived.
var ErrClosed = errors.New("mail catcher closed")

// Message is one caught message as it arrived over SMTP.
type Message struct {
	// From is the envelope sender given in MAIL FROM.
	From string
	// To holds the envelope recipients given in RCPT TO, in order.
	To []string
	// Data is the message exactly as sent after DATA: headers and body.
	Data []byte
	// Received is when the message was accepted.
	Received time.Time
}

// Options configures a Server. The zero value listens on a random loopback
// port without authentication or TLS.
type Options struct {
	// Addr is the TCP address to listen on. Default: "127.0.0.1:0".
	Addr string
	// Username and Password, when either is set, make AUTH PLAIN with
	// exactly these credentials mandatory before MAIL FROM. Without
	// TLSConfig, AUTH is offered in cleartext. Default: no AUTH.
	Username, Password string
	// TLSConfig, when set, makes the server offer STARTTLS; AUTH is then
	// only offered after STARTTLS, as a real submission server would.
	TLSConfig *tls.Config
	// Stall, when set, is called with every message after its data was
	// read and before it is accepted: the sender waits for the answer to
	// DATA until Stall returns. Tests use it to hold a send in flight.
	// Default: none.
	Stall func(Message)
}

// Server is a running mail catcher. Its methods are safe for concurrent use.
type Server struct {
	opts   Options
	smtp   *smtp.Server
	ln     net.Listener
	served chan struct{} // closed when the serving goroutine returns

	mu      sync.Mutex
	msgs    []Message
	arrived chan struct{} // closed and replaced whenever a message arrives
	closed  chan struct{} // closed by Close
	once    sync.Once
}

// Start listens on opts.Addr at once and serves SMTP in a goroutine until
// Close is called.
func Start(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("starting mail catcher: %w", err)
	}
	s := &Server{
		opts:    opts,
		ln:      ln,
		served:  make(chan struct{}),
		arrived: make(chan struct{}),
		closed:  make(chan struct{}),
	}

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "mailcatch.localhost"
	srv.MaxMessageBytes = maxMessageBytes
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.TLSConfig = opts.TLSConfig
	srv.AllowInsecureAuth = opts.TLSConfig == nil
	// clients hanging up mid-session are normal here; keep test output clean
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.smtp = srv

	go func() {
		defer close(s.served)
		_ = srv.Serve(ln)
	}()
	return s, nil
}

// Addr returns the host:port the server is actually listening on.
func (s *Server) Addr() string {
	return s.ln.Addr().String()
}

// Messages returns a copy of every message caught so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyLocked()
}

// Wait blocks until at least n messages were caught and then returns all of
// them, oldest first. It returns early with ctx's error when ctx is done, or
// with ErrClosed when the server is closed.
func (s *Server) Wait(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.msgs) >= n {
			msgs := s.copyLocked()
			s.mu.Unlock()
			return msgs, nil
		}
		arrived := s.arrived
		s.mu.Unlock()

		select {
		case <-arrived:
		case <-s.closed:
			return nil, fmt.Errorf("waiting for %d messages: %w", n, ErrClosed)
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %d messages: %w", n, ctx.Err())
		}
	}
}

// Close stops listening, drops open connections and wakes every Wait. The
// caught messages stay readable. Closing twice is harmless.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.smtp.Close()
		// go-smtp only knows the listener once Serve ran; close it here too
		// so a Close right after Start cannot leave Serve blocked in Accept
		if lnErr := s.ln.Close(); lnErr != nil && !errors.Is(lnErr, net.ErrClosed) {
			err = errors.Join(err, lnErr)
		}
		<-s.served
	})
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("closing mail catcher: %w", err)
	}
	return nil
}

// message returns a copy of the i-th caught message.
func (s *Server) message(i int) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.msgs) {
		return Message{}, false
	}
	return cloneMessage(s.msgs[i]), true
}

func (s *Server) copyLocked() []Message {
	msgs := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		msgs[i] = cloneMessage(m)
	}
	return msgs
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	// wake every waiter; each one checks the count again
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func cloneMessage(m Message) Message {
	m.To = slices.Clone(m.To)
	m.Data = bytes.Clone(m.Data)
	return m
}

func (s *Server) newSession(*smtp.Conn) (smtp.Session, error) {
	return &session{srv: s}, nil
}

// session is one SMTP conversation. go-smtp calls its methods from the
// connection's goroutine only.
type session struct {
	srv    *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) authRequired() bool {
	return ss.srv.opts.Username != "" || ss.srv.opts.Password != ""
}

func (ss *session) needsAuth() bool {
	return ss.authRequired() && !ss.authed
}

// AuthMechanisms lists PLAIN when the server has credentials and nothing
// otherwise.
func (ss *session) AuthMechanisms() []string {
	if !ss.authRequired() {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks PLAIN credentials against the configured ones.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || !ss.authRequired() {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(_, username, password string) error {
		userOK := subtle.ConstantTimeCompare([]byte(username), []byte(ss.srv.opts.Username))
		passOK := subtle.ConstantTimeCompare([]byte(password), []byte(ss.srv.opts.Password))
		if userOK&passOK != 1 {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.needsAuth() {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.needsAuth() {
		return smtp.ErrAuthRequired
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if ss.needsAuth() {
		return smtp.ErrAuthRequired
	}
	// go-smtp enforces maxMessageBytes while we read
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: ss.from, To: slices.Clone(ss.to), Data: data}
	if stall := ss.srv.opts.Stall; stall != nil {
		stall(cloneMessage(m))
	}
	m.Received = time.Now()
	ss.srv.add(m)
	return nil
}

func (ss *session) Reset() {
	ss.from = ""
	ss.to = nil
}

func (ss *session) Logout() error {
	return nil
}

// interface guards
var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)
