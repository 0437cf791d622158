package vmstore

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-message/textproto"
)

// Part is a node of a message's MIME tree with byte offsets into the raw
// message, enough to serve IMAP BODYSTRUCTURE, ENVELOPE and BODY[section]
// without parsing the message again.
type Part struct {
	Start int64 `json:"s"` // first byte of the header
	Body  int64 `json:"b"` // first byte of the body
	End   int64 `json:"e"` // end of the body (exclusive)
	// Lines counts the line ends in the body (a last line without one is
	// not counted; the CRLF before a boundary belongs to the boundary,
	// RFC 2046 s5.1.1). For message/rfc822 it counts the whole
	// encapsulated message, header included (RFC 9051 s7.5.2).
	Lines int64 `json:"l"`

	Type        string            `json:"t"`           // lower case, e.g. "audio"
	Subtype     string            `json:"st"`          // lower case, e.g. "wav"
	Params      map[string]string `json:"p,omitempty"` // Content-Type parameters, keys lower case
	ID          string            `json:"id,omitempty"`
	Description string            `json:"desc,omitempty"`
	Encoding    string            `json:"enc,omitempty"` // Content-Transfer-Encoding, lower case
	Disposition string            `json:"disp,omitempty"`
	DispParams  map[string]string `json:"dp,omitempty"`
	Language    []string          `json:"lang,omitempty"`
	Location    string            `json:"loc,omitempty"`
	MD5         string            `json:"md5,omitempty"`
	// Binary: the body of this leaf contains NUL (appended with a
	// literal8); it is presented base64-encoded (present.go).
	Binary bool `json:"bin,omitempty"`
	// Duration in seconds of a time-based part (RFC 3803 Content-Duration,
	// or computed from the audio header).
	Duration float64 `json:"dur,omitempty"`
	// measured: Duration was computed from the part's content as it was
	// received (not taken from a header), while parsing.
	measured bool
	// Envelope of a message (the top level and message/rfc822 bodies).
	Envelope *Envelope `json:"env,omitempty"`
	// Preview (RFC 8970) of the message, on the root; nil for messages
	// stored before previews were kept (preview.go).
	Preview *string `json:"pv,omitempty"`
	// Parts: the children of a multipart, or the one message of a
	// message/rfc822 part.
	Parts []Part `json:"parts,omitempty"`
}

// MediaType returns "type/subtype".
func (p *Part) MediaType() string { return p.Type + "/" + p.Subtype }

// Envelope holds the RFC 9051 s7.5.2 ENVELOPE fields. Strings are the raw
// header values (RFC 2047 words still encoded), as IMAP returns them.
type Envelope struct {
	Date      string    `json:"date,omitempty"`
	Subject   string    `json:"subject,omitempty"`
	From      []Address `json:"from,omitempty"`
	Sender    []Address `json:"sender,omitempty"`
	ReplyTo   []Address `json:"replyTo,omitempty"`
	To        []Address `json:"to,omitempty"`
	Cc        []Address `json:"cc,omitempty"`
	Bcc       []Address `json:"bcc,omitempty"`
	InReplyTo string    `json:"inReplyTo,omitempty"`
	MessageID string    `json:"messageId,omitempty"`
}

// Address is one element of an envelope address list (RFC 9051 s7.5.2):
// a mailbox (name, source route, mailbox, host), or a group marker: a
// start (Group GroupStart, the group name in Mailbox) and an end (Group
// GroupEnd) around the group's members. Name is the display name as sent
// (encoded words not decoded).
type Address struct {
	Name    string `json:"name,omitempty"`
	Adl     string `json:"adl,omitempty"`
	Mailbox string `json:"mailbox"`
	Host    string `json:"host"`
	Group   int8   `json:"grp,omitempty"`
}

// Limits of the parser: deeper or larger structures are kept as opaque
// bodies, never rejected.
const (
	maxMIMEDepth   = 32
	maxHeaderBytes = 256 << 10
	maxParts       = 2000
	probeHeadBytes = 16 << 10
)

