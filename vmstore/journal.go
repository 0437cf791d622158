package vmstore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// EventType is an RFC 5423 message store event name.
type EventType string

// RFC 5423 s4 event types, plus MessageExpire for retention.
const (
	EventMessageNew          EventType = "MessageNew"
	EventMessageAppend       EventType = "MessageAppend"
	EventMessageExpire       EventType = "MessageExpire"
	EventMessageExpunge      EventType = "MessageExpunge"
	EventMessageRead         EventType = "MessageRead"
	EventMessageTrash        EventType = "MessageTrash"
	EventFlagsSet            EventType = "FlagsSet"
	EventFlagsClear          EventType = "FlagsClear"
	EventLogin               EventType = "Login"
	EventLogout              EventType = "Logout"
	EventMailboxCreate       EventType = "MailboxCreate"
	EventMailboxDelete       EventType = "MailboxDelete"
	EventMailboxRename       EventType = "MailboxRename"
	EventMailboxSubscribe    EventType = "MailboxSubscribe"
	EventMailboxUnSubscribe  EventType = "MailboxUnSubscribe"
	EventQuotaExceed         EventType = "QuotaExceed"
	EventQuotaWithin         EventType = "QuotaWithin"
	EventQuotaChange         EventType = "QuotaChange"
	EventAccountCreate       EventType = "vnd.lemonvox.AccountCreate"
	EventAccountDelete       EventType = "vnd.lemonvox.AccountDelete"
	EventMetadataChange      EventType = "vnd.lemonvox.MetadataChange"
	EventMailboxAccessChange EventType = "vnd.lemonvox.URLAuthReset"
)

// Event is one journal entry: a committed state change. Fields a given
// event type does not need are zero (and omitted from JSON).
type Event struct {
	Seq  uint64    `json:"seq"`
	Type EventType `json:"type"`
	Time time.Time `json:"time"`
	User string    `json:"user"`
	// AccountID is the identity (Account.ID) of the account the event
	// belongs to (0 in journals of earlier stores).
	AccountID uint64 `json:"accountId,omitempty"`

	MailboxID   uint64   `json:"mbid,omitempty"`
	Mailbox     string   `json:"mailbox,omitempty"`
	UIDValidity uint32   `json:"uidvalidity,omitempty"`
	OldMailbox  string   `json:"oldMailbox,omitempty"`
	OldMbID     uint64   `json:"oldMbid,omitempty"`
	OldUIDs     []uint32 `json:"oldUids,omitempty"` // COPY/MOVE source UIDs, parallel to UIDs

	UIDs     []uint32 `json:"uids,omitempty"`
	ModSeq   uint64   `json:"modseq,omitempty"`
	UIDNext  uint32   `json:"uidnext,omitempty"`
	Messages uint32   `json:"messages,omitempty"`
	Unseen   uint32   `json:"unseen,omitempty"`
	Flags    []string `json:"flags,omitempty"` // flags set/cleared (FlagsSet, FlagsClear, ...)
	// MsgFlags carries, per UID, the message's flags after the change, so that
	// a reader can update a flag cache without a lookup.
	MsgFlags  [][]string `json:"msgFlags,omitempty"`
	MsgModSeq []uint64   `json:"msgModseq,omitempty"`

	// Message details for MessageNew / MessageAppend of one message.
	Size     int64   `json:"size,omitempty"`
	Context  Context `json:"context,omitempty"`
	Duration float64 `json:"duration,omitempty"`
	Urgent   bool    `json:"urgent,omitempty"`
	From     string  `json:"from,omitempty"`
	Subject  string  `json:"subject,omitempty"`

	// MWI of the account (INBOX counters) after the change, for events that
	// may change it.
	MWI *MWI `json:"mwi,omitempty"`

	// Quota events.
	QuotaBytes    int64 `json:"quotaBytes,omitempty"`
	QuotaMessages int64 `json:"quotaMessages,omitempty"`
	UsedBytes     int64 `json:"usedBytes,omitempty"`
	UsedMessages  int64 `json:"usedMessages,omitempty"`

	// Session events and provenance.
	Service    string `json:"service,omitempty"`
	ClientAddr string `json:"clientAddr,omitempty"`
	ServerAddr string `json:"serverAddr,omitempty"`
	Entry      string `json:"entry,omitempty"` // metadata entry name
}

// ReadJournal returns up to max events with Seq > after, in order.
func (s *Store) ReadJournal(after uint64, max int) ([]Event, error) {
	var out []Event
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kJournal), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(journalKey(after + 1)); it.Valid() && len(out) < max; it.Next() {
			var ev Event
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &ev) }); err != nil {
				return fmt.Errorf("vmstore: journal entry: %w", err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}

// LastSeq returns the sequence number of the last committed event (0 if none).
func (s *Store) LastSeq() uint64 {
	s.seqMu.Lock()
	defer s.seqMu.Unlock()
	return s.nextSeq - 1
}

// Cursor returns the durable journal position of a consumer (0 if none).
func (s *Store) Cursor(sink string) (uint64, error) {
	var seq uint64
	err := s.view(func(txn *badger.Txn) error {
		it, err := txn.Get(cursorKey(sink))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(b []byte) error {
			if len(b) == 8 {
				seq = binary.BigEndian.Uint64(b)
			}
			return nil
		})
	})
	return seq, err
}

// SetCursor durably records that a consumer has handled every event up to seq.
func (s *Store) SetCursor(sink string, seq uint64) error {
	return s.blindUpdate(func(txn *badger.Txn) error {
		return txn.Set(cursorKey(sink), be64(nil, seq))
	})
}

// Cursors lists every consumer's cursor.
func (s *Store) Cursors() (map[string]uint64, error) {
	out := map[string]uint64{}
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kCursor), PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := string(it.Item().Key()[len(kCursor):])
			_ = it.Item().Value(func(b []byte) error {
				if len(b) == 8 {
					out[k] = binary.BigEndian.Uint64(b)
				}
				return nil
			})
		}
		return nil
	})
	return out, err
}

// TrimJournal deletes events with Seq <= upTo. Callers pass the minimum of
// the cursors they care about.
func (s *Store) TrimJournal(upTo uint64) (int, error) {
	n := 0
	for {
		var keys [][]byte
		err := s.view(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kJournal)})
			defer it.Close()
			for it.Rewind(); it.Valid() && len(keys) < 10000; it.Next() {
				k := it.Item().KeyCopy(nil)
				if binary.BigEndian.Uint64(k[2:]) > upTo {
					break
				}
				keys = append(keys, k)
			}
			return nil
		})
		if err != nil || len(keys) == 0 {
			return n, err
		}
		err = s.batch(func(wb *badger.WriteBatch) error {
			for _, k := range keys {
				if err := wb.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, err
		}
		n += len(keys)
	}
}
