package vmstore

import (
	"context"
	"time"
)

// SweepStats reports one retention sweep.
type SweepStats struct {
	Accounts int
	Expired  int
}

// Sweep applies every account's retention rules once: messages in Trash
// older than TrashDays (since they entered it), read messages older than
// HeardDays (since first read), any message older than MaxDays. Removed
// messages are journaled as MessageExpire.
func (s *Store) Sweep(ctx context.Context) (SweepStats, error) {
	var st SweepStats
	accts, err := s.ListAccounts()
	if err != nil {
		return st, err
	}
	now := s.now()
	for _, a := range accts {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		r := a.Options.Retention
		if r.TrashDays == 0 && r.HeardDays == 0 && r.MaxDays == 0 {
			continue
		}
		st.Accounts++
		mbs, err := s.Mailboxes(a.Name)
		if err != nil {
			continue // deleted meanwhile
		}
		for _, mb := range mbs {
			msgs, err := s.Messages(mb.ID, 1, 0)
			if err != nil {
				return st, err
			}
			var expire []uint32
			for _, m := range msgs {
				if retentionDue(&m, &mb, r, now) {
					expire = append(expire, m.UID)
				}
			}
			if len(expire) == 0 {
				continue
			}
			gone, err := s.expungeAs(a.Name, mb.ID, expire, false, EventMessageExpire)
			if err != nil {
				return st, err
			}
			st.Expired += len(gone)
		}
	}
	return st, nil
}

func retentionDue(m *Message, mb *Mailbox, r Retention, now time.Time) bool {
	days := func(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
	if r.TrashDays > 0 && mb.SpecialUse == `\Trash` && now.Sub(m.SaveDate) >= days(r.TrashDays) {
		return true
	}
	if r.HeardDays > 0 && !m.SeenAt.IsZero() && m.Has(FlagSeen) && now.Sub(m.SeenAt) >= days(r.HeardDays) {
		return true
	}
	if r.MaxDays > 0 && now.Sub(m.InternalDate) >= days(r.MaxDays) {
		return true
	}
	return false
}

// JournalKeep is how long journal events are kept when no consumer still
// needs them; events a registered consumer (cursor) has not handled are
// kept whatever their age.
const JournalKeep = 7 * 24 * time.Hour

// TrimOldJournal removes events that every consumer has handled and that
// are older than JournalKeep.
func (s *Store) TrimOldJournal() (int, error) {
	cursors, err := s.Cursors()
	if err != nil {
		return 0, err
	}
	limit := s.LastSeq()
	for _, c := range cursors {
		limit = min(limit, c)
	}
	cutoff := s.now().Add(-JournalKeep)
	// Find the last event at or below limit that is older than cutoff.
	var upTo uint64
	for after := uint64(0); after < limit; {
		evs, err := s.ReadJournal(after, 512)
		if err != nil || len(evs) == 0 {
			break
		}
		done := false
		for _, e := range evs {
			if e.Seq > limit || e.Time.After(cutoff) {
				done = true
				break
			}
			upTo = e.Seq
		}
		if done {
			break
		}
		after = evs[len(evs)-1].Seq
	}
	if upTo == 0 {
		return 0, nil
	}
	return s.TrimJournal(upTo)
}

// RunSweeper applies retention every interval until ctx ends.
func (s *Store) RunSweeper(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			st, err := s.Sweep(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("vmstore: retention sweep", "err", err)
			} else if st.Expired > 0 {
				s.log.Info("vmstore: retention sweep", "expired", st.Expired, "accounts", st.Accounts)
			}
			if n, err := s.TrimOldJournal(); err != nil {
				s.log.Warn("vmstore: journal trim", "err", err)
			} else if n > 0 {
				s.log.Info("vmstore: journal trimmed", "events", n)
			}
		}
	}
}
