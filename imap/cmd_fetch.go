package imap

import (
	"slices"
	"strconv"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// fetchItem is one requested FETCH data item. Parsers registered in
// fetchParsers build them; write emits "NAME value".
type fetchItem struct {
	name      string // response item name, e.g. "BODY[1.2]<0>"
	setsSeen  bool
	needsPart bool
	// check, if set, runs before the response line starts, so that a
	// failure (NO [UNKNOWN-CTE]) does not leave half a FETCH response.
	check func(c *conn, fm *fetchMsg)
	write func(c *conn, fm *fetchMsg)
}

// fetchMsg is one message being fetched, with its structure and content
// opened on demand.
type fetchMsg struct {
	seq uint32
	msg *vmstore.Message
	h   *message.Message // sections, structure and presentation; see xmsg
	// preview is the PREVIEW of the message (nil: NIL, for LAZY).
	preview *string
}

// xmsg returns the message opened for reading its sections.
func (c *conn) xmsg(fm *fetchMsg) *message.Message {
	if fm.h == nil {
		fm.h = message.New(c.srv.Store, fm.msg)
	}
	return fm.h
}

func (c *conn) xpart(fm *fetchMsg) *vmstore.Part {
	p, err := c.xmsg(fm).Structure()
	xcheckf(err, "message structure")
	return p
}

// xpres returns the message as BODY[] presents it: binary parts
// re-encoded (vmstore/present.go).
func (c *conn) xpres(fm *fetchMsg) *vmstore.Presentation {
	pr, err := c.xmsg(fm).Presentation()
	xcheckf(err, "presenting message")
	return pr
}

// xshown returns the structure of the presented message (the stored one
// unless the message has binary parts), for BODYSTRUCTURE and BODY[].
func (c *conn) xshown(fm *fetchMsg) *vmstore.Part {
	p, err := c.xmsg(fm).Shown()
	xcheckf(err, "presenting message")
	return p
}

// release returns the read buffers a fetch of one message took.
func (fm *fetchMsg) release() {
	if fm.h != nil {
		fm.h.Release()
	}
}

// fetchParsers maps a fetch attribute name (upper case, without section)
// to its parser. Extensions (CONVERT, ...) register more in their files.
var fetchParsers = map[string]func(p *parser, name string) []fetchItem{}

func registerFetch(name string, parse func(p *parser, name string) []fetchItem) {
	fetchParsers[name] = parse
}

func simpleFetch(item fetchItem) func(*parser, string) []fetchItem {
	return func(*parser, string) []fetchItem { return []fetchItem{item} }
}

var (
	fetchFlags = fetchItem{name: "FLAGS", write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw("FLAGS (").Raw(strings.Join(fm.msg.Flags, " "))
		if c.sel != nil && c.sel.recent[fm.msg.UID] {
			if len(fm.msg.Flags) > 0 {
				c.enc.SP()
			}
			c.enc.Raw(`\Recent`)
		}
		c.enc.Raw(")")
	}}
	fetchUID = fetchItem{name: "UID", write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw("UID ").Number(uint64(fm.msg.UID))
	}}
	fetchModSeq = fetchItem{name: "MODSEQ", write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw("MODSEQ (").Number(fm.msg.ModSeq).Raw(")")
		c.modseqSent = true
	}}
	fetchInternalDate = fetchItem{name: "INTERNALDATE", write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw(`INTERNALDATE "`).Raw(fm.msg.InternalDate.Format("02-Jan-2006 15:04:05 -0700")).Raw(`"`)
	}}
	fetchSize = fetchItem{name: "RFC822.SIZE", write: func(c *conn, fm *fetchMsg) {
		size := fm.msg.Size
		if fm.msg.Binary {
			size = c.xpres(fm).Size // the size of BODY[]
		}
		c.enc.Raw("RFC822.SIZE ").Number(uint64(size))
	}}
	fetchEnvelope = fetchItem{name: "ENVELOPE", needsPart: true, write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw("ENVELOPE ")
		c.writeEnvelope(c.xshown(fm).Envelope)
	}}
	fetchBodyStructure = fetchItem{name: "BODYSTRUCTURE", needsPart: true, write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw("BODYSTRUCTURE ")
		c.writeBodyStructure(c.xshown(fm), true)
	}}
	fetchBody = fetchItem{name: "BODY", needsPart: true, write: func(c *conn, fm *fetchMsg) {
		c.enc.Raw("BODY ")
		c.writeBodyStructure(c.xshown(fm), false)
	}}
)

