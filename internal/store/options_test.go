package store

import (
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
