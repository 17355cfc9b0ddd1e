package caddymodule

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestRotateTokenKeyByReload rotates the token key with reloads alone: the
// old link still resets while the old key only verifies, a new request gets
// a token under the new key, and once the old key leaves the config its
// tokens no longer verify.
func TestRotateTokenKeyByReload(t *testing.T) {
	oldKey, newKey := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	s := newStack(t)
	s.load("token_key " + oldKey)
	_, reset := tokenOf(t, s.forgot("admin", 1))
	_, kept := tokenOf(t, s.forgot("carol", 2))

	s.load("token_key " + newKey + "\nprevious_token_keys " + oldKey)
	s.expect("POST", "/api/auth/password/reset/"+reset, resetBody("N3w-pass-word"),
		200, textResetOK)
	_, fresh := tokenOf(t, s.forgot("admin", 3))

	s.load("token_key " + newKey)
	s.expect("POST", "/api/auth/password/reset/"+kept, resetBody("Carol-new-pass-1"),
		422, textUnprocessed)
	s.expect("DELETE", "/api/auth/password/reset/"+kept, "", 422, textUnprocessed)
	// issued under the new key, the fresh token outlives the old key
	s.expect("POST", "/api/auth/password/reset/"+fresh, resetBody("N3w-pass-word-2"),
		200, textResetOK)
}

// TestMoveFromGeneratedTokenKey follows the README's way from the key
// generated in the storage directory to configured keys: the generated key,
// named as a previous key with a file placeholder, keeps the live links.
func TestMoveFromGeneratedTokenKey(t *testing.T) {
	s := newStack(t)
	_, token := tokenOf(t, s.forgot("admin", 1))
	generated := filepath.Join(s.storage, "token.key")
	s.load("token_key " + strings.Repeat("ef", 32) +
		"\nprevious_token_keys {file." + generated + "}")
	s.expect("POST", "/api/auth/password/reset/"+token, resetBody("N3w-pass-word"),
		200, textResetOK)
}
