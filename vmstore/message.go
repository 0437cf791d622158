package vmstore

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// System flags (RFC 9051 s2.3.2). Flags are compared case-insensitively and
// stored in this canonical spelling; keywords keep their first spelling.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

var systemFlags = []string{FlagSeen, FlagAnswered, FlagFlagged, FlagDeleted, FlagDraft}

// CanonFlag returns the canonical spelling of a flag, or "" if it is not a
// valid flag for STORE/APPEND (\Recent and unknown system flags are not).
func CanonFlag(f string) string {
	if strings.HasPrefix(f, `\`) {
		for _, s := range systemFlags {
			if strings.EqualFold(s, f) {
				return s
			}
		}
		return ""
	}
	if f == "" || len(f) > 128 {
		return ""
	}
	for _, c := range f {
		// RFC 9051 atom-char minus flag specials.
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`(){%*"\]`, c) {
			return ""
		}
	}
	return f
}

// Message is a message record.
type Message struct {
	MailboxID    uint64    `json:"mb"`
	UID          uint32    `json:"uid"`
	ModSeq       uint64    `json:"modseq"`
	Flags        []string  `json:"flags,omitempty"` // canonical, sorted
	InternalDate time.Time `json:"idate"`
	SaveDate     time.Time `json:"sdate"`           // when it entered this mailbox
	SeenAt       time.Time `json:"seenAt,omitzero"` // first time \Seen was set
	Size         int64     `json:"size"`
	Blob         uint64    `json:"blob"`
	Hash         []byte    `json:"hash"` // sha256 of the content: key of the Part tree
	Context      Context   `json:"ctx,omitempty"`
	Duration     float64   `json:"dur,omitempty"` // seconds of the main audio/video part
	Urgent       bool      `json:"urgent,omitempty"`
	Recent       bool      `json:"recent,omitempty"`
	From         string    `json:"from,omitempty"`
	Subject      string    `json:"subject,omitempty"`
	// SentDate is the Date header (zero when absent or unparsable); To and
	// Cc the first addresses of those headers: SORT keys (RFC 5256).
	SentDate time.Time `json:"sent,omitzero"`
	To       string    `json:"to,omitempty"`
	Cc       string    `json:"cc,omitempty"`
	// Keys holds what SORT and THREAD need of the header beyond the
	// fields above (read it with HeaderKeys: a record read from the
	// store keeps it encoded until asked).
	Keys    *HeaderKeys `json:"keys,omitempty"`
	keysRaw string

	// Binary: a part contains NUL; the message is presented with it
	// re-encoded (present.go), and RFC822.SIZE is the presented size.
	Binary bool `json:"bin,omitempty"`
}

// HeaderKeys returns the sort and thread keys of the message, nil for a
// record written before they were kept.
func (m *Message) HeaderKeys() *HeaderKeys {
	if m.Keys == nil && m.keysRaw != "" {
		if k, ok := decodeKeys(m.keysRaw); ok {
			m.Keys = k
		}
		m.keysRaw = ""
	}
	return m.Keys
}

// HeaderKeys are the RFC 5256 / RFC 5957 sort and thread keys of a
// message, taken from its header when it is stored.
type HeaderKeys struct {
	// FromMailbox, ToMailbox, CcMailbox: the addr-mailbox of the first
	// address (RFC 5256 s3), the group name when it is a group.
	FromMailbox, ToMailbox, CcMailbox string
	// DisplayFrom, DisplayTo: RFC 5957 display forms of the first address
	// (decoded display name, else the addr-spec).
	DisplayFrom, DisplayTo string
	// MessageID: the normalized msg-id of Message-ID ("" when it has
	// none). Refs: the normalized msg-ids of References, or the first of
	// In-Reply-To when References has none (RFC 5256 s2.2 step 1).
	MessageID string
	Refs      []string
}

