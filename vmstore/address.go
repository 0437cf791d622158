package vmstore

import (
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/text/encoding/htmlindex"
)

// An RFC 5322 s3.4 address-list parser that accepts the whole grammar,
// obsolete forms included (s4.4: obs-route, obs-local-part, obs-domain,
// obs-phrase, empty list elements, CFWS between any two tokens), and is
// lenient where the grammar is not met: text that does not parse becomes
// an address on a best-effort basis instead of being dropped, so that a
// message always has the addresses its sender wrote. net/mail refuses most
// of these forms and has no groups or source routes in its result.

// Group markers of an address list (RFC 9051 s7.5.2): a group is a start
// marker (the group name in Mailbox), its members, and an end marker.
const (
	GroupStart = 1
	GroupEnd   = 2
)

// MissingHost and MissingMailbox stand for the domain or local part an
// address was written without (as Dovecot writes them), so that it is not
// mistaken for a group marker (whose host is NIL).
const (
	MissingHost    = "MISSING_DOMAIN"
	MissingMailbox = "MISSING_MAILBOX"
)

// Limits: longer fields are cut, never refused.
const (
	maxAddrListBytes = 64 << 10
	maxAddrs         = 1000
)

// ParseAddressList parses an address-list (or mailbox-list) header value.
// Display names are kept as sent (RFC 2047 encoded words still encoded,
// quoting and comments removed), as the IMAP ENVELOPE returns them.
func ParseAddressList(s string) []Address {
	if len(s) > maxAddrListBytes {
		s = s[:maxAddrListBytes]
	}
	p := &addrParser{s: s}
	p.list()
	return p.out
}

type addrParser struct {
	s   string
	i   int
	out []Address
	// sawComment: the last cfws call read a comment (maybe an empty one).
	sawComment bool
	openGroup  bool // a group start was kept, its end not yet
}

// token is one lexical element of a phrase or local part.
type token struct {
	text   string
	quoted bool // a quoted-string (its content, unescaped)
	dot    bool // a "." (obs-phrase, local part separators)
	space  bool // CFWS came before it
}

func isAtext(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
		return true
	}
	return strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

// cfws skips white space and comments; it returns the text of the last
// comment seen, if any, and whether anything was skipped.
func (p *addrParser) cfws() (comment string, skipped bool) {
	p.sawComment = false
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			p.i++
			skipped = true
		case c == '(':
			comment = p.comment()
			skipped = true
			p.sawComment = true
		default:
			return comment, skipped
		}
	}
	return comment, skipped
}

// comment reads a (possibly nested) comment and returns its text with
// nested comments and quoted pairs resolved, white space collapsed. An
// unterminated comment runs to the end.
func (p *addrParser) comment() string {
	var b strings.Builder
	depth := 0
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '(':
			if depth > 0 {
				b.WriteByte(c)
			}
			depth++
		case ')':
			depth--
			if depth == 0 {
				return collapseWSP(b.String())
			}
			b.WriteByte(c)
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		default:
			b.WriteByte(c)
		}
	}
	return collapseWSP(b.String())
}

