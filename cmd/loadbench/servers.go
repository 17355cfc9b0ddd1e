package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mpgate/password-reset/internal/hubsim"
)

// The stand-in hub's service account, as the module signs in with it.
const (
	serviceUser     = "mpgate"
	servicePassword = "svc-Secret-42"
)

// tokenKeyHex is the token key of every module under test, so that tokens
// seeded into a store before Caddy starts verify in it. 32 bytes.
const tokenKeyHex = "6d7067617465206c6f616462656e6368206b6579206f662033322062797465732e"

// userName is the name of the i-th user of the stand-in hub.
func userName(i int64) string { return "user" + strconv.FormatInt(i, 10) }

// listen serves h on a fresh loopback port.
func listen(h http.Handler) (addr string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() { _ = srv.Close() }, nil
}

// upstreamBody is what the upstream answers to everything: a small body, so
// that the proxy's own cost per request is as large a share as it gets.
var upstreamBody = []byte(strings.Repeat("mission portal says ok. ", 8) + "\n")

// upstream stands for Mission Portal's web server behind the proxy.
func upstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(upstreamBody)
	})
}

// hub returns the stand-in hub with users user1 to userN, each with an
// email address, and the service account.
func hub(users int64) *hubsim.Server {
	d := hubsim.Data{Settings: hubsim.Settings{MinPasswordLength: 8, PasswordComplexity: 2}}
	d.Users = make([]hubsim.User, 0, users+1)
	d.Users = append(d.Users, hubsim.User{
		ID: serviceUser, Password: servicePassword, Roles: []string{"admin"},
	})
	for i := int64(1); i <= users; i++ {
		name := userName(i)
		d.Users = append(d.Users, hubsim.User{
			ID: name, Password: "Start-pass-1", Email: name + "@example.test",
			Name: name, TimeZone: "UTC", Roles: []string{"reader"},
		})
	}
	return hubsim.New(d)
}

// sink is an SMTP server that takes every mail, counts it and keeps
// nothing, so that a hundred thousand mails cost the bench no memory.
type sink struct {
	srv  *smtp.Server
	ln   net.Listener
	mail atomic.Int64
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &sink{ln: ln}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return sinkSession{s}, nil
	}))
	s.srv.Domain = "sink.localhost"
	s.srv.AllowInsecureAuth = true
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) close() { _ = s.srv.Close() }

type sinkSession struct{ s *sink }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }

func (ss sinkSession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	ss.s.mail.Add(1)
	return err
}

// buildCaddy builds cmd/caddy into dir and returns the binary's path.
func buildCaddy(dir string) (string, error) {
	bin := filepath.Join(dir, "caddy")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building cmd/caddy (run from the repository's root): %w", err)
	}
	return bin, nil
}

// caddyProc is one Caddy under test, run as a child process.
type caddyProc struct {
	name  string
	addr  string
	admin string // Caddy's admin endpoint, for its heap profile
	dir   string
	cmd   *exec.Cmd
	done  chan error
}

// startCaddy writes the Caddyfile into dir and runs the binary on it,
// with its data and config directories in dir too, and waits until addr
// answers. admin is where the Caddyfile has Caddy's admin endpoint listen.
func startCaddy(bin, dir, name, addr, admin, caddyfile string) (*caddyProc, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(caddyfile), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run", "--config", cfg, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	p := &caddyProc{name: name, addr: addr, admin: admin, dir: dir, cmd: cmd,
		done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logFile.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			return nil, fmt.Errorf("%s exited at start (%v); see %s", name, err, logFile.Name())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.stop()
	return nil, fmt.Errorf("%s did not listen on %s in 30s", name, addr)
}

// stop ends the process, gently first.
func (p *caddyProc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// freePort returns a loopback address nothing listens on right now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if cond() {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond()
}