// parsed is what the deposit path learns from a message while it streams in.
type parsed struct {
	root     Part
	context  Context
	duration float64
	urgent   bool
	from     string
	subject  string
	date     time.Time
	to, cc   string
	keys     HeaderKeys
}

type mimeParser struct {
	br      *bufio.Reader
	pos     int64
	parts   int
	prober  func(string, []byte, int64) (time.Duration, bool)
	pending []byte // a line read ahead and not yet consumed
	pendPos int64
	eof     bool
	eols    int64 // line ends read so far (the pending line's included)
	// The start of the first text/plain and text/html parts that are not
	// attachments nor inside a message/rfc822 part, for the preview.
	plain, html *textCapture
	inMessage   int
	// lineByLine: leaf bodies are not taken in bulk (tests).
	lineByLine bool
}

// eolsBefore returns the number of line ends before offset end, which is
// where the parser stands or, when a delimiter line was read ahead, the
// end of the entity before it (without the CRLF that belongs to the
// delimiter).
func (p *mimeParser) eolsBefore(end int64) int64 {
	n := p.eols
	if p.pending != nil {
		if eolLen(p.pending) > 0 {
			n--
		}
		if p.pendPos > end {
			n--
		}
	}
	return n
}

// readLine returns the next line with its terminator and its offset. Lines
// longer than the buffer come back in pieces. The line is only valid until
// the next read (unread keeps a copy).
func (p *mimeParser) readLine() (line []byte, off int64, err error) {
	if p.pending != nil {
		l, o := p.pending, p.pendPos
		p.pending = nil
		return l, o, nil
	}
	if p.eof {
		return nil, p.pos, io.EOF
	}
	off = p.pos
	l, err := p.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		err = nil
	}
	if err == io.EOF {
		p.eof = true
		if len(l) == 0 {
			return nil, off, io.EOF
		}
		err = nil
	}
	if err != nil {
		return nil, off, err
	}
	p.pos += int64(len(l))
	if eolLen(l) > 0 {
		p.eols++
	}
	return l, off, nil
}

// bulkLines takes, when the parser stands at the start of a line, the
// whole lines already buffered up to the first one that starts with "-"
// (which may be a delimiter and is read as a line): a leaf part's body
// without a call per line. It returns nil when there is no such line. The
// bytes are valid until the next read.
func (p *mimeParser) bulkLines() []byte {
	if p.pending != nil || p.eof || p.br.Buffered() == 0 {
		return nil
	}
	buf, _ := p.br.Peek(p.br.Buffered())
	if buf[0] == '-' {
		return nil
	}
	end := bytes.Index(buf, []byte("\n-")) + 1
	if end == 0 {
		end = bytes.LastIndexByte(buf, '\n') + 1
		if end == 0 {
			return nil
		}
	}
	blk := buf[:end]
	_, _ = p.br.Discard(end) // the bytes stay in the buffer until the next read
	p.pos += int64(end)
	p.eols += int64(bytes.Count(blk, []byte("\n")))
	return blk
}

func (p *mimeParser) unread(line []byte, off int64) { p.pending, p.pendPos = bytes.Clone(line), off }

func eolLen(l []byte) int {
	switch {
	case bytes.HasSuffix(l, []byte("\r\n")):
		return 2
	case bytes.HasSuffix(l, []byte("\n")):
		return 1
	}
	return 0
}

// boundaryMatch tells whether line is a delimiter of one of the boundaries
// (innermost last) and whether it is a close delimiter.
func boundaryMatch(line []byte, bounds []string) (idx int, closing bool) {
	if len(bounds) == 0 || !bytes.HasPrefix(line, []byte("--")) {
		return -1, false
	}
	rest := line[2:]
	for i := len(bounds) - 1; i >= 0; i-- {
		b := bounds[i]
		if !bytes.HasPrefix(rest, []byte(b)) {
			continue
		}
		tail := rest[len(b):]
		closing = bytes.HasPrefix(tail, []byte("--"))
		if closing {
			tail = tail[2:]
		}
		if len(bytes.TrimRight(tail, " \t\r\n")) == 0 {
			return i, closing
		}
	}
	return -1, false
}

