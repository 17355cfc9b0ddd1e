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
	res, err := s.Reserve(iss.Token, t0)
	if err != nil {
		t.Fatalf("Reserve() = %v", err)
	}
	wantInUse(t, s, iss.Token, t0)
	if _, err := s.Check(iss.Token, t0.Add(time.Hour)); errors.Is(err, store.ErrInUse) {
		t.Errorf("Check() at the expiry = %v, want not ErrInUse", err)
	}
	if err := s.Consume(res, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(iss.Token, t0); errors.Is(err, store.ErrInUse) ||
		!errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check() after Consume = %v, want ErrInvalidToken only", err)
	}
}
