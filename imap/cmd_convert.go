package imap

// CONVERT (RFC 5259): server-side conversion of body parts for limited
// clients, on top of transcode's media conversion engine. CONVERSIONS
// (authenticated and selected states) lists what can be converted;
// CONVERT / UID CONVERT (selected) return CONVERTED responses with the
// converted part's structure, size and content. The stored message is
// never changed and \Seen is never set.
//
// Implementation notes:
//   - A conversion is done once and kept in a size-bounded LRU cache keyed
//     by (message content hash, section, target type, parameters), so
//     BINARY.SIZE and the BINARY that follows (also when paged with
//     partials) agree for the whole session, as s6.1 requires.
//   - Errors that concern one part are answered in the item:
//     (ERROR "text" BADPARAMETERS from to (params)); a malformed type is BAD,
//     an unknown one NO, too many messages NO [MAXCONVERTMESSAGES n].
//   - When no requested item could be converted, the tagged answer is NO.
//   - Not implemented: the BODY[HEADER] / BODY[n.MIME] charset conversions
//     of s6.3 (answered BAD).

import (
	"bytes"
	"container/list"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// maxConvertMessages bounds the messages of one CONVERT (RFC 5259 s7
// MAXCONVERTMESSAGES): conversions are expensive.
const maxConvertMessages = 20

func init() {
	registerCap("CONVERT", authenticated)
	register("CONVERSIONS", statesAuthSel, cmdConversions)
	register("CONVERT", stateSelected, cmdConvert)
	register("UID CONVERT", stateSelected, cmdConvert)
}

// validTypePattern: "*", "type/*" or "type/subtype" (RFC 5259 s5).
func validTypePattern(s string) bool {
	if s == "*" {
		return true
	}
	t, st, ok := strings.Cut(s, "/")
	return ok && t != "" && st != "" && !strings.ContainsAny(s, " \"()") && (st == "*" || !strings.Contains(st, "*")) && t != "*"
}

func typeMatches(pattern, t string) bool {
	if pattern == "*" {
		return true
	}
	if strings.HasSuffix(pattern, "/*") {
		return strings.HasPrefix(t, strings.TrimSuffix(pattern, "*"))
	}
	return pattern == t
}

func cmdConversions(c *conn, tag string, p *parser) {
	p.xsp()
	from := strings.ToLower(p.xastring())
	p.xsp()
	to := strings.ToLower(p.xastring())
	p.xend()
	if !validTypePattern(from) || !validTypePattern(to) {
		xsyntaxf("bad media type pattern")
	}
	for _, cv := range transcode.Conversions() {
		if !typeMatches(from, cv.From) || !typeMatches(to, cv.To) {
			continue
		}
		c.enc.Raw("* CONVERSION ").String(cv.From).SP().String(cv.To)
		if len(cv.Params) > 0 {
			c.enc.Raw(" (")
			for i, n := range cv.Params {
				if i > 0 {
					c.enc.SP()
				}
				c.enc.String(n)
			}
			c.enc.Raw(")")
		}
		c.enc.CRLF()
	}
}

// convertReq is the parsed conversion of one CONVERT command.
type convertReq struct {
	to     string // "" = NIL, the default conversion
	params map[string]string
	names  []string // parameter names in request order
}

func (r convertReq) key() string {
	var b strings.Builder
	b.WriteString(r.to)
	keys := make([]string, 0, len(r.params))
	for k := range r.params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, ";%s=%s", k, r.params[k])
	}
	return b.String()
}

type convertAtt struct {
	kind      string // UID, BODYPARTSTRUCTURE, BINARY, BINARY.SIZE, AVAILABLECONVERSIONS
	sec       section
	off, n    int64
	partial   bool
	converted bool // the item needs the conversion itself
}

func (p *parser) xconvertAtt() convertAtt {
	name := strings.ToUpper(p.TakeWhile(func(b byte) bool { return b >= 'A' && b <= 'Z' || b >= 'a' && b <= 'z' || b == '.' }))
	switch name {
	case "UID":
		return convertAtt{kind: name}
	case "BODYPARTSTRUCTURE", "BINARY", "BINARY.SIZE", "AVAILABLECONVERSIONS":
		a := convertAtt{kind: name, sec: p.xsection(true), converted: name != "AVAILABLECONVERSIONS"}
		if name == "BINARY" {
			a.off, a.n, a.partial = p.xpartial()
		}
		return a
	case "BODY":
		xsyntaxf("BODY[HEADER] charset conversion is not supported")
	}
	xsyntaxf("unknown CONVERT item %q", name)
	return convertAtt{}
}

