package vmstore

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// The submission queue: messages accepted by the submission server that
// are not delivered yet, either held until a time the sender chose
// (FUTURERELEASE, RFC 4865) or waiting for another attempt at the smarthost.
//
// A queued message is an ordinary message in a mailbox of its sender
// (OutboxMailbox): the sender sees it there over IMAP, and expunging it
// cancels the submission. The entry lives beside it:
//
//	F/<id>                          QueueEntry (JSON): envelope, release time, the message's mailbox and UID
//
// Enqueue stores the message and its entry in one durable commit, so a
// queued message survives a crash as a whole or not at all.

// OutboxMailbox is the mailbox that holds a sender's queued messages.
const OutboxMailbox = "Outbox"

const kQueue = "F/"

func queueKey(id string) []byte { return append([]byte(kQueue), id...) }

// QueueEntry is one queued submission.
type QueueEntry struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	MailboxID uint64    `json:"mailbox_id"`
	UID       uint32    `json:"uid"`
	From      string    `json:"from"`
	Rcpts     []string  `json:"rcpts"`
	Release   time.Time `json:"release"`
	Created   time.Time `json:"created"`
	// Body is the SMTP body type: "7BIT", "8BITMIME" or "BINARYMIME".
	Body string `json:"body,omitempty"`
	// Hold is true for a FUTURERELEASE hold, false for a retry.
	Hold      bool   `json:"hold,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	LastError string `json:"last_error,omitempty"`
	// SentCopy: a copy goes to the sender's Sent mailbox on release.
	SentCopy bool `json:"sent_copy,omitempty"`
	// DSN holds the submission's delivery status notification parameters
	// (RFC 3461), in the submission server's form.
	DSN json.RawMessage `json:"dsn,omitempty"`
}

// ValidQueueID reports whether id has the form Enqueue gives (32 hex
// digits), so that user input never names another key.
func ValidQueueID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// Enqueue stores req's message in req.Mailbox (OutboxMailbox when empty,
// created on first use) and the entry e for it, in one durable commit. e's
// ID, MailboxID, UID and Created are filled in.
func (s *Store) Enqueue(req DepositReq, e QueueEntry) (*QueueEntry, error) {
	if req.Mailbox == "" {
		req.Mailbox = OutboxMailbox
	}
	if req.User == "" || e.Release.IsZero() {
		return nil, fmt.Errorf("%w: queue entry without user or release time", ErrInvalid)
	}
	if _, err := s.Mailbox(req.User, req.Mailbox); errors.Is(err, ErrNotFound) && !errors.Is(err, ErrUnknownAccount) {
		if _, err := s.CreateMailbox(req.User, req.Mailbox, ""); err != nil && !errors.Is(err, ErrExists) {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	var rb [16]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, err
	}
	e.ID = hex.EncodeToString(rb[:])
	e.User = req.User
	e.Created = s.now().UTC()
	e.Release = e.Release.UTC()
	p, err := s.prepareDeposit(req)
	if err != nil {
		return nil, err
	}
	defer p.release()
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	overQuota := false
	_, err = s.update(req.User, func(w *wtx) error {
		res, over, err := w.applyDeposit(p)
		if err != nil {
			return err
		}
		if over {
			overQuota = true
			return w.keepOnlyQuotaEvents()
		}
		e.MailboxID, e.UID = res.Mailbox.ID, res.Message.UID
		return w.put(queueKey(e.ID), &e)
	})
	if err != nil || overQuota || p.dedup {
		p.sink.discard()
	}
	if err != nil {
		return nil, err
	}
	if overQuota {
		return nil, fmt.Errorf("%w: account %q", ErrOverQuota, req.User)
	}
	return &e, nil
}

// QueueEntries returns the queued entries (of user, or of everyone when
// user is ""), soonest release first.
func (s *Store) QueueEntries(user string) ([]QueueEntry, error) {
	var out []QueueEntry
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(kQueue), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var e QueueEntry
			if err := getJSON(txn, it.Item().KeyCopy(nil), &e); err != nil {
				return err
			}
			if user == "" || e.User == user {
				out = append(out, e)
			}
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Release.Equal(out[j].Release) {
			return out[i].Release.Before(out[j].Release)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// QueueEntry returns one entry (ErrNotFound when there is none).
func (s *Store) QueueEntry(id string) (*QueueEntry, error) {
	if !ValidQueueID(id) {
		return nil, fmt.Errorf("%w: queue entry %q", ErrNotFound, id)
	}
	var e QueueEntry
	err := s.view(func(txn *badger.Txn) error { return getJSON(txn, queueKey(id), &e) })
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: queue entry %q", ErrNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// UpdateQueueEntry rewrites an existing entry (the next attempt's time, the
// attempts, the recipients left). ErrNotFound if it was removed meanwhile.
func (s *Store) UpdateQueueEntry(e QueueEntry) error {
	if !ValidQueueID(e.ID) {
		return fmt.Errorf("%w: queue entry %q", ErrNotFound, e.ID)
	}
	_, err := s.update(e.User, func(w *wtx) error {
		if ok, err := w.exists(queueKey(e.ID)); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: queue entry %q", ErrNotFound, e.ID)
		}
		return w.put(queueKey(e.ID), &e)
	})
	return err
}

// Dequeue removes an entry and its message (when still there) in one
// commit. ErrNotFound if there is no such entry.
func (s *Store) Dequeue(id string) error {
	e, err := s.QueueEntry(id)
	if err != nil {
		return err
	}
	_, err = s.update(e.User, func(w *wtx) error {
		if ok, err := w.exists(queueKey(id)); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("%w: queue entry %q", ErrNotFound, id)
		}
		if err := w.del(queueKey(id)); err != nil {
			return err
		}
		mb, err := w.mailboxByID(e.MailboxID)
		if errors.Is(err, ErrNotFound) || errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		m, err := w.getMessage(mb.ID, e.UID)
		if errors.Is(err, ErrNotFound) || errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := w.expungeMsgs(mb, []Message{*m}, EventMessageExpunge); err != nil {
			return err
		}
		return w.quotaWithin(e.User)
	})
	return err
}
