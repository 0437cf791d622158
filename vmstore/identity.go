package vmstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// An account's identity is its ID, not its name: a name can be deleted and
// created again (telephone numbers are reassigned), and what belonged to the
// old account (IMAP sessions, MWI subscriptions, held notifications, URLAUTH
// keys) must not pass to the new one. IDs come from a store-wide sequence
// (kAccountSeq, the last ID handed out) and are never reused, not even
// after the account with the highest ID is deleted.

// kAccountSeq holds the last account ID handed out (8 octets, big-endian).
const kAccountSeq = "I/account-id"

// idState serializes the handing out of account IDs (CreateAccount and
// assignAccountIDs): the sequence record is read and written in the
// account's transaction, and transactions of different names do not
// otherwise exclude each other (conflict detection is off).
type idState struct{ mu sync.Mutex }

// nextAccountID reads the sequence in w and records id+1 as handed out.
// The caller holds s.ids.mu.
func (w *wtx) nextAccountID() (uint64, error) {
	var last uint64
	it, err := w.txn.Get([]byte(kAccountSeq))
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
	case err != nil:
		return 0, err
	default:
		if err := it.Value(func(b []byte) error {
			if len(b) != 8 {
				return fmt.Errorf("vmstore: account id sequence record of %d octets", len(b))
			}
			last = binary.BigEndian.Uint64(b)
			return nil
		}); err != nil {
			return 0, err
		}
	}
	id := last + 1
	return id, w.set([]byte(kAccountSeq), be64(nil, id))
}

// assignAccountIDs gives every account record without an ID (records of
// stores from before IDs existed) a fresh one, in name order, and makes
// sure the sequence is above every ID in use. It is idempotent: a second
// run finds nothing to do, and a crash in the middle leaves records that
// the next run completes. It is migration 3 (version.go): stores created
// at that format or later give every account its ID at creation.
func assignAccountIDs(s *Store) error {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	var missing []string
	var maxID, seq uint64
	err := s.view(func(txn *badger.Txn) error {
		if it, err := txn.Get([]byte(kAccountSeq)); err == nil {
			if err := it.Value(func(b []byte) error {
				if len(b) == 8 {
					seq = binary.BigEndian.Uint64(b)
				}
				return nil
			}); err != nil {
				return err
			}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kAccount), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var a struct {
				ID uint64 `json:"id"`
			}
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &a) }); err != nil {
				return fmt.Errorf("vmstore: account record %q: %w", it.Item().Key(), err)
			}
			if a.ID == 0 {
				missing = append(missing, string(it.Item().Key()[len(kAccount):]))
			}
			maxID = max(maxID, a.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if maxID > seq {
		// IDs above the sequence (a record written without it): never
		// hand them out again.
		if err := s.blindUpdate(func(txn *badger.Txn) error {
			return txn.Set([]byte(kAccountSeq), be64(nil, maxID))
		}); err != nil {
			return err
		}
	}
	for _, name := range missing {
		// One transaction per account: a store of many accounts does not
		// meet Badger's transaction limit. No journal event: nothing
		// changed for a reader.
		_, err := s.update(name, func(w *wtx) error {
			var a Account
			if err := w.get(accountKey(name), &a); err != nil {
				return err
			}
			if a.ID != 0 {
				return nil
			}
			id, err := w.nextAccountID()
			if err != nil {
				return err
			}
			a.ID = id
			return w.put(accountKey(name), &a)
		})
		if err != nil {
			return fmt.Errorf("vmstore: assigning an id to account %q: %w", name, err)
		}
	}
	if len(missing) > 0 {
		s.log.Info("vmstore: account ids assigned", "accounts", len(missing))
	}
	return nil
}

// AccountID returns the ID of the account that now has the name (0 and
// ErrNotFound when there is none).
func (s *Store) AccountID(name string) (uint64, error) {
	a, err := s.getAccount(name)
	if err != nil {
		return 0, err
	}
	return a.ID, nil
}

// AccountByID returns the account with the ID, or ErrNotFound when it was
// deleted (IDs are never reused). It reads every account record: it is for
// rare lookups (a URLAUTH key, an administrator), not for every command.
func (s *Store) AccountByID(id uint64) (*Account, error) {
	if id == 0 {
		return nil, fmt.Errorf("%w: account id 0", ErrNotFound)
	}
	accts, err := s.ListAccounts()
	if err != nil {
		return nil, err
	}
	for i := range accts {
		if accts[i].ID == id {
			return &accts[i], nil
		}
	}
	return nil, fmt.Errorf("%w: account id %d", ErrNotFound, id)
}

// AccountDeletions counts the account deletions committed since Open. It
// changes as soon as a deletion is visible to readers, before the hub's
// OnAccountDeleted calls: a holder of an account identity that compares it
// before each operation, and checks AccountID when it changed, never acts
// for a deleted account, at the cost of one atomic load.
func (s *Store) AccountDeletions() uint64 { return s.deletions.Load() }

// fillAccountIDs sets the AccountID of the transaction's events that have
// none from the account record as the transaction sees it, so that every
// journaled event names the account identity it belongs to (a reader can
// tell an event of a deleted account from one of an account created again
// under the name).
func (w *wtx) fillAccountIDs() error {
	var user string
	var id uint64
	for i := range w.events {
		ev := &w.events[i]
		if ev.AccountID != 0 || ev.User == "" {
			continue
		}
		if ev.User != user || id == 0 {
			user, id = ev.User, 0
			it, err := w.txn.Get(accountKey(user))
			if errors.Is(err, badger.ErrKeyNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			var a struct {
				ID uint64 `json:"id"`
			}
			if err := it.Value(func(b []byte) error { return json.Unmarshal(b, &a) }); err != nil {
				return err
			}
			id = a.ID
		}
		ev.AccountID = id
	}
	return nil
}
