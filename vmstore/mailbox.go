package vmstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dgraph-io/badger/v4"
)

// Delimiter is the mailbox hierarchy delimiter.
const Delimiter = "/"

// Counts are a mailbox's counters, kept in the same transaction as the
// messages they count.
type Counts struct {
	Messages uint32 `json:"messages"`
	Unseen   uint32 `json:"unseen"`
	Recent   uint32 `json:"recent"`
	Deleted  uint32 `json:"deleted"`
	Bytes    int64  `json:"bytes"`
	// DeletedBytes is the size of the messages flagged \Deleted (RFC 9208
	// STATUS DELETED-STORAGE).
	DeletedBytes int64 `json:"deletedBytes"`
	// MWI counts by context index (see Contexts), deleted messages excluded.
	MWI [8]MWICount `json:"mwi"`
}

// Mailbox is a mailbox record.
type Mailbox struct {
	ID            uint64    `json:"id"`
	User          string    `json:"user"`
	Name          string    `json:"name"`
	UIDValidity   uint32    `json:"uidvalidity"`
	UIDNext       uint32    `json:"uidnext"`
	HighestModSeq uint64    `json:"highestmodseq"`
	SpecialUse    string    `json:"specialUse,omitempty"`
	Created       time.Time `json:"created"`
	Counts        Counts    `json:"counts"`
}

// MWI returns the mailbox's counts by context.
func (m *Mailbox) MWI() *MWI {
	out := &MWI{Counts: map[Context]MWICount{}}
	for i, c := range Contexts {
		if m.Counts.MWI[i] != (MWICount{}) {
			out.Counts[c] = m.Counts.MWI[i]
		}
	}
	return out
}

