// Command hubsim serves a stand-in for a CFEngine Mission Portal hub, so that
// mpgate can be tried and tested without a hub. It is not a hub: it serves
// only the user API that mpgate calls (see package hubsim), for the users of
// a JSON file such as users.example.json.
//
// Usage:
//
//	hubsim -listen 127.0.0.1:9080 -users users.json [-tls-cert cert.pem -tls-key key.pem]
//
// Without -tls-cert and -tls-key it serves plain HTTP. Passwords set through
// the API live in memory only; the users file is never written.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mpgate/password-reset/internal/hubsim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9080", "address to listen on")
	users := flag.String("users", "users.json", "JSON file of users and settings")
	cert := flag.String("tls-cert", "", "PEM certificate file; serves HTTPS with -tls-key")
	key := flag.String("tls-key", "", "PEM private key file for -tls-cert")
	flag.Parse()
	if err := run(*listen, *users, *cert, *key); err != nil {
		log.SetFlags(0)
		log.Fatalf("hubsim: %v", err)
	}
}

// run serves the stand-in until SIGINT or SIGTERM.
func run(listen, users, cert, key string) error {
	if (cert == "") != (key == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	data, err := hubsim.Load(users)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	srv := &http.Server{
		Handler:           hubsim.New(data),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() {
		if cert != "" {
			served <- srv.ServeTLS(ln, cert, key)
			return
		}
		served <- srv.Serve(ln)
	}()
	scheme := "http"
	if cert != "" {
		scheme = "https"
	}
	log.Printf("hubsim: stand-in hub for %d users at %s://%s/api/",
		len(data.Users), scheme, ln.Addr())
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	// let requests in flight finish, but not for long
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}
