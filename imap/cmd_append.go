package imap

import (
	"io"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// maxStringLiteral bounds literals that are read into memory (passwords,
// search strings, metadata values); APPEND message data is streamed and
// bounded by APPENDLIMIT instead.
const maxStringLiteral = 1 << 20

// RFC 9051 s6.3.12 APPEND, with RFC 3502 MULTIAPPEND, RFC 3516 literal8
// (binary APPEND, accepted into every mailbox as RFC 5550 requires),
// RFC 4315 APPENDUID and RFC 7889 APPENDLIMIT. The message literal is
// streamed into the store.
//
// MULTIAPPEND is all-or-nothing: when a later message fails, the ones
// stored before it are removed again (the store has no multi-message
// transaction; see STORE-NEEDS.md).
func cmdAppend(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	st := c.srv.Store
	mb, err := st.Mailbox(c.user, name)
	if err != nil {
		// The literal may still be on its way; the skip at the command
		// boundary takes care of non-synchronizing ones.
		if strings.Contains(err.Error(), "not found") {
			xusererrorf("TRYCREATE", "no such mailbox")
		}
		xstoreErr(err, "APPEND")
	}
	var stored []uint32
	undo := func() {
		if len(stored) > 0 {
			if _, err := st.Remove(c.user, mb.ID, stored); err != nil {
				c.log.Warn("imap multiappend undo", "err", err)
			}
		}
	}
	ok := false
	defer func() {
		if !ok {
			undo()
		}
	}()
	for {
		p.xsp()
		var flags []string
		if p.Peek() == '(' {
			for _, f := range p.xflagList(false) {
				cf := vmstore.CanonFlag(f)
				if cf == "" {
					xsyntaxf("invalid flag %s", f)
				}
				flags = append(flags, cf)
			}
			p.xsp()
		}
		var date time.Time
		if p.Peek() == '"' {
			date = p.xdateTime()
			p.xsp()
		}
		if _, isLit := p.PeekLiteral(); !isLit {
			xsyntaxf("expected message literal")
		}
		p.MaxLiteral = c.srv.appendLimit()
		r, _, err := p.OpenLiteral(true)
		p.MaxLiteral = maxStringLiteral
		p.xcheck(err)
		res, err := st.Deposit(vmstore.DepositReq{
			User:         c.user,
			Mailbox:      mb.Name,
			Body:         r,
			Flags:        flags,
			InternalDate: date,
			Event:        vmstore.EventMessageAppend,
			Service:      "imap",
		})
		if err != nil {
			// Read what is left of the literal so that the connection
			// stays in step, then report.
			io.Copy(io.Discard, r)
			p.xcheck(p.CloseLiteral())
			p.SkipCommand()
			xstoreErr(err, "APPEND")
		}
		stored = append(stored, res.Message.UID)
		mb.UIDValidity = res.Mailbox.UIDValidity
		p.xcheck(p.CloseLiteral())
		if p.AtEnd() {
			break
		}
	}
	ok = true
	c.okText = "[APPENDUID " + u32(mb.UIDValidity) + " " + uidSetString(stored) + "] APPEND completed"
}