// ValidMailboxName checks a mailbox name: UTF-8, no NUL or control
// characters, no empty hierarchy level, at most 512 bytes.
func ValidMailboxName(name string) bool {
	if name == "" || len(name) > 512 || !utf8.ValidString(name) {
		return false
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	for _, p := range strings.Split(name, Delimiter) {
		if p == "" {
			return false
		}
	}
	return true
}

// canonName folds INBOX case-insensitively (RFC 9051 s5.1), and the
// Greetings folder too (OMTP clients use GREETINGS).
func canonName(name string) string {
	if strings.EqualFold(name, "INBOX") {
		return "INBOX"
	}
	if strings.HasPrefix(strings.ToUpper(name), "INBOX"+Delimiter) {
		return "INBOX" + name[5:]
	}
	if strings.EqualFold(name, "Greetings") {
		return "Greetings"
	}
	return name
}

func (w *wtx) createMailbox(user, name, specialUse string) (*Mailbox, error) {
	name = canonName(name)
	if !ValidMailboxName(name) {
		return nil, fmt.Errorf("%w: mailbox %q", ErrInvalidName, name)
	}
	if ok, err := w.exists(nameKey(user, name)); err != nil {
		return nil, err
	} else if ok {
		return nil, fmt.Errorf("%w: mailbox %q", ErrExists, name)
	}
	mb := &Mailbox{
		ID:            w.s.nextMailbox.Add(1),
		User:          user,
		Name:          name,
		UIDValidity:   w.s.newUIDValidity(),
		UIDNext:       1,
		HighestModSeq: 1,
		SpecialUse:    specialUse,
		Created:       w.now.UTC(),
	}
	if err := w.putMailbox(mb); err != nil {
		return nil, err
	}
	if err := w.set(nameKey(user, name), be64(nil, mb.ID)); err != nil {
		return nil, err
	}
	w.emit(Event{Type: EventMailboxCreate, User: user, MailboxID: mb.ID, Mailbox: name, UIDValidity: mb.UIDValidity, ModSeq: mb.HighestModSeq, UIDNext: 1})
	return mb, nil
}

func (w *wtx) mailboxByName(user, name string) (*Mailbox, error) {
	name = canonName(name)
	it, err := w.txn.Get(nameKey(user, name))
	if err == badger.ErrKeyNotFound {
		if ok, err := w.exists(accountKey(user)); err == nil && !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		return nil, fmt.Errorf("%w: mailbox %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, err
	}
	v, err := it.ValueCopy(nil)
	if err != nil {
		return nil, err
	}
	return w.mailboxByID(binary.BigEndian.Uint64(v))
}

func (w *wtx) mailboxByID(id uint64) (*Mailbox, error) {
	var mb Mailbox
	if err := getMailbox(w.txn, id, &mb); err != nil {
		return nil, err
	}
	return &mb, nil
}

func (w *wtx) listMailboxes(user string) ([]Mailbox, error) {
	return listMailboxes(w.txn, user)
}

func listMailboxes(txn *badger.Txn, user string) ([]Mailbox, error) {
	var out []Mailbox
	p := namePrefix(user)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
	defer it.Close()
	var ids []uint64
	for it.Rewind(); it.Valid(); it.Next() {
		v, err := it.Item().ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		ids = append(ids, binary.BigEndian.Uint64(v))
	}
	for _, id := range ids {
		var mb Mailbox
		if err := getMailbox(txn, id, &mb); err != nil {
			return nil, fmt.Errorf("vmstore: mailbox %d of %s: %w", id, user, err)
		}
		out = append(out, mb)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (w *wtx) delPrefix(p []byte) error {
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: p})
	var keys [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range keys {
		if err := w.del(k); err != nil {
			return err
		}
	}
	return nil
}

// dropMailbox deletes a mailbox with its messages and indexes. Blobs are
// left to the collector.
func (w *wtx) dropMailbox(mb *Mailbox) error {
	// Drop the messages' blob references first.
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: messagePrefix(mb.ID), PrefetchValues: true})
	var refs [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		var m Message
		if err := it.Item().Value(func(b []byte) error { return decodeMessage(b, &m) }); err != nil {
			it.Close()
			return err
		}
		refs = append(refs, refKey(m.Blob, mb.ID, m.UID))
	}
	it.Close()
	for _, k := range refs {
		if err := w.del(k); err != nil {
			return err
		}
	}
	for k := range w.modseqIdx {
		if strings.HasPrefix(k, string(modseqPrefix(mb.ID))) {
			delete(w.modseqIdx, k)
		}
	}
	acct, err := w.accountIDOf(mb.User)
	if err != nil {
		return err
	}
	for _, p := range [][]byte{messagePrefix(mb.ID), modseqPrefix(mb.ID), expungedPrefix(mb.ID), metaPrefix(mb.User, mb.ID), urlauthKey(acct, mb.ID)} {
		if err := w.delPrefix(p); err != nil {
			return err
		}
	}
	if err := w.del(mailboxKey(mb.ID)); err != nil {
		return err
	}
	w.noteDrop(mb.ID)
	if err := w.del(nameKey(mb.User, mb.Name)); err != nil {
		return err
	}
	w.emit(Event{Type: EventMailboxDelete, User: mb.User, MailboxID: mb.ID, Mailbox: mb.Name, UIDValidity: mb.UIDValidity})
	return nil
}

// Mailboxes lists an account's mailboxes sorted by name.
func (s *Store) Mailboxes(user string) ([]Mailbox, error) {
	var out []Mailbox
	err := s.view(func(txn *badger.Txn) error {
		if _, err := txn.Get(accountKey(user)); err != nil {
			return fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		var err error
		out, err = listMailboxes(txn, user)
		return err
	})
	return out, err
}

// Mailbox returns a mailbox by name.
func (s *Store) Mailbox(user, name string) (*Mailbox, error) {
	var mb *Mailbox
	err := s.view(func(txn *badger.Txn) error {
		w := &wtx{s: s, txn: txn}
		var err error
		mb, err = w.mailboxByName(user, name)
		return err
	})
	return mb, err
}

// MailboxByID returns a mailbox by id.
func (s *Store) MailboxByID(id uint64) (*Mailbox, error) {
	if img := s.idx.cached(id); img != nil {
		mb := img.mb
		return &mb, nil
	}
	var mb Mailbox
	if err := s.view(func(txn *badger.Txn) error { return getMailbox(txn, id, &mb) }); err != nil {
		return nil, err
	}
	return &mb, nil
}

// CreateMailbox creates a mailbox. Missing parent levels are created too
// (RFC 9051 s6.3.4 allows this; clients expect it).
func (s *Store) CreateMailbox(user, name, specialUse string) (*Mailbox, error) {
	var out *Mailbox
	_, err := s.update(user, func(w *wtx) error {
		if ok, err := w.exists(accountKey(user)); err != nil || !ok {
			return fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		name = strings.TrimSuffix(canonName(name), Delimiter)
		if !ValidMailboxName(name) {
			return fmt.Errorf("%w: mailbox %q", ErrInvalidName, name)
		}
		parts := strings.Split(name, Delimiter)
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], Delimiter)
			if ok, err := w.exists(nameKey(user, canonName(parent))); err != nil {
				return err
			} else if !ok {
				if _, err := w.createMailbox(user, parent, ""); err != nil {
					return err
				}
			}
		}
		var err error
		out, err = w.createMailbox(user, name, specialUse)
		return err
	})
	return out, err
}

// DeleteMailbox deletes a mailbox and its messages. INBOX cannot be
// deleted. Child mailboxes stay (RFC 9051 s6.3.5).
func (s *Store) DeleteMailbox(user, name string) error {
	err := s.deleteMailbox(user, name)
	if errors.Is(err, badger.ErrTxnTooBig) {
		// Too many messages for one transaction: remove them in parts.
		if err := s.emptyMailboxes(user, name); err != nil {
			return err
		}
		err = s.deleteMailbox(user, name)
	}
	return err
}

