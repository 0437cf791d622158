package vmstore

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Playback positions and server secrets.
//
// A playback position is where a listener stopped in a message: kept per
// account identity (not name: a name created again is another account),
// mailbox id and UID, so that the next playback session may resume there.
// Positions of an account that is deleted are unreachable (IDs are never
// reused) and cost 21 octets each.
//
// A server secret is a named random value created once per store and never
// shown outside it: keys that sign or encrypt bearer tokens (CHANNEL
// grants) derive from it, so a token outlives a restart but not the store.

const (
	kPlayback = "Y/"
	kSecret   = "I/secret/"
	// secretLock is the pseudo account whose write lock serializes the
	// creation of secrets (no account name can contain a NUL).
	secretLock = "\x00secret"
	// SecretSize is the size of a server secret.
	SecretSize = 32
)

func playbackKey(account, mb uint64, uid uint32) []byte {
	return be32(be64(be64([]byte(kPlayback), account), mb), uid)
}

// PlaybackPosition returns where account's last playback of message uid of
// mailbox mb stopped (0 when none was kept).
func (s *Store) PlaybackPosition(account, mb uint64, uid uint32) (time.Duration, error) {
	var pos time.Duration
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(playbackKey(account, mb, uid))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			if len(b) == 8 {
				pos = time.Duration(binary.BigEndian.Uint64(b))
			}
			return nil
		})
	})
	return pos, err
}

// SetPlaybackPosition keeps where user's (account's) playback of message
// uid of mailbox mb stopped; pos <= 0 forgets it. The account must still be
// the one that has the name.
func (s *Store) SetPlaybackPosition(user string, account, mb uint64, uid uint32, pos time.Duration) error {
	_, err := s.update(user, func(w *wtx) error {
		var a Account
		if err := w.get(accountKey(user), &a); err != nil {
			return err
		}
		if a.ID != account {
			return fmt.Errorf("%w: account %d", ErrNotFound, account)
		}
		if pos <= 0 {
			return w.del(playbackKey(account, mb, uid))
		}
		return w.set(playbackKey(account, mb, uid), be64(nil, uint64(pos)))
	})
	return err
}

// Secret returns the store's secret of the given name, creating it from
// crypto/rand the first time.
func (s *Store) Secret(name string) ([]byte, error) {
	if name == "" {
		return nil, fmt.Errorf("vmstore: empty secret name")
	}
	var out []byte
	_, err := s.update(secretLock, func(w *wtx) error {
		it, err := w.txn.Get([]byte(kSecret + name))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			out, err = it.ValueCopy(nil)
			if err != nil || len(out) == SecretSize {
				return err
			}
		}
		out = make([]byte, SecretSize)
		if _, err := rand.Read(out); err != nil {
			return err
		}
		return w.set([]byte(kSecret+name), out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