// parseMessage parses a whole message from r, which it reads to the end.
func parseMessage(r io.Reader, prober func(string, []byte, int64) (time.Duration, bool)) (*parsed, error) {
	return parseMessageWith(r, prober, parseBufSize, false)
}

// parseBufSize is the parser's read buffer; parseBufs recycles them (a
// deposit cleared and collected a fresh 64 KiB each time).
const parseBufSize = 64 << 10

var parseBufs = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, parseBufSize) }}

// parseMessageWith parses with a read buffer of bufSize bytes, leaf bodies
// line by line if lineByLine (tests compare that with the bulk path).
func parseMessageWith(r io.Reader, prober func(string, []byte, int64) (time.Duration, bool), bufSize int, lineByLine bool) (*parsed, error) {
	var br *bufio.Reader
	if bufSize == parseBufSize {
		br = parseBufs.Get().(*bufio.Reader)
		br.Reset(r)
		defer func() { br.Reset(nil); parseBufs.Put(br) }()
	} else {
		br = bufio.NewReaderSize(r, bufSize)
	}
	p := &mimeParser{br: br, prober: prober, lineByLine: lineByLine}
	root, hdr, err := p.entity(nil, 0, "text/plain")
	if err != nil {
		return nil, err
	}
	// Drain what follows (nothing, normally).
	for {
		if _, _, err := p.readLine(); err != nil {
			break
		}
	}
	root.Envelope = envelopeOf(hdr)
	out := &parsed{root: root}
	out.fill(hdr)
	pv := out.preview(p.plain, p.html, hdr.Get("From"), hdr.Get("Date"))
	out.root.Preview = &pv
	return out, nil
}

func (out *parsed) fill(h textproto.Header) {
	decode := decodeWords
	env := out.root.Envelope
	if env == nil {
		env = envelopeOf(h)
	}
	// From as SEARCH FROM sees it: the parsed list (comments gone, names
	// decoded), or the decoded text when it holds no address.
	if out.from = formatAddresses(env.From); out.from == "" {
		out.from = decode(strings.TrimSpace(h.Get("From")))
	}
	out.subject = decode(strings.TrimSpace(h.Get("Subject")))
	if t, ok := ParseDate(h.Get("Date")); ok {
		out.date = t
	}
	first := func(l []Address) string {
		for _, a := range l {
			if a.Group == 0 {
				return a.AddrSpec()
			}
		}
		return ""
	}
	out.to, out.cc = first(env.To), first(env.Cc)
	k := &out.keys
	k.FromMailbox, k.DisplayFrom = sortAddr(env.From)
	k.ToMailbox, k.DisplayTo = sortAddr(env.To)
	k.CcMailbox, _ = sortAddr(env.Cc)
	if ids := ParseMsgIDs(h.Get("Message-Id")); len(ids) > 0 {
		k.MessageID = ids[0]
	}
	k.Refs = ParseMsgIDs(strings.Join(h.Values("References"), " "))
	if len(k.Refs) == 0 {
		if ids := ParseMsgIDs(h.Get("In-Reply-To")); len(ids) > 0 {
			k.Refs = ids[:1]
		}
	}
	if len(k.Refs) > maxRefs {
		k.Refs = k.Refs[len(k.Refs)-maxRefs:]
	}
	out.context = ParseContext(h.Get("Message-Context"))
	if out.context == ContextUnknown {
		out.context = deriveContext(&out.root)
	}
	// The duration measured from the audio received wins over what any
	// header claims; headers count only for media that cannot be measured.
	main := mainMediaPart(&out.root)
	if main != nil && main.measured {
		out.duration = main.Duration
	} else if d, ok := parseDuration(h.Get("Content-Duration")); ok {
		out.duration = d
	} else if d, ok := parseDuration(h.Get("X-Asterisk-VM-Duration")); ok {
		out.duration = d
	} else if main != nil {
		out.duration = main.Duration
	}
	imp := strings.ToLower(strings.TrimSpace(h.Get("Importance")))
	prio := strings.ToLower(strings.TrimSpace(h.Get("Priority")))
	xprio := strings.TrimSpace(h.Get("X-Priority"))
	ast := strings.ToLower(strings.TrimSpace(h.Get("X-Asterisk-VM-Priority")))
	out.urgent = imp == "high" || prio == "urgent" || strings.HasPrefix(xprio, "1") || strings.HasPrefix(xprio, "2") || ast == "urgent"
}

