package store_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mpgate/password-reset/internal/store"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// A rotated key issues new tokens while the previous one still verifies
// the tokens issued under it, for every use of a token; once dropped, it
// verifies nothing.
func TestRotateKeys(t *testing.T) {
	oldKey, newKey := testKey(1), testKey(2)
	s, err := store.Open(store.Options{Dir: t.TempDir(), Key: oldKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	issue := func(user string) store.Issued {
		t.Helper()
		iss, err := s.Issue(user, t0, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return iss
	}
	checked, reserved, invalidated, revoked := issue("admin"), issue("alice"), issue("carol"), issue("dave")

	if err := s.SetKeys(newKey, [][]byte{oldKey}); err != nil {
		t.Fatal(err)
	}
	if user, err := s.Check(checked.Token, t0); err != nil || user != "admin" {
		t.Errorf("Check(old token) after rotation = %q, %v, want admin, nil", user, err)
	}
	res, err := s.Reserve(reserved.Token, t0)
	if err != nil {
		t.Fatalf("Reserve(old token) after rotation = %v", err)
	}
	if err := s.Release(res, true, 5); err != nil {
		t.Fatal(err)
	}
	if res, err = s.Reserve(reserved.Token, t0); err != nil {
		t.Fatalf("Reserve(old token) after Release = %v, want it usable again", err)
	}
	if err := s.Consume(res, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(reserved.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(old token) after Consume = %v, want ErrInvalidToken", err)
	}
	if user, err := s.Invalidate(invalidated.Token, t0); err != nil || user != "carol" {
		t.Errorf("Invalidate(old token) = %q, %v, want carol, nil", user, err)
	}
	if err := s.Revoke(revoked.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(revoked.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(old token) after Revoke = %v, want ErrInvalidToken", err)
	}

	fresh := issue("erin")
	if err := s.SetKeys(newKey, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(checked.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(old token) with the old key dropped = %v, want ErrInvalidToken", err)
	}
	if _, err := s.Check(fresh.Token, t0); err != nil {
		t.Errorf("Check(token issued after the rotation) = %v, want nil: the new key issued it", err)
	}
}

// Moving from the generated key to configured ones: the generated key,
// given as a previous key, keeps verifying; with no key configured again,
// the generated one issues once more.
func TestMoveFromGeneratedKey(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	defer s.Close()
	before, _ := s.Issue("admin", t0, time.Hour)
	raw, err := os.ReadFile(filepath.Join(dir, "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	generated, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetKeys(testKey(3), [][]byte{generated}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(before.Token, t0); err != nil {
		t.Errorf("Check(token under the generated key) = %v, want nil", err)
	}
	configured, _ := s.Issue("alice", t0, time.Hour)
	if err := s.SetKeys(nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Check(before.Token, t0); err != nil {
		t.Errorf("Check(token under the generated key) back on it = %v, want nil", err)
	}
	if _, err := s.Check(configured.Token, t0); !errors.Is(err, store.ErrInvalidToken) {
		t.Errorf("Check(token under a dropped key) = %v, want ErrInvalidToken", err)
	}
}