func collapseWSP(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// quoted reads a quoted-string after its opening quote and returns its
// content: quoted pairs resolved, folding removed.
func (p *addrParser) quoted() string {
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String()
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '\r', '\n':
			// Folding: the CRLF goes, the WSP after it stays.
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// words reads a run of atoms, quoted strings and dots: a phrase, a local
// part, or both until the character that tells which (<, :, @ ...). The
// last comment after the last word is returned as well.
func (p *addrParser) words() (toks []token, trailing string) {
	space := false
	for {
		com, sk := p.cfws()
		if sk {
			space = true
		}
		if p.i >= len(p.s) {
			return toks, com
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			toks = append(toks, token{text: p.quoted(), quoted: true, space: space && len(toks) > 0})
		case c == '.':
			p.i++
			toks = append(toks, token{text: ".", dot: true, space: space && len(toks) > 0})
		case isAtext(c):
			j := p.i
			for j < len(p.s) && isAtext(p.s[j]) {
				j++
			}
			toks = append(toks, token{text: p.s[p.i:j], space: space && len(toks) > 0})
			p.i = j
		default:
			return toks, com
		}
		space = false
	}
}

// phrase joins tokens as a display name, one space between words: a word
// is a quoted string or a run of atoms and dots not broken by CFWS ("Joe
// Q. Public", "A.B"), as Dovecot and c-client join them.
func phrase(toks []token) string {
	var b strings.Builder
	var prev *token
	for i := range toks {
		t := &toks[i]
		if t.quoted && t.text == "" {
			continue // an empty quoted string adds no word
		}
		if prev != nil && (t.space || t.quoted || prev.quoted) {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
		prev = t
	}
	return b.String()
}

// localPart joins tokens as a local part: CFWS around dots goes (obs-
// local-part); words separated by white space alone keep one space.
func localPart(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.space && !t.dot && !toks[i-1].dot {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// domain reads a domain after "@": a dot-atom, an obs-domain (atoms and
// dots with CFWS between) or a domain literal. It returns the last comment
// in or after it (Dovecot's rule for naming a bare addr-spec), and whether
// there was one.
func (p *addrParser) domain() (dom, com string, comSeen bool) {
	var b strings.Builder
	for {
		c1, _ := p.cfws()
		if p.sawComment {
			com, comSeen = c1, true
		}
		if p.i >= len(p.s) {
			break
		}
		c := p.s[p.i]
		if c == '[' {
			start := p.i
			p.i++
			for p.i < len(p.s) && p.s[p.i] != ']' {
				if p.s[p.i] == '\\' {
					p.i++
				}
				p.i++
			}
			if p.i < len(p.s) {
				p.i++
			} else {
				p.i = len(p.s)
			}
			lit := p.s[start:p.i]
			lit = strings.Map(func(r rune) rune {
				if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
					return -1
				}
				return r
			}, lit)
			b.WriteString(lit)
			continue
		}
		if c == '.' {
			b.WriteByte('.')
			p.i++
			continue
		}
		if !isAtext(c) {
			break
		}
		// Two atoms in a row without a dot end the domain (the next one
		// belongs to something else), unless the domain is still empty.
		if b.Len() > 0 && !strings.HasSuffix(b.String(), ".") {
			break
		}
		j := p.i
		for j < len(p.s) && isAtext(p.s[j]) {
			j++
		}
		b.WriteString(p.s[p.i:j])
		p.i = j
	}
	return strings.Trim(b.String(), "."), com, comSeen
}

// route reads an obs-route's domain list after "<", up to and including
// its ":", and returns it as "@a,@b". ok is false when there was none.
func (p *addrParser) route() (string, bool) {
	save := p.i
	var hops []string
	for {
		p.cfws()
		if p.i >= len(p.s) {
			break
		}
		switch p.s[p.i] {
		case ',':
			p.i++
			continue
		case '@':
			p.i++
			d, _, _ := p.domain()
			hops = append(hops, "@"+d)
			continue
		case ':':
			if len(hops) == 0 {
				break
			}
			p.i++
			return strings.Join(hops, ","), true
		}
		break
	}
	p.i = save
	return "", false
}

func (p *addrParser) emit(a Address) {
	if a.Group == 0 && a.Mailbox == "" {
		a.Mailbox = MissingMailbox
	}
	if a.Group == 0 && a.Host == "" {
		a.Host = MissingHost
	}
	switch {
	case a.Group == GroupEnd:
		// Only a group whose start was kept is closed, and it always is.
		if p.openGroup {
			p.out = append(p.out, a)
			p.openGroup = false
		}
	case len(p.out) < maxAddrs-1: // room for a group end
		p.out = append(p.out, a)
		if a.Group == GroupStart {
			p.openGroup = true
		}
	}
}

// list reads the whole address-list.
func (p *addrParser) list() {
	for p.i < len(p.s) {
		before := p.i
		p.element(false)
		p.cfws()
		if p.i < len(p.s) && (p.s[p.i] == ',' || p.s[p.i] == ';' || p.s[p.i] == '>') {
			// A stray ";" or ">" at the top level is skipped.
			p.i++
		}
		if p.i == before {
			p.i++ // never loop without progress
		}
	}
}

// element reads one address, group or empty element. It stops before the
// "," that ends it (or the ";" that ends the group it is in).
func (p *addrParser) element(inGroup bool) {
	toks, trailing := p.words()
	if p.i >= len(p.s) {
		p.bare(toks, trailing)
		return
	}
	switch p.s[p.i] {
	case '<':
		p.i++
		p.angle(phrase(toks))
	case ':':
		p.i++
		if inGroup {
			// Groups do not nest: keep what was read as an address and
			// go on with the members.
			p.bare(toks, "")
			return
		}
		p.group(phrase(toks))
	case '@':
		p.i++
		d, com, seen := p.domain()
		p.cfws()
		if p.i < len(p.s) && p.s[p.i] == '<' {
			// "user@host <addr>": the first part was a display name
			// written without quotes.
			p.i++
			p.angle(localPart(toks) + "@" + d)
			return
		}
		// Legacy "addr (Full Name)": the last comment of a bare addr-spec
		// names it (as Dovecot and c-client read it).
		if !seen {
			com = trailing
		}
		p.emit(Address{Name: com, Mailbox: localPart(toks), Host: d})
	default:
		// ",", ";", ">" or a character that starts nothing.
		p.bare(toks, trailing)
		if c := p.s[p.i]; c != ',' && c != ';' && c != '>' {
			p.i++ // skip it and go on
		}
	}
}

// bare keeps words that are not followed by "@" or "<": a mailbox without
// a domain (a local user name), or nothing when there were no words.
func (p *addrParser) bare(toks []token, comment string) {
	if len(toks) == 0 {
		return
	}
	p.emit(Address{Name: comment, Mailbox: localPart(toks)})
}

// angle reads an angle-addr after "<" (obs-route included) up to ">".
func (p *addrParser) angle(name string) {
	adl, _ := p.route()
	toks, _ := p.words()
	a := Address{Name: name, Adl: adl, Mailbox: localPart(toks)}
	if p.i < len(p.s) && p.s[p.i] == '@' {
		p.i++
		a.Host, _, _ = p.domain()
	}
	p.cfws()
	// Anything left before ">" is skipped (a second "@", stray text).
	for p.i < len(p.s) && p.s[p.i] != '>' && p.s[p.i] != ',' {
		p.i++
	}
	if p.i < len(p.s) && p.s[p.i] == '>' {
		p.i++
	}
	p.emit(a)
	// A legacy comment after the angle address carries no name; skip it.
	p.cfws()
}

// group reads a group's members after its ":" up to and including ";".
func (p *addrParser) group(name string) {
	p.emit(Address{Group: GroupStart, Mailbox: name})
	for p.i < len(p.s) {
		p.cfws()
		if p.i >= len(p.s) {
			break
		}
		if p.s[p.i] == ';' {
			p.i++
			break
		}
		if p.s[p.i] == ',' {
			p.i++
			continue
		}
		before := p.i
		p.element(true)
		if p.i == before {
			p.i++
		}
	}
	p.emit(Address{Group: GroupEnd})
}

// AddrSpec is mailbox@host (just the mailbox when the host is missing).
func (a *Address) AddrSpec() string {
	if a.Host == "" || a.Host == MissingHost {
		return a.Mailbox
	}
	if a.Mailbox == MissingMailbox {
		return "@" + a.Host
	}
	return a.Mailbox + "@" + a.Host
}

// wordDecoder decodes RFC 2047 encoded words in any charset a mail client
// labels them with (ISO-8859-x, windows-125x, KOI8, Shift_JIS, GB18030,
// Big5 ...), not only the UTF-8 and ISO-8859-1 the standard library knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("vmstore: unknown charset %q", charset)
	}
	return enc.NewDecoder().Reader(r), nil
}

// decodeWords decodes RFC 2047 encoded words; text that does not decode
// is returned as it is.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// DisplayName is the address's display name with encoded words decoded.
func (a *Address) DisplayName() string { return decodeWords(a.Name) }

// formatAddresses writes a list for humans and SEARCH: display names
// decoded, "Name <user@host>", groups as "name: members;".
func formatAddresses(l []Address) string {
	var b strings.Builder
	first := true
	for _, a := range l {
		switch a.Group {
		case GroupStart:
			if !first {
				b.WriteString(", ")
			}
			b.WriteString(decodeWords(a.Mailbox))
			b.WriteString(":")
			first = true
			continue
		case GroupEnd:
			b.WriteString(";")
			first = false
			continue
		}
		if !first {
			b.WriteString(",")
		}
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		first = false
		if n := a.DisplayName(); n != "" {
			b.WriteString(quotePhrase(n))
			b.WriteString(" <")
			b.WriteString(a.AddrSpec())
			b.WriteString(">")
		} else {
			b.WriteString(a.AddrSpec())
		}
	}
	return b.String()
}

// quotePhrase quotes a display name that is not a run of atoms, so that
// the formatted list parses back (net/mail included).
func quotePhrase(n string) string {
	if !strings.ContainsAny(n, "()<>[]:;@\\,.\"") {
		return n
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(n) + `"`
}

// sortAddr is RFC 5256 s3's addr-mailbox of the first address (the group
// name for a group) and RFC 5957's display form of it: the decoded
// display name, else the addr-spec (the group name for a group).
func sortAddr(l []Address) (mailbox, display string) {
	if len(l) == 0 {
		return "", ""
	}
	a := &l[0]
	if a.Group == GroupStart {
		// The start marker has no addr-name: RFC 5957 falls back to its
		// addr-mailbox, the group name as sent (Dovecot does the same).
		return a.Mailbox, a.Mailbox
	}
	if a.Group == GroupEnd {
		return "", ""
	}
	if n := strings.TrimSpace(a.DisplayName()); n != "" {
		return a.Mailbox, n
	}
	return a.Mailbox, a.AddrSpec()
}

// Limits of the thread keys kept per message.
const (
	maxRefs     = 100
	maxMsgIDLen = 250
)

// ParseMsgIDs returns the msg-ids of a Message-ID, In-Reply-To or
// References value, normalized as RFC 5256 s2.2 requires ("left@right",
// angle brackets, quoting, comments and folding removed, so that
// <"a b"@x> and <a b@x> are the same id). Phrases between ids (obs-in-
// reply-to) are skipped.
func ParseMsgIDs(s string) []string {
	if len(s) > maxAddrListBytes {
		s = s[:maxAddrListBytes]
	}
	p := &addrParser{s: s}
	var out []string
	for p.i < len(p.s) {
		p.cfws()
		if p.i >= len(p.s) {
			break
		}
		switch p.s[p.i] {
		case '<':
		case '"':
			p.i++
			p.quoted()
			continue
		default:
			p.i++
			continue
		}
		p.i++
		toks, _ := p.words()
		id := localPart(toks)
		if p.i < len(p.s) && p.s[p.i] == '@' {
			p.i++
			d, _, _ := p.domain()
			id += "@" + d
		}
		p.cfws()
		for p.i < len(p.s) && p.s[p.i] != '>' && p.s[p.i] != '<' {
			p.i++
		}
		if p.i < len(p.s) && p.s[p.i] == '>' {
			p.i++
		}
		if id != "" && id != "@" && len(id) <= maxMsgIDLen {
			out = append(out, id)
		}
	}
	return out
}

// ParseDate reads a Date header as RFC 5322 s3.3 and s4.3 write it,
// comments and the obsolete white space around the colons of the time
// included ("09(comment):   55  :  06"), which net/mail refuses.
func ParseDate(s string) (time.Time, bool) {
	if t, err := mail.ParseDate(s); err == nil {
		return t, true
	}
	if len(s) > 1000 {
		return time.Time{}, false
	}
	var b strings.Builder
	p := &addrParser{s: s}
	for p.i < len(p.s) {
		if _, skipped := p.cfws(); skipped {
			b.WriteByte(' ')
			continue
		}
		b.WriteByte(p.s[p.i])
		p.i++
	}
	clean := strings.Join(strings.Fields(b.String()), " ")
	clean = strings.ReplaceAll(strings.ReplaceAll(clean, " :", ":"), ": ", ":")
	if t, err := mail.ParseDate(clean); err == nil {
		return t, true
	}
	return time.Time{}, false
}
