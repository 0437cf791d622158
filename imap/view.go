package imap

import (
	"slices"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/lemonvox/lemonvox/vmstore"
)

// hubLimit bounds the events queued for one session before it must
// resynchronise from the store.
const hubLimit = 2000

// selected is the session's view of its selected mailbox.
type selected struct {
	mb       selMailbox // as read at SELECT; ID and UIDVALIDITY do not change
	readOnly bool
	uids     []uint32 // sequence number = index + 1
	maxUID   uint32   // highest UID known, announced or pending
	baseSeq  uint64   // journal position of the SELECT snapshot
	modseq   uint64   // highest modseq this session knows about

	pendNew []uint32
	pendExp []uint32
	// expModseq is at most the lowest modseq of the pending expunges (0
	// when none are pending): a HIGHESTMODSEQ told to a QRESYNC client must
	// stay below it until they are reported (RFC 7162 s3.2.10, erratum 1810).
	expModseq uint64
	pendFlags map[uint32]flagUpdate
	own       []uint64 // modseqs of this session's own recent changes
	searchRes []uint32 // UIDs saved by SEARCH RETURN (SAVE), RFC 5182
	gone      bool     // deleted by another session
	contexts  []*searchContext
	recent    map[uint32]bool // \Recent for this session (IMAP4rev1)
	dirty     bool            // changed since the contexts were last evaluated

	// keywords are the keywords announced in FLAGS besides the permanent
	// ones, sorted: a FETCH may carry only announced keywords (RFC 9051
	// s7.3.5).
	keywords []string
	// told is, per UID, the newest state the client was sent since the
	// hub events up to drained were taken (see pollEvents): a queued
	// update no newer than it is stale and never sent.
	told    map[uint32]toldState
	drained uint64 // highest modseq of the mailbox's events taken from the hub
}

type flagUpdate struct {
	flags  []string
	modseq uint64
}

// toldState is what a FETCH told the client of a message at a modseq:
// its FLAGS, its MODSEQ, or both.
type toldState struct {
	modseq uint64
	flags  bool
	mod    bool
}

// noteTold records a FETCH response about uid.
func (s *selected) noteTold(uid uint32, modseq uint64, flags, mod bool) {
	t, ok := s.told[uid]
	if ok && t.modseq > modseq {
		return
	}
	if ok && t.modseq == modseq {
		flags, mod = flags || t.flags, mod || t.mod
	}
	if s.told == nil {
		s.told = map[uint32]toldState{}
	}
	s.told[uid] = toldState{modseq: modseq, flags: flags, mod: mod}
}

// pruneTold forgets what no queued or future update can be older than:
// the hub hands events in modseq order, and every event up to drained has
// been taken and compared.
func (s *selected) pruneTold() {
	for u, t := range s.told {
		if t.modseq <= s.drained {
			delete(s.told, u)
		}
	}
	if len(s.told) == 0 {
		s.told = nil
	}
}

// flagsList is the FLAGS response's list: system flags, the permanent
// Lemonade keywords, then the keywords the mailbox has used.
func (s *selected) flagsList() string {
	var b strings.Builder
	b.WriteString(systemFlags)
	for _, k := range permanentKeywords {
		b.WriteByte(' ')
		b.WriteString(k)
	}
	for _, k := range s.keywords {
		b.WriteByte(' ')
		b.WriteString(k)
	}
	return b.String()
}

// announceKeywords sends FLAGS (and PERMANENTFLAGS, which lists the same
// keywords) when flags holds a keyword the client has not been told of,
// so that no FETCH carries a keyword before FLAGS listed it (RFC 9051
// s7.3.5, RFC 3501 s7.2.6). It must be called before the FETCH is
// started.
func (c *conn) announceKeywords(flags []string) {
	s := c.sel
	if s == nil {
		return
	}
	added := false
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) || hasFlagFold(permanentKeywords, f) || hasFlagFold(s.keywords, f) {
			continue
		}
		s.keywords = append(s.keywords, f)
		added = true
	}
	if !added {
		return
	}
	slices.Sort(s.keywords)
	list := s.flagsList()
	c.writeLine("* FLAGS (%s)", list)
	if !s.readOnly {
		c.writeLine(`* OK [PERMANENTFLAGS (%s \*)] flags permitted`, list)
	}
}

