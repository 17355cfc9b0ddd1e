package store

import "time"

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
	sum, _, err := b.OutboxJobs(time.Time{}, 0)
	return OutboxStats{Jobs: sum.Depth, Oldest: sum.Oldest}, err
}
