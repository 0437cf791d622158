package vmstore

import (
	"sync"
	"sync/atomic"
)

// Hub wakes in-process readers after a commit. It hands each subscriber the
// committed events of the accounts it watches, in journal order. A
// subscriber that falls more than its limit behind is marked overflowed and
// must resynchronize from the store (as an IMAP session does by re-reading
// its mailbox); the journal stays the truth.
//
// When an account is deleted, the hub ends its per-account subscriptions
// (AccountGone reports it; they get no further events, not even those of
// an account created again under the name) and calls the functions
// registered with OnAccountDeleted, so that front ends end the account's
// sessions at once.
type Hub struct {
	mu     sync.Mutex
	byUser map[string]map[*Subscription]struct{}
	all    map[*Subscription]struct{}
	// onDelete are the OnAccountDeleted functions.
	onDelete map[*func(user string, id uint64)]struct{}
}

// Subscription receives events. C gets a value whenever events are pending.
type Subscription struct {
	hub     *Hub
	user    string // "" = every account
	account uint64 // the account's ID, 0 = whichever has the name
	limit   int
	c       chan struct{}
	gone    atomic.Bool // the account was deleted

	mu       sync.Mutex
	pending  []Event
	overflow bool
	closed   bool
	notify   func()
}

// SetNotify sets a function called (from the committing goroutine, so it
// must not block) whenever events become pending; nil removes it. It lets
// a reader that waits on something else (an idle IMAP connection blocked
// reading its socket) be woken without a goroutine of its own.
func (s *Subscription) SetNotify(f func()) {
	s.mu.Lock()
	s.notify = f
	pending := len(s.pending) > 0 || s.overflow || s.gone.Load()
	s.mu.Unlock()
	if f != nil && pending {
		f()
	}
}

func newHub() *Hub {
	return &Hub{byUser: map[string]map[*Subscription]struct{}{}, all: map[*Subscription]struct{}{},
		onDelete: map[*func(string, uint64)]struct{}{}}
}

// Subscribe watches one account ("" for all accounts). limit bounds the
// queued events (0 means 10000).
func (h *Hub) Subscribe(user string, limit int) *Subscription {
	return h.SubscribeAccount(user, 0, limit)
}

// SubscribeAccount watches the account with the name and ID (Account.ID):
// when that account is deleted, the subscription ends (AccountGone). With
// ID 0 it ends when any account of the name is deleted.
func (h *Hub) SubscribeAccount(user string, id uint64, limit int) *Subscription {
	if limit <= 0 {
		limit = 10000
	}
	sub := &Subscription{hub: h, user: user, account: id, limit: limit, c: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if user == "" {
		h.all[sub] = struct{}{}
	} else {
		m := h.byUser[user]
		if m == nil {
			m = map[*Subscription]struct{}{}
			h.byUser[user] = m
		}
		m[sub] = struct{}{}
	}
	return sub
}

// AccountGone reports whether the subscribed account was deleted. The
// subscription then gets no more events; its holder ends what belonged to
// the account.
func (s *Subscription) AccountGone() bool { return s.gone.Load() }

// OnAccountDeleted registers f, called with the name and ID of every
// account deleted from now on, after the deletion is committed and its
// events are handed to the subscribers. f runs on the committing goroutine
// and must not block. The returned function unregisters f.
func (h *Hub) OnAccountDeleted(f func(user string, id uint64)) (remove func()) {
	p := &f
	h.mu.Lock()
	h.onDelete[p] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.onDelete, p)
		h.mu.Unlock()
	}
}

// C is signalled (coalesced) when events are pending.
func (s *Subscription) C() <-chan struct{} { return s.c }

// Drain returns the pending events in order and whether events were dropped
// because the subscriber fell behind (then it must resynchronize).
func (s *Subscription) Drain() (events []Event, overflowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	events, s.pending = s.pending, nil
	overflowed, s.overflow = s.overflow, false
	return events, overflowed
}

// Close stops the subscription.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	if s.user == "" {
		delete(h.all, s)
	} else if m := h.byUser[s.user]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.byUser, s.user)
		}
	}
	h.mu.Unlock()
	s.mu.Lock()
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
}

func (s *Subscription) push(evs []Event) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.pending)+len(evs) > s.limit {
		s.overflow = true
		s.pending = nil
	} else {
		s.pending = append(s.pending, evs...)
	}
	notify := s.notify
	s.mu.Unlock()
	select {
	case s.c <- struct{}{}:
	default:
	}
	if notify != nil {
		notify()
	}
}

// Subscribers counts the open subscriptions.
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.all)
	for _, m := range h.byUser {
		n += len(m)
	}
	return n
}

func (h *Hub) publish(evs []Event) {
	if len(evs) == 0 {
		return
	}
	var deleted []Event
	for _, e := range evs {
		if e.Type == EventAccountDelete {
			deleted = append(deleted, e)
		}
	}
	h.mu.Lock()
	h.publishLocked(evs)
	var fns []func(string, uint64)
	if len(deleted) > 0 {
		for _, e := range deleted {
			h.endAccountLocked(e.User, e.AccountID)
		}
		for f := range h.onDelete {
			fns = append(fns, *f)
		}
	}
	h.mu.Unlock()
	for _, e := range deleted {
		for _, f := range fns {
			f(e.User, e.AccountID)
		}
	}
}

// endAccountLocked ends the per-account subscriptions of a deleted
// account: they are marked gone, woken, and detached from the name, so
// that an account created again under it does not reach them.
func (h *Hub) endAccountLocked(user string, id uint64) {
	m := h.byUser[user]
	for sub := range m {
		if sub.account != 0 && id != 0 && sub.account != id {
			continue // a later account of the name
		}
		sub.gone.Store(true)
		delete(m, sub)
		sub.push(nil)
	}
	if len(m) == 0 {
		delete(h.byUser, user)
	}
}

func (h *Hub) publishLocked(evs []Event) {
	// Events of one commit belong to one account. Sessions of the account
	// (per-account subscribers) are not sent the account's own Login and
	// Logout events: nothing in a session needs them, and with many
	// sessions of one account every login would be queued in every other
	// session. All-account subscribers (presence, notifiers) get them.
	if subs := h.byUser[evs[0].User]; len(subs) > 0 {
		mine := evs
		if hasSessionEvent(evs) {
			mine = nil
			for _, e := range evs {
				if e.Type != EventLogin && e.Type != EventLogout {
					mine = append(mine, e)
				}
			}
		}
		if len(mine) > 0 {
			for sub := range subs {
				sub.push(mine)
			}
		}
	}
	for sub := range h.all {
		sub.push(evs)
	}
}

func (h *Hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.byUser {
		for sub := range m {
			close(sub.c)
		}
	}
	for sub := range h.all {
		close(sub.c)
	}
	h.byUser = map[string]map[*Subscription]struct{}{}
	h.all = map[*Subscription]struct{}{}
}

func hasSessionEvent(evs []Event) bool {
	for _, e := range evs {
		if e.Type == EventLogin || e.Type == EventLogout {
			return true
		}
	}
	return false
}