// hasFlagFold reports whether list has flag f, compared case-insensitively.
func hasFlagFold(list []string, f string) bool {
	for _, x := range list {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

// selMailbox is what a session keeps of its selected mailbox's record (a
// whole vmstore.Mailbox, with its counters, would be most of an idle
// session's memory).
type selMailbox struct {
	ID          uint64
	Name        string
	UIDValidity uint32
	UIDNext     uint32
}

func (s *selected) seqOf(uid uint32) (uint32, bool) {
	i, ok := slices.BinarySearch(s.uids, uid)
	return uint32(i + 1), ok
}

func (s *selected) addOwn(modseq uint64) {
	s.dirty = true
	if n := len(s.own); n > 0 && s.own[n-1] == modseq {
		return // one operation, many messages
	}
	if len(s.own) >= 32 {
		s.own = s.own[1:]
	}
	s.own = append(s.own, modseq)
	if modseq > s.modseq {
		s.modseq = modseq
	}
}

func (s *selected) lowerExpModseq(m uint64) {
	if m > 0 && (s.expModseq == 0 || m < s.expModseq) {
		s.expModseq = m
	}
}

// reportableModseq is the HIGHESTMODSEQ the session may announce: its
// highest known modseq, held below any expunge not yet reported.
func (s *selected) reportableModseq() uint64 {
	if len(s.pendExp) > 0 && s.expModseq > 0 && s.expModseq-1 < s.modseq {
		return s.expModseq - 1
	}
	return s.modseq
}

// removeUIDs drops uids from the view (after they were reported expunged).
func (s *selected) removeUIDs(gone []uint32) {
	if len(gone) == 0 {
		return
	}
	s.dirty = true
	set := make(map[uint32]bool, len(gone))
	for _, u := range gone {
		set[u] = true
	}
	s.uids = slices.DeleteFunc(s.uids, func(u uint32) bool { return set[u] })
	s.pendExp = slices.DeleteFunc(s.pendExp, func(u uint32) bool { return set[u] })
	if len(s.pendExp) == 0 {
		s.expModseq = 0
	}
	for _, u := range gone {
		delete(s.pendFlags, u)
		delete(s.told, u)
	}
}

// pollEvents takes the hub's pending events into the view's queues.
func (c *conn) pollEvents() {
	if c.sub == nil {
		return
	}
	evs, over := c.sub.Drain()
	if c.sub.AccountGone() {
		c.acctGone.Store(true)
	}
	if over {
		if c.notify != nil {
			// RFC 5465 s5.8: tell the client and stop notifying.
			c.pendNotify = append(c.pendNotify, "* OK [NOTIFICATIONOVERFLOW] too many changes")
			c.notify = nil
		}
		if c.sel != nil {
			c.resync()
		}
		return
	}
	s := c.sel
	for i := range evs {
		ev := &evs[i]
		if ev.Type == vmstore.EventMetadataChange {
			c.metadataChanged(ev)
			continue
		}
		if ev.Type == vmstore.EventMailboxAccessChange {
			c.urlKeysReset(ev) // cmd_urlauth.go
			continue
		}
		if s == nil || ev.MailboxID != s.mb.ID {
			c.notifyEvent(ev)
			continue
		}
		if ev.Seq <= s.baseSeq {
			// Already in the snapshot SELECT read.
			continue
		}
		if ev.ModSeq > s.drained {
			s.drained = ev.ModSeq
		}
		switch ev.Type {
		case vmstore.EventMessageNew, vmstore.EventMessageAppend:
			for _, u := range ev.UIDs {
				if u > s.maxUID {
					s.pendNew = append(s.pendNew, u)
					s.maxUID = u
				}
			}
		case vmstore.EventMessageExpunge, vmstore.EventMessageExpire:
			for _, u := range ev.UIDs {
				if j := slices.Index(s.pendNew, u); j >= 0 {
					s.pendNew = slices.Delete(s.pendNew, j, j+1)
				} else if _, ok := slices.BinarySearch(s.uids, u); ok && !slices.Contains(s.pendExp, u) {
					s.pendExp = append(s.pendExp, u)
					s.lowerExpModseq(ev.ModSeq)
				}
				delete(s.pendFlags, u)
			}
		case vmstore.EventFlagsSet, vmstore.EventFlagsClear, vmstore.EventMessageRead, vmstore.EventMessageTrash:
			// This session's own change is known to its client, but when
			// an older change by another session is still queued for the
			// message, the client's idea of it is stale: the queued update
			// becomes this newer state (a .SILENT STORE reported nothing).
			own := slices.Contains(s.own, ev.ModSeq)
			for j, u := range ev.UIDs {
				if j >= len(ev.MsgFlags) || j >= len(ev.MsgModSeq) {
					continue
				}
				s.queueFlags(u, flagUpdate{flags: ev.MsgFlags[j], modseq: ev.MsgModSeq[j]}, own)
			}
		case vmstore.EventMailboxDelete:
			s.gone = true
		case vmstore.EventMailboxRename:
			s.mb.Name = ev.Mailbox
		}
		if ev.ModSeq > s.modseq && ev.Type != vmstore.EventMailboxRename {
			s.modseq = ev.ModSeq
		}
	}
}

// queueFlags queues a message's new flags unless a newer state is queued;
// onlyIfQueued replaces a queued state but queues nothing new.
func (s *selected) queueFlags(uid uint32, fu flagUpdate, onlyIfQueued bool) {
	pf, ok := s.pendFlags[uid]
	if ok && pf.modseq >= fu.modseq || !ok && onlyIfQueued {
		return
	}
	if s.pendFlags == nil {
		s.pendFlags = map[uint32]flagUpdate{}
	}
	s.pendFlags[uid] = fu
}

// resync rebuilds the queues from the store after the hub dropped events.
func (c *conn) resync() {
	s := c.sel
	msgs, err := c.srv.Store.Messages(s.mb.ID, 1, 0)
	if err != nil {
		c.log.Warn("imap resync", "err", err)
		return
	}
	present := make(map[uint32]bool, len(msgs))
	for _, m := range msgs {
		present[m.UID] = true
		if m.UID > s.maxUID {
			s.pendNew = append(s.pendNew, m.UID)
			s.maxUID = m.UID
		}
	}
	s.pendNew = slices.DeleteFunc(s.pendNew, func(u uint32) bool { return !present[u] })
	for _, u := range s.uids {
		if !present[u] && !slices.Contains(s.pendExp, u) {
			s.pendExp = append(s.pendExp, u)
			// Expunged at some point after what the session knew.
			s.lowerExpModseq(s.modseq + 1)
		}
	}
	changed, err := c.srv.Store.ChangedSince(s.mb.ID, s.modseq)
	if err == nil {
		for _, m := range changed {
			if _, ok := slices.BinarySearch(s.uids, m.UID); ok {
				s.queueFlags(m.UID, flagUpdate{m.Flags, m.ModSeq}, false)
			}
			if m.ModSeq > s.modseq {
				s.modseq = m.ModSeq
			}
		}
	}
}

// flushUpdates sends the queued changes: expunges (when allowed), then new
// messages, then flag changes (RFC 9051 s7.5, RFC 7162 s3.2.10).
func (c *conn) flushUpdates(allowExpunge bool) {
	c.pollEvents()
	for _, m := range c.pendMeta {
		c.enc.Raw("* METADATA ").Astring(c.mboxOut(m[0])).SP().Astring(m[1]).CRLF()
	}
	c.pendMeta = nil
	for _, l := range c.pendNotify {
		c.enc.Raw(l).CRLF()
	}
	c.pendNotify = nil
	if c.acctGone.Load() {
		if !c.closing {
			c.writeLine("* BYE %s", accountGoneText)
			c.closing = true
		}
		return
	}
	s := c.sel
	if s == nil {
		return
	}
	if s.gone {
		// Another session deleted the selected mailbox: nothing sensible
		// can be reported any more (the reference server does the same).
		// The mailbox may be gone with its account (the deletion's events
		// can reach the session before the hub's account call): say so.
		if !c.closing {
			if c.accountGone() {
				c.writeLine("* BYE %s", accountGoneText)
			} else {
				c.writeLine("* BYE selected mailbox was deleted")
			}
			c.closing = true
		}
		return
	}
	if allowExpunge && len(s.pendExp) > 0 {
		gone := slices.Clone(s.pendExp)
		slices.Sort(gone)
		c.reportExpunged(gone)
	}
	c.reportNew()
	if len(s.pendFlags) > 0 {
		uids := make([]uint32, 0, len(s.pendFlags))
		for u := range s.pendFlags {
			uids = append(uids, u)
		}
		slices.Sort(uids)
		for _, u := range uids {
			seq, ok := s.seqOf(u)
			if !ok {
				continue
			}
			fu := s.pendFlags[u]
			if t, ok := s.told[u]; ok && t.modseq >= fu.modseq {
				switch {
				case t.modseq == fu.modseq && t.flags && (t.mod || !c.cstore):
					continue // the client has this state
				case t.modseq == fu.modseq:
					// Same state, but not all of it was told (FLAGS
					// without MODSEQ): send it.
				case t.flags:
					continue // stale: the client has newer flags
				default:
					// It was told a newer MODSEQ without FLAGS: send the
					// message's current state instead.
					m, err := c.srv.Store.Message(s.mb.ID, u)
					if err != nil {
						continue // expunged: its EXPUNGE is queued
					}
					fu = flagUpdate{m.Flags, m.ModSeq}
				}
			}
			c.writeFlagsFetch(seq, u, fu.flags, fu.modseq, false)
			metricUpdates.WithLabelValues("fetch").Inc()
		}
		s.pendFlags = nil
		s.dirty = true
	}
	s.pruneTold()
	// Context updates go with the responses that caused them, whatever the
	// command (RFC 5267 s4.3.2); those of expunges went before the EXPUNGE
	// (reportExpunged).
	if s.dirty && len(s.contexts) > 0 {
		s.dirty = false
		c.updateContexts()
	}
	if c.modseqSent && c.qresync && len(s.pendExp) > 0 {
		// MODSEQs above an expunge the client has not been told of: a
		// client that stores the highest MODSEQ it saw would skip the
		// expunge when it resynchronizes after a disconnect.
		c.writeLine("* OK [HIGHESTMODSEQ %d] expunges pending", s.reportableModseq())
	}
	c.modseqSent = false
}

// reportNew announces the messages that arrived since the client was last
// told: EXISTS (and RECENT for IMAP4rev1), then NOTIFY's MessageNew FETCH.
func (c *conn) reportNew() {
	s := c.sel
	if s == nil || s.gone || len(s.pendNew) == 0 {
		return
	}
	slices.Sort(s.pendNew)
	s.uids = append(s.uids, s.pendNew...)
	newUIDs := s.pendNew
	s.pendNew = nil
	s.dirty = true
	c.writeLine("* %d EXISTS", len(s.uids))
	if !c.rev2 && !s.readOnly && c.mailboxHasRecent(s.mb.ID) {
		if r, err := c.srv.Store.ClearRecent(c.user, s.mb.ID); err == nil && len(r) > 0 {
			if s.recent == nil {
				s.recent = map[uint32]bool{}
			}
			for _, u := range r {
				s.recent[u] = true
			}
		}
	}
	if !c.rev2 && !s.readOnly {
		n := 0
		for u := range s.recent {
			if _, ok := s.seqOf(u); ok {
				n++
			}
		}
		c.writeLine("* %d RECENT", n)
	}
	c.notifyNewFetch(newUIDs)
	metricUpdates.WithLabelValues("exists").Inc()
}

// announceNewForUID runs before a UID command: a UID command acts on every
// existing message in its set, also one this session has not been told of
// yet (appended by another session after the last update), so the new
// messages are announced first and become part of the view.
func (c *conn) announceNewForUID() {
	if c.sel == nil {
		return
	}
	c.pollEvents()
	c.reportNew()
}

// reportExpunged sends EXPUNGE (highest sequence number first, so that no
// renumbering is needed between them) or, with QRESYNC, one VANISHED, and
// removes the UIDs from the view.
func (c *conn) reportExpunged(gone []uint32) {
	s := c.sel
	var present []uint32
	for _, u := range gone {
		if _, ok := s.seqOf(u); ok {
			present = append(present, u)
		}
	}
	if len(present) == 0 {
		s.removeUIDs(gone)
		return
	}
	// REMOVEFROM with the sequence numbers still valid (RFC 5267 s4.3.4).
	c.contextsExpunge(present)
	if c.qresync {
		c.writeLine("* VANISHED %s", uidSetString(present))
		metricUpdates.WithLabelValues("vanished").Inc()
	} else {
		seqs := make([]uint32, 0, len(present))
		for _, u := range present {
			seq, _ := s.seqOf(u)
			seqs = append(seqs, seq)
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] > seqs[j] })
		for _, seq := range seqs {
			c.writeLine("* %d EXPUNGE", seq)
		}
		metricUpdates.WithLabelValues("expunge").Add(float64(len(seqs)))
	}
	s.removeUIDs(gone)
}