func parseDuration(s string) (float64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	d, err := strconv.ParseFloat(s, 64)
	if err != nil || d < 0 || d > 1e7 {
		return 0, false
	}
	return d, true
}

// deriveContext classifies a message without a Message-Context header
// (RFC 3458 s3): audio -> voice, image/tiff -> fax, video -> video, other
// images -> multimedia, else text.
func deriveContext(root *Part) Context {
	if root.Type == "multipart" && root.Subtype == "voice-message" {
		return ContextVoice
	}
	var audio, fax, video, image bool
	var walk func(p *Part)
	walk = func(p *Part) {
		switch {
		case p.Type == "audio":
			audio = true
		case p.Type == "image" && p.Subtype == "tiff":
			fax = true
		case p.Type == "video":
			video = true
		case p.Type == "image":
			image = true
		}
		for i := range p.Parts {
			if p.Type == "multipart" {
				walk(&p.Parts[i])
			}
		}
	}
	walk(root)
	switch {
	case video:
		return ContextVideo
	case fax && !audio:
		return ContextFax
	case audio && image:
		return ContextMultimedia
	case audio:
		return ContextVoice
	case image:
		return ContextMultimedia
	}
	return ContextText
}

// mainMediaPart is the part whose duration is the message's: the VPIM
// Voice-Message part, else the first audio or video part.
func mainMediaPart(root *Part) *Part {
	var first, voice *Part
	var walk func(p *Part)
	walk = func(p *Part) {
		if p.Type == "audio" || p.Type == "video" {
			if first == nil {
				first = p
			}
			if voice == nil && strings.EqualFold(p.DispParams["voice"], "voice-message") {
				voice = p
			}
		}
		if p.Type == "multipart" {
			for i := range p.Parts {
				walk(&p.Parts[i])
			}
		}
	}
	walk(root)
	if voice != nil {
		return voice
	}
	return first
}

// entity parses a header and body that end at a delimiter of one of bounds
// or at EOF.
func (p *mimeParser) entity(bounds []string, depth int, defType string) (Part, textproto.Header, error) {
	p.parts++
	var part Part
	// Header: lines up to an empty line.
	var hb bytes.Buffer
	first := true
	var hdrStart int64 = -1
	done := false // the entity ended inside its header
	for {
		line, off, err := p.readLine()
		if err == io.EOF {
			if hdrStart < 0 {
				hdrStart = off
			}
			part.Start, part.Body, part.End = hdrStart, off, off
			done = true
			break
		}
		if err != nil {
			return part, textproto.Header{}, err
		}
		if hdrStart < 0 {
			hdrStart = off
		}
		if idx, _ := boundaryMatch(line, bounds); idx >= 0 {
			p.unread(line, off)
			part.Start, part.Body, part.End = hdrStart, off, off
			done = true
			break
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 && eolLen(line) > 0 {
			part.Start, part.Body = hdrStart, off+int64(len(line))
			break
		}
		// A first line that is not a header field means there is no header.
		if first && !looksLikeField(line) {
			p.unread(line, off)
			part.Start, part.Body = hdrStart, off
			break
		}
		first = false
		if hb.Len() < maxHeaderBytes {
			hb.Write(line)
		}
	}
	hb.WriteString("\r\n")
	raw := hb.Bytes()
	hdr, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		// One bad line must not cost the whole header (and with it the
		// envelope): read it again without what the reader refuses.
		hdr, err = textproto.ReadHeader(bufio.NewReader(bytes.NewReader(cleanHeader(raw))))
		if err != nil {
			hdr = textproto.Header{}
		}
	}
	part.applyHeader(hdr, defType)
	if done {
		return part, hdr, nil
	}
	switch {
	case part.Type == "multipart" && part.Params["boundary"] != "" && depth < maxMIMEDepth && p.parts < maxParts:
		err = p.multipartBody(&part, bounds, depth)
	case part.Type == "message" && (part.Subtype == "rfc822" || part.Subtype == "global") && depth < maxMIMEDepth && p.parts < maxParts &&
		(part.Encoding == "" || part.Encoding == "7bit" || part.Encoding == "8bit" || part.Encoding == "binary"):
		var sub Part
		var sh textproto.Header
		start := p.eolsBefore(part.Body)
		p.inMessage++
		sub, sh, err = p.entity(bounds, depth+1, "text/plain")
		p.inMessage--
		if err == nil {
			sub.Envelope = envelopeOf(sh)
			part.End, part.Lines = sub.End, p.eolsBefore(sub.End)-start
			part.Parts = []Part{sub}
		}
	default:
		err = p.leafBody(&part, bounds)
	}
	return part, hdr, err
}