func init() {
	registerFetch("FLAGS", simpleFetch(fetchFlags))
	registerFetch("UID", simpleFetch(fetchUID))
	registerFetch("MODSEQ", simpleFetch(fetchModSeq))
	registerFetch("INTERNALDATE", simpleFetch(fetchInternalDate))
	registerFetch("RFC822.SIZE", simpleFetch(fetchSize))
	registerFetch("ENVELOPE", simpleFetch(fetchEnvelope))
	registerFetch("BODYSTRUCTURE", simpleFetch(fetchBodyStructure))
	// RFC 9051 s6.4.5 macros.
	registerFetch("ALL", simpleFetchList(fetchFlags, fetchInternalDate, fetchSize, fetchEnvelope))
	registerFetch("FAST", simpleFetchList(fetchFlags, fetchInternalDate, fetchSize))
	registerFetch("FULL", simpleFetchList(fetchFlags, fetchInternalDate, fetchSize, fetchEnvelope, fetchBody))
	registerFetch("BODY", parseBodyFetch)
	registerFetch("BODY.PEEK", parseBodyFetch)
	registerFetch("BINARY", parseBodyFetch)
	registerFetch("BINARY.PEEK", parseBodyFetch)
	registerFetch("BINARY.SIZE", parseBodyFetch)
	registerFetch("RFC822", simpleFetchSection("RFC822", message.Section{}, true))
	registerFetch("RFC822.HEADER", simpleFetchSection("RFC822.HEADER", message.Section{Spec: message.SpecHeader}, false))
	registerFetch("RFC822.TEXT", simpleFetchSection("RFC822.TEXT", message.Section{Spec: message.SpecText}, true))
}

func simpleFetchList(items ...fetchItem) func(*parser, string) []fetchItem {
	return func(*parser, string) []fetchItem { return items }
}

func isFetchNameChar(b byte) bool {
	return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '.' || b == '-'
}

// xfetchAtt reads one fetch-att.
func (p *parser) xfetchAtt() []fetchItem {
	name := strings.ToUpper(p.TakeWhile(isFetchNameChar))
	parse := fetchParsers[name]
	if parse == nil {
		xsyntaxf("unknown fetch item %q", name)
	}
	return parse(p, name)
}

// fetchReq is a parsed FETCH command.
type fetchReq struct {
	items        []fetchItem
	changedSince uint64
	hasChanged   bool
	vanished     bool
}