// writeFlagsFetch sends "* seq FETCH (FLAGS ...)", with UID when QRESYNC is
// on (or asked) and MODSEQ when CONDSTORE is on.
func (c *conn) writeFlagsFetch(seq, uid uint32, flags []string, modseq uint64, withUID bool) {
	c.announceKeywords(flags)
	c.sel.noteTold(uid, modseq, true, c.cstore)
	c.enc.Raw("* ").Number(uint64(seq)).Raw(" FETCH (")
	if withUID || c.qresync {
		c.enc.Raw("UID ").Number(uint64(uid)).SP()
	}
	c.enc.Raw("FLAGS (").Raw(strings.Join(flags, " "))
	if c.sel != nil && c.sel.recent[uid] {
		if len(flags) > 0 {
			c.enc.SP()
		}
		c.enc.Raw(`\Recent`)
	}
	c.enc.Raw(")")
	if c.cstore {
		c.enc.Raw(" MODSEQ (").Number(modseq).Raw(")")
		c.modseqSent = true
	}
	c.enc.Raw(")").CRLF()
}

// uidSetString formats sorted UIDs compactly ("1:3,7").
func uidSetString(uids []uint32) string {
	var set imap.UIDSet
	for _, u := range uids {
		set.AddNum(imap.UID(u))
	}
	return set.String()
}

