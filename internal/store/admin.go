package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The operator's view of the store: what waits in the outbox, and the
// upkeep an operator may ask for. None of it reads or returns a token.

// OutboxSummary describes the outbox at one moment.
type OutboxSummary struct {
	// Depth is the number of jobs.
	Depth int
	// Due is the number of jobs due at the moment asked about.
	Due int
	// Oldest is when the oldest waiting request was made; zero when the
	// outbox is empty.
	Oldest time.Time
	// NextAt is when the earliest job is due; zero when the outbox is
	// empty.
	NextAt time.Time
}

// OutboxJobs summarizes the outbox at now and returns up to list of its
// jobs, earliest due first.
func (b *Badger) OutboxJobs(now time.Time, list int) (OutboxSummary, []Job, error) {
	var sum OutboxSummary
	var jobs []Job
	err := b.db.View(func(txn *badger.Txn) error {
		return eachJob(txn, func(job Job) {
			if sum.Depth == 0 {
				sum.NextAt = job.NextAt
			}
			sum.Depth++
			if !job.NextAt.After(now) {
				sum.Due++
			}
			if sum.Oldest.IsZero() || job.RequestedAt.Before(sum.Oldest) {
				sum.Oldest = job.RequestedAt
			}
			if len(jobs) < list {
				jobs = append(jobs, job)
			}
		})
	})
	if err != nil {
		return OutboxSummary{}, nil, fmt.Errorf("reading outbox: %w", err)
	}
	return sum, jobs, nil
}

// MakeDue makes every job that waits past now due at now, keeping its
// count of attempts, and returns how many it moved. The caller must keep
// it from running while a job is being processed: a job moved under the
// worker would be stored twice.
func (b *Badger) MakeDue(now time.Time) (int, error) {
	moved := 0
	for {
		n, more, err := b.batch(func(txn *badger.Txn, room int) (int, bool, error) {
			return makeDue(txn, now, room)
		})
		moved += n
		if err != nil {
			return moved, fmt.Errorf("making jobs due: %w", err)
		}
		if !more {
			return moved, nil
		}
	}
}

func makeDue(txn *badger.Txn, now time.Time, room int) (int, bool, error) {
	var waiting []Job
	err := eachJob(txn, func(job Job) {
		if job.NextAt.After(now) {
			waiting = append(waiting, job)
		}
	})
	if err != nil {
		return 0, false, err
	}
	return upTo(len(waiting), room, func(i int) error {
		next := waiting[i]
		next.NextAt = now
		val, err := json.Marshal(next)
		if err != nil {
			return err
		}
		if err := txn.Delete(queueKey(waiting[i])); err != nil {
			return err
		}
		return txn.Set(queueKey(next), val)
	})
}

// UserEnded is what ending a user's requests found.
type UserEnded struct {
	// Token is true when the user had a live token, now revoked.
	Token bool
	// Requests is the number of the user's reset requests that waited in
	// the outbox, now removed.
	Requests int
}

// EndUser revokes every token of user and ends the user's requests made up
// to now, as a successful reset does, removing them from the outbox.
// Notices of a changed password still go out.
func (b *Badger) EndUser(user string, now time.Time) (UserEnded, error) {
	// a redemption in flight is about to change the password: ending the
	// user's tokens now would not stop it
	id, ok := b.leases.take(user)
	if !ok {
		return UserEnded{}, ErrInUse
	}
	defer b.leases.drop(user, id)
	var out UserEnded
	err := b.update(func(txn *badger.Txn) error {
		live, err := liveTokenOf(txn, user, now)
		out.Token = live
		if err != nil {
			return err
		}
		return endUser(txn, user, now)
	})
	// the marker alone ends the requests: a job the worker holds at the
	// moment is dropped by it; removing the others is tidiness
	for more := err == nil; more; {
		var n int
		n, more, err = b.batch(func(txn *badger.Txn, room int) (int, bool, error) {
			return dropRequests(txn, user, now, room)
		})
		out.Requests += n
	}
	if err != nil {
		return UserEnded{}, fmt.Errorf("ending user's requests: %w", err)
	}
	return out, nil
}

// dropRequests removes the reset requests of user made up to now.
func dropRequests(txn *badger.Txn, user string, now time.Time, room int) (int, bool, error) {
	var keys [][]byte
	err := eachJob(txn, func(job Job) {
		if job.User == user && job.Kind == "" && !job.RequestedAt.After(now) {
			keys = append(keys, queueKey(job))
		}
	})
	if err != nil {
		return 0, false, err
	}
	return deleteKeys(txn, keys, room)
}

// liveTokenOf reports whether user has a token that has not expired at now.
func liveTokenOf(txn *badger.Txn, user string, now time.Time) (bool, error) {
	item, err := txn.Get(userKey(user))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	d, err := item.ValueCopy(nil)
	if err != nil {
		return false, err
	}
	rec, err := getToken(txn, d)
	if errors.Is(err, ErrInvalidToken) {
		return false, nil
	}
	return err == nil && now.Before(rec.Expires), err
}

// Purged counts the entries Purge deleted.
type Purged struct {
	// Tokens is the number of expired tokens, and of users' entries that
	// named a token no longer there.
	Tokens int
	// Ended is the number of markers of ended requests that no waiting
	// request needs any more.
	Ended int
	// Budgets is the number of per-user mail budgets whose every mail is
	// older than the longest of budgets.
	Budgets int
}

