package imap

import (
	"errors"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

// maxStringLiteral bounds literals that are read into memory (passwords,
// search strings, metadata values); APPEND message data is streamed and
// bounded by APPENDLIMIT instead.
const maxStringLiteral = 1 << 20

// RFC 9051 s6.3.12 APPEND, with RFC 3502 MULTIAPPEND, RFC 4469 CATENATE
// (cmd_catenate.go), RFC 3516 literal8 (binary APPEND, accepted into every
// mailbox as RFC 5550 requires),
// RFC 4315 APPENDUID and RFC 7889 APPENDLIMIT.
//
// Whether more messages follow is only known after a literal, and
// MULTIAPPEND is all or nothing, so each literal is first spooled (spool.go:
// in memory within a small per-command budget, else in a file under
// SpoolDir) and the messages are then stored in one DepositMany (a single
// message with Deposit); both stream the spooled data into the store. A
// literal that cannot fit the account's quota (with the literals accepted
// before it in this command), the APPENDLIMIT or the spool limit is
// refused before its continuation is sent (spool.go, xcheckAppendRoom).
func cmdAppend(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	st := c.srv.Store
	mb, err := st.Mailbox(c.user, name)
	if err != nil {
		// The literal may still be on its way; the skip at the command
		// boundary takes care of non-synchronizing ones.
		if errors.Is(err, vmstore.ErrNotFound) {
			xusererrorf("TRYCREATE", "no such mailbox")
		}
		xstoreErr(err, "APPEND")
	}
	var reqs []vmstore.DepositReq
	sp := c.newSpool()
	defer sp.release()
	room := c.xappendRoom()
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
		if p.ConsumeFold("CATENATE ") {
			// RFC 4469: the message is assembled from parts
			// (cmd_catenate.go).
			if len(reqs) >= maxMultiAppend {
				xusererrorf("LIMIT", "too many messages in one APPEND")
			}
			reqs = append(reqs, vmstore.DepositReq{User: c.user, Mailbox: mb.Name, Body: c.xcatenate(p, room, sp),
				Flags: flags, InternalDate: date, Event: vmstore.EventMessageAppend, Service: "imap"})
			if p.AtEnd() {
				break
			}
			continue
		}
		// RFC 6855 s4: UTF8 (literal8) carries a message with UTF-8
		// header fields, once UTF8=ACCEPT is enabled.
		utf8Data := false
		if p.ConsumeFold("UTF8 (") {
			if !c.enabled["UTF8=ACCEPT"] {
				xsyntaxf("UTF8 APPEND data needs ENABLE UTF8=ACCEPT")
			}
			if l, isLit := p.PeekLiteral(); !isLit || !l.Binary {
				xsyntaxf("UTF8 needs a literal8")
			}
			utf8Data = true
		}
		if _, isLit := p.PeekLiteral(); !isLit {
			xsyntaxf("expected message literal")
		}
		if len(reqs) >= maxMultiAppend {
			xusererrorf("LIMIT", "too many messages in one APPEND")
		}
		// Refuse what cannot be stored before the client is asked for it
		// (before the continuation), counting the messages of this
		// MULTIAPPEND accepted so far (RFC 7889 TOOBIG, RFC 9208 OVERQUOTA).
		l, _ := p.PeekLiteral()
		c.xcheckAppendRoom(l, room, sp)
		p.MaxLiteral = c.srv.appendLimit()
		r, lit, err := p.OpenLiteral(true)
		p.MaxLiteral = maxStringLiteral
		p.xcheck(err)
		if lit.Size == 0 {
			p.xcheck(p.CloseLiteral())
			xusererrorf("CANNOT", "empty message")
		}
		body, err := sp.add(r, lit.Size)
		if err != nil {
			if ioErr := p.CloseLiteral(); ioErr != nil {
				panic(ioError{ioErr})
			}
			xcheckf(err, "spooling message")
		}
		p.xcheck(p.CloseLiteral())
		if utf8Data {
			p.xexpect(')')
		}
		reqs = append(reqs, vmstore.DepositReq{
			User:         c.user,
			Mailbox:      mb.Name,
			Body:         body,
			Flags:        flags,
			InternalDate: date,
			Event:        vmstore.EventMessageAppend,
			Service:      "imap",
		})
		if p.AtEnd() {
			break
		}
	}
	var uids []uint32
	var uidValidity uint32
	if len(reqs) == 1 {
		r := reqs[0]
		res, err := deposit.Deposit(st, r.User, r.Body, deposit.Options{Mailbox: r.Mailbox, Flags: r.Flags,
			Date: r.InternalDate, Event: r.Event, Service: r.Service, AsMessage: true})
		xstoreErr(err, "APPEND")
		uids, uidValidity = []uint32{res.Message.UID}, res.Mailbox.UIDValidity
	} else {
		res, err := st.DepositMany(reqs)
		xstoreErr(err, "APPEND")
		for _, r := range res {
			uids = append(uids, r.Message.UID)
			uidValidity = r.Mailbox.UIDValidity
		}
	}
	c.okText = "[APPENDUID " + u32(uidValidity) + " " + uidListString(uids) + "] APPEND completed"
}

// maxMultiAppend bounds the messages of one MULTIAPPEND.
const maxMultiAppend = 1000
