package vmstore

import (
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// maxOpMessages bounds the messages one transaction changes. Badger refuses
// a transaction past a share of its memtable (ErrTxnTooBig: about 100,000
// entries or 10 MB with the default 64 MiB memtable), and a message changed
// writes several entries (record, modseq index, references, its part of the
// journal event). Operations on more messages (STORE, EXPUNGE, COPY/MOVE,
// \Recent, deleting a large mailbox or account) run as several
// transactions, each with its own modseq and events, in UID order.
const maxOpMessages = 4096

// inParts runs fn, one transaction each, on uids in parts of at most
// maxOpMessages, halving a part that Badger still finds too big (records
// with many long keywords). fn must have no effect when it fails.
func inParts(uids []uint32, fn func(part []uint32) error) error {
	for len(uids) > 0 {
		n := min(len(uids), maxOpMessages)
		for {
			err := fn(uids[:n])
			if errors.Is(err, badger.ErrTxnTooBig) && n > 1 {
				n /= 2
				continue
			}
			if err != nil {
				return err
			}
			break
		}
		uids = uids[n:]
	}
	return nil
}

// checkQuotaFor tells whether copying the messages uids of mailbox from
// would take user over quota (ErrOverQuota), before a copy split into
// several transactions starts.
func (s *Store) checkQuotaFor(user string, from uint64, uids []uint32) error {
	want := make(map[uint32]bool, len(uids))
	for _, u := range uids {
		want[u] = true
	}
	var bytes, n int64
	err := s.eachMessage(from, func(m *Message) {
		if want[m.UID] {
			bytes += m.Size
			n++
		}
	})
	if err != nil {
		return err
	}
	return s.view(func(txn *badger.Txn) error {
		var a Account
		if err := getJSON(txn, accountKey(user), &a); err != nil {
			return fmt.Errorf("%w: account %q", err, user)
		}
		if a.Quota.Bytes == 0 && a.Quota.Messages == 0 {
			return nil
		}
		u, err := (&wtx{s: s, txn: txn}).usage(user)
		if err != nil {
			return err
		}
		if a.Quota.exceeded(u, bytes, n) {
			return fmt.Errorf("%w: account %q", ErrOverQuota, user)
		}
		return nil
	})
}

// emptyMailboxes removes, in parts, the messages of the account's
// mailboxes (or of the one named), when they are too many to go in the
// single transaction that deletes the mailbox. Each part is an ordinary
// expunge, journaled as such.
func (s *Store) emptyMailboxes(user, only string) error {
	mbs, err := s.Mailboxes(user)
	if err != nil {
		return err
	}
	for _, mb := range mbs {
		if (only != "" && mb.Name != canonName(only)) || mb.Counts.Messages == 0 {
			continue
		}
		if _, err := s.expungeAs(user, mb.ID, nil, false, EventMessageExpunge); err != nil {
			return err
		}
	}
	return nil
}
