package imap

import (
	"bytes"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/lemonvox/lemonvox/vmstore"
)

// searchReq is a parsed SEARCH (or the search part of SORT).
type searchReq struct {
	crit    imap.SearchCriteria
	ret     []string // RETURN options, upper case; nil = classic SEARCH response
	esearch bool
	partial *[2]uint32
	modseq  bool // a MODSEQ key was used
}

// xsearchProgram reads [RETURN (...)] [CHARSET x] search-key *(SP key).
func (p *parser) xsearchProgram(allowReturn bool) *searchReq {
	req := &searchReq{}
	if allowReturn && p.ConsumeFold("RETURN ") {
		req.esearch = true
		req.ret, req.partial = p.xreturnOpts()
		p.xsp()
	}
	if p.ConsumeFold("CHARSET ") {
		cs := strings.ToUpper(p.xastring())
		if cs != "UTF-8" && cs != "US-ASCII" {
			xusererrorf("BADCHARSET (UTF-8 US-ASCII)", "unsupported charset")
		}
		p.xsp()
	}
	for {
		c := p.xsearchKey(req, 0)
		req.crit.And(&c)
		if !p.Consume(' ') {
			break
		}
	}
	return req
}

// xsearchKey reads one search key (RFC 9051 s6.4.4) into criteria.
func (p *parser) xsearchKey(req *searchReq, depth int) imap.SearchCriteria {
	var c imap.SearchCriteria
	if depth > 50 {
		xsyntaxf("search nested too deeply")
	}
	if p.Peek() == '(' {
		p.xexpect('(')
		for {
			k := p.xsearchKey(req, depth+1)
			c.And(&k)
			if p.Consume(')') {
				return c
			}
			p.xsp()
		}
	}
	if b := p.Peek(); b == '$' || b == '*' || (b >= '0' && b <= '9') {
		set, dollar := p.xseqset()
		if dollar {
			c.UID = append(c.UID, p.c.savedUIDSet())
		} else {
			c.SeqNum = append(c.SeqNum, set)
		}
		return c
	}
	key := strings.ToUpper(p.xatom())
	flag := func(f string, not bool) {
		if not {
			c.NotFlag = append(c.NotFlag, imap.Flag(f))
		} else {
			c.Flag = append(c.Flag, imap.Flag(f))
		}
	}
	str := func() string { p.xsp(); return p.xastring() }
	hdr := func(name string) {
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: name, Value: str()})
	}
	date := func() time.Time { p.xsp(); return p.xdate() }
	switch key {
	case "ALL":
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		flag(`\`+key[:1]+strings.ToLower(key[1:]), false)
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		flag(`\`+key[2:3]+strings.ToLower(key[3:]), true)
	case "KEYWORD":
		p.xsp()
		flag(p.xflag(), false)
	case "UNKEYWORD":
		p.xsp()
		flag(p.xflag(), true)
	case "NEW":
		flag(`\Recent`, false)
		flag(`\Seen`, true)
	case "OLD":
		flag(`\Recent`, true)
	case "RECENT":
		flag(`\Recent`, false)
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		hdr(strings.ToUpper(key[:1]) + strings.ToLower(key[1:]))
	case "HEADER":
		p.xsp()
		name := p.xastring()
		c.Header = append(c.Header, imap.SearchCriteriaHeaderField{Key: name, Value: str()})
	case "BODY":
		c.Body = append(c.Body, str())
	case "TEXT":
		c.Text = append(c.Text, str())
	case "BEFORE":
		c.Before = date()
	case "ON":
		d := date()
		c.Since, c.Before = d, d.AddDate(0, 0, 1)
	case "SINCE":
		c.Since = date()
	case "SENTBEFORE":
		c.SentBefore = date()
	case "SENTON":
		d := date()
		c.SentSince, c.SentBefore = d, d.AddDate(0, 0, 1)
	case "SENTSINCE":
		c.SentSince = date()
	case "LARGER":
		p.xsp()
		c.Larger = int64(p.xnumber64())
	case "SMALLER":
		p.xsp()
		c.Smaller = int64(p.xnumber64())
	case "UID":
		p.xsp()
		set, dollar := p.xseqset()
		if dollar {
			c.UID = append(c.UID, p.c.savedUIDSet())
		} else {
			var us imap.UIDSet
			for _, r := range set {
				us = append(us, imap.UIDRange{Start: imap.UID(r.Start), Stop: imap.UID(r.Stop)})
			}
			c.UID = append(c.UID, us)
		}
	case "NOT":
		p.xsp()
		c.Not = append(c.Not, p.xsearchKey(req, depth+1))
	case "OR":
		p.xsp()
		a := p.xsearchKey(req, depth+1)
		p.xsp()
		b := p.xsearchKey(req, depth+1)
		c.Or = append(c.Or, [2]imap.SearchCriteria{a, b})
	case "MODSEQ":
		// RFC 7162 s3.1.5: optional entry name and type are accepted and
		// ignored (we keep one modseq per message).
		p.xsp()
		if p.Peek() == '"' {
			_, err := p.Quoted()
			p.xcheck(err)
			p.xsp()
			p.xatom()
			p.xsp()
		}
		c.ModSeq = &imap.SearchCriteriaModSeq{ModSeq: p.xnumber64()}
		req.modseq = true
	default:
		xsyntaxf("unknown search key %s", key)
	}
	return c
}

// savedUIDSet returns the saved search result as a UID set (RFC 5182);
// an empty result matches nothing.
func (c *conn) savedUIDSet() imap.UIDSet {
	var set imap.UIDSet
	if c.sel != nil {
		for _, u := range c.sel.searchRes {
			set.AddNum(imap.UID(u))
		}
	}
	return set
}

// matcher evaluates criteria against one message, reading its header or
// content only when a key needs them.
type matcher struct {
	c    *conn
	m    *vmstore.Message
	seq  uint32
	hdr  []byte
	text []byte
}

func (mt *matcher) header() []byte {
	if mt.hdr == nil {
		part, err := mt.c.srv.Store.Structure(mt.m)
		xcheckf(err, "structure")
		b, err := io.ReadAll(mt.c.srv.Store.OpenMessage(mt.m).Section(0, part.Body))
		xcheckf(err, "reading header")
		mt.hdr = b
	}
	return mt.hdr
}

func (mt *matcher) content() []byte {
	if mt.text == nil {
		b, err := io.ReadAll(mt.c.srv.Store.OpenMessage(mt.m).Reader())
		xcheckf(err, "reading message")
		mt.text = b
	}
	return mt.text
}

// headerValues returns the unfolded values of a header field.
func headerValues(hdr []byte, name string) []string {
	var out []string
	var cur *strings.Builder
	for _, line := range bytes.SplitAfter(hdr, []byte("\n")) {
		t := bytes.TrimRight(line, "\r\n")
		if len(t) == 0 {
			break
		}
		if t[0] == ' ' || t[0] == '\t' {
			if cur != nil {
				cur.Write(t)
			}
			continue
		}
		if cur != nil {
			out = append(out, cur.String())
			cur = nil
		}
		k, v, ok := bytes.Cut(t, []byte(":"))
		if ok && strings.EqualFold(strings.TrimSpace(string(k)), name) {
			cur = &strings.Builder{}
			cur.Write(bytes.TrimLeft(v, " \t"))
		}
	}
	if cur != nil {
		out = append(out, cur.String())
	}
	return out
}

func dateOnly(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

func (mt *matcher) match(cr *imap.SearchCriteria) bool {
	m := mt.m
	for _, set := range cr.SeqNum {
		n := uint32(len(mt.c.sel.uids))
		ok := false
		for _, r := range set {
			lo, hi := rangeBounds(r, n)
			if mt.seq >= lo && mt.seq <= hi {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	for _, set := range cr.UID {
		ok := false
		maxUID := mt.c.sel.maxUID
		for _, r := range set {
			lo, hi := uint32(r.Start), uint32(r.Stop)
			if lo == 0 {
				lo = maxUID
			}
			if hi == 0 {
				hi = maxUID
			}
			if lo > hi {
				lo, hi = hi, lo
			}
			if m.UID >= lo && m.UID <= hi {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	has := func(f imap.Flag) bool {
		if strings.EqualFold(string(f), `\Recent`) {
			return mt.c.sel.recent[m.UID]
		}
		return m.Has(string(f))
	}
	for _, f := range cr.Flag {
		if !has(f) {
			return false
		}
	}
	for _, f := range cr.NotFlag {
		if has(f) {
			return false
		}
	}
	if cr.Larger > 0 && m.Size <= cr.Larger {
		return false
	}
	if cr.Smaller > 0 && m.Size >= cr.Smaller {
		return false
	}
	idate := dateOnly(m.InternalDate)
	if !cr.Since.IsZero() && idate.Before(dateOnly(cr.Since)) {
		return false
	}
	if !cr.Before.IsZero() && !idate.Before(dateOnly(cr.Before)) {
		return false
	}
	if cr.ModSeq != nil && m.ModSeq < cr.ModSeq.ModSeq {
		return false
	}
	if !cr.SentSince.IsZero() || !cr.SentBefore.IsZero() {
		vals := headerValues(mt.header(), "Date")
		if len(vals) == 0 {
			return false
		}
		t, err := mail.ParseDate(strings.TrimSpace(vals[0]))
		if err != nil {
			return false
		}
		d := dateOnly(t)
		if !cr.SentSince.IsZero() && d.Before(dateOnly(cr.SentSince)) {
			return false
		}
		if !cr.SentBefore.IsZero() && !d.Before(dateOnly(cr.SentBefore)) {
			return false
		}
	}
	for _, h := range cr.Header {
		var vals []string
		// The record holds Subject and From with RFC 2047 words decoded
		// (cut at 256 octets): no need to read the header for them.
		switch {
		case strings.EqualFold(h.Key, "Subject") && len(m.Subject) < 250:
			if m.Subject != "" {
				vals = []string{m.Subject}
			}
		case strings.EqualFold(h.Key, "From") && len(m.From) < 250:
			if m.From != "" {
				vals = []string{m.From}
			}
		default:
			vals = headerValues(mt.header(), h.Key)
		}
		if len(vals) == 0 {
			return false
		}
		if h.Value != "" && !slices.ContainsFunc(vals, func(v string) bool { return containsFold(v, h.Value) }) {
			return false
		}
	}
	for _, s := range cr.Body {
		body := mt.content()[len(mt.header()):]
		if !containsFold(string(body), s) {
			return false
		}
	}
	for _, s := range cr.Text {
		if !containsFold(string(mt.content()), s) {
			return false
		}
	}
	for i := range cr.Not {
		if mt.match(&cr.Not[i]) {
			return false
		}
	}
	for _, or := range cr.Or {
		if !mt.match(&or[0]) && !mt.match(&or[1]) {
			return false
		}
	}
	return true
}

// xsearch runs the criteria over the view and returns the matching
// messages in sequence order.
func (c *conn) xsearch(cr *imap.SearchCriteria) []vmstore.Message {
	s := c.sel
	if len(s.uids) == 0 {
		return nil
	}
	msgs := c.xloadMessages(s.uids)
	var out []vmstore.Message
	for i := range msgs {
		seq, ok := s.seqOf(msgs[i].UID)
		if !ok {
			continue
		}
		mt := &matcher{c: c, m: &msgs[i], seq: seq}
		if mt.match(cr) {
			out = append(out, msgs[i])
		}
	}
	return out
}

// RFC 9051 s6.4.4 SEARCH / UID SEARCH with RFC 4731 ESEARCH, RFC 5182
// SEARCHRES and RFC 7162 MODSEQ.
func cmdSearch(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := c.cmd == "UID SEARCH"
	p.xsp()
	req := p.xsearchProgram(true)
	p.xend()
	if req.modseq {
		c.enableCondstore()
	}
	found := c.xsearch(&req.crit)
	nums := make([]uint32, len(found))
	var maxMod uint64
	for i, m := range found {
		if isUID {
			nums[i] = m.UID
		} else {
			nums[i], _ = s.seqOf(m.UID)
		}
		maxMod = max(maxMod, m.ModSeq)
	}
	if slices.Contains(req.ret, "SAVE") {
		s.searchRes = s.searchRes[:0]
		for _, m := range found {
			s.searchRes = append(s.searchRes, m.UID)
		}
		if len(req.ret) == 1 {
			return
		}
	}
	if !req.esearch && !c.rev2 {
		c.enc.Raw("* SEARCH")
		for _, n := range nums {
			c.enc.SP().Number(uint64(n))
		}
		if req.modseq && len(nums) > 0 {
			c.enc.Raw(" (MODSEQ ").Number(maxMod).Raw(")")
		}
		c.enc.CRLF()
		return
	}
	if req.ret == nil {
		req.ret = []string{"ALL"}
	}
	if slices.Contains(req.ret, "UPDATE") {
		c.addContext(tag, isUID, nil, req, found)
	}
	c.writeESearchOrdered(tag, isUID, req.ret, req.partial, nums, req.modseq, maxMod, false)
}