// Has reports whether the message has flag f (canonical spelling for system
// flags; keywords compared case-insensitively).
func (m *Message) Has(f string) bool {
	for _, x := range m.Flags {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

func (c *Counts) apply(m *Message, sign int) {
	add := func(p *uint32, cond bool) {
		if cond {
			*p = uint32(int64(*p) + int64(sign))
		}
	}
	seen, deleted := m.Has(FlagSeen), m.Has(FlagDeleted)
	add(&c.Messages, true)
	add(&c.Unseen, !seen)
	add(&c.Recent, m.Recent)
	add(&c.Deleted, deleted)
	c.Bytes += int64(sign) * m.Size
	if deleted {
		c.DeletedBytes += int64(sign) * m.Size
	}
	if deleted {
		return
	}
	mc := &c.MWI[contextIndex(m.Context)]
	add(&mc.New, !seen)
	add(&mc.Old, seen)
	add(&mc.UrgentNew, !seen && m.Urgent)
	add(&mc.UrgentOld, seen && m.Urgent)
}

func (w *wtx) getMessage(mb uint64, uid uint32) (*Message, error) {
	var m Message
	if err := w.getMessageRec(messageKey(mb, uid), &m); err != nil {
		return nil, fmt.Errorf("%w: message %d", err, uid)
	}
	return &m, nil
}

// putMessage writes a message and moves its modseq index entry.
func (w *wtx) putMessage(m *Message, oldModSeq uint64) error {
	if oldModSeq != 0 && oldModSeq != m.ModSeq {
		if err := w.unindexModseq(m.MailboxID, oldModSeq, m.UID); err != nil {
			return err
		}
	}
	if err := w.set(messageKey(m.MailboxID, m.UID), encodeMessage(m)); err != nil {
		return err
	}
	w.noteMessage(m)
	// Several messages can share a modseq (one operation); the index value
	// lists them.
	l, err := w.modseqList(m.MailboxID, m.ModSeq)
	if err != nil {
		return err
	}
	*l = append(*l, m.UID)
	return nil
}

// modseqList returns the transaction's copy of a modseq index entry. The
// entries are changed in memory and written once, at commit
// (flushModseqIndex): rewriting an entry per message would make a
// transaction that changes n messages of one modseq write O(n^2) bytes.
func (w *wtx) modseqList(mb, modseq uint64) (*[]uint32, error) {
	k := string(modseqKey(mb, modseq))
	if l, ok := w.modseqIdx[k]; ok {
		return l, nil
	}
	var uids []uint32
	it, err := w.txn.Get([]byte(k))
	switch {
	case err == nil:
		v, err := it.ValueCopy(nil)
		if err != nil {
			return nil, err
		}
		for i := 0; i+4 <= len(v); i += 4 {
			uids = append(uids, binary.BigEndian.Uint32(v[i:]))
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return nil, err
	}
	if w.modseqIdx == nil {
		w.modseqIdx = map[string]*[]uint32{}
	}
	l := &uids
	w.modseqIdx[k] = l
	return l, nil
}

// flushModseqIndex writes the modseq index entries changed by w.
func (w *wtx) flushModseqIndex() error {
	for k, l := range w.modseqIdx {
		if len(*l) == 0 {
			if err := w.del([]byte(k)); err != nil {
				return err
			}
			continue
		}
		v := make([]byte, 0, 4*len(*l))
		for _, u := range *l {
			v = be32(v, u)
		}
		if err := w.set([]byte(k), v); err != nil {
			return err
		}
	}
	w.modseqIdx = nil
	return nil
}

func (w *wtx) putMailbox(mb *Mailbox) error {
	w.noteMailbox(mb)
	return w.set(mailboxKey(mb.ID), encodeMailbox(mb))
}

func (w *wtx) allUIDs(mb uint64) ([]uint32, error) {
	var out []uint32
	p := messagePrefix(mb)
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: p})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		out = append(out, binary.BigEndian.Uint32(it.Item().Key()[len(p):]))
	}
	return out, nil
}

