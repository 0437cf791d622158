package imap

import (
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/lemonvox/lemonvox/vmstore"
)

// permanentKeywords are the Lemonade keywords always announced (RFC 5550
// s5.9, s5.10); other keywords may be created (\*).
var permanentKeywords = []string{"$Forwarded", "$SubmitPending", "$Submitted", "$MDNSent", "$Junk", "$NotJunk"}

const systemFlags = `\Answered \Flagged \Deleted \Seen \Draft`

type qresyncParams struct {
	uidValidity uint32
	modseq      uint64
	known       imap.SeqSet // known UIDs; nil = all
	seqMatch    imap.SeqSet
	uidMatch    imap.SeqSet
}

// RFC 9051 s6.3.2 SELECT, s6.3.3 EXAMINE; RFC 7162 s3.1.8 (CONDSTORE) and
// s3.2.5 (QRESYNC).
func cmdSelect(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	var condstore bool
	var qr *qresyncParams
	if p.Consume(' ') {
		p.xlist(func() {
			switch param := strings.ToUpper(p.xatom()); param {
			case "CONDSTORE":
				condstore = true
			case "QRESYNC":
				if !c.qresync {
					xsyntaxf("QRESYNC not enabled")
				}
				p.xsp()
				qr = p.xqresync()
			default:
				xsyntaxf("unknown select parameter %s", param)
			}
		})
	}
	p.xend()
	if c.sel != nil {
		c.sel = nil
		c.state = stateAuth
		// RFC 7162 s3.2.11: separates the old mailbox's responses.
		c.writeLine("* OK [CLOSED] previous mailbox closed")
	}
	if condstore {
		c.enableCondstore()
	}
	// Subscribe before reading the mailbox so that no change is missed;
	// what is pending now concerns other mailboxes (NOTIFY) or is already
	// in what we read.
	c.ensureSub()
	c.pollEvents()
	st := c.srv.Store
	mb0, err := st.Mailbox(c.user, name)
	xstoreErr(err, "SELECT")
	readOnly := c.cmd == "EXAMINE"
	// \Recent (IMAP4rev1 only, RFC 3501 s2.3.2): the first session to
	// select the mailbox read-write takes the recent messages.
	var recent []uint32
	if !readOnly && !c.rev2 && mb0.Counts.Recent > 0 {
		recent, err = st.ClearRecent(c.user, mb0.ID)
		xcheckf(err, "clear recent")
	}
	// One read transaction with its journal position: hub events up to
	// LastSeq are already in it.
	snap, err := st.Snapshot(mb0.ID)
	xstoreErr(err, "SELECT")
	mb, msgs := &snap.Mailbox, snap.Messages
	if readOnly && !c.rev2 {
		// EXAMINE reports the recent messages and shows them \Recent
		// without taking them: a later SELECT still sees them (RFC 3501
		// s6.3.2, s2.3.2).
		for _, m := range msgs {
			if m.Recent {
				recent = append(recent, m.UID)
			}
		}
	}
	s := &selected{mb: selMailbox{ID: mb.ID, Name: mb.Name, UIDValidity: mb.UIDValidity, UIDNext: mb.UIDNext}, readOnly: readOnly, modseq: mb.HighestModSeq, baseSeq: snap.LastSeq}
	if len(recent) > 0 {
		s.recent = map[uint32]bool{}
		for _, u := range recent {
			s.recent[u] = true
		}
	}
	s.uids = make([]uint32, len(msgs))
	keywords := map[string]bool{}
	firstUnseen := 0
	for i, m := range msgs {
		s.uids[i] = m.UID
		for _, f := range m.Flags {
			if !strings.HasPrefix(f, `\`) {
				keywords[f] = true
			}
		}
		if firstUnseen == 0 && !m.Has(vmstore.FlagSeen) {
			firstUnseen = i + 1
		}
	}
	if len(s.uids) > 0 {
		s.maxUID = s.uids[len(s.uids)-1]
	}
	flags := systemFlags
	for _, k := range permanentKeywords {
		delete(keywords, k)
		flags += " " + k
	}
	extra := make([]string, 0, len(keywords))
	for k := range keywords {
		extra = append(extra, k)
	}
	slices.Sort(extra)
	s.keywords, s.drained = extra, mb.HighestModSeq
	if len(extra) > 0 {
		flags += " " + strings.Join(extra, " ")
	}
	c.writeLine("* %d EXISTS", len(s.uids))
	if !c.rev2 {
		c.writeLine("* %d RECENT", len(recent))
		if firstUnseen > 0 {
			c.writeLine("* OK [UNSEEN %d] first unseen", firstUnseen)
		}
	}
	c.writeLine("* OK [UIDVALIDITY %d] UIDs valid", mb.UIDValidity)
	c.writeLine("* OK [UIDNEXT %d] predicted next UID", mb.UIDNext)
	c.writeLine("* FLAGS (%s)", flags)
	if readOnly {
		c.writeLine("* OK [PERMANENTFLAGS ()] read-only")
	} else {
		c.writeLine(`* OK [PERMANENTFLAGS (%s \*)] flags permitted`, flags)
	}
	c.writeLine("* OK [HIGHESTMODSEQ %d] highest modseq", mb.HighestModSeq)
	if c.srv.URLResolver != nil {
		c.writeLine("* OK [URLMECH INTERNAL] URLAUTH mechanisms") // RFC 4467 s6
	}
	if c.rev2 {
		c.enc.Raw("* LIST () \"/\" ").Astring(c.mboxOut(mb.Name)).CRLF()
	}
	c.sel = s
	c.state = stateSelected
	if qr != nil && qr.uidValidity == mb.UIDValidity {
		c.qresyncReport(qr, msgs)
	}
	if readOnly {
		c.okText = "[READ-ONLY] EXAMINE completed"
	} else {
		c.okText = "[READ-WRITE] SELECT completed"
	}
}

// xqresync parses "(" uidvalidity SP modseq [SP known-uids]
// [SP "(" seq-match SP uid-match ")"] ")" (RFC 7162 s3.2.5).
func (p *parser) xqresync() *qresyncParams {
	qr := &qresyncParams{}
	p.xexpect('(')
	qr.uidValidity = p.xnznumber()
	p.xsp()
	qr.modseq = p.xnumber64()
	if p.Consume(' ') {
		if p.Peek() != '(' {
			set, dollar := p.xseqset()
			if dollar || set.Dynamic() {
				xsyntaxf("known-uids cannot use * or $")
			}
			qr.known = set
			if !p.Consume(' ') {
				p.xexpect(')')
				return qr
			}
		}
		p.xexpect('(')
		set, dollar := p.xseqset()
		p.xsp()
		uset, dollar2 := p.xseqset()
		if dollar || dollar2 || set.Dynamic() || uset.Dynamic() {
			xsyntaxf("sequence match data cannot use * or $")
		}
		qr.seqMatch, qr.uidMatch = set, uset
		p.xexpect(')')
	}
	p.xexpect(')')
	return qr
}

// qresyncReport sends VANISHED (EARLIER) for known UIDs expunged since the
// client's modseq, then FETCH for messages changed since (RFC 7162 s3.2.5).
func (c *conn) qresyncReport(qr *qresyncParams, msgs []vmstore.Message) {
	s := c.sel
	st := c.srv.Store
	known := func(u uint32) bool {
		if qr.known == nil {
			return u < s.mb.UIDNext
		}
		return qr.known.Contains(u)
	}
	// Sequence match data: every UID up to the last pair that still matches
	// our view was not expunged, so nothing at or below it is reported.
	var bound uint32
	if qr.seqMatch != nil {
		seqs, _ := qr.seqMatch.Nums()
		uids, _ := qr.uidMatch.Nums()
		for i := 0; i < len(seqs) && i < len(uids); i++ {
			q := seqs[i]
			if q == 0 || int(q) > len(s.uids) || s.uids[q-1] != uids[i] {
				break
			}
			bound = uids[i]
		}
	}
	var vanished []uint32
	horizon, err := st.ExpungeHorizon(s.mb.ID)
	xcheckf(err, "expunge horizon")
	if qr.modseq < horizon {
		// RFC 7162 s3.2.5.2: the log does not reach back; every known UID
		// that no longer exists is reported.
		var cand []uint32
		if qr.known != nil {
			cand, _ = qr.known.Nums()
		} else {
			for u := uint32(1); u < s.mb.UIDNext && len(cand) < 1<<20; u++ {
				cand = append(cand, u)
			}
		}
		for _, u := range cand {
			if _, ok := s.seqOf(u); !ok && u > bound && u < s.mb.UIDNext {
				vanished = append(vanished, u)
			}
		}
		slices.Sort(vanished)
	} else {
		gone, err := st.ExpungedSince(s.mb.ID, qr.modseq)
		xcheckf(err, "expunged since")
		for _, u := range gone {
			if u > bound && known(u) {
				if _, ok := s.seqOf(u); !ok {
					vanished = append(vanished, u)
				}
			}
		}
	}
	if len(vanished) > 0 {
		c.writeLine("* VANISHED (EARLIER) %s", uidSetString(vanished))
	}
	changed, err := st.ChangedSince(s.mb.ID, qr.modseq)
	xcheckf(err, "changed since")
	slices.SortFunc(changed, func(a, b vmstore.Message) int { return int(a.UID) - int(b.UID) })
	for _, m := range changed {
		if !known(m.UID) {
			continue
		}
		if seq, ok := s.seqOf(m.UID); ok {
			c.writeFlagsFetch(seq, m.UID, m.Flags, m.ModSeq, true)
		}
	}
}

// RFC 9051 s6.4.2 CLOSE (expunges silently unless read-only) and RFC 3691
// UNSELECT.
func cmdClose(c *conn, tag string, p *parser) {
	p.xend()
	s := c.xselected()
	if c.cmd == "CLOSE" && !s.readOnly {
		_, err := c.srv.Store.Expunge(c.user, s.mb.ID, nil)
		if err != nil && !strings.Contains(err.Error(), "not found") {
			xstoreErr(err, "CLOSE")
		}
	}
	c.sel = nil
	c.state = stateAuth
}
