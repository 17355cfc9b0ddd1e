package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

type badgerOpts = badger.Options

func TestCheckOptions(t *testing.T) {
	good := badgerOptions(t.TempDir(), nil)
	if err := checkOptions(good); err != nil {
		t.Fatalf("checkOptions(our options) = %v, want nil", err)
	}
	bad := map[string]func(o *badgerOpts){
		"one compactor":               func(o *badgerOpts) { o.NumCompactors = 1 },
		"value threshold over batch":  func(o *badgerOpts) { o.ValueThreshold = o.MemTableSize },
		"tiny value log files":        func(o *badgerOpts) { o.ValueLogFileSize = 1 << 10 },
		"huge value log files":        func(o *badgerOpts) { o.ValueLogFileSize = 2 << 30 },
		"compression without a cache": func(o *badgerOpts) { o.Compression = options.Snappy },
		"no memtable":                 func(o *badgerOpts) { o.NumMemtables = 0 },
		"memtables past the replay":   func(o *badgerOpts) { o.MemTableSize = 8 << 20 },
	}
	for name, change := range bad {
		t.Run(name, func(t *testing.T) {
			o := good
			change(&o)
			if err := checkOptions(o); err == nil {
				t.Errorf("checkOptions(%s) = nil, want an error", name)
			}
		})
	}
}

// A memtable log that a crash left behind under the larger memtables of
// earlier versions holds more than one of ours; Open must replay it, not
// end the process, and keep every record in it.
func TestOpenReplaysLargerMemtableLog(t *testing.T) {
	dir := t.TempDir()
	db, err := badger.Open(badgerOptions(dir, nil).WithMemTableSize(replayMemTableSize))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	val := bytes.Repeat([]byte("v"), 100)
	for i := 0; i < n; i += 1000 {
		err := db.Update(func(txn *badger.Txn) error {
			for j := i; j < i+1000; j++ {
				if err := txn.Set(fmt.Appendf(nil, "x/%06d", j), val); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// the files as they are while the database is open are what a crash
	// leaves behind
	crashed := t.TempDir()
	copyFiles(t, dir, crashed)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	logs, _ := filepath.Glob(filepath.Join(crashed, "*.mem"))
	if len(logs) == 0 {
		t.Fatal("no memtable log left to replay")
	}

	s, err := Open(Options{Dir: crashed})
	if err != nil {
		t.Fatalf("Open(after a crash) = %v", err)
	}
	defer s.Close()
	got := 0
	err = s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("x/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			got++
		}
		return nil
	})
	if err != nil || got != n {
		t.Errorf("records after the replay = %d, %v; want %d", got, err, n)
	}
}

func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "LOCK" {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