func cmdConvert(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := c.cmd == "UID CONVERT"
	p.xsp()
	set, dollar := p.xseqset()
	p.xsp()
	// convert-params
	var req convertReq
	p.xexpect('(')
	if p.PeekFold("NIL") {
		p.ConsumeFold("NIL")
	} else {
		req.to = strings.ToLower(p.xstring())
		if !validTypePattern(req.to) || strings.Contains(req.to, "*") {
			xsyntaxf("bad target media type %q", req.to)
		}
	}
	req.params = map[string]string{}
	if p.Consume(' ') {
		p.xlist(func() {
			name := strings.ToLower(p.xastring())
			p.xsp()
			req.params[name] = p.xastring()
			req.names = append(req.names, name)
		})
	}
	p.xexpect(')')
	p.xsp()
	var atts []convertAtt
	if p.Peek() == '(' {
		p.xlist(func() { atts = append(atts, p.xconvertAtt()) })
	} else {
		atts = []convertAtt{p.xconvertAtt()}
	}
	p.xend()
	if req.to != "" && !knownTarget(req.to) {
		xusererrorf("CANNOT", "no conversion to %s", req.to)
	}
	// UID first, BODYPARTSTRUCTURE before BINARY (s6.1).
	sort.SliceStable(atts, func(i, j int) bool { return attRank(atts[i].kind) < attRank(atts[j].kind) })
	if isUID && (len(atts) == 0 || atts[0].kind != "UID") {
		atts = append([]convertAtt{{kind: "UID"}}, atts...)
	}
	uids := c.resolveSeqs(set, dollar, isUID)
	if len(uids) > maxConvertMessages {
		xusererrorf(fmt.Sprintf("MAXCONVERTMESSAGES %d", maxConvertMessages), "at most %d messages in one CONVERT", maxConvertMessages)
	}
	if len(uids) == 0 {
		return
	}
	msgs := c.xloadMessages(uids)
	okItems, failed := 0, 0
	for i := range msgs {
		m := &msgs[i]
		seq, ok := s.seqOf(m.UID)
		if !ok {
			continue
		}
		fm := &fetchMsg{seq: seq, msg: m}
		// Convert before the response line starts.
		results := make([]*convResult, len(atts))
		for j, a := range atts {
			if a.converted {
				results[j] = c.convertPart(fm, a.sec, req)
				if results[j].err == nil {
					okItems++
				} else {
					failed++
				}
			} else if a.kind == "AVAILABLECONVERSIONS" {
				okItems++
			}
		}
		fm.release() // the conversions have read their parts
		c.enc.Raw("* ").Number(uint64(seq)).Raw(" CONVERTED (TAG ").String(tag).Raw(") (")
		for j, a := range atts {
			if j > 0 {
				c.enc.SP()
			}
			c.writeConvertAtt(fm, a, req, results[j])
		}
		c.enc.Raw(")").CRLF()
		if err := c.enc.Err(); err != nil {
			panic(ioError{err})
		}
	}
	if okItems == 0 && failed > 0 {
		xusererrorf("CANNOT", "no part could be converted")
	}
}

func attRank(kind string) int {
	switch kind {
	case "UID":
		return 0
	case "BODYPARTSTRUCTURE":
		return 1
	}
	return 2
}

func knownTarget(t string) bool {
	for _, cv := range transcode.Conversions() {
		if cv.To == t {
			return true
		}
	}
	return false
}

// convResult is a converted part or the error to report for it.
type convResult struct {
	from   string
	res    *transcode.MediaResult
	err    error
	noPart bool
}

func (c *conn) convertPart(fm *fetchMsg, sec section, req convertReq) *convResult {
	pt, err := c.xmsg(fm).Open(sec, message.DecodedLeaf)
	if errors.Is(err, message.ErrNoSuchPart) || errors.Is(err, message.ErrNotLeaf) {
		return &convResult{noPart: true, err: errors.New("no such leaf part")}
	}
	from := ""
	if pt != nil {
		from = pt.Node.MediaType()
	} else if node := message.Resolve(c.xpart(fm), sec.Path); node != nil {
		from = node.MediaType()
	}
	if errors.Is(err, message.ErrUnknownEncoding) {
		return &convResult{from: from, err: fmt.Errorf("unknown content transfer encoding %q", message.Resolve(c.xpart(fm), sec.Path).Encoding)}
	}
	xcheckf(err, "opening part")
	key := fmt.Sprintf("%x|%s|%s", fm.msg.Hash, sec.String(), req.key())
	if r := c.srv.convCache.get(key); r != nil {
		return &convResult{from: from, res: r}
	}
	part := pt.Node
	res, err := transcode.ConvertMedia(transcode.MediaRequest{From: from, FromParams: part.Params, To: req.to, Params: req.params},
		pt.Reader())
	if err != nil {
		return &convResult{from: from, err: err}
	}
	c.srv.convCache.put(key, res)
	return &convResult{from: from, res: res}
}

