package vmstore

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Uses of bearer grants (CHANNEL playback URLs): how many sessions each
// grant has opened, durable, so that a restart does not give a used-up
// grant its uses back. G/<expires unix:8><grant id> holds the count
// (4 octets). Keys sort by expiry, so each call removes a few of the
// expired ones from the front: the table holds about the grants used in
// the last grant lifetime (an hour at most), 30 octets each.

const (
	kGrantUse = "G/"
	// grantUseLock is the pseudo account whose write lock serializes the
	// counting (no account name can contain a NUL).
	grantUseLock = "\x00grant-use"
	// grantUseSweep bounds the expired entries one call removes.
	grantUseSweep = 32
)

// ErrGrantUsedUp: the grant has opened as many sessions as it may.
var ErrGrantUsedUp = errors.New("vmstore: grant used up")

func grantUseKey(expires time.Time, id []byte) []byte {
	return append(be64([]byte(kGrantUse), uint64(max(expires.Unix(), 0))), id...)
}

// UseGrant counts one use of the grant id, valid until expires, that may
// be used maxUses times (at least once): ErrGrantUsedUp when it already
// was. The count is durable before UseGrant returns.
func (s *Store) UseGrant(id []byte, expires time.Time, maxUses int) error {
	maxUses = max(maxUses, 1)
	key := grantUseKey(expires, id)
	_, err := s.update(grantUseLock, func(w *wtx) error {
		if err := w.sweepGrantUses(); err != nil {
			return err
		}
		n := uint32(0)
		it, err := w.txn.Get(key)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := it.Value(func(b []byte) error {
				if len(b) == 4 {
					n = binary.BigEndian.Uint32(b)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if int64(n) >= int64(maxUses) {
			return ErrGrantUsedUp
		}
		return w.set(key, binary.BigEndian.AppendUint32(nil, n+1))
	})
	return err
}

// GrantUses returns how many times the grant was used (tests, admin).
func (s *Store) GrantUses(id []byte, expires time.Time) (int, error) {
	n := 0
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(grantUseKey(expires, id))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			if len(b) == 4 {
				n = int(binary.BigEndian.Uint32(b))
			}
			return nil
		})
	})
	return n, err
}

// sweepGrantUses removes up to grantUseSweep entries of grants expired
// before now.
func (w *wtx) sweepGrantUses() error {
	now := uint64(max(w.now.Unix(), 0))
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kGrantUse)})
	var old [][]byte
	for it.Rewind(); it.Valid() && len(old) < grantUseSweep; it.Next() {
		k := it.Item().Key()
		if len(k) < len(kGrantUse)+8 || binary.BigEndian.Uint64(k[len(kGrantUse):]) >= now {
			break
		}
		old = append(old, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range old {
		if err := w.del(k); err != nil {
			return err
		}
	}
	return nil
}
