package imap

import (
	"slices"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 9051 s6.4.6 STORE / UID STORE with RFC 7162 s3.1.3 UNCHANGEDSINCE.
func cmdStore(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := c.cmd == "UID STORE"
	p.xsp()
	set, dollar := p.xseqset()
	p.xsp()
	var unchangedSince uint64
	hasUnchanged := false
	if p.Peek() == '(' {
		p.xlist(func() {
			if m := strings.ToUpper(p.xatom()); m != "UNCHANGEDSINCE" || hasUnchanged {
				xsyntaxf("unknown or repeated store modifier %s", m)
			}
			p.xsp()
			unchangedSince = p.xnumber64()
			hasUnchanged = true
		})
		p.xsp()
	}
	op := vmstore.FlagsReplace
	if p.Consume('+') {
		op = vmstore.FlagsAdd
	} else if p.Consume('-') {
		op = vmstore.FlagsRemove
	}
	item := strings.ToUpper(p.xatom())
	silent := false
	switch item {
	case "FLAGS":
	case "FLAGS.SILENT":
		silent = true
	default:
		xsyntaxf("expected FLAGS or FLAGS.SILENT")
	}
	p.xsp()
	var flags []string
	for _, f := range p.xflagList(true) {
		cf := vmstore.CanonFlag(f)
		if cf == "" {
			xsyntaxf("invalid flag %s", f)
		}
		flags = append(flags, cf)
	}
	p.xend()
	if hasUnchanged {
		c.enableCondstore()
	}
	if s.readOnly {
		xusererrorf("READ-ONLY", "mailbox is read-only")
	}
	uids := c.resolveSeqs(set, dollar, isUID)
	if len(uids) == 0 {
		return
	}
	req := vmstore.StoreReq{User: c.user, MailboxID: s.mb.ID, UIDs: uids, Op: op, Flags: flags}
	if hasUnchanged {
		// Conditional also covers UNCHANGEDSINCE 0, which fails for every
		// message (RFC 7162 s3.1.3).
		req.UnchangedSince, req.Conditional = unchangedSince, true
	}
	res, err := c.srv.Store.StoreFlags(req)
	xstoreErr(err, "STORE")
	for i := range res.Changed {
		s.addOwn(res.Changed[i].ModSeq)
	}
	// Updates queued from other sessions that the responses below
	// supersede are dropped when they are flushed (selected.told); with
	// .SILENT they are replaced by the newer state (pollEvents).
	// Stored messages get a FETCH even with .SILENT under UNCHANGEDSINCE
	// (RFC 7162 s3.1.3); without .SILENT every addressed message does.
	var report []vmstore.Message
	if !silent {
		report = c.xloadMessages(slices.DeleteFunc(slices.Clone(uids), func(u uint32) bool { return slices.Contains(res.Modified, u) }))
	} else if hasUnchanged || c.cstore {
		for _, m := range res.Changed {
			report = append(report, m)
		}
		slices.SortFunc(report, func(a, b vmstore.Message) int { return int(a.UID) - int(b.UID) })
	}
	for _, m := range report {
		if seq, ok := s.seqOf(m.UID); ok {
			c.writeFlagsFetch(seq, m.UID, m.Flags, m.ModSeq, isUID)
		}
	}
	if len(res.Modified) > 0 {
		c.okText = "[MODIFIED " + c.modifiedSet(res.Modified, isUID) + "] conditional STORE failed"
	}
}

// modifiedSet formats MODIFIED: UIDs for UID STORE, sequence numbers for
// STORE.
func (c *conn) modifiedSet(uids []uint32, isUID bool) string {
	if isUID {
		return uidSetString(uids)
	}
	var seqs []uint32
	for _, u := range uids {
		if q, ok := c.sel.seqOf(u); ok {
			seqs = append(seqs, q)
		}
	}
	slices.Sort(seqs)
	return uidSetString(seqs)
}
