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

func init() {
	registerCap("WITHIN", always) // RFC 5032 OLDER / YOUNGER
}

// searchReq is a parsed SEARCH (or the search part of SORT and THREAD).
type searchReq struct {
	crit    searchKey // the program: an AND of its keys
	ret     []string  // RETURN options, upper case; nil = classic SEARCH response
	esearch bool
	partial *[2]uint32
	modseq  bool // a MODSEQ key was used
}

// keyKind tells what a searchKey tests.
type keyKind uint8

const (
	keyAll        keyKind = iota
	keyAnd                // every key of sub
	keyOr                 // sub[0] or sub[1]
	keyNot                // not sub[0]
	keySeq                // sequence number in set
	keyUID                // UID in set
	keyFlag               // flag (or keyword) str is set; \Recent is per session
	keyHeader             // header field str contains value ("" = field present)
	keyBody               // body contains value
	keyText               // header or body contains value
	keyBefore             // internal date before date (day granularity)
	keyOn                 // internal date on date
	keySince              // internal date on or after date
	keySentBefore         // Date: header, as keyBefore
	keySentOn
	keySentSince
	keyLarger  // RFC822.SIZE > n
	keySmaller // RFC822.SIZE < n
	keyModSeq  // mod-sequence >= n (RFC 7162 s3.1.5)
	keyOlder   // internal date at least n seconds ago (RFC 5032)
	keyYounger // internal date at most n seconds ago (RFC 5032)
)

// searchKey is one node of a parsed search program (RFC 9051 s6.4.4).
// Keys combine with our own AND, OR and NOT nodes, so that no key is lost
// when several of one kind appear (SMALLER 10 SMALLER 20, MODSEQ ...).
type searchKey struct {
	kind  keyKind
	sub   []searchKey
	set   imap.SeqSet // keySeq, keyUID; "*" is the last message (UID)
	str   string      // flag, header field name
	value string      // header, body, text
	date  time.Time
	n     uint64
}

// cost orders the keys of an AND so that those answered from the index
// record run before those that read the message.
func (k *searchKey) cost() int {
	switch k.kind {
	case keyHeader:
		if strings.EqualFold(k.str, "Subject") || strings.EqualFold(k.str, "From") {
			return 1
		}
		return 2
	case keySentBefore, keySentOn, keySentSince:
		return 2
	case keyBody, keyText:
		return 3
	case keyAnd, keyOr, keyNot:
		c := 0
		for i := range k.sub {
			c = max(c, k.sub[i].cost())
		}
		return c
	}
	return 0
}

// and appends key to an AND node, flattening nested ANDs.
func (k *searchKey) and(key searchKey) {
	if key.kind == keyAnd {
		k.sub = append(k.sub, key.sub...)
		return
	}
	if key.kind == keyAll {
		return
	}
	k.sub = append(k.sub, key)
}

// sortByCost puts the cheapest keys of every AND first; the result of an
// AND does not depend on the order of its keys.
func (k *searchKey) sortByCost() {
	for i := range k.sub {
		k.sub[i].sortByCost()
	}
	if k.kind == keyAnd {
		slices.SortStableFunc(k.sub, func(a, b searchKey) int { return a.cost() - b.cost() })
	}
}

// xsearchProgram reads [RETURN (...)] [CHARSET x] search-key *(SP key).
func (p *parser) xsearchProgram(allowReturn bool) *searchReq {
	req := &searchReq{crit: searchKey{kind: keyAnd}}
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
		req.crit.and(p.xsearchKey(req, 0))
		if !p.Consume(' ') {
			break
		}
	}
	req.crit.sortByCost()
	return req
}

