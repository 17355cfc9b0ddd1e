package store

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/mpgate/password-reset/internal/secret"
)

// Key layout: "t/" + digest holds a tokenRecord (see encodeToken); "u/" + username holds the
// digest of that user's live token; "e/" + username holds when the user's
// requests were last ended, in Unix nanoseconds, big-endian.
const (
	tokenPrefix = "t/"
	userPrefix  = "u/"
	endedPrefix = "e/"
)

// TokenBytes is how many random bytes make a token.
const TokenBytes = 32

// TokenLen is the length of a token's text: TokenBytes in base64url
// without padding.
var TokenLen = base64.RawURLEncoding.EncodedLen(TokenBytes)

// cleanupGrace keeps expired records a little past their expiry so that a
// read at the expiry second still finds and refuses them by the record's
// own time, not by Badger's.
const cleanupGrace = time.Hour

type tokenRecord struct {
	User     string    `json:"user"`
	Expires  time.Time `json:"expires"`
	Reserved time.Time `json:"reserved,omitempty"`
	Failures int       `json:"failures,omitempty"`

	// purgeAt is Badger's own expiry of the record, kept on rewrite.
	purgeAt uint64
}

func tokenKey(d []byte) []byte    { return append([]byte(tokenPrefix), d...) }
func userKey(user string) []byte  { return []byte(userPrefix + user) }
func endedKey(user string) []byte { return []byte(endedPrefix + user) }

// NewToken returns a fresh random token.
func NewToken() (secret.String, error) {
	raw := make([]byte, TokenBytes)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating token: %w", err)
	}
	return secret.String(base64.RawURLEncoding.EncodeToString(raw)), nil
}

// Issue implements Store.
func (b *Badger) Issue(user string, now time.Time, ttl time.Duration) (Issued, error) {
	token, err := NewToken()
	if err != nil {
		return Issued{}, err
	}
	d := b.digest(token)
	rec := tokenRecord{User: user, Expires: now.Add(ttl)}
	val := encodeToken(rec)
	err = b.update(func(txn *badger.Txn) error {
		if err := revokeUser(txn, user); err != nil {
			return err
		}
		life := ttl + cleanupGrace
		if err := txn.SetEntry(badger.NewEntry(tokenKey(d), val).WithTTL(life)); err != nil {
			return err
		}
		return txn.SetEntry(badger.NewEntry(userKey(user), d).WithTTL(life))
	})
	if err != nil {
		return Issued{}, fmt.Errorf("issuing token: %w", err)
	}
	return Issued{Token: token, Expires: rec.Expires}, nil
}

// Revoke implements Store.
func (b *Badger) Revoke(token secret.String) error {
	return b.update(func(txn *badger.Txn) error {
		d, rec, err := b.find(txn, token)
		if errors.Is(err, ErrInvalidToken) {
			return nil
		}
		if err != nil {
			return err
		}
		return deleteToken(txn, d, rec.User)
	})
}

// Check implements Store.
func (b *Badger) Check(token secret.String, now time.Time) (string, error) {
	user, err := b.check(token, now)
	if err == nil && b.leases.busy(user) {
		return "", ErrInUse
	}
	return user, err
}

// check reads the user of a live token, whatever its lease.
func (b *Badger) check(token secret.String, now time.Time) (string, error) {
	var user string
	err := b.db.View(func(txn *badger.Txn) error {
		_, rec, err := b.liveToken(txn, token, now)
		user = rec.User
		return err
	})
	return user, err
}

// Reserve implements Store. The lease is held in memory (see leases).
func (b *Badger) Reserve(token secret.String, now time.Time) (Reservation, error) {
	user, err := b.check(token, now)
	if err != nil {
		return Reservation{}, err
	}
	id, ok := b.leases.take(user)
	if !ok {
		// another redemption of this user's tokens got there first
		return Reservation{}, ErrInUse
	}
	// the holder before may have used the token up between the two reads
	if _, err := b.check(token, now); err != nil {
		b.leases.drop(user, id)
		return Reservation{}, err
	}
	return Reservation{User: user, token: token, id: id}, nil
}

// Release implements Store. Only a failed submission is written: it counts
// towards burning the token.
func (b *Badger) Release(r Reservation, failed bool, maxFailures int) error {
	if !b.leases.holds(r.User, r.id) {
		return nil // let go already, or never held
	}
	defer b.leases.drop(r.User, r.id)
	if !failed {
		return nil
	}
	return b.update(func(txn *badger.Txn) error {
		d, rec, err := b.find(txn, r.token)
		if errors.Is(err, ErrInvalidToken) {
			return nil
		}
		if err != nil {
			return err
		}
		rec.Reserved = time.Time{}
		rec.Failures++
		if maxFailures > 0 && rec.Failures >= maxFailures {
			return deleteToken(txn, d, rec.User)
		}
		return putToken(txn, d, rec)
	})
}

// Consume implements Store.
func (b *Badger) Consume(r Reservation, now time.Time) error {
	return b.consume(r, now, nil)
}

// ConsumeAndEnqueue consumes the token as Consume does and records job in
// the same transaction: one synced commit instead of two, and the job
// exists exactly when the token's use does.
func (b *Badger) ConsumeAndEnqueue(r Reservation, now time.Time, job Job) error {
	val, err := json.Marshal(job)
	if err != nil {
		return err
	}
	return b.consume(r, now, func(txn *badger.Txn) error {
		return txn.Set(queueKey(job), val)
	})
}