// looksLikeField tells whether line starts a header field: a field name,
// optionally followed by white space (RFC 5322 s4.5 obs-optional), and ":".
func looksLikeField(line []byte) bool {
	_, ok := fieldName(line)
	return ok
}

func fieldName(line []byte) ([]byte, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return nil, false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return nil, false
		}
	}
	return name, true
}

// cleanHeader rewrites a header the strict reader refused: white space
// between a field name and its colon goes (RFC 5322 s4.5), lines that are
// neither a field nor the continuation of one are dropped, and so are
// continuations of a dropped line. The header ends with an empty line.
func cleanHeader(raw []byte) []byte {
	out := make([]byte, 0, len(raw)+2)
	inField := false
	for _, line := range bytes.SplitAfter(raw, []byte("\n")) {
		t := bytes.TrimRight(line, "\r\n")
		if len(t) == 0 {
			break
		}
		if t[0] == ' ' || t[0] == '\t' {
			if inField {
				out = append(out, t...)
				out = append(out, '\r', '\n')
			}
			continue
		}
		name, ok := fieldName(t)
		inField = ok
		if !ok {
			continue
		}
		out = append(out, name...)
		out = append(out, t[bytes.IndexByte(t, ':'):]...)
		out = append(out, '\r', '\n')
	}
	return append(out, '\r', '\n')
}

func (part *Part) applyHeader(h textproto.Header, defType string) {
	ct := h.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || (err != nil && mt == "") || !strings.Contains(mt, "/") {
		mt, params, _ = mime.ParseMediaType(defType)
	}
	mt = strings.ToLower(mt)
	part.Type, part.Subtype, _ = strings.Cut(mt, "/")
	if len(params) > 0 {
		part.Params = params
	}
	part.ID = strings.TrimSpace(h.Get("Content-Id"))
	part.Description = strings.TrimSpace(h.Get("Content-Description"))
	part.Encoding = strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))
	if d := h.Get("Content-Disposition"); d != "" {
		disp, dp, err := mime.ParseMediaType(d)
		if err == nil || disp != "" {
			part.Disposition = strings.ToLower(disp)
			if len(dp) > 0 {
				part.DispParams = dp
			}
		}
	}
	if l := h.Get("Content-Language"); l != "" {
		for _, x := range strings.Split(l, ",") {
			if x = strings.TrimSpace(x); x != "" {
				part.Language = append(part.Language, x)
			}
		}
	}
	part.Location = strings.TrimSpace(h.Get("Content-Location"))
	part.MD5 = strings.TrimSpace(h.Get("Content-Md5"))
	if d, ok := parseDuration(h.Get("Content-Duration")); ok {
		part.Duration = d
	}
}