// Messages returns the mailbox's messages with UID in [from, to] (to 0 =
// no upper bound), in UID order.
func (s *Store) Messages(mbid uint64, from, to uint32) ([]Message, error) {
	img, _, err := s.image(mbid)
	if err == nil {
		i, _ := img.find(from)
		var out []Message
		for ; i < len(img.msgs) && (to == 0 || img.msgs[i].UID <= to); i++ {
			out = append(out, *img.msgs[i])
		}
		return out, nil
	}
	if !errors.Is(err, errNotIndexed) {
		return nil, err
	}
	var out []Message
	err = s.view(func(txn *badger.Txn) error {
		p := messagePrefix(mbid)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 256})
		defer it.Close()
		for it.Seek(messageKey(mbid, from)); it.Valid(); it.Next() {
			uid := binary.BigEndian.Uint32(it.Item().Key()[len(p):])
			if to != 0 && uid > to {
				break
			}
			var m Message
			if err := it.Item().Value(func(b []byte) error { return decodeMessage(b, &m) }); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	return out, err
}

// Message returns one message.
func (s *Store) Message(mbid uint64, uid uint32) (*Message, error) {
	if img, _, err := s.image(mbid); err == nil {
		if i, ok := img.find(uid); ok {
			m := *img.msgs[i]
			return &m, nil
		}
		return nil, fmt.Errorf("%w: message %d", ErrNotFound, uid)
	} else if !errors.Is(err, errNotIndexed) {
		return nil, err
	}
	var m Message
	err := s.view(func(txn *badger.Txn) error { return getMessageRec(txn, messageKey(mbid, uid), &m) })
	if err != nil {
		return nil, fmt.Errorf("%w: message %d", err, uid)
	}
	return &m, nil
}

// ChangedSince returns the messages whose modseq is greater than modseq, in
// modseq order (RFC 7162 CHANGEDSINCE), using the modseq index.
func (s *Store) ChangedSince(mbid, modseq uint64) ([]Message, error) {
	if img, _, err := s.image(mbid); err == nil {
		var out []Message
		for _, m := range img.msgs {
			if m.ModSeq > modseq {
				out = append(out, *m)
			}
		}
		slices.SortStableFunc(out, func(a, b Message) int { return cmp.Compare(a.ModSeq, b.ModSeq) })
		return out, nil
	} else if !errors.Is(err, errNotIndexed) {
		return nil, err
	}
	var out []Message
	err := s.view(func(txn *badger.Txn) error {
		p := modseqPrefix(mbid)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
		defer it.Close()
		for it.Seek(modseqKey(mbid, modseq+1)); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			for i := 0; i+4 <= len(v); i += 4 {
				var m Message
				if err := getMessageRec(txn, messageKey(mbid, binary.BigEndian.Uint32(v[i:])), &m); err != nil {
					return fmt.Errorf("vmstore: modseq index of mailbox %d: %w", mbid, err)
				}
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

// ExpungedSince returns the UIDs expunged with a modseq greater than modseq
// (RFC 7162 VANISHED (EARLIER)), sorted.
func (s *Store) ExpungedSince(mbid, modseq uint64) ([]uint32, error) {
	var out []uint32
	err := s.view(func(txn *badger.Txn) error {
		p := expungedPrefix(mbid)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true})
		defer it.Close()
		for it.Seek(expungedKey(mbid, modseq+1)); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			for i := 0; i+4 <= len(v); i += 4 {
				out = append(out, binary.BigEndian.Uint32(v[i:]))
			}
		}
		return nil
	})
	slices.Sort(out)
	return out, err
}

// FlagOp says how StoreFlags changes flags.
type FlagOp int

// Flag operations (RFC 9051 s6.4.6: FLAGS, +FLAGS, -FLAGS).
const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// StoreReq is a flag change on some messages of one mailbox.
type StoreReq struct {
	User      string
	MailboxID uint64
	UIDs      []uint32
	Op        FlagOp
	Flags     []string
	// UnchangedSince, if non-zero (or Conditional is set), skips messages
	// whose modseq is greater (RFC 7162 s3.1.3); they are returned in
	// Modified. Conditional with UnchangedSince 0 fails for every message.
	UnchangedSince uint64
	Conditional    bool
}

// StoreRes reports a flag change.
type StoreRes struct {
	Changed  []Message // messages whose flags changed, with their new modseq
	Modified []uint32  // UNCHANGEDSINCE failures
	Mailbox  Mailbox   // after the change
}

// StoreFlags changes flags. Messages that do not exist are skipped. One
// modseq is assigned to all messages changed by one transaction; a call on
// more than maxOpMessages messages runs as several.
func (s *Store) StoreFlags(req StoreReq) (*StoreRes, error) {
	if len(req.UIDs) == 0 {
		return s.storeFlags(req)
	}
	out := &StoreRes{}
	err := inParts(req.UIDs, func(part []uint32) error {
		r := req
		r.UIDs = part
		res, err := s.storeFlags(r)
		if err != nil {
			return err
		}
		out.Changed = append(out.Changed, res.Changed...)
		out.Modified = append(out.Modified, res.Modified...)
		out.Mailbox = res.Mailbox
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) storeFlags(req StoreReq) (*StoreRes, error) {
	flags := make([]string, 0, len(req.Flags))
	for _, f := range req.Flags {
		c := CanonFlag(f)
		if c == "" {
			return nil, fmt.Errorf("%w: flag %q", ErrInvalid, f)
		}
		flags = append(flags, c)
	}
	res := &StoreRes{}
	_, err := s.update(req.User, func(w *wtx) error {
		mb, err := w.mailboxByID(req.MailboxID)
		if err != nil {
			return err
		}
		if mb.User != req.User {
			return fmt.Errorf("%w: mailbox id %d", ErrNotFound, req.MailboxID)
		}
		modseq := mb.HighestModSeq + 1
		wasMWI := mb.Counts.MWI
		set := map[string][]uint32{}   // flag -> uids where it was set
		clear := map[string][]uint32{} // flag -> uids where it was cleared
		var changedUIDs []uint32
		var msgFlags [][]string
		var msgModseq []uint64
		for _, uid := range req.UIDs {
			m, err := w.getMessage(mb.ID, uid)
			if err != nil {
				continue // expunged meanwhile: nothing to do (RFC 9051 s6.4.6)
			}
			if (req.UnchangedSince != 0 || req.Conditional) && m.ModSeq > req.UnchangedSince {
				res.Modified = append(res.Modified, uid)
				continue
			}
			nf := applyFlags(m.Flags, req.Op, flags)
			if slices.Equal(nf, m.Flags) {
				continue
			}
			for _, f := range nf {
				if !containsFold(m.Flags, f) {
					set[f] = append(set[f], uid)
				}
			}
			for _, f := range m.Flags {
				if !containsFold(nf, f) {
					clear[f] = append(clear[f], uid)
				}
			}
			mb.Counts.apply(m, -1)
			old := m.ModSeq
			m.Flags = nf
			m.ModSeq = modseq
			if m.Has(FlagSeen) && m.SeenAt.IsZero() {
				m.SeenAt = w.now.UTC()
			}
			mb.Counts.apply(m, +1)
			if err := w.putMessage(m, old); err != nil {
				return err
			}
			res.Changed = append(res.Changed, *m)
			changedUIDs = append(changedUIDs, uid)
			msgFlags = append(msgFlags, m.Flags)
			msgModseq = append(msgModseq, m.ModSeq)
		}
		if len(res.Changed) == 0 {
			res.Mailbox = *mb
			return nil
		}
		mb.HighestModSeq = modseq
		if err := w.putMailbox(mb); err != nil {
			return err
		}
		res.Mailbox = *mb
		var mwi *MWI
		if mb.Name == "INBOX" && wasMWI != mb.Counts.MWI {
			mwi = mb.MWI()
		}
		base := Event{User: req.User, MailboxID: mb.ID, Mailbox: mb.Name, UIDValidity: mb.UIDValidity,
			ModSeq: modseq, UIDNext: mb.UIDNext, Messages: mb.Counts.Messages, Unseen: mb.Counts.Unseen}
		// RFC 5423 mapping as Cyrus does: clears first, then \Seen ->
		// MessageRead, \Deleted -> MessageTrash, the rest -> FlagsSet. Each
		// event carries the affected UIDs and their resulting flags.
		emit := func(t EventType, flagNames []string, uids []uint32) {
			ev := base
			ev.Type, ev.Flags, ev.UIDs = t, flagNames, sortedUnique(uids)
			for _, u := range ev.UIDs {
				i := slices.Index(changedUIDs, u)
				ev.MsgFlags = append(ev.MsgFlags, msgFlags[i])
				ev.MsgModSeq = append(ev.MsgModSeq, msgModseq[i])
			}
			w.emit(ev)
		}
		if len(clear) > 0 {
			names, uids := flatten(clear)
			emit(EventFlagsClear, names, uids)
		}
		if u := set[FlagSeen]; len(u) > 0 {
			emit(EventMessageRead, []string{FlagSeen}, u)
			delete(set, FlagSeen)
		}
		if u := set[FlagDeleted]; len(u) > 0 {
			emit(EventMessageTrash, []string{FlagDeleted}, u)
			delete(set, FlagDeleted)
		}
		if len(set) > 0 {
			names, uids := flatten(set)
			emit(EventFlagsSet, names, uids)
		}
		if mwi != nil {
			w.events[len(w.events)-1].MWI = mwi
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func containsFold(list []string, f string) bool {
	for _, x := range list {
		if strings.EqualFold(x, f) {
			return true
		}
	}
	return false
}

func applyFlags(cur []string, op FlagOp, flags []string) []string {
	var out []string
	switch op {
	case FlagsReplace:
		for _, f := range flags {
			if !containsFold(out, f) {
				out = append(out, f)
			}
		}
	case FlagsAdd:
		out = slices.Clone(cur)
		for _, f := range flags {
			if !containsFold(out, f) {
				out = append(out, f)
			}
		}
	case FlagsRemove:
		for _, f := range cur {
			if !containsFold(flags, f) {
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

func flatten(m map[string][]uint32) ([]string, []uint32) {
	var names []string
	var uids []uint32
	for f, u := range m {
		names = append(names, f)
		uids = append(uids, u...)
	}
	sort.Strings(names)
	return names, uids
}

func sortedUnique(u []uint32) []uint32 {
	u = slices.Clone(u)
	slices.Sort(u)
	return slices.Compact(u)
}

// copyMessages copies (or moves) messages from src to dst inside w. It
// returns the source and new UIDs in order.
func (w *wtx) copyMessages(src, dst *Mailbox, uids []uint32, move bool) ([]uint32, []uint32, error) {
	var srcUIDs, dstUIDs []uint32
	var added []*Message
	dstModseq := dst.HighestModSeq + 1
	wasSrc, wasDst := src.Counts.MWI, dst.Counts.MWI
	for _, uid := range uids {
		m, err := w.getMessage(src.ID, uid)
		if err != nil {
			continue
		}
		n := *m
		n.MailboxID = dst.ID
		n.UID = dst.UIDNext
		n.ModSeq = dstModseq
		n.SaveDate = w.now.UTC()
		n.Recent = true
		dst.UIDNext++
		dst.Counts.apply(&n, +1)
		if err := w.putMessage(&n, 0); err != nil {
			return nil, nil, err
		}
		if err := w.addRef(n.Blob, n.MailboxID, n.UID); err != nil {
			return nil, nil, err
		}
		srcUIDs = append(srcUIDs, uid)
		dstUIDs = append(dstUIDs, n.UID)
		added = append(added, &n)
	}
	if len(dstUIDs) == 0 {
		return nil, nil, nil
	}
	dst.HighestModSeq = dstModseq
	if err := w.putMailbox(dst); err != nil {
		return nil, nil, err
	}
	ev := Event{Type: EventMessageAppend, User: dst.User, MailboxID: dst.ID, Mailbox: dst.Name, UIDValidity: dst.UIDValidity,
		OldMbID: src.ID, OldMailbox: src.Name, OldUIDs: srcUIDs, UIDs: dstUIDs, ModSeq: dst.HighestModSeq, UIDNext: dst.UIDNext,
		Messages: dst.Counts.Messages, Unseen: dst.Counts.Unseen}
	for _, m := range added {
		ev.MsgFlags = append(ev.MsgFlags, m.Flags)
		ev.MsgModSeq = append(ev.MsgModSeq, m.ModSeq)
	}
	if len(added) == 1 {
		fillMessageEvent(&ev, added[0])
	}
	if dst.Name == "INBOX" && wasDst != dst.Counts.MWI {
		ev.MWI = dst.MWI()
	}
	w.emit(ev)
	if move {
		if err := w.expunge(src, srcUIDs, EventMessageExpunge); err != nil {
			return nil, nil, err
		}
		if src.Name == "INBOX" && wasSrc != src.Counts.MWI {
			w.events[len(w.events)-1].MWI = src.MWI()
		}
	}
	return srcUIDs, dstUIDs, nil
}

func fillMessageEvent(ev *Event, m *Message) {
	ev.Size, ev.Context, ev.Duration, ev.Urgent, ev.From, ev.Subject = m.Size, m.Context, m.Duration, m.Urgent, m.From, m.Subject
}

// expunge removes messages from mb (already loaded in w) and logs them.
func (w *wtx) expunge(mb *Mailbox, uids []uint32, t EventType) error {
	var msgs []Message
	for _, uid := range uids {
		if m, err := w.getMessage(mb.ID, uid); err == nil {
			msgs = append(msgs, *m)
		}
	}
	return w.expungeMsgs(mb, msgs, t)
}

// expungeMsgs removes already loaded messages of mb and logs them.
func (w *wtx) expungeMsgs(mb *Mailbox, msgs []Message, t EventType) error {
	var gone []uint32
	was := mb.Counts.MWI
	modseq := mb.HighestModSeq + 1
	for i := range msgs {
		m, uid := &msgs[i], msgs[i].UID
		mb.Counts.apply(m, -1)
		if err := w.del(messageKey(mb.ID, uid)); err != nil {
			return err
		}
		w.noteExpunge(mb.ID, uid)
		if err := w.delModseqIndex(m); err != nil {
			return err
		}
		if err := w.dropRef(m.Blob, mb.ID, uid); err != nil {
			return err
		}
		gone = append(gone, uid)
	}
	if len(gone) == 0 {
		return nil
	}
	slices.Sort(gone)
	var v []byte
	for _, u := range gone {
		v = be32(v, u)
	}
	if err := w.set(expungedKey(mb.ID, modseq), v); err != nil {
		return err
	}
	mb.HighestModSeq = modseq
	if err := w.putMailbox(mb); err != nil {
		return err
	}
	ev := Event{Type: t, User: mb.User, MailboxID: mb.ID, Mailbox: mb.Name, UIDValidity: mb.UIDValidity, UIDs: gone,
		ModSeq: modseq, UIDNext: mb.UIDNext, Messages: mb.Counts.Messages, Unseen: mb.Counts.Unseen}
	if mb.Name == "INBOX" && was != mb.Counts.MWI {
		ev.MWI = mb.MWI()
	}
	w.emit(ev)
	return nil
}

func (w *wtx) delModseqIndex(m *Message) error { return w.unindexModseq(m.MailboxID, m.ModSeq, m.UID) }

// unindexModseq removes uid from the modseq index entry of modseq.
func (w *wtx) unindexModseq(mb, modseq uint64, uid uint32) error {
	l, err := w.modseqList(mb, modseq)
	if err != nil {
		return err
	}
	*l = slices.DeleteFunc(*l, func(u uint32) bool { return u == uid })
	return nil
}

// CopyReq copies or moves messages between two mailboxes of one account.
type CopyReq struct {
	User     string
	From, To uint64 // mailbox ids
	UIDs     []uint32
	Move     bool
}

// CopyRes maps source to destination UIDs (RFC 4315 COPYUID).
type CopyRes struct {
	SrcUIDs, DstUIDs []uint32
	UIDValidity      uint32
}

// Copy copies or moves messages. Blobs are shared, not duplicated. The
// destination's quota is checked. A copy of more than maxOpMessages
// messages runs as several transactions, after a quota check of the whole.
func (s *Store) Copy(req CopyReq) (*CopyRes, error) {
	if len(req.UIDs) <= maxOpMessages {
		res, err := s.copy(req)
		if !errors.Is(err, badger.ErrTxnTooBig) {
			return res, err
		}
	}
	if !req.Move {
		if err := s.checkQuotaFor(req.User, req.From, req.UIDs); err != nil {
			return nil, err
		}
	}
	out := &CopyRes{}
	err := inParts(req.UIDs, func(part []uint32) error {
		r := req
		r.UIDs = part
		res, err := s.copy(r)
		if err != nil {
			return err
		}
		out.SrcUIDs = append(out.SrcUIDs, res.SrcUIDs...)
		out.DstUIDs = append(out.DstUIDs, res.DstUIDs...)
		out.UIDValidity = res.UIDValidity
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) copy(req CopyReq) (*CopyRes, error) {
	res := &CopyRes{}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	_, err := s.update(req.User, func(w *wtx) error {
		src, err := w.mailboxByID(req.From)
		if err != nil {
			return err
		}
		dst, err := w.mailboxByID(req.To)
		if err != nil {
			return err
		}
		if src.User != req.User || dst.User != req.User {
			return fmt.Errorf("%w: mailbox not of %s", ErrNotFound, req.User)
		}
		if !req.Move {
			var add int64
			var n int64
			for _, uid := range req.UIDs {
				if m, err := w.getMessage(src.ID, uid); err == nil {
					add += m.Size
					n++
				}
			}
			if err := w.checkQuota(req.User, add, n); err != nil {
				return err
			}
		}
		if src.ID == dst.ID {
			// COPY, or MOVE (RFC 6851: a COPY then an EXPUNGE of the
			// originals), into the same mailbox: new UIDs there.
			dst = src
		}
		res.SrcUIDs, res.DstUIDs, err = w.copyMessages(src, dst, req.UIDs, req.Move)
		res.UIDValidity = dst.UIDValidity
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// Expunge removes the given messages, or, with uids nil, every message
// flagged \Deleted (RFC 9051 s6.4.3; UID EXPUNGE passes the UIDs and only
// those flagged \Deleted are removed). It returns the expunged UIDs.
func (s *Store) Expunge(user string, mbid uint64, uids []uint32) ([]uint32, error) {
	return s.expungeAs(user, mbid, uids, true, EventMessageExpunge)
}

// Remove deletes messages whatever their flags (admin API, retention).
func (s *Store) Remove(user string, mbid uint64, uids []uint32) ([]uint32, error) {
	return s.expungeAs(user, mbid, uids, false, EventMessageExpunge)
}

func (s *Store) expungeAs(user string, mbid uint64, uids []uint32, onlyDeleted bool, t EventType) ([]uint32, error) {
	if uids == nil {
		mb, err := s.MailboxByID(mbid)
		if err != nil {
			return nil, err
		}
		n := mb.Counts.Messages
		if onlyDeleted {
			n = mb.Counts.Deleted
		}
		if n <= maxOpMessages {
			out, err := s.expungeTx(user, mbid, nil, onlyDeleted, t)
			if !errors.Is(err, badger.ErrTxnTooBig) {
				return out, err
			}
		}
		// Too many for one transaction: the candidates now, then in parts
		// (each part checks \Deleted again).
		uids = []uint32{}
		err = s.eachMessage(mbid, func(m *Message) {
			if !onlyDeleted || m.Has(FlagDeleted) {
				uids = append(uids, m.UID)
			}
		})
		if err != nil {
			return nil, err
		}
	}
	var out []uint32
	err := inParts(uids, func(part []uint32) error {
		gone, err := s.expungeTx(user, mbid, part, onlyDeleted, t)
		if err == nil {
			out = append(out, gone...)
		}
		return err
	})
	slices.Sort(out)
	return out, err
}

func (s *Store) expungeTx(user string, mbid uint64, uids []uint32, onlyDeleted bool, t EventType) ([]uint32, error) {
	var out []uint32
	_, err := s.update(user, func(w *wtx) error {
		mb, err := w.mailboxByID(mbid)
		if err != nil {
			return err
		}
		if mb.User != user {
			return fmt.Errorf("%w: mailbox id %d", ErrNotFound, mbid)
		}
		var msgs []Message
		keep := func(m *Message) {
			if !onlyDeleted || m.Has(FlagDeleted) {
				msgs = append(msgs, *m)
			}
		}
		if uids == nil {
			// The whole mailbox: one pass over its records.
			if mb.Counts.Deleted == 0 && onlyDeleted {
				return nil
			}
			msgs, err = w.selectMessages(mbid, func(m *Message) bool { return !onlyDeleted || m.Has(FlagDeleted) })
			if err != nil {
				return err
			}
		} else {
			for _, uid := range uids {
				if m, err := w.getMessage(mbid, uid); err == nil {
					keep(m)
				}
			}
		}
		sel := make([]uint32, len(msgs))
		for i := range msgs {
			sel[i] = msgs[i].UID
		}
		if err := w.expungeMsgs(mb, msgs, t); err != nil {
			return err
		}
		out = sel
		if len(sel) == 0 {
			return nil
		}
		return w.quotaWithin(user)
	})
	slices.Sort(out)
	return out, err
}

// ClearRecent clears \Recent on the mailbox's messages (the first session
// to select it read-write takes them, RFC 3501 s2.3.2) and returns the UIDs
// that were recent. It journals nothing: \Recent is per session.
func (s *Store) ClearRecent(user string, mbid uint64) ([]uint32, error) {
	mb, err := s.MailboxByID(mbid)
	if err != nil || mb.Counts.Recent == 0 {
		return nil, err
	}
	var cand []uint32
	err = s.eachMessage(mbid, func(m *Message) {
		if m.Recent {
			cand = append(cand, m.UID)
		}
	})
	if err != nil {
		return nil, err
	}
	var out []uint32
	err = inParts(cand, func(part []uint32) error {
		var cleared []uint32
		_, err := s.update(user, func(w *wtx) error {
			cleared = cleared[:0]
			mb, err := w.mailboxByID(mbid)
			if err != nil {
				return err
			}
			for _, uid := range part {
				m, err := w.getMessage(mbid, uid)
				if err != nil || !m.Recent {
					continue
				}
				m.Recent = false
				if err := w.set(messageKey(mbid, uid), encodeMessage(m)); err != nil {
					return err
				}
				w.noteMessage(m)
				cleared = append(cleared, uid)
			}
			if len(cleared) == 0 {
				return nil
			}
			mb.Counts.Recent -= min(mb.Counts.Recent, uint32(len(cleared)))
			return w.putMailbox(mb)
		})
		if err == nil {
			out = append(out, cleared...)
		}
		return err
	})
	return out, err
}

// selectMessages returns the current records of the mailbox's messages
// that match keep, in UID order: the candidates come from the index and are
// read again in w; a mailbox too large for the index is read from w whole.
func (w *wtx) selectMessages(mbid uint64, keep func(*Message) bool) ([]Message, error) {
	var out []Message
	img, err := w.syncedImage(mbid)
	if err == nil {
		for _, m := range img.msgs {
			if !keep(m) {
				continue
			}
			if cur, err := w.getMessage(mbid, m.UID); err == nil && keep(cur) {
				out = append(out, *cur)
			}
		}
		return out, nil
	}
	if !errors.Is(err, errNotIndexed) {
		return nil, err
	}
	it := w.txn.NewIterator(badger.IteratorOptions{Prefix: messagePrefix(mbid), PrefetchValues: true})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var m Message
		if err := it.Item().Value(func(b []byte) error { return decodeMessage(b, &m) }); err != nil {
			return nil, err
		}
		if keep(&m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// UIDs returns the mailbox's UIDs in order, reading keys only (fast: for
// building a session's sequence-number map).
func (s *Store) UIDs(mbid uint64) ([]uint32, error) {
	if img, _, err := s.image(mbid); err == nil {
		out := make([]uint32, len(img.msgs))
		for i, m := range img.msgs {
			out[i] = m.UID
		}
		return out, nil
	} else if !errors.Is(err, errNotIndexed) {
		return nil, err
	}
	var out []uint32
	err := s.view(func(txn *badger.Txn) error {
		p := messagePrefix(mbid)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: p})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, binary.BigEndian.Uint32(it.Item().Key()[len(p):]))
		}
		return nil
	})
	return out, err
}

// Snapshot reads a mailbox and its messages in one read transaction,
// together with the sequence number of the last journal event that
// transaction sees: hub events with Seq <= LastSeq are already reflected
// in it, later ones are not.
type Snapshot struct {
	Mailbox  Mailbox
	Messages []Message
	LastSeq  uint64
}

// Snapshot returns a consistent view of a mailbox.
func (s *Store) Snapshot(mbid uint64) (*Snapshot, error) {
	if img, seq, err := s.image(mbid); err == nil {
		snap := &Snapshot{Mailbox: img.mb, LastSeq: seq, Messages: make([]Message, len(img.msgs))}
		for i, m := range img.msgs {
			snap.Messages[i] = *m
		}
		return snap, nil
	} else if !errors.Is(err, errNotIndexed) {
		return nil, err
	}
	snap := &Snapshot{}
	err := s.view(func(txn *badger.Txn) error {
		if err := getMailbox(txn, mbid, &snap.Mailbox); err != nil {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: []byte(kJournal)})
		it.Seek(append([]byte(kJournal), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if it.ValidForPrefix([]byte(kJournal)) {
			snap.LastSeq = binary.BigEndian.Uint64(it.Item().Key()[2:])
		}
		it.Close()
		p := messagePrefix(mbid)
		mi := txn.NewIterator(badger.IteratorOptions{Prefix: p, PrefetchValues: true, PrefetchSize: 256})
		defer mi.Close()
		for mi.Rewind(); mi.Valid(); mi.Next() {
			var m Message
			if err := mi.Item().Value(func(b []byte) error { return decodeMessage(b, &m) }); err != nil {
				return err
			}
			snap.Messages = append(snap.Messages, m)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return snap, nil
}

// ExpungeHorizon is the modseq below which expunges are no longer logged
// (RFC 7162 s3.2.5.2). The store keeps the whole expunge log of a mailbox,
// so it is 0; callers should still honour it.
func (s *Store) ExpungeHorizon(mbid uint64) (uint64, error) { return 0, nil }

func getMessageRec(txn *badger.Txn, key []byte, m *Message) error {
	it, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return it.Value(func(b []byte) error { return decodeMessage(b, m) })
}

func (w *wtx) getMessageRec(key []byte, m *Message) error { return getMessageRec(w.txn, key, m) }

// bounded returns a copy with every field cut to what a record keeps.
func (k HeaderKeys) bounded() *HeaderKeys {
	for _, p := range []*string{&k.FromMailbox, &k.ToMailbox, &k.CcMailbox, &k.DisplayFrom, &k.DisplayTo, &k.MessageID} {
		*p = truncate(*p, 256)
	}
	k.Refs = slices.Clone(k.Refs)
	return &k
}
