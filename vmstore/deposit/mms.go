package deposit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/textproto"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lemonvox/lemonvox/vmstore"
)

// MMS PDUs (OMA MMS Encapsulation, WAP-209/OMA-TS-MMS-ENC) are WSP binary
// encoded (WAP-230): a header of field code/value pairs ending with
// Content-Type, then the body, a WSP multipart of parts (content type,
// headers, data) for a multimedia message. RFC 4356 maps them to
// Internet mail: X-Mms-* header fields, the addresses and Subject as mail
// header fields, and the body as multipart/related with the SMIL
// presentation as its start part. mmsToMail does that mapping.

// mmsMediaType is the media type of an MMS PDU.
const mmsMediaType = "application/vnd.wap.mms-message"

// ErrBadMMS: the content announced itself as an MMS PDU but does not
// decode as one.
var ErrBadMMS = fmt.Errorf("%w: malformed MMS PDU", vmstore.ErrInvalid)

const (
	defaultMaxMMS = 8 << 20
	maxMMSParts   = 256
	maxMMSDepth   = 4
)

// MMS message types (X-Mms-Message-Type values).
var mmsMessageTypes = map[byte]string{
	0x80: "m-send-req", 0x81: "m-send-conf", 0x82: "m-notification-ind", 0x83: "m-notifyresp-ind",
	0x84: "m-retrieve-conf", 0x85: "m-acknowledge-ind", 0x86: "m-delivery-ind", 0x87: "m-read-rec-ind",
	0x88: "m-read-orig-ind", 0x89: "m-forward-req", 0x8A: "m-forward-conf",
}

// IsMMSPDU tells whether head starts like an MMS PDU that carries a
// message: X-Mms-Message-Type m-send-req or m-retrieve-conf (the PDUs with
// content), then a header field code.
func IsMMSPDU(head []byte) bool {
	return len(head) >= 3 && head[0] == 0x8C && (head[1] == 0x80 || head[1] == 0x84) && head[2] >= 0x80
}

// mmsToMail reads a bare PDU and maps it.
func mmsToMail(r io.Reader, o Options) ([]byte, error) {
	pdu, err := readLimited(r, o.MaxMMS)
	if err != nil {
		return nil, err
	}
	m, err := DecodeMMS(pdu)
	if err != nil {
		return nil, err
	}
	return m.Mail(mmsDomain(o)), nil
}

// mmsInMessageToMail maps a PDU carried as the body of a message (whose
// header h was peeked; r still holds the whole message).
func mmsInMessageToMail(r *bufio.Reader, h textproto.MIMEHeader, o Options) ([]byte, error) {
	tr := textproto.NewReader(r)
	if _, err := tr.ReadMIMEHeader(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMMS, err)
	}
	var body io.Reader = tr.R
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &lineSkipper{r: tr.R})
	case "quoted-printable":
		body = quotedprintable.NewReader(tr.R)
	}
	pdu, err := readLimited(body, o.MaxMMS)
	if err != nil {
		return nil, err
	}
	m, err := DecodeMMS(pdu)
	if err != nil {
		return nil, err
	}
	// What the outer header says and the PDU does not.
	for _, k := range []string{"Return-Path", "Received", "From", "To", "Cc", "Date", "Subject", "Message-Id"} {
		if len(m.header.Values(k)) == 0 {
			for _, v := range h.Values(k) {
				m.add(k, v)
			}
		}
	}
	return m.Mail(mmsDomain(o)), nil
}

func mmsDomain(o Options) string {
	if o.MMSDomain != "" {
		return o.MMSDomain
	}
	return "mms.invalid"
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = defaultMaxMMS
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMMS, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: MMS PDU of more than %d bytes", vmstore.ErrTooBig, limit)
	}
	return b, nil
}

// lineSkipper drops CR and LF (base64 bodies come in lines).
type lineSkipper struct{ r io.Reader }

