package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// budgetPrefix starts the keys of per-user mail budgets: "b/" + username
// holds the times of the mails sent to that user within the longest budget
// period.
const budgetPrefix = "b/"

// Budget is a number of mails per period.
type Budget struct {
	Events int
	Per    time.Duration
}

// MailAllowed implements Store.
func (b *Badger) MailAllowed(user string, now time.Time, budgets []Budget) (bool, error) {
	var sent []time.Time
	err := b.db.View(func(txn *badger.Txn) error {
		var err error
		sent, err = sentTimes(txn, user)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("reading mail budget: %w", err)
	}
	for _, bg := range budgets {
		n := 0
		for _, t := range sent {
			if now.Sub(t) < bg.Per {
				n++
			}
		}
		if n >= bg.Events {
			return false, nil
		}
	}
	return true, nil
}

// MailSent implements Store.
func (b *Badger) MailSent(user string, now time.Time, budgets []Budget) error {
	var keep time.Duration
	for _, bg := range budgets {
		keep = max(keep, bg.Per)
	}
	if keep <= 0 {
		return nil
	}
	return b.update(func(txn *badger.Txn) error {
		sent, err := sentTimes(txn, user)
		if err != nil {
			return err
		}
		kept := sent[:0]
		for _, t := range sent {
			if now.Sub(t) < keep {
				kept = append(kept, t)
			}
		}
		val, err := json.Marshal(append(kept, now))
		if err != nil {
			return err
		}
		return txn.SetEntry(badger.NewEntry([]byte(budgetPrefix+user), val).WithTTL(keep))
	})
}

func sentTimes(txn *badger.Txn, user string) ([]time.Time, error) {
	item, err := txn.Get([]byte(budgetPrefix + user))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var sent []time.Time
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &sent) })
	return sent, err
}