// xselected returns the view or fails when the mailbox was deleted.
func (c *conn) xselected() *selected {
	if c.sel == nil {
		xsyntaxf("no mailbox selected")
	}
	return c.sel
}

// resolveSeqs turns a sequence set (or "$") into UIDs of the view, in
// ascending order. isUID selects UID semantics. "*" is the highest
// sequence number or UID (RFC 9051 s6.4.8: for UIDs, "*" is the largest in
// use; a range n:* with n above it still matches the last message).
func (c *conn) resolveSeqs(set imap.SeqSet, dollar, isUID bool) []uint32 {
	s := c.sel
	if dollar {
		var out []uint32
		for _, u := range s.searchRes {
			if _, ok := s.seqOf(u); ok {
				out = append(out, u)
			}
		}
		return out
	}
	n := uint32(len(s.uids))
	if n == 0 {
		return nil
	}
	var out []uint32
	if isUID {
		maxUID := s.uids[n-1]
		for _, r := range set {
			lo, hi := rangeBounds(r, maxUID)
			i, _ := slices.BinarySearch(s.uids, lo)
			for ; i < len(s.uids) && s.uids[i] <= hi; i++ {
				out = append(out, s.uids[i])
			}
		}
	} else {
		for _, r := range set {
			lo, hi := rangeBounds(r, n)
			if lo > n {
				xsyntaxf("invalid message sequence number %d", lo)
			}
			if hi > n {
				xsyntaxf("invalid message sequence number %d", hi)
			}
			for q := lo; q <= hi; q++ {
				out = append(out, s.uids[q-1])
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mailboxHasRecent checks the counters (a read) before ClearRecent (a
// durable write): after a deposit, only the first of many idle sessions
// takes the \Recent messages; the others must not each write.
func (c *conn) mailboxHasRecent(mbid uint64) bool {
	mb, err := c.srv.Store.MailboxByID(mbid)
	return err == nil && mb.Counts.Recent > 0
}

// rangeBounds resolves a sequence-set range: 0 ("*") becomes star, and the
// bounds come out in order (RFC 9051 s9: "n:m" equals "m:n").
func rangeBounds(r imap.SeqRange, star uint32) (uint32, uint32) {
	lo, hi := r.Start, r.Stop
	if lo == 0 {
		lo = star
	}
	if hi == 0 {
		hi = star
	}
	if lo > hi {
		lo, hi = hi, lo
	}
	return lo, hi
}
