package imap

import (
	"strconv"
)

func u32(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// testHookAfterRemove, set by tests, runs right after EXPUNGE or MOVE
// removed messages in the store, where another session's change may
// commit.
var testHookAfterRemove func()

// RFC 9051 s6.4.3 EXPUNGE and RFC 4315 UID EXPUNGE; with QRESYNC the
// tagged OK carries the new HIGHESTMODSEQ (RFC 7162 s3.2.10).
func cmdExpunge(c *conn, tag string, p *parser) {
	s := c.xselected()
	var uids []uint32
	if c.cmd == "UID EXPUNGE" {
		p.xsp()
		set, dollar := p.xseqset()
		uids = c.resolveSeqs(set, dollar, true)
		if len(uids) == 0 {
			p.xend()
			return
		}
	}
	p.xend()
	if s.readOnly {
		xusererrorf("READ-ONLY", "mailbox is read-only")
	}
	c.pollEvents()
	gone, err := c.srv.Store.Expunge(c.user, s.mb.ID, uids)
	xstoreErr(err, "EXPUNGE")
	if testHookAfterRemove != nil {
		testHookAfterRemove()
	}
	c.reportExpunged(gone)
	if len(gone) > 0 {
		// Not addOwn(mb.HighestModSeq): that may already be another
		// session's flag change, which would then be taken for this
		// session's own and never reported. The expunge's own event
		// raises the view's modseq when it is taken.
		s.dirty = true
		mb, err := c.srv.Store.MailboxByID(s.mb.ID)
		if err == nil {
			if c.qresync {
				c.okText = "[HIGHESTMODSEQ " + strconv.FormatUint(mb.HighestModSeq, 10) + "] " + c.cmd + " completed"
			}
		}
	}
}
