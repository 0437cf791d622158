package imap

import (
	"errors"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// A session belongs to an account identity (vmstore.Account.ID), not to a
// name: when the account is deleted, every session logged in to it ends at
// once with BYE, whatever its state (between commands, in IDLE, parked,
// with a mailbox selected), and an account created again under the name is
// never reached through an old session. The hub calls the server when an
// account is deleted (accountDeleted); a command that finds the account
// gone in the store before that call (the commit is visible before it is
// published) ends the session the same way instead of answering NO.

// accountGoneText is the text of the BYE that ends a deleted account's
// sessions.
const accountGoneText = "account deleted"

// bindLocked records c as a session of its account; s.mu is held.
func (s *Server) bindLocked(c *conn) {
	m := s.byAcct[c.acctID]
	if m == nil {
		m = map[*conn]struct{}{}
		s.byAcct[c.acctID] = m
	}
	m[c] = struct{}{}
}

// unbindLocked forgets c; s.mu is held.
func (s *Server) unbindLocked(c *conn) {
	if m := s.byAcct[c.acctID]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(s.byAcct, c.acctID)
		}
	}
}

// accountDeleted ends the sessions of a deleted account. The hub calls it
// on the committing goroutine: it only starts the work.
func (s *Server) accountDeleted(user string, id uint64) {
	s.mu.Lock()
	var gone []*conn
	for c := range s.byAcct[id] {
		gone = append(gone, c)
	}
	s.mu.Unlock()
	for _, c := range gone {
		c.acctGone.Store(true)
		go c.endAccountGone()
	}
}

// endAccountGone sends BYE and closes the connection. A command in
// progress gets a moment to finish (its reply then goes out first); one
// that does not (it waits for a literal from the client) has its
// connection closed under it.
func (c *conn) endAccountGone() {
	deadline := time.Now().Add(time.Second)
	locked := c.mu.TryLock()
	for !locked && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		locked = c.mu.TryLock()
	}
	if locked {
		select {
		case <-c.done:
		default:
			if !c.closing {
				c.writeLine("* BYE %s", accountGoneText)
				c.flush()
				c.closing = true
			}
		}
		c.mu.Unlock()
	}
	c.nc.Close()
}

// accountGone reports whether the session's account was deleted: the hub
// said so, or the store no longer has an account of that name and
// identity. It is asked when a command failed.
func (c *conn) accountGone() bool {
	if c.user == "" {
		return false
	}
	if c.acctGone.Load() || (c.sub != nil && c.sub.AccountGone()) {
		c.acctGone.Store(true)
		return true
	}
	id, err := c.srv.Store.AccountID(c.user)
	if err != nil && !errors.Is(err, vmstore.ErrNotFound) {
		return false // the store failed: not a statement about the account
	}
	if err != nil || id != c.acctID {
		c.acctGone.Store(true)
		return true
	}
	return false
}

// accountDeletedMeanwhile reports, at the start of a command, whether the
// session's account was deleted since the last check. It reads the store
// only when some account was deleted meanwhile.
func (c *conn) accountDeletedMeanwhile() bool {
	if c.user == "" {
		return false
	}
	g := c.srv.Store.AccountDeletions()
	if g == c.delGen {
		return false
	}
	c.delGen = g
	return c.accountGone()
}