// RFC 9051 s6.4.5 FETCH and s6.4.9 UID FETCH, with RFC 7162 CHANGEDSINCE,
// VANISHED and MODSEQ.
func cmdFetch(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := c.cmd == "UID FETCH"
	p.xsp()
	set, dollar := p.xseqset()
	p.xsp()
	var req fetchReq
	if p.Peek() == '(' {
		p.xlist(func() { req.items = append(req.items, p.xfetchAtt()...) })
	} else {
		req.items = p.xfetchAtt()
	}
	if p.Consume(' ') {
		p.xlist(func() {
			switch m := strings.ToUpper(p.xatom()); m {
			case "CHANGEDSINCE":
				p.xsp()
				req.changedSince = p.xnumber64()
				req.hasChanged = true
			case "VANISHED":
				req.vanished = true
			default:
				xsyntaxf("unknown fetch modifier %s", m)
			}
		})
	}
	p.xend()
	if req.vanished && (!isUID || !req.hasChanged || !c.qresync) {
		xsyntaxf("VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC")
	}
	has := func(name string) bool {
		return slices.ContainsFunc(req.items, func(it fetchItem) bool { return it.name == name })
	}
	if req.hasChanged || has("MODSEQ") {
		c.enableCondstore()
		if !has("MODSEQ") {
			req.items = append(req.items, fetchModSeq)
		}
	}
	if isUID && !has("UID") {
		req.items = append([]fetchItem{fetchUID}, req.items...)
	}
	uids := c.resolveSeqs(set, dollar, isUID)
	st := c.srv.Store
	if req.vanished {
		gone, err := st.ExpungedSince(s.mb.ID, req.changedSince)
		xcheckf(err, "expunged since")
		var v []uint32
		for _, u := range gone {
			if set.Contains(u) || (len(set) > 0 && set[len(set)-1].Stop == 0 && u >= set[len(set)-1].Start) {
				v = append(v, u)
			}
		}
		if len(v) > 0 {
			c.writeLine("* VANISHED (EARLIER) %s", uidSetString(v))
		}
	}
	if len(uids) == 0 {
		return
	}
	msgs := c.xloadMessages(uids)
	if req.hasChanged {
		msgs = slices.DeleteFunc(msgs, func(m vmstore.Message) bool { return m.ModSeq <= req.changedSince })
	}
	// Setting \Seen first (RFC 9051 s6.4.5: BODY[...] without PEEK), so the
	// responses carry the new flags.
	setsSeen := !s.readOnly && slices.ContainsFunc(req.items, func(it fetchItem) bool { return it.setsSeen })
	seenChanged := map[uint32]bool{}
	if setsSeen {
		var need []uint32
		for _, m := range msgs {
			if !m.Has(vmstore.FlagSeen) {
				need = append(need, m.UID)
			}
		}
		if len(need) > 0 {
			res, err := st.StoreFlags(vmstore.StoreReq{User: c.user, MailboxID: s.mb.ID, UIDs: need, Op: vmstore.FlagsAdd, Flags: []string{vmstore.FlagSeen}})
			xstoreErr(err, "FETCH")
			for _, m := range res.Changed {
				s.addOwn(m.ModSeq)
				seenChanged[m.UID] = true
				for i := range msgs {
					if msgs[i].UID == m.UID {
						msgs[i] = m
					}
				}
			}
		}
	}
	hasFlags, hasModSeq := has("FLAGS"), has("MODSEQ")
	for i := range msgs {
		m := &msgs[i]
		seq, ok := s.seqOf(m.UID)
		if !ok {
			continue
		}
		fm := &fetchMsg{seq: seq, msg: m}
		for _, it := range req.items {
			if it.check != nil {
				it.check(c, fm)
			}
		}
		withFlags := hasFlags || seenChanged[m.UID]
		if withFlags {
			c.announceKeywords(m.Flags)
		}
		if withFlags || hasModSeq {
			s.noteTold(m.UID, m.ModSeq, withFlags, hasModSeq)
		}
		c.enc.Raw("* ").Number(uint64(seq)).Raw(" FETCH (")
		for j, it := range req.items {
			if j > 0 {
				c.enc.SP()
			}
			it.write(c, fm)
		}
		if seenChanged[m.UID] && !hasFlags {
			c.enc.SP()
			fetchFlags.write(c, fm)
		}
		c.enc.Raw(")").CRLF()
		fm.release()
		if err := c.enc.Err(); err != nil {
			panic(ioError{err})
		}
	}
}

// xloadMessages reads the messages of uids (sorted) from the store; messages
// expunged meanwhile are left out.
func (c *conn) xloadMessages(uids []uint32) []vmstore.Message {
	s := c.sel
	if len(uids) == 0 {
		return nil
	}
	if len(uids) == 1 {
		m, err := c.srv.Store.Message(s.mb.ID, uids[0])
		if err != nil {
			if strings.Contains(err.Error(), "not found") {
				return nil
			}
			xcheckf(err, "reading message")
		}
		return []vmstore.Message{*m}
	}
	all, err := c.srv.Store.Messages(s.mb.ID, uids[0], uids[len(uids)-1])
	xcheckf(err, "reading messages")
	out := all[:0]
	for _, m := range all {
		if _, ok := slices.BinarySearch(uids, m.UID); ok {
			out = append(out, m)
		}
	}
	return out
}

// writeEnvelope writes an RFC 9051 s7.5.2 envelope.
func (c *conn) writeEnvelope(env *vmstore.Envelope) {
	if env == nil {
		env = &vmstore.Envelope{}
	}
	e := c.enc
	e.Raw("(").NstringEmptyNil(env.Date).SP().NstringEmptyNil(env.Subject).SP()
	from := env.From
	sender, replyTo := env.Sender, env.ReplyTo
	if len(sender) == 0 {
		sender = from
	}
	if len(replyTo) == 0 {
		replyTo = from
	}
	for _, l := range [][]vmstore.Address{from, sender, replyTo, env.To, env.Cc, env.Bcc} {
		c.writeAddrs(l)
		e.SP()
	}
	e.NstringEmptyNil(env.InReplyTo).SP().NstringEmptyNil(env.MessageID).Raw(")")
}