// xsearchKey reads one search key (RFC 9051 s6.4.4, RFC 7162 MODSEQ,
// RFC 5032 OLDER/YOUNGER).
func (p *parser) xsearchKey(req *searchReq, depth int) searchKey {
	if depth > 50 {
		xsyntaxf("search nested too deeply")
	}
	if p.Peek() == '(' {
		p.xexpect('(')
		k := searchKey{kind: keyAnd}
		for {
			k.and(p.xsearchKey(req, depth+1))
			if p.Consume(')') {
				return k
			}
			p.xsp()
		}
	}
	if b := p.Peek(); b == '$' || b == '*' || (b >= '0' && b <= '9') {
		set, dollar := p.xseqset()
		if dollar {
			return searchKey{kind: keyUID, set: p.c.savedUIDSet()}
		}
		return searchKey{kind: keySeq, set: set}
	}
	key := strings.ToUpper(p.xatom())
	flag := func(f string) searchKey { return searchKey{kind: keyFlag, str: f} }
	not := func(k searchKey) searchKey { return searchKey{kind: keyNot, sub: []searchKey{k}} }
	str := func() string { p.xsp(); return p.xastring() }
	date := func(kind keyKind) searchKey { p.xsp(); return searchKey{kind: kind, date: p.xdate()} }
	switch key {
	case "ALL":
		return searchKey{kind: keyAll}
	case "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN":
		return flag(`\` + key[:1] + strings.ToLower(key[1:]))
	case "UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
		return not(flag(`\` + key[2:3] + strings.ToLower(key[3:])))
	case "KEYWORD":
		p.xsp()
		return flag(p.xflag())
	case "UNKEYWORD":
		p.xsp()
		return not(flag(p.xflag()))
	case "NEW":
		return searchKey{kind: keyAnd, sub: []searchKey{flag(`\Recent`), not(flag(`\Seen`))}}
	case "OLD":
		return not(flag(`\Recent`))
	case "RECENT":
		return flag(`\Recent`)
	case "BCC", "CC", "FROM", "SUBJECT", "TO":
		return searchKey{kind: keyHeader, str: key[:1] + strings.ToLower(key[1:]), value: str()}
	case "HEADER":
		name := str()
		return searchKey{kind: keyHeader, str: name, value: str()}
	case "BODY":
		return searchKey{kind: keyBody, value: str()}
	case "TEXT":
		return searchKey{kind: keyText, value: str()}
	case "BEFORE":
		return date(keyBefore)
	case "ON":
		return date(keyOn)
	case "SINCE":
		return date(keySince)
	case "SENTBEFORE":
		return date(keySentBefore)
	case "SENTON":
		return date(keySentOn)
	case "SENTSINCE":
		return date(keySentSince)
	case "LARGER":
		p.xsp()
		return searchKey{kind: keyLarger, n: p.xnumber64()}
	case "SMALLER":
		p.xsp()
		return searchKey{kind: keySmaller, n: p.xnumber64()}
	case "OLDER", "YOUNGER":
		// RFC 5032: an interval in seconds (nz-number).
		p.xsp()
		kind := keyOlder
		if key == "YOUNGER" {
			kind = keyYounger
		}
		return searchKey{kind: kind, n: uint64(p.xnznumber())}
	case "UID":
		p.xsp()
		set, dollar := p.xseqset()
		if dollar {
			return searchKey{kind: keyUID, set: p.c.savedUIDSet()}
		}
		return searchKey{kind: keyUID, set: set}
	case "NOT":
		p.xsp()
		return not(p.xsearchKey(req, depth+1))
	case "OR":
		p.xsp()
		a := p.xsearchKey(req, depth+1)
		p.xsp()
		b := p.xsearchKey(req, depth+1)
		return searchKey{kind: keyOr, sub: []searchKey{a, b}}
	case "MODSEQ":
		// RFC 7162 s3.1.5: MODSEQ [entry-name entry-type-req] mod-sequence-valzer.
		// A message has one mod-sequence here, for all its metadata, so the
		// entry name only has to be well formed.
		p.xsp()
		if p.Peek() == '"' {
			entry, err := p.Quoted()
			p.xcheck(err)
			if !strings.HasPrefix(entry, "/flags/") {
				xsyntaxf("bad MODSEQ entry name %q", entry)
			}
			p.xsp()
			switch t := strings.ToLower(p.xatom()); t {
			case "priv", "shared", "all":
			default:
				xsyntaxf("bad MODSEQ entry type %q", t)
			}
			p.xsp()
		}
		n := p.xnumber64()
		if n > 1<<63-1 {
			xsyntaxf("mod-sequence out of range")
		}
		req.modseq = true
		return searchKey{kind: keyModSeq, n: n}
	}
	xsyntaxf("unknown search key %s", key)
	panic("unreachable")
}

// savedUIDSet returns the saved search result as a UID set (RFC 5182);
// an empty result matches nothing.
func (c *conn) savedUIDSet() imap.SeqSet {
	set := imap.SeqSet{}
	if c.sel != nil {
		for _, u := range c.sel.searchRes {
			set.AddNum(u)
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
	now  time.Time // OLDER and YOUNGER count back from it
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

// size is RFC822.SIZE: the stored size, or the presented one of a message
// with binary parts (vmstore/present.go).
func (mt *matcher) size() int64 {
	if !mt.m.Binary {
		return mt.m.Size
	}
	part, err := mt.c.srv.Store.Structure(mt.m)
	xcheckf(err, "structure")
	pr, err := mt.c.srv.Store.Present(mt.m, part)
	xcheckf(err, "presenting message")
	return pr.Size
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

// match evaluates a key against the message.
func (mt *matcher) match(k *searchKey) bool {
	m := mt.m
	switch k.kind {
	case keyAll:
		return true
	case keyAnd:
		for i := range k.sub {
			if !mt.match(&k.sub[i]) {
				return false
			}
		}
		return true
	case keyOr:
		return mt.match(&k.sub[0]) || mt.match(&k.sub[1])
	case keyNot:
		return !mt.match(&k.sub[0])
	case keySeq:
		n := uint32(len(mt.c.sel.uids))
		for _, r := range k.set {
			lo, hi := rangeBounds(r, n)
			if mt.seq >= lo && mt.seq <= hi {
				return true
			}
		}
		return false
	case keyUID:
		// "*" is the highest UID in the mailbox (RFC 9051 s6.4.8).
		for _, r := range k.set {
			lo, hi := rangeBounds(r, mt.c.sel.maxUID)
			if m.UID >= lo && m.UID <= hi {
				return true
			}
		}
		return false
	case keyFlag:
		if strings.EqualFold(k.str, `\Recent`) {
			return mt.c.sel.recent[m.UID]
		}
		return m.Has(k.str)
	case keyLarger:
		return uint64(mt.size()) > k.n
	case keySmaller:
		return uint64(mt.size()) < k.n
	case keyModSeq:
		return m.ModSeq >= k.n
	case keyBefore, keyOn, keySince:
		return dateMatch(k.kind-keyBefore, dateOnly(m.InternalDate), dateOnly(k.date))
	case keyOlder:
		return !m.InternalDate.After(mt.now.Add(-time.Duration(k.n) * time.Second))
	case keyYounger:
		return !m.InternalDate.Before(mt.now.Add(-time.Duration(k.n) * time.Second))
	case keySentBefore, keySentOn, keySentSince:
		vals := headerValues(mt.header(), "Date")
		if len(vals) == 0 {
			return false
		}
		t, err := mail.ParseDate(strings.TrimSpace(vals[0]))
		if err != nil {
			return false
		}
		return dateMatch(k.kind-keySentBefore, dateOnly(t), dateOnly(k.date))
	case keyHeader:
		var vals []string
		// The record holds Subject and From with RFC 2047 words decoded
		// (cut at 256 octets): no need to read the header for them.
		switch {
		case strings.EqualFold(k.str, "Subject") && len(m.Subject) < 250:
			if m.Subject != "" {
				vals = []string{m.Subject}
			}
		case strings.EqualFold(k.str, "From") && len(m.From) < 250:
			if m.From != "" {
				vals = []string{m.From}
			}
		default:
			vals = headerValues(mt.header(), k.str)
		}
		if len(vals) == 0 {
			return false
		}
		return k.value == "" || slices.ContainsFunc(vals, func(v string) bool { return containsFold(v, k.value) })
	case keyBody:
		return containsFold(string(mt.content()[len(mt.header()):]), k.value)
	case keyText:
		return containsFold(string(mt.content()), k.value)
	}
	return false
}

// dateMatch compares day-granular dates: op 0 before, 1 on, 2 since.
func dateMatch(op keyKind, d, ref time.Time) bool {
	switch op {
	case 0:
		return d.Before(ref)
	case 1:
		return d.Equal(ref)
	}
	return !d.Before(ref)
}

// xsearch evaluates a search program over the selected mailbox and returns
// the matching messages in sequence order. SEARCH, SORT, THREAD and the
// CONTEXT updates all go through it.
func (c *conn) xsearch(k *searchKey) []vmstore.Message {
	s := c.sel
	if len(s.uids) == 0 {
		return nil
	}
	msgs := c.xloadMessages(s.uids)
	now := time.Now()
	var out []vmstore.Message
	for i := range msgs {
		seq, ok := s.seqOf(msgs[i].UID)
		if !ok {
			continue
		}
		mt := &matcher{c: c, m: &msgs[i], seq: seq, now: now}
		if mt.match(k) {
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
	if req.modseq && len(found) > 0 && !slices.ContainsFunc(req.ret, func(o string) bool { return o != "MIN" && o != "MAX" && o != "SAVE" }) {
		// RFC 7162 s3.1.5: with MIN and/or MAX alone, MODSEQ is the highest
		// mod-sequence of the messages those return, not of every match.
		maxMod = 0
		if slices.Contains(req.ret, "MIN") {
			maxMod = found[0].ModSeq
		}
		if slices.Contains(req.ret, "MAX") {
			maxMod = max(maxMod, found[len(found)-1].ModSeq)
		}
	}
	if slices.Contains(req.ret, "UPDATE") {
		c.addContext(tag, isUID, nil, req, found)
	}
	c.writeESearchOrdered(tag, isUID, req.ret, req.partial, nums, req.modseq, maxMod, false)
}
