package vmstore

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// URLAUTH mailbox access keys (RFC 4467 s3, RFC 5092 s6.1.1.2).
//
// One key per account identity and mailbox: Z/<account id:8><mbid:8> holds
// URLAuthKeySize random octets, made on the first GENURLAUTH for the
// mailbox and never shown to anyone. Keying by the account's id rather
// than its name is what keeps an account created again under a deleted
// name from validating the old account's URLs: its id is new, so it finds
// none of the old keys (and DeleteAccount removes them anyway). A deleted
// mailbox takes its key with it; a mailbox created again under the name
// has a new id and so a new key.
//
// There was no migration for this layout: the Z/ prefix was reserved but
// no key was written under the earlier (name-keyed) layout.

// URLAuthKeySize is the size of a mailbox access key: 256 bits.
const URLAuthKeySize = 32

// URLAuthTarget is what URLAuthLookup found.
type URLAuthTarget struct {
	// AccountID is the id of the account that has the name now.
	AccountID uint64
	// MailboxID is the id of the mailbox that has the name now.
	MailboxID uint64
	// Key is the mailbox's access key (nil when it has none).
	Key []byte
}

// dummyAccount stands in for a missing account record in URLAuthLookup,
// so that the lookup decodes a record of about the same size either way.
var dummyAccount = []byte(`{"id":18446744073709551615,"name":"-","passwordHash":"$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","quota":{},"options":{}}`)

// URLAuthLookup finds, in one read transaction, the account that has the
// name, its mailbox of that name and the mailbox's access key. It makes
// the same reads whether or not the account, the mailbox or the key
// exist (a missing one is replaced by a dummy and the next read made
// anyway), so that the time a URLFETCH takes says as little as possible
// about which of them exists (RFC 4467 s9). ok reports whether all three
// were found.
func (s *Store) URLAuthLookup(user, mailbox string) (t URLAuthTarget, ok bool, err error) {
	err = s.view(func(txn *badger.Txn) error {
		found := true
		var a struct {
			ID uint64 `json:"id"`
		}
		it, err := txn.Get(accountKey(user))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			found = false
			_ = json.Unmarshal(dummyAccount, &a)
		case err != nil:
			return err
		default:
			if err := it.Value(func(b []byte) error { return json.Unmarshal(b, &a) }); err != nil {
				return err
			}
		}
		if !found {
			a.ID = 0
		}
		mbid := uint64(0)
		it, err = txn.Get(nameKey(user, canonName(mailbox)))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			found = false
		case err != nil:
			return err
		default:
			if err := it.Value(func(b []byte) error {
				if len(b) == 8 {
					mbid = binary.BigEndian.Uint64(b)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		it, err = txn.Get(urlauthKey(a.ID, mbid))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
			found = false
		case err != nil:
			return err
		default:
			k, err := it.ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(k) != URLAuthKeySize {
				found = false
				k = nil
			}
			t.Key = k
		}
		if found && (a.ID == 0 || mbid == 0) {
			found = false
		}
		if found {
			t.AccountID, t.MailboxID = a.ID, mbid
		} else {
			t = URLAuthTarget{}
		}
		ok = found
		return nil
	})
	return t, ok, err
}

// URLAuthKey returns the access key of a mailbox of the account that has
// the name, made (URLAuthKeySize random octets) when the mailbox has none
// yet, with the account's id and the mailbox. When accountID is not 0 the
// account must still be that one. Errors: ErrUnknownAccount (also for an
// account of another id), ErrNotFound (no such mailbox).
func (s *Store) URLAuthKey(user string, accountID uint64, mailbox string) (key []byte, acct uint64, mb *Mailbox, err error) {
	// Most calls find the key: no write transaction then.
	if t, ok, err := s.URLAuthLookup(user, mailbox); err != nil {
		return nil, 0, nil, err
	} else if ok && (accountID == 0 || accountID == t.AccountID) {
		if m, err := s.MailboxByID(t.MailboxID); err == nil && m.User == user {
			return t.Key, t.AccountID, m, nil
		}
	}
	_, err = s.update(user, func(w *wtx) error {
		id, err := w.accountIDOf(user)
		if err != nil {
			return err
		}
		if id == 0 || (accountID != 0 && id != accountID) {
			return fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		m, err := w.mailboxByName(user, mailbox)
		if err != nil {
			return err
		}
		k := urlauthKey(id, m.ID)
		it, err := w.txn.Get(k)
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if v, err := it.ValueCopy(nil); err != nil {
				return err
			} else if len(v) == URLAuthKeySize {
				key, acct, mb = v, id, m
				return nil
			}
		}
		v := make([]byte, URLAuthKeySize)
		if _, err := rand.Read(v); err != nil {
			return err
		}
		if err := w.set(k, v); err != nil {
			return err
		}
		key, acct, mb = v, id, m
		return nil
	})
	if err != nil {
		return nil, 0, nil, err
	}
	return key, acct, mb, nil
}

// ResetURLAuthKeys removes the access keys of the account's mailbox, or of
// all its mailboxes when mailbox is "" (IMAP RESETKEY, RFC 4467 s7.2):
// every URL authorized under them stops validating, and the next
// GENURLAUTH makes a new key. When accountID is not 0 the account must
// still be that one. It journals EventMailboxAccessChange (the mailbox's,
// or one without a mailbox for all). Errors: ErrUnknownAccount,
// ErrNotFound (no such mailbox).
func (s *Store) ResetURLAuthKeys(user string, accountID uint64, mailbox string) error {
	_, err := s.update(user, func(w *wtx) error {
		id, err := w.accountIDOf(user)
		if err != nil {
			return err
		}
		if id == 0 || (accountID != 0 && id != accountID) {
			return fmt.Errorf("%w %q", ErrUnknownAccount, user)
		}
		if mailbox == "" {
			if err := w.delPrefix(urlauthPrefix(id)); err != nil {
				return err
			}
			w.emit(Event{Type: EventMailboxAccessChange, User: user, AccountID: id})
			return nil
		}
		m, err := w.mailboxByName(user, mailbox)
		if err != nil {
			return err
		}
		if err := w.del(urlauthKey(id, m.ID)); err != nil {
			return err
		}
		w.emit(Event{Type: EventMailboxAccessChange, User: user, AccountID: id, MailboxID: m.ID, Mailbox: m.Name, UIDValidity: m.UIDValidity})
		return nil
	})
	return err
}

// accountIDOf returns the id of the account record of the name, 0 when
// there is none.
func (w *wtx) accountIDOf(user string) (uint64, error) {
	var a struct {
		ID uint64 `json:"id"`
	}
	err := w.get(accountKey(user), &a)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return a.ID, err
}