func (c *conn) writeConvertAtt(fm *fetchMsg, a convertAtt, req convertReq, r *convResult) {
	switch a.kind {
	case "UID":
		c.enc.Raw("UID ").Number(uint64(fm.msg.UID))
		return
	case "AVAILABLECONVERSIONS":
		c.enc.Raw("AVAILABLECONVERSIONS[").Raw(a.sec.String()).Raw("] ")
		part := message.Resolve(c.xpart(fm), a.sec.Path)
		if part == nil {
			c.writeConvertError(errors.New("no such part"), true, "", req)
			return
		}
		var targets []string
		for _, t := range transcode.Targets(part.MediaType()) {
			if req.to == "" || req.to == t {
				targets = append(targets, t)
			}
		}
		if req.to != "" && len(targets) == 0 {
			c.writeConvertError(errors.New("no conversion to "+req.to), false, part.MediaType(), req)
			return
		}
		c.enc.Raw("((")
		for i, t := range targets {
			if i > 0 {
				c.enc.SP()
			}
			c.enc.String(t)
		}
		c.enc.Raw("))")
		return
	}
	name := a.kind + "[" + a.sec.String() + "]"
	if a.kind == "BINARY" && a.partial {
		name += "<" + itoa64(a.off) + ">"
	}
	c.enc.Raw(name).SP()
	if r.err != nil {
		c.writeConvertError(r.err, r.noPart, r.from, req)
		return
	}
	data := r.res.Data
	switch a.kind {
	case "BINARY.SIZE":
		c.enc.Number(uint64(len(data)))
	case "BODYPARTSTRUCTURE":
		t, st, _ := strings.Cut(r.res.Type, "/")
		c.enc.Raw("(").String(strings.ToUpper(t)).SP().String(strings.ToUpper(st)).SP()
		if len(r.res.Params) > 0 {
			c.writeParams(r.res.Params)
		} else {
			c.enc.Raw("NIL")
		}
		c.enc.Raw(" NIL NIL \"BINARY\" ").Number(uint64(len(data)))
		if t == "text" {
			c.enc.SP().Number(uint64(bytes.Count(data, []byte("\n"))))
		}
		c.enc.Raw(")")
	case "BINARY":
		c.writePartial(bytes.NewReader(data), int64(len(data)), a.off, a.n, a.partial, !strings.HasPrefix(r.res.Type, "text/"))
	}
}

// writeConvertError writes an item error (RFC 5259 s7): BADPARAMETERS
// naming the parameters at fault (all of them when the conversion as a
// whole is impossible), or MISSINGPARAMETERS; NIL as the source type when
// the part does not exist.
func (c *conn) writeConvertError(err error, noPart bool, from string, req convertReq) {
	to := req.to
	if to == "" {
		to = transcode.DefaultTarget(from)
	}
	kind, names := "BADPARAMETERS", req.names
	var pe *transcode.ParamError
	if errors.As(err, &pe) {
		names = pe.Names
		if pe.Missing {
			kind = "MISSINGPARAMETERS"
		}
	}
	c.enc.Raw("(ERROR ").String(err.Error()).SP().Raw(kind).SP()
	if noPart || from == "" {
		c.enc.Raw("NIL")
	} else {
		c.enc.String(from)
	}
	c.enc.SP().String(to)
	if len(names) > 0 {
		c.enc.Raw(" (")
		for i, n := range names {
			if i > 0 {
				c.enc.SP()
			}
			c.enc.String(n)
		}
		c.enc.Raw(")")
	}
	c.enc.Raw(")")
}

// convLRU caches converted parts, bounded by total size.
type convLRU struct {
	mu    sync.Mutex
	max   int
	size  int
	ll    *list.List
	items map[string]*list.Element
}

type convEntry struct {
	key string
	res *transcode.MediaResult
}

// convCacheBytes bounds the converted parts kept by one server.
const convCacheBytes = 128 << 20

func (l *convLRU) init() {
	if l.items == nil {
		l.max, l.ll, l.items = convCacheBytes, list.New(), map[string]*list.Element{}
	}
}

func (l *convLRU) get(k string) *transcode.MediaResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if e, ok := l.items[k]; ok {
		l.ll.MoveToFront(e)
		return e.Value.(*convEntry).res
	}
	return nil
}

func (l *convLRU) put(k string, r *transcode.MediaResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.init()
	if _, ok := l.items[k]; ok || len(r.Data) > l.max/4 {
		return
	}
	l.items[k] = l.ll.PushFront(&convEntry{k, r})
	l.size += len(r.Data)
	for l.size > l.max {
		e := l.ll.Back()
		ce := e.Value.(*convEntry)
		l.ll.Remove(e)
		delete(l.items, ce.key)
		l.size -= len(ce.res.Data)
	}
}
