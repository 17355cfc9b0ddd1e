package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// OutboxStats describes the outbox at one moment.
type OutboxStats struct {
	// Jobs is the number of jobs waiting.
	Jobs int
	// Oldest is when the oldest waiting job was requested; zero when the
	// outbox is empty.
	Oldest time.Time
}

// Outbox returns the number of waiting jobs and when the oldest of them was
// requested. It reads every job once, in one read-only transaction; the
// outbox holds only the jobs not yet done, so it stays small.
func (b *Badger) Outbox() (OutboxStats, error) {
	var st OutboxStats
	err := b.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(queuePrefix)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var job struct {
				RequestedAt time.Time `json:"requested_at"`
			}
			err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &job) })
			if err != nil {
				return err
			}
			st.Jobs++
			if st.Oldest.IsZero() || job.RequestedAt.Before(st.Oldest) {
				st.Oldest = job.RequestedAt
			}
		}
		return nil
	})
	if err != nil {
		return OutboxStats{}, fmt.Errorf("reading outbox: %w", err)
	}
	return st, nil
}
