package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Options configures a Badger store.
type Options struct {
	// Dir is the storage directory; it is created with mode 0700.
	Dir string
	// Key digests new tokens and verifies them. When empty, a key is
	// generated on first start and kept in Dir with mode 0600.
	Key []byte
	// PreviousKeys only verify tokens issued under them before the key
	// was rotated. Default: none.
	PreviousKeys [][]byte
	// Debugf receives Badger's own log lines; nil drops them.
	Debugf func(format string, args ...any)
	// GCInterval is how often the value log is garbage collected.
	// Default: 10 minutes.
	GCInterval time.Duration
}

// Badger is the Store kept in an embedded Badger database.
type Badger struct {
	db       *badger.DB
	dir      string
	keys     atomic.Pointer[keyring]
	group    *group
	leases   *leases
	stop     chan struct{}
	done     sync.WaitGroup
	closed   sync.Once
	closeErr error
}

var _ Store = (*Badger)(nil)

// Open opens (or creates) the store in opts.Dir.
func Open(opts Options) (*Badger, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating storage directory: %w", err)
	}
	bopts := badgerOptions(opts.Dir, opts.Debugf)
	if err := checkOptions(bopts); err != nil {
		return nil, err
	}
	if err := flushLogs(bopts); err != nil {
		return nil, err
	}
	db, err := openDB(bopts)
	if err != nil {
		return nil, err
	}
	b := &Badger{db: db, dir: opts.Dir, stop: make(chan struct{})}
	if err := b.SetKeys(opts.Key, opts.PreviousKeys); err != nil {
		_ = db.Close()
		return nil, err
	}
	b.group = startGroup(db)
	b.leases = newLeases()
	interval := opts.GCInterval
	if interval <= 0 {
		interval = 10 * time.Minute
	}
	b.done.Add(1)
	go b.gcLoop(interval)
	return b, nil
}

// Close stops the garbage collector and the committer of outbox jobs, and
// closes the database. Closing again returns the first close's outcome.
func (b *Badger) Close() error {
	b.closed.Do(func() {
		close(b.stop)
		b.done.Wait()
		b.group.stop()
		b.closeErr = b.db.Close()
	})
	return b.closeErr
}

func openDB(bopts badger.Options) (*badger.DB, error) {
	db, err := badger.Open(bopts)
	if err != nil {
		if strings.Contains(err.Error(), "Cannot acquire directory lock") {
			return nil, fmt.Errorf("opening %s: %w", bopts.Dir, ErrLocked)
		}
		return nil, fmt.Errorf("opening badger in %s: %w", bopts.Dir, err)
	}
	return db, nil
}

// replayMemTableSize is the largest memtable size the store was ever
// opened with (earlier versions used 4 MiB).
const replayMemTableSize = 4 << 20

// flushLogs replays the memtable logs that a crash left in the directory
// and flushes them into tables, with memtables of replayMemTableSize.
// Badger replays a log into a memtable of the size it is opened with,
// and ends the process when the log does not fit; a log written with
// larger memtables than ours must not meet ours. A clean close leaves no
// log, so this costs an extra open only after a crash.
func flushLogs(bopts badger.Options) error {
	logs, err := filepath.Glob(filepath.Join(bopts.Dir, "*.mem"))
	if err != nil || len(logs) == 0 {
		return err
	}
	db, err := openDB(bopts.WithMemTableSize(max(bopts.MemTableSize, replayMemTableSize)))
	if err != nil {
		return err
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("flushing memtable logs in %s: %w", bopts.Dir, err)
	}
	return nil
}

// badgerOptions keeps Badger small: its defaults take about 90 MB of heap
// and preallocate gigabyte value-log files, far beyond what a few thousand
// small records need. Every write is synced, because an accepted request
// must survive a crash.
//
// Each memtable is an arena of 1.3 times its size on the Go heap, and up
// to NumMemtables full ones wait for their flush beside the one being
// written; its log is a mapped file of twice its size. 2 MiB memtables
// keep that to a few MiB; the cost is more, smaller level-zero tables and
// compactions, not more fsyncs per write.
func badgerOptions(dir string, debugf func(string, ...any)) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{debugf: debugf}).
		WithSyncWrites(true).
		WithMemTableSize(2 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(1 << 20).
		WithBaseLevelSize(4 << 20).
		WithValueThreshold(1 << 10).
		WithValueLogFileSize(16 << 20).
		WithBlockCacheSize(0).
		WithIndexCacheSize(2 << 20).
		WithCompression(options.None).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithMetricsEnabled(false)
}

// checkOptions rejects option sets that Badger would refuse or panic on,
// so that a change to badgerOptions fails with an error, not a crash.
func checkOptions(o badger.Options) error {
	maxBatch := o.MemTableSize * 15 / 100
	switch {
	case o.NumCompactors == 1:
		return errors.New("badger options: one compactor is not allowed")
	case o.ValueThreshold > maxBatch || o.ValueThreshold > 1<<20:
		return fmt.Errorf("badger options: value threshold %d over %d", o.ValueThreshold, maxBatch)
	case o.ValueLogFileSize < 1<<20 || o.ValueLogFileSize >= 2<<30:
		return fmt.Errorf("badger options: value log file size %d out of range", o.ValueLogFileSize)
	case o.Compression != options.None && o.BlockCacheSize == 0:
		return errors.New("badger options: compression needs a block cache")
	case o.MemTableSize > replayMemTableSize:
		// flushLogs could not replay the logs of such memtables after a
		// crash once they were made smaller again
		return fmt.Errorf("badger options: memtable size %d over %d; raise replayMemTableSize",
			o.MemTableSize, replayMemTableSize)
	case o.NumMemtables < 1 || o.NumLevelZeroTables < 1:
		return errors.New("badger options: need at least one memtable and level-zero table")
	}
	return nil
}

// gcLoop reclaims value-log space left by deleted and expired records.
func (b *Badger) gcLoop(every time.Duration) {
	defer b.done.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			// one call rewrites at most one file; repeat while it finds work
			for b.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// badgerLogger routes Badger's log to one function, all at one level.
type badgerLogger struct{ debugf func(string, ...any) }

func (l badgerLogger) log(format string, args ...any) {
	if l.debugf != nil {
		l.debugf(strings.TrimSpace(format), args...)
	}
}

func (l badgerLogger) Errorf(f string, a ...any)   { l.log(f, a...) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log(f, a...) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log(f, a...) }
func (l badgerLogger) Debugf(f string, a ...any)   { l.log(f, a...) }
