package imap

import (
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 9051 s6.4.7 COPY, RFC 6851 MOVE, with RFC 4315 COPYUID.
func cmdCopy(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := strings.HasPrefix(c.cmd, "UID ")
	move := strings.HasSuffix(c.cmd, "MOVE")
	p.xsp()
	set, dollar := p.xseqset()
	p.xsp()
	name := p.xmailbox()
	p.xend()
	uids := c.resolveSeqs(set, dollar, isUID)
	st := c.srv.Store
	dst, err := st.Mailbox(c.user, name)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			xusererrorf("TRYCREATE", "no such mailbox")
		}
		xstoreErr(err, c.cmd)
	}
	if move && s.readOnly {
		xusererrorf("READ-ONLY", "mailbox is read-only")
	}
	if len(uids) == 0 {
		return
	}
	c.pollEvents()
	res, err := st.Copy(vmstore.CopyReq{User: c.user, From: s.mb.ID, To: dst.ID, UIDs: uids, Move: move})
	xstoreErr(err, c.cmd)
	if move && testHookAfterRemove != nil {
		testHookAfterRemove()
	}
	code := ""
	if len(res.SrcUIDs) > 0 {
		code = "[COPYUID " + u32(res.UIDValidity) + " " + uidListString(res.SrcUIDs) + " " + uidListString(res.DstUIDs) + "] "
	}
	if move {
		if code != "" {
			c.writeLine("* OK %s moved", strings.TrimSuffix(code, " "))
		}
		c.reportExpunged(res.SrcUIDs)
		s.dirty = true // see cmdExpunge
		c.okText = c.cmd + " completed"
		return
	}
	c.okText = code + c.cmd + " completed"
}

// uidListString keeps the order of uids (COPYUID source and destination
// sets correspond element by element, RFC 4315 s3).
func uidListString(uids []uint32) string {
	var b strings.Builder
	for i := 0; i < len(uids); {
		j := i
		for j+1 < len(uids) && uids[j+1] == uids[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(u32(uids[i]))
		if j > i {
			b.WriteByte(':')
			b.WriteString(u32(uids[j]))
		}
		i = j + 1
	}
	return b.String()
}
