package store

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// queuePrefix starts the outbox keys: "q/" + due time (8 bytes, big-endian
// Unix nanoseconds) + job ID. Keys sort by due time, so the due jobs are
// a prefix of the scan.
const queuePrefix = "q/"

// NewJobID returns a fresh random job ID.
func NewJobID() (string, error) {
	raw := make([]byte, 8)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generating job id: %w", err)
	}
	return hex.EncodeToString(raw), nil
}

func queueKey(job Job) []byte {
	k := make([]byte, 0, len(queuePrefix)+8+len(job.ID))
	k = append(k, queuePrefix...)
	k = binary.BigEndian.AppendUint64(k, uint64(job.NextAt.UnixNano()))
	return append(k, job.ID...)
}

// Enqueue implements Store.
func (b *Badger) Enqueue(job Job) error {
	val, err := json.Marshal(job)
	if err != nil {
		return err
	}
	// concurrent requests share one synced commit; see group
	if err := b.group.put(queueKey(job), val); err != nil {
		return fmt.Errorf("enqueueing job: %w", err)
	}
	return nil
}

// Due implements Store.
func (b *Badger) Due(now time.Time, max int) ([]Job, error) {
	var jobs []Job
	limit := queueKey(Job{NextAt: now.Add(time.Nanosecond)})
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(queuePrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid() && len(jobs) < max; it.Next() {
			item := it.Item()
			if string(item.Key()) > string(limit) {
				break
			}
			var job Job
			if err := item.Value(func(v []byte) error { return json.Unmarshal(v, &job) }); err != nil {
				return err
			}
			jobs = append(jobs, job)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading outbox: %w", err)
	}
	return jobs, nil
}

// NextDue implements Store.
func (b *Badger) NextDue() (time.Time, bool, error) {
	var at time.Time
	var ok bool
	err := b.db.View(func(txn *badger.Txn) error {
		opts := badger.IteratorOptions{Prefix: []byte(queuePrefix)}
		it := txn.NewIterator(opts)
		defer it.Close()
		it.Rewind()
		if !it.Valid() {
			return nil
		}
		k := it.Item().Key()[len(queuePrefix):]
		if len(k) < 8 {
			return nil
		}
		at, ok = time.Unix(0, int64(binary.BigEndian.Uint64(k))), true
		return nil
	})
	return at, ok, err
}

// Reschedule implements Store.
func (b *Badger) Reschedule(old, job Job) error {
	val, err := json.Marshal(job)
	if err != nil {
		return err
	}
	return b.update(func(txn *badger.Txn) error {
		if err := txn.Delete(queueKey(old)); err != nil {
			return err
		}
		return txn.Set(queueKey(job), val)
	})
}

// Done implements Store.
func (b *Badger) Done(job Job) error {
	return b.update(func(txn *badger.Txn) error { return txn.Delete(queueKey(job)) })
}

// Depth implements Store.
func (b *Badger) Depth() (int, error) {
	n := 0
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(queuePrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	return n, err
}