func (s *Store) deleteMailbox(user, name string) error {
	_, err := s.update(user, func(w *wtx) error {
		mb, err := w.mailboxByName(user, name)
		if err != nil {
			return err
		}
		if mb.Name == "INBOX" {
			return fmt.Errorf("%w: INBOX cannot be deleted", ErrNotPermitted)
		}
		return w.dropMailbox(mb)
	})
	return err
}

// RenameMailbox renames a mailbox and its children. Renaming INBOX moves
// its messages into a new mailbox and leaves INBOX empty (RFC 9051 s6.3.6).
func (s *Store) RenameMailbox(user, from, to string) error {
	err := s.renameMailbox(user, from, to)
	if errors.Is(err, badger.ErrTxnTooBig) && canonName(from) == "INBOX" {
		// INBOX holds too many messages for one transaction: the new
		// mailbox first, then the messages in parts (the same events).
		inbox, err := s.Mailbox(user, "INBOX")
		if err != nil {
			return err
		}
		dst, err := s.CreateMailbox(user, to, "")
		if err != nil {
			return err
		}
		uids, err := s.UIDs(inbox.ID)
		if err != nil {
			return err
		}
		_, err = s.Copy(CopyReq{User: user, From: inbox.ID, To: dst.ID, UIDs: uids, Move: true})
		return err
	}
	return err
}

func (s *Store) renameMailbox(user, from, to string) error {
	_, err := s.update(user, func(w *wtx) error {
		src, err := w.mailboxByName(user, from)
		if err != nil {
			return err
		}
		to = strings.TrimSuffix(canonName(to), Delimiter)
		if !ValidMailboxName(to) {
			return fmt.Errorf("%w: mailbox %q", ErrInvalidName, to)
		}
		if to == "INBOX" || strings.HasPrefix(to, src.Name+Delimiter) {
			return fmt.Errorf("%w: cannot rename %q to %q", ErrNotPermitted, src.Name, to)
		}
		if ok, err := w.exists(nameKey(user, to)); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("%w: mailbox %q", ErrExists, to)
		}
		// Parents of the target.
		parts := strings.Split(to, Delimiter)
		for i := 1; i < len(parts); i++ {
			parent := strings.Join(parts[:i], Delimiter)
			if ok, err := w.exists(nameKey(user, parent)); err != nil {
				return err
			} else if !ok {
				if _, err := w.createMailbox(user, parent, ""); err != nil {
					return err
				}
			}
		}
		if src.Name == "INBOX" {
			dst, err := w.createMailbox(user, to, "")
			if err != nil {
				return err
			}
			uids, err := w.allUIDs(src.ID)
			if err != nil {
				return err
			}
			if len(uids) > 0 {
				_, _, err = w.copyMessages(src, dst, uids, true)
			}
			return err
		}
		all, err := w.listMailboxes(user)
		if err != nil {
			return err
		}
		for i := range all {
			mb := &all[i]
			if mb.Name != src.Name && !strings.HasPrefix(mb.Name, src.Name+Delimiter) {
				continue
			}
			old := mb.Name
			mb.Name = to + old[len(src.Name):]
			if ok, err := w.exists(nameKey(user, mb.Name)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: mailbox %q", ErrExists, mb.Name)
			}
			if err := w.del(nameKey(user, old)); err != nil {
				return err
			}
			if err := w.set(nameKey(user, mb.Name), be64(nil, mb.ID)); err != nil {
				return err
			}
			if err := w.putMailbox(mb); err != nil {
				return err
			}
			w.emit(Event{Type: EventMailboxRename, User: user, MailboxID: mb.ID, Mailbox: mb.Name, OldMailbox: old, UIDValidity: mb.UIDValidity})
		}
		return nil
	})
	return err
}

// Subscribe adds a subscription (the mailbox need not exist, RFC 9051 s6.3.7).
func (s *Store) Subscribe(user, name string, on bool) error {
	name = canonName(name)
	_, err := s.update(user, func(w *wtx) error {
		if ok, err := w.exists(accountKey(user)); err != nil || !ok {
			return fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		was, err := w.exists(subKey(user, name))
		if err != nil {
			return err
		}
		if was == on {
			return nil
		}
		ev := Event{User: user, Mailbox: name}
		if on {
			ev.Type = EventMailboxSubscribe
			err = w.set(subKey(user, name), nil)
		} else {
			ev.Type = EventMailboxUnSubscribe
			err = w.del(subKey(user, name))
		}
		w.emit(ev)
		return err
	})
	return err
}

// Subscriptions lists subscribed names.
func (s *Store) Subscriptions(user string) ([]string, error) {
	var out []string
	err := s.view(func(txn *badger.Txn) error {
		p := subPrefix(user)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, string(bytes.TrimPrefix(it.Item().Key(), p)))
		}
		return nil
	})
	return out, err
}

// AccountMWI returns the message-waiting counts of the account (its INBOX).
func (s *Store) AccountMWI(user string) (*MWI, error) {
	mb, err := s.Mailbox(user, "INBOX")
	if err != nil {
		return nil, err
	}
	return mb.MWI(), nil
}
