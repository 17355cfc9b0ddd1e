package store_test

import (
	"errors"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/store"
)

// A reserved token is refused as in use, which is still an invalid token to
// callers that do not ask; expired and used tokens are never "in use".
func TestInUse(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	iss, _ := s.Issue("admin", t0, time.Hour)
	if _, err := s.Reserve(iss.Token, t0, time.Minute); err != nil {
		t.Fatalf("Reserve() = %v", err)
	}
	for name, call := range map[string]func() error{
		"Check":      func() error { _, err := s.Check(iss.Token, t0); return err },
		"Reserve":    func() error { _, err := s.Reserve(iss.Token, t0, time.Minute); return err },
		"Invalidate": func() error { _, err := s.Invalidate(iss.Token, t0); return err },
	} {
		err := call()
		if !errors.Is(err, store.ErrInUse) || !errors.Is(err, store.ErrInvalidToken) {
			t.Errorf("%s() while reserved = %v, want ErrInUse and ErrInvalidToken", name, err)
		}
	}
	if _, err := s.Check(iss.Token, t0.Add(time.Hour)); errors.Is(err, store.ErrInUse) {
		t.Errorf("Check() at the expiry = %v, want not ErrInUse", err)
	}
	if err := s.Consume(iss.Token, "admin", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(iss.Token, t0); errors.Is(err, store.ErrInUse) ||
		!errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check() after Consume = %v, want ErrInvalidToken only", err)
	}
}
