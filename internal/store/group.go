package store

import (
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// groupMax bounds the jobs written in one transaction.
const groupMax = 256

// errClosed answers a write that arrives after the store was closed.
var errClosed = errors.New("store closed")

// group commits the outbox jobs of concurrent callers together. With
// SyncWrites, Badger syncs its write-ahead log once per transaction, so a
// burst of requests written one transaction each waits on one fsync per
// request, one after another. Here, the jobs that arrive while a commit is
// on disk's way join the next one, and a caller returns only once its own
// job is synced: the durability of each request is unchanged.
type group struct {
	db   *badger.DB
	in   chan groupWrite // unbuffered: a job sent is a job taken
	quit chan struct{}
	done chan struct{}
}

type groupWrite struct {
	key, val []byte
	err      chan error
}

func startGroup(db *badger.DB) *group {
	g := &group{
		db:   db,
		in:   make(chan groupWrite),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go g.run()
	return g
}

// put writes one record and returns once it is synced.
func (g *group) put(key, val []byte) error {
	w := groupWrite{key: key, val: val, err: make(chan error, 1)}
	select {
	case g.in <- w:
		return <-w.err
	case <-g.quit:
		return errClosed
	}
}

// stop ends the committer; writes taken before it are finished first.
func (g *group) stop() {
	close(g.quit)
	<-g.done
}

func (g *group) run() {
	defer close(g.done)
	batch := make([]groupWrite, 0, groupMax)
	for {
		select {
		case w := <-g.in:
			batch = append(batch[:0], w)
		case <-g.quit:
			return
		}
		// the callers that queued up during the last commit are waiting
		// on the channel now: take them all, up to the cap
	gather:
		for len(batch) < groupMax {
			select {
			case w := <-g.in:
				batch = append(batch, w)
			default:
				break gather
			}
		}
		g.commit(batch)
	}
}

// commit writes a batch in one transaction, splitting it when Badger finds
// it too big, and tells every caller the outcome.
func (g *group) commit(batch []groupWrite) {
	err := g.db.Update(func(txn *badger.Txn) error {
		for _, w := range batch {
			if err := txn.Set(w.key, w.val); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, badger.ErrTxnTooBig) && len(batch) > 1 {
		half := len(batch) / 2
		g.commit(batch[:half])
		g.commit(batch[half:])
		return
	}
	for _, w := range batch {
		w.err <- err
	}
}
