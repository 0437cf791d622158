package vmstore

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// MetadataEntry is an RFC 5464 entry such as "/private/comment" or
// "/private/vendor/lemonvox/notify/email". Mailbox id 0 holds the server
// (account-wide) entries.
type MetadataEntry struct {
	Name  string
	Value []byte
}

// ValidMetadataName checks an RFC 5464 s3.2 entry name: starts with
// /private/ or /shared/, no "//", no trailing "/", printable ASCII without
// '*' or '%'.
func ValidMetadataName(name string) bool {
	lower := strings.ToLower(name)
	if !strings.HasPrefix(lower, "/private/") && !strings.HasPrefix(lower, "/shared/") {
		return false
	}
	if strings.Contains(name, "//") || strings.HasSuffix(name, "/") || len(name) > 1024 {
		return false
	}
	for _, c := range name {
		if c < 0x21 || c > 0x7e || c == '*' || c == '%' {
			return false
		}
	}
	return true
}

// SetMetadata sets (value non-nil) or removes (value nil) entries of a
// mailbox (mbid 0 = account). Names are case-insensitive and stored lower
// case.
func (s *Store) SetMetadata(user string, mbid uint64, entries []MetadataEntry) error {
	for _, e := range entries {
		if !ValidMetadataName(e.Name) {
			return fmt.Errorf("%w: metadata entry %q", ErrInvalidName, e.Name)
		}
	}
	_, err := s.update(user, func(w *wtx) error {
		if ok, err := w.exists(accountKey(user)); err != nil || !ok {
			return fmt.Errorf("%w: account %q", ErrNotFound, user)
		}
		name := ""
		var modseq uint64
		if mbid != 0 {
			mb, err := w.mailboxByID(mbid)
			if err != nil || mb.User != user {
				return fmt.Errorf("%w: mailbox id %d", ErrNotFound, mbid)
			}
			name = mb.Name
			// Metadata changes are mailbox changes for CONDSTORE (RFC 7162
			// s3.1.2 with RFC 5464): one new modseq for the whole call.
			mb.HighestModSeq++
			modseq = mb.HighestModSeq
			if err := w.putMailbox(mb); err != nil {
				return err
			}
		}
		for _, e := range entries {
			k := metaKey(user, mbid, strings.ToLower(e.Name))
			var err error
			if e.Value == nil {
				err = w.del(k)
			} else {
				err = w.set(k, e.Value)
			}
			if err != nil {
				return err
			}
			w.emit(Event{Type: EventMetadataChange, User: user, MailboxID: mbid, Mailbox: name, Entry: strings.ToLower(e.Name), ModSeq: modseq})
		}
		return nil
	})
	return err
}

// Metadata returns the entries of a mailbox (mbid 0 = account) whose names
// start with prefix (lower case), sorted by name.
func (s *Store) Metadata(user string, mbid uint64, prefix string) ([]MetadataEntry, error) {
	var out []MetadataEntry
	err := s.view(func(txn *badger.Txn) error {
		base := metaPrefix(user, mbid)
		p := append(bytes.Clone(base), strings.ToLower(prefix)...)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, MetadataEntry{Name: string(it.Item().Key()[len(base):]), Value: v})
		}
		return nil
	})
	return out, err
}
