package notify

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Presence tracks which accounts have a client session (RFC 5423 Login /
// Logout events), for holding outband notifications while the user is
// connected (the Lemonade notifications architecture).
//
// It reads the journal from the position it had at Initialize: sessions
// live in this process (IMAP, TUI), so a Login journaled before this
// process started cannot belong to a live session (a crash leaves Logins
// without Logouts, which must not keep an account "online" forever).
type Presence struct {
	// Store is the message store. Required.
	Store *vmstore.Store
	// Logger; nil means slog.Default.
	Logger *slog.Logger

	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sub    *vmstore.Subscription

	mu       sync.Mutex
	cond     *sync.Cond
	read     uint64 // journal position processed
	sessions map[string]int
	closed   bool
}

// Initialize starts following the journal.
func (p *Presence) Initialize() error {
	if p.Store == nil {
		return fmt.Errorf("%w: Presence.Store is nil", ErrConfig)
	}
	p.log = p.Logger
	if p.log == nil {
		p.log = slog.Default()
	}
	p.cond = sync.NewCond(&p.mu)
	p.sessions = map[string]int{}
	p.sub = p.Store.Hub().Subscribe("", 1)
	p.read = p.Store.LastSeq()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1)
	go p.run(ctx)
	return nil
}

// Close stops following the journal; waiters are released.
func (p *Presence) Close() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.sub.Close()
	p.wg.Wait()
	p.mu.Lock()
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

func (p *Presence) run(ctx context.Context) {
	defer p.wg.Done()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		p.mu.Lock()
		after := p.read
		p.mu.Unlock()
		evs, err := p.Store.ReadJournal(after, 1024)
		if err != nil {
			p.log.Error("presence: reading journal", "err", err)
		}
		if len(evs) > 0 {
			p.mu.Lock()
			for _, ev := range evs {
				switch ev.Type {
				case vmstore.EventLogin:
					p.sessions[ev.User]++
				case vmstore.EventLogout:
					if p.sessions[ev.User] > 0 {
						p.sessions[ev.User]--
					}
					if p.sessions[ev.User] == 0 {
						delete(p.sessions, ev.User)
					}
				case vmstore.EventAccountDelete:
					// The account's sessions end with it (they belong to
					// its identity) and record no Logout: an account
					// created again under the name starts offline.
					delete(p.sessions, ev.User)
				}
				p.read = ev.Seq
			}
			p.cond.Broadcast()
			p.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-p.sub.C():
			if !ok {
				return
			}
			p.sub.Drain()
		case <-tick.C:
		}
	}
}

// Online reports whether the account had a session once every event up
// to seq is accounted for. It waits (bounded by ctx) until the tracker has
// read that far, so an event is never judged against stale presence.
func (p *Presence) Online(ctx context.Context, user string, seq uint64) (bool, error) {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.read < seq && !p.closed {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		p.cond.Wait()
	}
	return p.sessions[user] > 0, nil
}

// HoldWhileOnline wraps an outband sink (webhook, VVM, e-mail; not MWI):
// for accounts with Options.HoldWhileOnline, events that happen while the
// account has a session are held, in order and durably (the dispatcher's
// cursor does not pass them, and later events of the account wait behind
// them), and go out once the account has no session left. Deliver answers
// ErrHeld at once; the dispatcher re-checks every HoldPoll without counting
// attempts and without holding a delivery slot.
type HoldWhileOnline struct {
	Sink
	Presence *Presence
	Store    *vmstore.Store
}

// Deliver implements Sink.
func (h *HoldWhileOnline) Deliver(ctx context.Context, ev *vmstore.Event, attempt int) error {
	if ev.Type != vmstore.EventLogin && ev.Type != vmstore.EventLogout {
		acct, err := h.Store.GetAccount(ev.User)
		// Events of a deleted account are not held for an account created
		// again under its name (nor by its sessions: they ended with it).
		sameAccount := err == nil && (ev.AccountID == 0 || ev.AccountID == acct.ID)
		if sameAccount && acct.Options.HoldWhileOnline {
			// Presence as of now (at least as of ev): a Logout after ev
			// releases it.
			online, err := h.Presence.Online(ctx, ev.User, max(ev.Seq, h.Store.LastSeq()))
			if err != nil {
				return fmt.Errorf("%w: %v", ErrHeld, err)
			}
			if online {
				return ErrHeld
			}
		}
	}
	return h.Sink.Deliver(ctx, ev, attempt)
}
