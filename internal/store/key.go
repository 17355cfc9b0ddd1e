package store

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mpgate/password-reset/internal/secret"
)

// keyFile is the name, inside the storage directory, of the generated key
// that digests tokens.
const keyFile = "token.key"

// loadOrCreateKey reads the digest key kept beside the database, creating
// it with mode 0600 on first start.
func loadOrCreateKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, keyFile)
	raw, err := os.ReadFile(path)
	if err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
		if err != nil || len(key) < 32 {
			return nil, fmt.Errorf("reading token key %s: not 32 or more hex-encoded bytes", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading token key: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("generating token key: %w", err)
	}
	// write to a temporary name first so a crash never leaves half a key
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing token key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("writing token key: %w", err)
	}
	return key, nil
}

// keyring holds the keys that digest tokens: the first issues new tokens,
// and every one of them verifies the tokens issued under it.
type keyring [][]byte

// SetKeys makes key the key that issues tokens from now on, and previous
// the keys that only verify tokens issued earlier. An empty key stands for
// the key generated in the storage directory, which is created if it is
// missing. Tokens issued under a key that is in neither no longer verify.
func (b *Badger) SetKeys(key []byte, previous [][]byte) error {
	if len(key) == 0 {
		var err error
		if key, err = loadOrCreateKey(b.dir); err != nil {
			return err
		}
	}
	ring := keyring{key}
	for _, k := range previous {
		if len(k) > 0 && !hmac.Equal(k, key) {
			ring = append(ring, k)
		}
	}
	b.keys.Store(&ring)
	return nil
}

// digest is the keyed digest under which a new token is stored.
func (b *Badger) digest(token secret.String) []byte {
	return digestWith((*b.keys.Load())[0], token)
}

// digests returns the digests of a token under every key that verifies,
// the issuing key's first.
func (b *Badger) digests(token secret.String) [][]byte {
	ring := *b.keys.Load()
	out := make([][]byte, len(ring))
	for i, k := range ring {
		out[i] = digestWith(k, token)
	}
	return out
}

func digestWith(key []byte, token secret.String) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(token.Reveal()))
	return m.Sum(nil)
}