func (p *mimeParser) multipartBody(part *Part, bounds []string, depth int) error {
	b := part.Params["boundary"]
	inner := append(append([]string(nil), bounds...), b)
	myIdx := len(inner) - 1
	// Preamble up to the first delimiter.
	for {
		line, off, err := p.readLine()
		if err == io.EOF {
			part.End = off
			return nil
		}
		if err != nil {
			return err
		}
		idx, closing := boundaryMatch(line, inner)
		if idx < 0 {
			continue
		}
		if idx != myIdx {
			p.unread(line, off)
			part.End = off
			return nil
		}
		if closing {
			return p.epilogue(part, bounds, eolLen(line))
		}
		break
	}
	sub := "text/plain"
	if part.Subtype == "digest" {
		sub = "message/rfc822"
	}
	for {
		child, _, err := p.entity(inner, depth+1, sub)
		if err != nil {
			return err
		}
		part.Parts = append(part.Parts, child)
		line, off, err := p.readLine()
		if err == io.EOF {
			part.End = off
			return nil
		}
		if err != nil {
			return err
		}
		idx, closing := boundaryMatch(line, inner)
		if idx != myIdx {
			// An outer boundary closes us too.
			p.unread(line, off)
			part.End = child.End
			return nil
		}
		if closing {
			return p.epilogue(part, bounds, eolLen(line))
		}
	}
}

// epilogue skips what follows a close delimiter up to an outer delimiter;
// the line end before that delimiter (the close delimiter's own when there
// is no epilogue) belongs to it, not to the multipart.
func (p *mimeParser) epilogue(part *Part, bounds []string, lastEOL int) error {
	for {
		line, off, err := p.readLine()
		if err == io.EOF {
			part.End = off
			return nil
		}
		if err != nil {
			return err
		}
		if idx, _ := boundaryMatch(line, bounds); idx >= 0 {
			p.unread(line, off)
			part.End = off - int64(lastEOL)
			return nil
		}
		lastEOL = eolLen(line)
	}
}

func (p *mimeParser) leafBody(part *Part, bounds []string) error {
	var lastEOL int
	var lines int64
	var head []byte
	// Audio and video parts are measured as they stream through: the first
	// bytes give the format, the decoded size the duration.
	measure := p.prober != nil && (part.Type == "audio" || part.Type == "video")
	var b64 int64 // base64 alphabet characters of the body
	var qp int64  // decoded bytes of a quoted-printable body
	var text *textCapture
	if part.Type == "text" && part.Disposition != "attachment" && p.inMessage == 0 {
		tc := &textCapture{encoding: part.Encoding, charset: part.Params["charset"], html: part.Subtype == "html"}
		switch {
		case part.Subtype == "plain" && p.plain == nil:
			p.plain, text = tc, tc
		case part.Subtype == "html" && p.html == nil:
			p.html, text = tc, tc
		}
	}
	atStart := true
	for {
		if atStart && !p.lineByLine && (text == nil || len(text.head) >= previewHeadBytes) &&
			!(measure && part.Encoding == "quoted-printable") {
			// Lines that cannot be delimiters, taken together: what the
			// loop below does for each line, done for all at once.
			if blk := p.bulkLines(); blk != nil {
				lines += int64(bytes.Count(blk, []byte("\n")))
				if !part.Binary && bytes.IndexByte(blk, 0) >= 0 {
					part.Binary = true
				}
				if measure {
					if need := probeHeadBytes - len(head); need > 0 {
						// Whole lines, as below: up to the end of
						// the line that reaches the limit.
						cut := len(blk)
						if need < len(blk) {
							cut = need + bytes.IndexByte(blk[need-1:], '\n')
						}
						head = append(head, blk[:cut]...)
					}
					if part.Encoding == "base64" {
						b64 += base64Chars(blk)
					}
				}
				lastEOL = eolLen(blk)
				continue
			}
		}
		line, off, err := p.readLine()
		if err == io.EOF {
			part.End = off
			break
		}
		if err != nil {
			return err
		}
		if atStart {
			if idx, _ := boundaryMatch(line, bounds); idx >= 0 {
				p.unread(line, off)
				part.End = off - int64(lastEOL)
				if part.End < part.Body {
					part.End = part.Body
				}
				if lastEOL > 0 && lines > 0 {
					lines-- // that line end belongs to the delimiter
				}
				break
			}
		}
		if eolLen(line) > 0 {
			lines++
		}
		if !part.Binary && bytes.IndexByte(line, 0) >= 0 {
			part.Binary = true
		}
		if text != nil && len(text.head) < previewHeadBytes {
			text.head = append(text.head, line...)
		}
		if measure {
			if len(head) < probeHeadBytes {
				head = append(head, line...)
			}
			switch part.Encoding {
			case "base64":
				b64 += base64Chars(line)
			case "quoted-printable":
				qp += qpDecodedLen(line)
			}
		}
		lastEOL = eolLen(line)
		atStart = lastEOL > 0
	}
	part.Lines = lines
	if measure {
		size := part.End - part.Body
		switch part.Encoding {
		case "base64":
			size = b64 * 6 / 8
		case "quoted-printable":
			size = qp
		}
		p.probe(part, head, size)
	}
	return nil
}