// Purge deletes what can no longer matter at now: expired tokens, markers
// of ended requests older than every waiting request of their user, and
// mail budgets past the longest of budgets. Badger drops most of these on
// its own in time; Purge does it at once.
func (b *Badger) Purge(now time.Time, budgets []Budget) (Purged, error) {
	var keep time.Duration
	for _, bg := range budgets {
		keep = max(keep, bg.Per)
	}
	var out Purged
	for _, s := range []struct {
		count *int
		step  func(txn *badger.Txn, room int) (int, bool, error)
	}{
		{&out.Tokens, func(txn *badger.Txn, room int) (int, bool, error) {
			return purgeTokens(txn, now, room)
		}},
		{&out.Ended, purgeEnded},
		{&out.Budgets, func(txn *badger.Txn, room int) (int, bool, error) {
			return purgeBudgets(txn, now, keep, room)
		}},
	} {
		for more := true; more; {
			n, m, err := b.batch(s.step)
			*s.count += n
			if err != nil {
				return out, fmt.Errorf("purging: %w", err)
			}
			more = m
		}
	}
	return out, nil
}

// purgeTokens deletes expired tokens, and users' entries that name a token
// no longer there.
func purgeTokens(txn *badger.Txn, now time.Time, room int) (int, bool, error) {
	type dead struct {
		digest []byte
		user   string
	}
	var expired []dead
	err := eachValue(txn, tokenPrefix, func(key, val []byte) error {
		rec, err := decodeToken(val)
		if err != nil || !now.Before(rec.Expires) {
			expired = append(expired, dead{key[len(tokenPrefix):], rec.User})
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	n, more, err := upTo(len(expired), room, func(i int) error {
		return deleteToken(txn, expired[i].digest, expired[i].user)
	})
	if more || err != nil {
		return n, more, err
	}
	var dangling [][]byte
	err = eachValue(txn, userPrefix, func(key, val []byte) error {
		_, err := txn.Get(tokenKey(val))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			dangling = append(dangling, key)
		case err != nil:
			return err
		}
		return nil
	})
	if err != nil {
		return n, false, err
	}
	m, more, err := deleteKeys(txn, dangling, room-n)
	return n + m, more, err
}

// purgeEnded deletes the markers of ended requests that no waiting reset
// request needs: a marker ends only requests made up to its time, so it
// matters while such a request of its user is in the outbox.
func purgeEnded(txn *badger.Txn, room int) (int, bool, error) {
	earliest := map[string]time.Time{}
	err := eachJob(txn, func(job Job) {
		if job.Kind != "" {
			return
		}
		if at, ok := earliest[job.User]; !ok || job.RequestedAt.Before(at) {
			earliest[job.User] = job.RequestedAt
		}
	})
	if err != nil {
		return 0, false, err
	}
	var dead [][]byte
	err = eachValue(txn, endedPrefix, func(key, val []byte) error {
		user := string(key[len(endedPrefix):])
		at, waiting := earliest[user]
		if len(val) != 8 || !waiting ||
			at.After(time.Unix(0, int64(binary.BigEndian.Uint64(val)))) {
			dead = append(dead, key)
		}
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return deleteKeys(txn, dead, room)
}

// purgeBudgets deletes the mail budgets of users whose every mail was sent
// keep or longer before now.
func purgeBudgets(txn *badger.Txn, now time.Time, keep time.Duration, room int) (int, bool, error) {
	var dead [][]byte
	err := eachValue(txn, budgetPrefix, func(key, val []byte) error {
		var sent []time.Time
		if json.Unmarshal(val, &sent) != nil {
			dead = append(dead, key)
			return nil
		}
		for _, t := range sent {
			if now.Sub(t) < keep {
				return nil
			}
		}
		dead = append(dead, key)
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	return deleteKeys(txn, dead, room)
}

// deleteKeys deletes up to room of keys and reports whether any are left.
func deleteKeys(txn *badger.Txn, keys [][]byte, room int) (int, bool, error) {
	return upTo(len(keys), room, func(i int) error { return txn.Delete(keys[i]) })
}

// upTo calls fn with each of the first room of n indexes, and reports how
// many it did and whether any are left.
func upTo(n, room int, fn func(i int) error) (int, bool, error) {
	for i := range n {
		if i == room {
			return i, true, nil
		}
		if err := fn(i); err != nil {
			return i, false, err
		}
	}
	return n, false, nil
}

// batchSize bounds the writes of one upkeep transaction, well below what
// Badger takes in one with the store's small memtables.
const batchSize = 250

// batch runs one step of an upkeep in a read-write transaction, with room
// for batchSize writes, again when a concurrent change touched what the
// step read. The step reports how many entries it changed and whether
// more are left for another transaction.
func (b *Badger) batch(step func(txn *badger.Txn, room int) (int, bool, error)) (int, bool, error) {
	var n int
	var more bool
	err := b.update(func(txn *badger.Txn) error {
		var err error
		n, more, err = step(txn, batchSize)
		return err
	})
	if err != nil {
		return 0, false, err
	}
	return n, more, nil
}

// eachJob calls fn with every job in the outbox, earliest due first.
func eachJob(txn *badger.Txn, fn func(Job)) error {
	return eachValue(txn, queuePrefix, func(_, val []byte) error {
		var job Job
		if err := json.Unmarshal(val, &job); err != nil {
			return err
		}
		fn(job)
		return nil
	})
}

// eachValue calls fn with a copy of every key under prefix and its value.
func eachValue(txn *badger.Txn, prefix string, fn func(key, val []byte) error) error {
	it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(prefix), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		val, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		if err := fn(item.KeyCopy(nil), val); err != nil {
			return err
		}
	}
	return nil
}