func (l *lineSkipper) Read(p []byte) (int, error) {
	for {
		n, err := l.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// MMS is a decoded MMS PDU.
type MMS struct {
	// header holds the mapped header fields (mail names: From, To,
	// Subject, Date, Message-Id, X-Mms-*), in header order per field.
	header textproto.MIMEHeader
	fields [][2]string // name as written, value; in order
	// Type is the body's media type with its parameters.
	Type   string
	Params map[string]string
	// Parts of a multipart body; Body of a single-part one.
	Parts []MMSPart
	Body  []byte
}

// MMSPart is one part of an MMS body.
type MMSPart struct {
	Type   string
	Params map[string]string
	// Header holds the part's other header fields (Content-ID,
	// Content-Location, Content-Disposition...).
	Header textproto.MIMEHeader
	Data   []byte
	// Parts of a nested multipart.
	Parts []MMSPart
}

// Header returns the mapped header fields.
func (m *MMS) Header() textproto.MIMEHeader { return m.header }

func (m *MMS) add(k, v string) {
	m.header.Add(k, v)
	m.fields = append(m.fields, [2]string{k, v})
}

// DecodeMMS decodes a PDU. It never panics on bad input: anything that
// does not decode is ErrBadMMS.
func DecodeMMS(pdu []byte) (m *MMS, err error) {
	d := &wsp{b: pdu}
	m = &MMS{header: textproto.MIMEHeader{}}
	defer func() {
		if e := recover(); e != nil {
			if de, ok := e.(wspError); ok {
				m, err = nil, fmt.Errorf("%w: %s at byte %d", ErrBadMMS, string(de), d.i)
				return
			}
			panic(e)
		}
	}()
	if !IsMMSPDU(pdu) {
		d.fail("not an MMS PDU carrying a message")
	}
	for {
		if d.eof() {
			d.fail("no Content-Type")
		}
		code := d.byte()
		if code < 0x80 {
			// An application header: token text, then text value.
			d.i--
			name := d.text()
			val := d.text()
			if validFieldName(name) {
				m.add(name, sanitizeValue(val))
			}
			continue
		}
		if code&0x7f == 0x04 { // Content-Type: the last header field
			m.Type, m.Params = d.contentType()
			break
		}
		m.field(d, code&0x7f)
	}
	if strings.HasPrefix(m.Type, "multipart/") {
		m.Parts = d.multipart(0)
	} else {
		m.Body = d.rest()
	}
	return m, nil
}

// field decodes one well-known header field.
func (m *MMS) field(d *wsp, code byte) {
	yesNo := func() string {
		if d.byte() == 0x80 {
			return "Yes"
		}
		return "No"
	}
	switch code {
	case 0x01:
		m.add("Bcc", mmsAddress(d.encodedString()))
	case 0x02:
		m.add("Cc", mmsAddress(d.encodedString()))
	case 0x03:
		m.add("X-Mms-Content-Location", d.text())
	case 0x05:
		m.add("Date", time.Unix(int64(d.longInt()), 0).UTC().Format(time.RFC1123Z))
	case 0x06:
		m.add("X-Mms-Delivery-Report", yesNo())
	case 0x07, 0x08:
		name := map[byte]string{0x07: "X-Mms-Delivery-Time", 0x08: "X-Mms-Expiry"}[code]
		end := d.valueEnd()
		tok := d.byte()
		v := d.longInt()
		if tok == 0x80 {
			m.add(name, time.Unix(int64(v), 0).UTC().Format(time.RFC1123Z))
		} else {
			m.add(name, "+"+strconv.FormatUint(v, 10))
		}
		d.i = end
	case 0x09:
		end := d.valueEnd()
		if d.byte() == 0x80 {
			m.add("From", mmsAddress(d.encodedString()))
		} else {
			m.add("From", "#insert-address@"+"mms.invalid")
		}
		d.i = end
	case 0x0A:
		if b := d.peek(); b >= 0x80 {
			d.i++
			m.add("X-Mms-Message-Class", map[byte]string{0x80: "Personal", 0x81: "Advertisement", 0x82: "Informational", 0x83: "Auto"}[b])
		} else {
			m.add("X-Mms-Message-Class", d.text())
		}
	case 0x0B:
		m.add("Message-Id", "<"+strings.Trim(sanitizeValue(d.text()), "<>")+">")
	case 0x0C:
		m.add("X-Mms-Message-Type", mmsMessageTypes[d.byte()])
	case 0x0D:
		v := d.integer()
		m.add("X-Mms-MMS-Version", fmt.Sprintf("%d.%d", (v>>4)&0x7, v&0xf))
	case 0x0E:
		m.add("X-Mms-Message-Size", strconv.FormatUint(d.longInt(), 10))
	case 0x0F:
		m.add("X-Mms-Priority", map[byte]string{0x80: "Low", 0x81: "Normal", 0x82: "High"}[d.byte()])
	case 0x10:
		m.add("X-Mms-Read-Report", yesNo())
	case 0x11:
		m.add("X-Mms-Report-Allowed", yesNo())
	case 0x14:
		m.add("X-Mms-Sender-Visibility", map[byte]string{0x80: "Hide", 0x81: "Show"}[d.byte()])
	case 0x16:
		m.add("Subject", d.encodedString())
	case 0x17:
		m.add("To", mmsAddress(d.encodedString()))
	case 0x18:
		m.add("X-Mms-Transaction-Id", d.text())
	case 0x12, 0x15, 0x19, 0x1B, 0x1C, 0x1F, 0x20, 0x22, 0x23, 0x24:
		// Status-like single octets and flags (conf/ind PDUs).
		d.byte()
	default:
		// Another field: skip its value as the generic WSP forms allow.
		d.skipValue()
	}
}

// mmsAddress maps an MMS address to an RFC 5322 one (RFC 4356 s3.2): a
// phone number "+1555/TYPE=PLMN" keeps its form as a local part.
func mmsAddress(a string) string {
	a = sanitizeValue(a)
	if strings.Contains(a, "@") {
		return a
	}
	if a == "" {
		return ""
	}
	return a + "@mms.invalid"
}

// Mail renders the message as Internet mail (RFC 4356): the header fields
// (with domain for addresses of no domain), MIME-Version, Message-Context
// multimedia-message, and the body as multipart/related with the SMIL
// part as start, each part in base64 (text in quoted-printable).
func (m *MMS) Mail(domain string) []byte {
	var b bytes.Buffer
	fixAddr := func(v string) string {
		if strings.HasSuffix(v, "@mms.invalid") && domain != "mms.invalid" {
			return strings.TrimSuffix(v, "@mms.invalid") + "@" + domain
		}
		return v
	}
	if len(m.header["Date"]) == 0 {
		fmt.Fprintf(&b, "Date: %s\r\n", time.Now().UTC().Format(time.RFC1123Z))
	}
	for _, f := range m.fields {
		k, v := f[0], f[1]
		switch textproto.CanonicalMIMEHeaderKey(k) {
		case "From", "To", "Cc", "Bcc":
			v = fixAddr(v)
		case "Subject":
			v = encodeWord(v)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", k, sanitizeValue(v))
	}
	b.WriteString("MIME-Version: 1.0\r\nMessage-Context: multimedia-message\r\n")
	writePart(&b, MMSPart{Type: m.Type, Params: m.Params, Data: m.Body, Parts: m.Parts})
	b.WriteString("\r\n")
	return b.Bytes()
}

func hashParts(h hash.Hash, parts []MMSPart) {
	for _, c := range parts {
		h.Write(c.Data)
		hashParts(h, c.Parts)
	}
}

// writePart writes a part's header fields and body.
func writePart(b *bytes.Buffer, p MMSPart) {
	params := map[string]string{}
	for k, v := range p.Params {
		params[k] = v
	}
	typ := p.Type
	if typ == "" {
		typ = "application/octet-stream"
	}
	var boundary string
	if len(p.Parts) > 0 {
		// Derived from the content (the same PDU maps to the same
		// bytes); the content cannot hold the digest of itself.
		h := sha256.New()
		hashParts(h, p.Parts)
		boundary = "lemonvox-mms-" + hex.EncodeToString(h.Sum(nil)[:12])
		params["boundary"] = boundary
		if typ == "multipart/related" {
			if _, ok := params["type"]; !ok {
				for _, c := range p.Parts {
					if c.Type == "application/smil" {
						params["type"] = "application/smil"
					}
				}
			}
		}
	}
	ct := mime.FormatMediaType(typ, params)
	if ct == "" {
		ct = mime.FormatMediaType(typ, nil)
		if ct == "" {
			ct = "application/octet-stream"
		}
		if boundary != "" {
			ct += "; boundary=\"" + boundary + "\""
		}
	}
	fmt.Fprintf(b, "Content-Type: %s\r\n", ct)
	keys := make([]string, 0, len(p.Header))
	for k := range p.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range p.Header[k] {
			fmt.Fprintf(b, "%s: %s\r\n", k, sanitizeValue(v))
		}
	}
	if len(p.Parts) > 0 {
		b.WriteString("\r\n")
		// The CRLF before each delimiter belongs to the delimiter
		// (RFC 2046 s5.1.1): bodies are written without a last one.
		for _, c := range p.Parts {
			fmt.Fprintf(b, "--%s\r\n", boundary)
			writePart(b, c)
			b.WriteString("\r\n")
		}
		fmt.Fprintf(b, "--%s--", boundary)
		return
	}
	if strings.HasPrefix(typ, "text/") || typ == "application/smil" {
		b.WriteString("Content-Transfer-Encoding: quoted-printable\r\n\r\n")
		w := quotedprintable.NewWriter(b)
		w.Write(p.Data)
		w.Close()
		return
	}
	b.WriteString("Content-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(p.Data)
	for len(enc) > 76 {
		b.WriteString(enc[:76])
		b.WriteString("\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc)
}

// encodeWord encodes a non-ASCII header text (RFC 2047).
func encodeWord(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return mime.QEncoding.Encode("utf-8", s)
		}
	}
	return s
}

// sanitizeValue keeps a header value on one line, printable.
func sanitizeValue(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

func validFieldName(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// wsp decodes WSP binary values (WAP-230 s8.4).
type wsp struct {
	b []byte
	i int
}

type wspError string

func (d *wsp) fail(why string) { panic(wspError(why)) }
func (d *wsp) eof() bool       { return d.i >= len(d.b) }

func (d *wsp) byte() byte {
	if d.i >= len(d.b) {
		d.fail("truncated")
	}
	c := d.b[d.i]
	d.i++
	return c
}

func (d *wsp) peek() byte {
	if d.i >= len(d.b) {
		d.fail("truncated")
	}
	return d.b[d.i]
}

func (d *wsp) take(n int) []byte {
	if n < 0 || n > len(d.b)-d.i {
		d.fail("length past the end")
	}
	s := d.b[d.i : d.i+n]
	d.i += n
	return s
}

func (d *wsp) rest() []byte { return d.take(len(d.b) - d.i) }

// uintvar: 7 bits an octet, most significant first, at most 5 octets.
func (d *wsp) uintvar() int {
	v := 0
	for k := 0; k < 5; k++ {
		c := d.byte()
		v = v<<7 | int(c&0x7f)
		if c&0x80 == 0 {
			if v > 1<<30 {
				d.fail("uintvar too large")
			}
			return v
		}
	}
	d.fail("uintvar too long")
	return 0
}

// valueLength reads a Value-length and returns where the value ends.
func (d *wsp) valueEnd() int {
	c := d.byte()
	var n int
	switch {
	case c <= 30:
		n = int(c)
	case c == 31:
		n = d.uintvar()
	default:
		d.fail("value length expected")
	}
	if n > len(d.b)-d.i {
		d.fail("value length past the end")
	}
	return d.i + n
}

// longInt: Short-length then that many octets, big-endian (at most 8).
func (d *wsp) longInt() uint64 {
	n := int(d.byte())
	if n > 8 {
		d.fail("long integer too long")
	}
	var v uint64
	for _, c := range d.take(n) {
		v = v<<8 | uint64(c)
	}
	return v
}

// integer: Short-integer or Long-integer.
func (d *wsp) integer() uint64 {
	if c := d.peek(); c >= 0x80 {
		d.i++
		return uint64(c & 0x7f)
	}
	return d.longInt()
}

// text: Text-string (an optional 127 quote, then octets up to NUL).
func (d *wsp) text() string {
	if d.peek() == 127 || d.peek() == '"' {
		d.i++
	}
	j := bytes.IndexByte(d.b[d.i:], 0)
	if j < 0 {
		d.fail("unterminated text")
	}
	s := string(d.b[d.i : d.i+j])
	d.i += j + 1
	return s
}

// encodedString: Text-string, or Value-length Char-set Text-string.
func (d *wsp) encodedString() string {
	c := d.peek()
	if c > 31 {
		return d.text()
	}
	end := d.valueEnd()
	charset := d.integer()
	if d.i >= end {
		d.fail("encoded string without text")
	}
	s := d.text()
	d.i = end
	return decodeCharset(s, charset)
}

// decodeCharset turns text of an IANA MIBenum charset into UTF-8 (UTF-8,
// ASCII and Latin-1; others are kept when valid UTF-8).
func decodeCharset(s string, mib uint64) string {
	switch mib {
	case 4: // ISO-8859-1
		r := make([]rune, 0, len(s))
		for i := 0; i < len(s); i++ {
			r = append(r, rune(s[i]))
		}
		return string(r)
	case 1015: // UTF-16 with BOM: rare in MMS; not decoded
		return ""
	}
	return strings.ToValidUTF8(s, "?")
}

// skipValue skips a value of an unknown field: a short integer, a
// value-length and its value, or a text.
func (d *wsp) skipValue() {
	c := d.peek()
	switch {
	case c >= 0x80:
		d.i++
	case c <= 31:
		d.i = d.valueEnd()
	default:
		d.text()
	}
}

// Well-known media types (WAP-230 Table 40, the ones MMS uses).
var wspMediaTypes = map[byte]string{
	0x00: "*/*", 0x01: "text/*", 0x02: "text/html", 0x03: "text/plain", 0x06: "text/x-vcalendar",
	0x07: "text/x-vcard", 0x08: "text/vnd.wap.wml", 0x0B: "multipart/*", 0x0C: "multipart/mixed",
	0x0D: "multipart/form-data", 0x0F: "multipart/alternative", 0x10: "application/*",
	0x1C: "image/*", 0x1D: "image/gif", 0x1E: "image/jpeg", 0x1F: "image/tiff", 0x20: "image/png",
	0x21: "image/vnd.wap.wbmp", 0x22: "multipart/*", 0x23: "multipart/mixed",
	0x24: "multipart/form-data", 0x26: "multipart/alternative", 0x27: "application/xml",
	0x28: "text/xml", 0x33: "multipart/related", 0x3E: mmsMediaType,
}

// Well-known parameters (WAP-230 Table 38): code -> name.
var wspParams = map[byte]string{
	0x01: "charset", 0x03: "type", 0x05: "name", 0x06: "filename", 0x09: "type", 0x0A: "start",
	0x0B: "start-info", 0x17: "name", 0x18: "filename", 0x19: "start", 0x1A: "start-info",
}

// Charsets (IANA MIBenum) by number.
var wspCharsets = map[uint64]string{3: "us-ascii", 4: "iso-8859-1", 106: "utf-8", 1000: "iso-10646-ucs-2",
	1015: "utf-16", 2026: "big5", 17: "shift_jis", 2025: "gb2312"}

// contentType: Constrained-media or Content-general-form. The WAP
// multipart types map to their MIME names.
func (d *wsp) contentType() (string, map[string]string) {
	params := map[string]string{}
	c := d.peek()
	if c >= 0x80 {
		d.i++
		return mediaName(wspMediaTypes[c&0x7f]), params
	}
	if c > 31 {
		return mediaName(strings.ToLower(d.text())), params
	}
	end := d.valueEnd()
	var typ string
	if d.peek() >= 0x80 {
		typ = wspMediaTypes[d.byte()&0x7f]
	} else if d.peek() <= 31 { // Well-known-media as a long integer
		typ = wspMediaTypes[byte(d.longInt())]
	} else {
		typ = strings.ToLower(d.text())
	}
	for d.i < end {
		pc := d.peek()
		if pc >= 0x80 {
			d.i++
			name := wspParams[pc&0x7f]
			var val string
			switch pc & 0x7f {
			case 0x01:
				if d.peek() >= 0x80 || d.peek() <= 30 {
					n := d.integer()
					val = wspCharsets[n]
					if val == "" {
						val = "mib" + strconv.FormatUint(n, 10)
					}
				} else {
					val = d.text()
				}
			case 0x03:
				if d.peek() >= 0x80 || d.peek() <= 30 {
					val = strconv.FormatUint(d.integer(), 10)
				} else {
					val = d.text()
				}
			default:
				if d.peek() >= 0x80 || d.peek() <= 30 {
					d.skipValue()
				} else {
					val = d.text()
				}
			}
			if name != "" && val != "" {
				params[name] = sanitizeValue(val)
			}
			continue
		}
		// Untyped: Token-text, then Integer-value or Text-value.
		name := strings.ToLower(d.text())
		var val string
		if d.i < end && (d.peek() >= 0x80 || d.peek() <= 30) {
			val = strconv.FormatUint(d.integer(), 10)
		} else if d.i < end {
			val = d.text()
		}
		if validFieldName(name) {
			params[name] = sanitizeValue(val)
		}
	}
	if d.i != end {
		d.fail("content type parameters overrun")
	}
	if typ == "" {
		typ = "application/octet-stream"
	}
	return mediaName(typ), params
}

// mediaName maps WAP media type names to their MIME counterparts.
func mediaName(t string) string {
	switch t {
	case "application/vnd.wap.multipart.related":
		return "multipart/related"
	case "application/vnd.wap.multipart.mixed":
		return "multipart/mixed"
	case "application/vnd.wap.multipart.alternative":
		return "multipart/alternative"
	case "", "*/*":
		return "application/octet-stream"
	}
	if i := strings.IndexByte(t, '/'); i <= 0 || i == len(t)-1 || strings.ContainsAny(t, " ;\"\\") {
		return "application/octet-stream"
	}
	return t
}

// Part header fields (WSP well-known field names, Table 39).
var wspPartFields = map[byte]string{
	0x0E: "Content-Location", 0x2E: "Content-Disposition", 0x40: "Content-ID", 0x45: "Content-Disposition",
	0x0B: "Content-Encoding", 0x0C: "Content-Language",
}

// multipart decodes a WSP multipart body (WAP-230 s8.5).
func (d *wsp) multipart(depth int) []MMSPart {
	if depth >= maxMMSDepth {
		d.fail("multipart nested too deep")
	}
	n := d.uintvar()
	if n > maxMMSParts {
		d.fail("too many parts")
	}
	parts := make([]MMSPart, 0, n)
	for k := 0; k < n; k++ {
		hlen := d.uintvar()
		dlen := d.uintvar()
		hdrEnd := d.i + hlen
		if hlen < 1 || hlen > len(d.b)-d.i {
			d.fail("part headers past the end")
		}
		hd := &wsp{b: d.b[:hdrEnd], i: d.i}
		p := MMSPart{Header: textproto.MIMEHeader{}}
		p.Type, p.Params = hd.contentType()
		for hd.i < hdrEnd {
			c := hd.peek()
			if c >= 0x80 {
				hd.i++
				name := wspPartFields[c&0x7f]
				var val string
				switch {
				case c&0x7f == 0x2E || c&0x7f == 0x45: // Content-Disposition
					end := hd.valueEnd()
					disp := map[byte]string{0x80: "form-data", 0x81: "attachment", 0x82: "inline"}[hd.byte()]
					if disp == "" {
						disp = "attachment"
					}
					val = disp
					for hd.i < end {
						pc := hd.peek()
						if pc >= 0x80 {
							hd.i++
							if nm := wspParams[pc&0x7f]; nm == "filename" || nm == "name" {
								val += fmt.Sprintf("; filename=%q", sanitizeValue(hd.text()))
								continue
							}
						}
						hd.skipValue()
					}
					hd.i = end
				case hd.peek() >= 0x80 || hd.peek() <= 31:
					hd.skipValue()
				default:
					val = hd.text()
				}
				if name != "" && val != "" {
					if name == "Content-ID" {
						val = "<" + strings.Trim(val, "<>") + ">"
					}
					p.Header.Add(name, sanitizeValue(val))
				}
				continue
			}
			name := hd.text()
			val := ""
			if hd.i < hdrEnd {
				if hd.peek() >= 0x80 || hd.peek() <= 31 {
					hd.skipValue()
				} else {
					val = hd.text()
				}
			}
			if validFieldName(name) && val != "" && !strings.EqualFold(name, "Content-Type") &&
				!strings.EqualFold(name, "Content-Transfer-Encoding") {
				p.Header.Add(name, sanitizeValue(val))
			}
		}
		d.i = hdrEnd
		data := d.take(dlen)
		if strings.HasPrefix(p.Type, "multipart/") {
			sub := &wsp{b: data}
			p.Parts = sub.multipart(depth + 1)
		} else {
			p.Data = data
		}
		parts = append(parts, p)
	}
	return parts
}
