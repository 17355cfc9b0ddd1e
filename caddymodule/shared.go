package caddymodule

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/mpgate/password-reset/internal/store"
	"github.com/mpgate/password-reset/internal/worker"
)

// pool holds one shared state per storage directory. A config reload
// provisions the new handlers before it cleans up the old ones, so the
// store stays open across the reload instead of failing on Badger's
// directory lock.
var pool = caddy.NewUsagePool()

// shared is what outlives a config: the store and the mail worker.
type shared struct {
	store  *store.Badger
	worker *worker.Worker

	mu       sync.Mutex
	members  []member     // live handlers, the newest last
	last     *worker.Deps // the newest ever registered, for a worker outliving them
	keys     tokenKeys    // the keys the store digests with
	start    sync.Once
	limiters map[limiterKey]*limiters

	stopSweep chan struct{}
	swept     sync.WaitGroup

	// gate keeps the store open while requests use it: each holds a read
	// lock, and Destruct takes the write lock before closing
	gate   sync.RWMutex
	closed bool
}

// member is what a live handler brings to the shared state.
type member struct {
	deps *worker.Deps
	keys tokenKeys
}

// enter admits a request to the store; it reports false once the store is
// closed. A request admitted must call leave.
func (s *shared) enter() bool {
	s.gate.RLock()
	if s.closed {
		s.gate.RUnlock()
		return false
	}
	return true
}

// leave ends what enter began.
func (s *shared) leave() { s.gate.RUnlock() }

// acquireShared returns the shared state of the storage directory dir,
// opening it on first use, and the pool key to release it with.
func acquireShared(dir string, keys tokenKeys, logger *zap.Logger) (*shared, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", fmt.Errorf("resolving %s: %w", dir, err)
	}
	val, _, err := pool.LoadOrNew(abs, func() (caddy.Destructor, error) {
		return openShared(abs, keys, logger)
	})
	if errors.Is(err, store.ErrLocked) {
		// Badger's own words name a lock file, not the cause
		return nil, "", fmt.Errorf("directory %s is in use by another Caddy; "+
			"give each Caddy a storage directory of its own", abs)
	}
	if err != nil {
		return nil, "", err
	}
	return val.(*shared), abs, nil
}

func openShared(dir string, keys tokenKeys, logger *zap.Logger) (*shared, error) {
	badgerLog := logger.Named("badger")
	st, err := store.Open(store.Options{
		Dir:          dir,
		Key:          keys.issue,
		PreviousKeys: keys.previous,
		Debugf: func(format string, args ...any) {
			badgerLog.Debug(fmt.Sprintf(format, args...))
		},
	})
	if err != nil {
		return nil, err
	}
	s := &shared{store: st, keys: keys, limiters: map[limiterKey]*limiters{}, stopSweep: make(chan struct{})}
	s.worker = worker.New(st, s.current, func() time.Time { return clock() })
	s.swept.Add(1)
	go s.sweepLoop()
	return s, nil
}

// limitersFor returns the limiters of a set of limits, the same ones for
// every config that has them, so that a reload keeps their counts.
func (s *shared) limitersFor(l Limits) *limiters {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := limiterKey{l.ForgotPerAddress, l.FailuresPerAddress, l.TrackedAddresses}
	lim, ok := s.limiters[key]
	if !ok {
		lim = newLimiters(l)
		s.limiters[key] = lim
	}
	return lim
}

// limiterKey is what sets the in-memory limiters apart.
type limiterKey struct {
	forgot, failures Rate
	tracked          int
}

// sweepInterval is how often idle keys leave the limiters.
const sweepInterval = time.Minute

func (s *shared) sweepLoop() {
	defer s.swept.Done()
	t := time.NewTicker(sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopSweep:
			return
		case <-t.C:
			s.mu.Lock()
			all := make([]*limiters, 0, len(s.limiters))
			for _, l := range s.limiters {
				all = append(all, l)
			}
			s.mu.Unlock()
			for _, l := range all {
				l.sweep(clock())
			}
		}
	}
}

// register makes deps the configuration the worker uses from now on, and
// keys the keys the store digests tokens with: a reload rotates them at
// once. It reports whether the keys changed.
func (s *shared) register(d *worker.Deps, keys tokenKeys) (changed bool, err error) {
	s.mu.Lock()
	changed, err = s.useKeys(keys)
	if err == nil {
		s.members = append(s.members, member{deps: d, keys: keys})
		s.last = d
	}
	s.mu.Unlock()
	if err != nil {
		return false, err
	}
	// the worker needs a configuration before its first job
	s.start.Do(s.worker.Start)
	s.worker.Wake()
	return changed, nil
}

// unregister forgets a handler's configuration; if a newer one failed to
// load and is cleaned up, the worker and the keys go back to the one still
// serving.
func (s *shared) unregister(d *worker.Deps) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, m := range s.members {
		if m.deps == d {
			s.members = append(s.members[:i], s.members[i+1:]...)
			break
		}
	}
	if len(s.members) == 0 {
		return nil
	}
	_, err := s.useKeys(s.members[len(s.members)-1].keys)
	return err
}

// useKeys makes the store digest with keys; s.mu must be held.
func (s *shared) useKeys(keys tokenKeys) (changed bool, err error) {
	if keys.equal(s.keys) {
		return false, nil
	}
	if err := s.store.SetKeys(keys.issue, keys.previous); err != nil {
		return false, err
	}
	s.keys = keys
	return true, nil
}

// current returns the configuration of the newest live handler.
func (s *shared) current() *worker.Deps {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.members) == 0 {
		return s.last
	}
	return s.members[len(s.members)-1].deps
}

// Destruct stops the worker, letting the send in flight finish (for up to
// worker.StopGrace), and closes the store. The pool calls it when the last
// handler lets go.
func (s *shared) Destruct() error {
	close(s.stopSweep)
	s.swept.Wait()
	// a worker starts with the first registration; without one it never ran
	if s.last != nil {
		s.worker.Stop()
	}
	s.gate.Lock()
	defer s.gate.Unlock()
	s.closed = true
	return s.store.Close()
}