func (c *conn) writeAddrs(l []vmstore.Address) {
	if len(l) == 0 {
		c.enc.Raw("NIL")
		return
	}
	c.enc.Raw("(")
	for _, a := range l {
		switch a.Group {
		case vmstore.GroupStart:
			// RFC 9051 s7.5.2: a group starts with (NIL NIL "name" NIL)
			c.enc.Raw("(NIL NIL ").String(a.Mailbox).Raw(" NIL)")
		case vmstore.GroupEnd:
			c.enc.Raw("(NIL NIL NIL NIL)")
		default:
			// The host of a mailbox is never NIL (that is a group marker).
			mbox, host := a.Mailbox, a.Host
			if mbox == "" {
				mbox = vmstore.MissingMailbox
			}
			if host == "" {
				host = vmstore.MissingHost
			}
			c.enc.Raw("(").NstringEmptyNil(a.Name).SP().NstringEmptyNil(a.Adl).SP().String(mbox).SP().String(host).Raw(")")
		}
	}
	c.enc.Raw(")")
}

func (c *conn) writeParams(m map[string]string) {
	if len(m) == 0 {
		c.enc.Raw("NIL")
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	c.enc.Raw("(")
	for i, k := range keys {
		if i > 0 {
			c.enc.SP()
		}
		c.enc.String(k).SP().String(m[k])
	}
	c.enc.Raw(")")
}

// writeBodyStructure writes BODYSTRUCTURE (ext) or BODY (RFC 9051 s7.5.2)
// from the cached structure.
func (c *conn) writeBodyStructure(p *vmstore.Part, ext bool) {
	e := c.enc
	if p.Type == "multipart" {
		e.Raw("(")
		for i := range p.Parts {
			c.writeBodyStructure(&p.Parts[i], ext)
		}
		e.SP().String(strings.ToUpper(p.Subtype))
		if ext {
			e.SP()
			c.writeParams(p.Params)
			e.SP()
			c.writeDisposition(p)
			e.SP()
			c.writeLang(p.Language)
			e.SP().NstringEmptyNil(p.Location)
		}
		e.Raw(")")
		return
	}
	typ, sub := p.Type, p.Subtype
	if typ == "" {
		typ, sub = "text", "plain"
	}
	enc := strings.ToUpper(p.Encoding)
	if enc == "" {
		enc = "7BIT"
	}
	e.Raw("(").String(strings.ToUpper(typ)).SP().String(strings.ToUpper(sub)).SP()
	c.writeParams(p.Params)
	e.SP().NstringEmptyNil(p.ID).SP().NstringEmptyNil(p.Description).SP().String(enc).SP().Number(uint64(p.End - p.Body))
	if typ == "message" && (sub == "rfc822" || sub == "global") && len(p.Parts) == 1 {
		e.SP()
		c.writeEnvelope(p.Parts[0].Envelope)
		e.SP()
		c.writeBodyStructure(&p.Parts[0], ext)
		e.SP().Number(uint64(p.Lines))
	} else if typ == "text" {
		e.SP().Number(uint64(p.Lines))
	}
	if ext {
		e.SP().NstringEmptyNil(p.MD5).SP()
		c.writeDisposition(p)
		e.SP()
		c.writeLang(p.Language)
		e.SP().NstringEmptyNil(p.Location)
	}
	e.Raw(")")
}

func (c *conn) writeDisposition(p *vmstore.Part) {
	if p.Disposition == "" {
		c.enc.Raw("NIL")
		return
	}
	c.enc.Raw("(").String(strings.ToUpper(p.Disposition)).SP()
	c.writeParams(p.DispParams)
	c.enc.Raw(")")
}

func (c *conn) writeLang(l []string) {
	switch len(l) {
	case 0:
		c.enc.Raw("NIL")
	case 1:
		c.enc.String(l[0])
	default:
		c.enc.Raw("(")
		for i, s := range l {
			if i > 0 {
				c.enc.SP()
			}
			c.enc.String(s)
		}
		c.enc.Raw(")")
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