// consume ends the user's tokens and requests, then runs also, if any, in
// the same transaction.
func (b *Badger) consume(r Reservation, now time.Time, also func(*badger.Txn) error) error {
	if !b.leases.holds(r.User, r.id) {
		return ErrInvalidToken
	}
	defer b.leases.drop(r.User, r.id)
	return b.update(func(txn *badger.Txn) error {
		d, _, err := b.find(txn, r.token)
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			return err
		}
		if err := endUser(txn, r.User, now); err != nil {
			return err
		}
		if also != nil {
			if err := also(txn); err != nil {
				return err
			}
		}
		if d == nil {
			return nil // gone already, with the rest of the user's tokens
		}
		return txn.Delete(tokenKey(d))
	})
}

// Invalidate implements Store.
func (b *Badger) Invalidate(token secret.String, now time.Time) (string, error) {
	user, err := b.check(token, now)
	if err != nil {
		return "", err
	}
	// a redemption in flight keeps the user's tokens; so does a second
	// invalidation
	id, ok := b.leases.take(user)
	if !ok {
		return "", ErrInUse
	}
	defer b.leases.drop(user, id)
	err = b.db.Update(func(txn *badger.Txn) error {
		d, _, err := b.liveToken(txn, token, now)
		if err != nil {
			return err
		}
		if err := endUser(txn, user, now); err != nil {
			return err
		}
		return txn.Delete(tokenKey(d))
	})
	if errors.Is(err, badger.ErrConflict) {
		return "", ErrInvalidToken
	}
	if err != nil {
		return "", err
	}
	return user, nil
}

// liveToken reads a token that can be used at now: present, not expired
// (refused from its expiry on), and not reserved by a redemption. It
// returns the digest the token is stored under.
func (b *Badger) liveToken(txn *badger.Txn, token secret.String, now time.Time) ([]byte, tokenRecord, error) {
	d, rec, err := b.find(txn, token)
	if err != nil {
		return nil, rec, err
	}
	if !now.Before(rec.Expires) {
		return nil, tokenRecord{}, ErrExpired
	}
	if now.Before(rec.Reserved) {
		return nil, tokenRecord{}, ErrInUse
	}
	return d, rec, nil
}

// find reads a token's record under the digest of each key that verifies,
// the issuing key's first, and returns the digest it is stored under.
func (b *Badger) find(txn *badger.Txn, token secret.String) ([]byte, tokenRecord, error) {
	for _, d := range b.digests(token) {
		rec, err := getToken(txn, d)
		if !errors.Is(err, ErrInvalidToken) {
			return d, rec, err
		}
	}
	return nil, tokenRecord{}, ErrInvalidToken
}

func getToken(txn *badger.Txn, d []byte) (tokenRecord, error) {
	var rec tokenRecord
	item, err := txn.Get(tokenKey(d))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return rec, ErrInvalidToken
	}
	if err != nil {
		return rec, err
	}
	err = item.Value(func(v []byte) error {
		rec, err = decodeToken(v)
		return err
	})
	rec.purgeAt = item.ExpiresAt()
	return rec, err
}

func putToken(txn *badger.Txn, d []byte, rec tokenRecord) error {
	e := badger.NewEntry(tokenKey(d), encodeToken(rec))
	e.ExpiresAt = rec.purgeAt
	return txn.SetEntry(e)
}

// deleteToken removes a token and, when it is its user's live one, the
// user's pointer to it.
func deleteToken(txn *badger.Txn, d []byte, user string) error {
	if err := txn.Delete(tokenKey(d)); err != nil {
		return err
	}
	item, err := txn.Get(userKey(user))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cur, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	if string(cur) == string(d) {
		return txn.Delete(userKey(user))
	}
	return nil
}

// Ended implements Store.
func (b *Badger) Ended(user string, requested time.Time) (bool, error) {
	var ended bool
	err := b.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(endedKey(user))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				ended = !requested.After(time.Unix(0, int64(binary.BigEndian.Uint64(v))))
			}
			return nil
		})
	})
	return ended, err
}

// endUser revokes the user's tokens and records now as the end of the
// user's requests so far. The record is one small key per user who ever
// finished a reset; it is kept, since an outbox job may wait for days.
func endUser(txn *badger.Txn, user string, now time.Time) error {
	if err := revokeUser(txn, user); err != nil {
		return err
	}
	return txn.Set(endedKey(user), binary.BigEndian.AppendUint64(nil, uint64(now.UnixNano())))
}

// revokeUser removes the user's live token and the pointer to it.
func revokeUser(txn *badger.Txn, user string) error {
	item, err := txn.Get(userKey(user))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	cur, err := item.ValueCopy(nil)
	if err != nil {
		return err
	}
	if err := txn.Delete(tokenKey(cur)); err != nil {
		return err
	}
	return txn.Delete(userKey(user))
}

// update runs fn in a read-write transaction, again when a concurrent
// transaction touched the same keys first. Only idempotent changes use it;
// Reserve and Invalidate must lose such a race instead.
func (b *Badger) update(fn func(txn *badger.Txn) error) error {
	var err error
	for range 5 {
		err = b.db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}