// base64Chars counts the characters of the base64 alphabet in line
// (padding, line breaks and stray characters carry no data).
func base64Chars(line []byte) int64 {
	// A table, not comparisons: with random data (audio) the branches
	// of a range test mispredict on every other byte, and this ran at
	// 8 ns a byte, the largest cost of a voicemail deposit. (Comparing
	// eight bytes at once in a word measured slower than the table.)
	var n0, n1, n2, n3 int
	for len(line) >= 4 {
		n0 += int(isBase64[line[0]])
		n1 += int(isBase64[line[1]])
		n2 += int(isBase64[line[2]])
		n3 += int(isBase64[line[3]])
		line = line[4:]
	}
	for _, c := range line {
		n0 += int(isBase64[c])
	}
	return int64(n0 + n1 + n2 + n3)
}

// isBase64 is 1 for the characters of the base64 alphabet.
var isBase64 = func() (t [256]uint8) {
	for c := range 256 {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			t[c] = 1
		}
	}
	return t
}()

// qpDecodedLen is the decoded size of one quoted-printable line (RFC 2045
// s6.7): "=XX" is one byte, a final "=" joins the next line, a line break
// is two.
func qpDecodedLen(line []byte) int64 {
	eol := eolLen(line)
	body := bytes.TrimRight(line[:len(line)-eol], " \t")
	var n int64
	soft := false
	for i := 0; i < len(body); i++ {
		if body[i] == '=' {
			if i == len(body)-1 {
				soft = true
				break
			}
			i += 2 // "=XX" is one byte
		}
		n++
	}
	if eol > 0 && !soft {
		n += 2
	}
	return n
}

// probe asks the prober for the duration of a part from its first bytes
// and its decoded size.
func (p *mimeParser) probe(part *Part, head []byte, size int64) {
	var data []byte
	switch part.Encoding {
	case "base64":
		clean := make([]byte, 0, len(head))
		for _, c := range head {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				clean = append(clean, c)
			}
		}
		clean = clean[:len(clean)/4*4]
		data = make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
		n, err := base64.StdEncoding.Decode(data, clean)
		if err != nil {
			return
		}
		data = data[:n]
	case "quoted-printable":
		d, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(head)))
		data = d
	default:
		data = head
	}
	if d, ok := p.prober(part.MediaType(), data, size); ok {
		part.Duration = d.Seconds()
		part.measured = true
	}
}

func envelopeOf(h textproto.Header) *Envelope {
	addrs := func(k string) []Address {
		v := h.Get(k)
		if v == "" {
			return nil
		}
		return ParseAddressList(v)
	}
	e := &Envelope{
		Date:      h.Get("Date"),
		Subject:   h.Get("Subject"),
		From:      addrs("From"),
		Sender:    addrs("Sender"),
		ReplyTo:   addrs("Reply-To"),
		To:        addrs("To"),
		Cc:        addrs("Cc"),
		Bcc:       addrs("Bcc"),
		InReplyTo: h.Get("In-Reply-To"),
		MessageID: h.Get("Message-Id"),
	}
	// RFC 9051 s7.5.2: sender and reply-to default to from.
	if e.Sender == nil {
		e.Sender = e.From
	}
	if e.ReplyTo == nil {
		e.ReplyTo = e.From
	}
	return e
}
