package channel

import (
	"errors"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lemonvox/lemonvox/vmstore/message"
)

// MaxURLLen bounds the input Parse accepts, in octets.
const MaxURLLen = 8192

// DefaultPort is the IMAP port a URL without one means (RFC 5092 s1).
const DefaultPort = 143

// Range is the byte range of ;PARTIAL= (RFC 5092 s6): Length bytes from
// Offset, or to the end of the part when Length is 0.
type Range struct {
	Offset uint32
	Length uint32
}

// URL is an absolute IMAP URL (RFC 5092) in one of its three forms: a
// server (Mailbox empty), a mailbox or search (Mailbox set, UID 0), or a
// message or part (UID set), the last one possibly URLAUTH-authorized
// (RFC 4467). All text fields hold decoded values.
type URL struct {
	// User is the decoded enc-user: the authorization identity and the
	// mailbox naming scope (RFC 5092 s3.1); "" when absent.
	User string
	// AuthType is the ;AUTH= value: "*" or a SASL mechanism name, as
	// written; "" when absent.
	AuthType string
	// Host is a DNS name or IPv4 address as written, or an IPv6 address
	// without its brackets.
	Host string
	// Port is 0 when the URL names none (DefaultPort applies).
	Port int
	// Mailbox is the UTF-8 mailbox name (RFC 5092 s8); see
	// MailboxToMUTF7 for IMAP4rev1 sessions.
	Mailbox     string
	UIDValidity uint32
	// Search is the decoded IMAP search program of a mailbox URL.
	Search string
	UID    uint32
	// Section is the decoded IMAP section-spec ("1.2", "HEADER",
	// "2.MIME", "HEADER.FIELDS (From To)"); "" for the whole message.
	Section string
	// Partial is the ;PARTIAL= range, nil when absent.
	Partial *Range
	// Expire is the ;EXPIRE= time (zero when absent), with the offset the
	// URL gave it.
	Expire time.Time
	// Access is the ;URLAUTH= access identifier; AccessNone when absent.
	Access Access
	// Mechanism is the URLAUTH mechanism in upper case ("INTERNAL"), ""
	// for a rump URL.
	Mechanism string
	// Token is the authorization token in lower-case hex.
	Token string

	// rump holds the exact octets of a parsed URLAUTH URL up to and
	// including its access identifier: the token covers those octets
	// (RFC 4467 s3), so they must survive a round trip unchanged.
	// rumpCanon is the canonical rump of the fields at parse time: when
	// the fields change, rump no longer describes them and is not used.
	rump, rumpCanon string
}

// Parse parses an absolute IMAP URL:
//
//	imap://[enc-user][;AUTH=(*|enc-auth-type)]@host[:port]
//	    [/[enc-mailbox[;UIDVALIDITY=n][?enc-search]]]
//	imap://...host[:port]/enc-mailbox[;UIDVALIDITY=n]/;UID=n
//	    [/;SECTION=enc-section][/;PARTIAL=offset[.length]]
//	    [[;EXPIRE=date-time];URLAUTH=access[:mechanism:token]]
//
// The scheme, parameter names, access names and mechanism are
// case-insensitive (RFC 5092 s11); everything else follows the grammar
// strictly. Relative references fail with ErrRelativeURL (see ParseRef),
// other schemes with ErrNotIMAP, message components without ;UID= with
// ErrMissingUID, and every failure matches ErrBadURL.
//
// Beyond the grammar Parse requires: a non-empty host with no
// percent-encoding, a port in 1..65535, UTF-8 user and mailbox names
// without control characters, no unencoded "." or ".." mailbox levels
// (dot-segments, RFC 5092 s7), and an IMAP section-spec in ;SECTION=.
func Parse(s string) (*URL, error) {
	if len(s) > MaxURLLen {
		return nil, urlErr(ErrBadURL, MaxURLLen, "longer than "+strconv.Itoa(MaxURLLen)+" octets")
	}
	colon := schemeEnd(s)
	if colon < 0 {
		return nil, urlErr(ErrRelativeURL, 0, "relative reference; an absolute imap:// URL is required")
	}
	if !strings.EqualFold(s[:colon], "imap") {
		return nil, urlErr(ErrNotIMAP, 0, "scheme is not imap")
	}
	if !strings.HasPrefix(s[colon+1:], "//") {
		return nil, urlErr(ErrBadURL, colon+1, `"imap:" must be followed by "//"`)
	}
	p := parser{s: s, pos: colon + 3}
	u := &URL{}
	if err := p.authority(u); err != nil {
		return nil, err
	}
	if err := p.path(u); err != nil {
		return nil, err
	}
	return u, nil
}

// schemeEnd returns the index of the ":" that ends s's RFC 3986 scheme,
// or -1 when s does not start with one (a relative reference).
func schemeEnd(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return i
		default:
			return -1
		}
	}
	return -1
}

type parser struct {
	s   string
	pos int
}

func (p *parser) fail(sentinel error, off int, reason string) error {
	return urlErr(sentinel, off, reason)
}

// hasFold reports whether the input continues with prefix, ignoring case.
func (p *parser) hasFold(prefix string) bool {
	return len(p.s)-p.pos >= len(prefix) && strings.EqualFold(p.s[p.pos:p.pos+len(prefix)], prefix)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// authority parses iserver = [iuserinfo "@"] host [":" port].
func (p *parser) authority(u *URL) error {
	start := p.pos
	end := strings.IndexByte(p.s[start:], '/')
	if end < 0 {
		end = len(p.s)
	} else {
		end += start
	}
	auth := p.s[start:end]
	p.pos = end
	hostStart := start
	if at := strings.IndexByte(auth, '@'); at >= 0 {
		if err := parseUserinfo(u, auth[:at], start); err != nil {
			return err
		}
		auth = auth[at+1:]
		hostStart = start + at + 1
	}
	return parseHostPort(u, auth, hostStart)
}

// parseUserinfo parses iuserinfo = enc-user [iauth] / [enc-user] iauth,
// iauth = ";AUTH=" ( "*" / enc-auth-type ).
func parseUserinfo(u *URL, ui string, off int) error {
	encUser, auth, hasAuth := strings.Cut(ui, ";")
	if encUser == "" && !hasAuth {
		return urlErr(ErrBadURL, off, "empty userinfo before @")
	}
	if encUser != "" {
		user, bad, ok := unescape(encUser, classA)
		if !ok {
			return urlErr(ErrBadURL, off+bad, "invalid character in user name")
		}
		if reason := checkName(user, "user name"); reason != "" {
			return urlErr(ErrBadURL, off, reason)
		}
		u.User = user
	}
	if hasAuth {
		off += len(encUser)
		if !hasPrefixFold(";"+auth, ";AUTH=") {
			return urlErr(ErrBadURL, off, `only ";AUTH=" may follow the user name`)
		}
		v := auth[len("AUTH="):]
		if v == "*" {
			u.AuthType = "*"
			return nil
		}
		t, bad, ok := unescape(v, classA)
		if !ok {
			return urlErr(ErrBadURL, off+6+bad, "invalid character in ;AUTH=")
		}
		if !isSASLName(t) {
			return urlErr(ErrBadURL, off+6, ";AUTH= is neither * nor a SASL mechanism name")
		}
		u.AuthType = t
	}
	return nil
}

// isSASLName reports whether s is a SASL mechanism name (RFC 4422 s3.1:
// 1 to 20 of A-Z, 0-9, "-", "_"; IMAP compares auth-type case-insensitively).
func isSASLName(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkName returns why s is not acceptable as a user or mailbox name, or "".
func checkName(s, what string) string {
	if s == "" {
		return "empty " + what
	}
	if !utf8.ValidString(s) {
		return what + " is not UTF-8"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return what + " contains a control character"
		}
	}
	return ""
}

func isRegNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=", c) >= 0
}

// parseHostPort parses host [":" port] (RFC 3986 s3.2.2, s3.2.3).
func parseHostPort(u *URL, hp string, off int) error {
	var host, port string
	hasPort := false
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return urlErr(ErrBadURL, off, "unterminated IP literal")
		}
		lit := hp[1:end]
		if ip := net.ParseIP(lit); ip == nil || !strings.Contains(lit, ":") {
			return urlErr(ErrBadURL, off+1, "IP literal is not an IPv6 address")
		}
		host = lit
		rest := hp[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return urlErr(ErrBadURL, off+end+1, "junk after IP literal")
			}
			port, hasPort = rest[1:], true
		}
	} else {
		host, port, hasPort = strings.Cut(hp, ":")
		if host == "" {
			return urlErr(ErrBadURL, off, "empty host")
		}
		for i := 0; i < len(host); i++ {
			if !isRegNameChar(host[i]) {
				if host[i] == '%' {
					return urlErr(ErrBadURL, off+i, "percent-encoded host names are not supported")
				}
				return urlErr(ErrBadURL, off+i, "invalid character in host")
			}
		}
	}
	u.Host = host
	if hasPort && port != "" {
		poff := off + len(hp) - len(port)
		n := 0
		for i := 0; i < len(port); i++ {
			c := port[i]
			if c < '0' || c > '9' {
				return urlErr(ErrBadURL, poff+i, "port is not a number")
			}
			n = n*10 + int(c-'0')
			if n > 65535 {
				return urlErr(ErrBadURL, poff, "port out of range")
			}
		}
		if n == 0 {
			return urlErr(ErrBadURL, poff, "port 0")
		}
		u.Port = n
	}
	return nil
}

// path parses ipath-query = ["/" [icommand]].
func (p *parser) path(u *URL) error {
	if p.pos == len(p.s) {
		return nil
	}
	p.pos++ // the "/" that ended the authority
	if p.pos == len(p.s) {
		return nil
	}
	start := p.pos
	stop := strings.IndexAny(p.s[start:], ";?")
	if stop < 0 {
		stop = len(p.s)
	} else {
		stop += start
	}
	raw := p.s[start:stop]
	p.pos = stop
	lastIsSegment := true // the last level of raw stands alone (no ;UIDVALIDITY= glued to it)
	wantUID := false
	if p.pos < len(p.s) && p.s[p.pos] == ';' {
		switch {
		case p.hasFold(";UIDVALIDITY="):
			lastIsSegment = false
		case p.hasFold(";UID="):
			if !strings.HasSuffix(raw, "/") {
				return p.fail(ErrBadURL, p.pos, `";UID=" must follow "/"`)
			}
			raw = raw[:len(raw)-1]
			p.pos--
			wantUID = true
		case p.hasFold(";SECTION="), p.hasFold(";PARTIAL="), p.hasFold(";EXPIRE="), p.hasFold(";URLAUTH="):
			return p.fail(ErrMissingUID, p.pos, "message part component without ;UID=")
		default:
			return p.fail(ErrBadURL, p.pos, "unknown parameter after the mailbox name")
		}
	}
	if err := setMailbox(u, raw, start, lastIsSegment); err != nil {
		return err
	}
	if !lastIsSegment {
		p.pos += len(";UIDVALIDITY=")
		n, err := p.nzNumber("UIDVALIDITY")
		if err != nil {
			return err
		}
		u.UIDValidity = n
		switch {
		case p.pos == len(p.s), p.s[p.pos] == '?':
		case p.hasFold("/;UID="):
			wantUID = true
		case p.hasFold("/;SECTION="), p.hasFold("/;PARTIAL="), p.hasFold(";EXPIRE="), p.hasFold(";URLAUTH="):
			return p.fail(ErrMissingUID, p.pos, "message part component without ;UID=")
		default:
			return p.fail(ErrBadURL, p.pos, "unexpected text after ;UIDVALIDITY=")
		}
	}
	if !wantUID {
		if p.pos < len(p.s) { // "?" enc-search
			q := p.s[p.pos+1:]
			if q == "" {
				return p.fail(ErrBadURL, p.pos, "empty search program")
			}
			search, bad, ok := unescape(q, classB)
			if !ok {
				return p.fail(ErrBadURL, p.pos+1+bad, "invalid character in search program")
			}
			if strings.IndexByte(search, 0) >= 0 {
				return p.fail(ErrBadURL, p.pos+1, "NUL in search program")
			}
			u.Search = search
		}
		return nil
	}
	return p.messagePart(u)
}

// setMailbox decodes and checks enc-mailbox.
func setMailbox(u *URL, raw string, off int, lastIsSegment bool) error {
	if raw == "" {
		return urlErr(ErrBadURL, off, "empty mailbox name")
	}
	name, bad, ok := unescape(raw, classB)
	if !ok {
		return urlErr(ErrBadURL, off+bad, "invalid character in mailbox name")
	}
	if reason := checkName(name, "mailbox name"); reason != "" {
		return urlErr(ErrBadURL, off, reason)
	}
	segs := strings.Split(raw, "/")
	if !lastIsSegment {
		segs = segs[:len(segs)-1]
	}
	for _, s := range segs {
		if s == "." || s == ".." {
			return urlErr(ErrBadURL, off, `unencoded "." or ".." mailbox level (dot-segment)`)
		}
	}
	u.Mailbox = name
	return nil
}

// messagePart parses iuid [isection] [ipartial] [iurlauth]; p is at "/;UID=".
func (p *parser) messagePart(u *URL) error {
	p.pos += len("/;UID=")
	uid, err := p.nzNumber("UID")
	if err != nil {
		return err
	}
	u.UID = uid
	if p.hasFold("/;SECTION=") {
		p.pos += len("/;SECTION=")
		start := p.pos
		end := strings.IndexAny(p.s[start:], ";?")
		if end < 0 {
			end = len(p.s)
		} else {
			end += start
		}
		raw := p.s[start:end]
		p.pos = end
		if end < len(p.s) {
			switch {
			case p.s[end] == ';' && p.hasFold(";PARTIAL=") && strings.HasSuffix(raw, "/"):
				raw = raw[:len(raw)-1]
				p.pos--
			case p.hasFold(";EXPIRE="), p.hasFold(";URLAUTH="):
			default:
				return p.fail(ErrBadURL, end, "unexpected text after ;SECTION=")
			}
		}
		if raw == "" {
			return p.fail(ErrBadURL, start, "empty section")
		}
		sec, bad, ok := unescape(raw, classB)
		if !ok {
			return p.fail(ErrBadURL, start+bad, "invalid character in section")
		}
		if !validSection(sec) {
			return p.fail(ErrBadURL, start, "section is not an IMAP section-spec")
		}
		u.Section = sec
	}
	if p.hasFold("/;PARTIAL=") {
		p.pos += len("/;PARTIAL=")
		off, err := p.number("PARTIAL offset")
		if err != nil {
			return err
		}
		r := &Range{Offset: off}
		if p.pos < len(p.s) && p.s[p.pos] == '.' {
			p.pos++
			if r.Length, err = p.nzNumber("PARTIAL length"); err != nil {
				return err
			}
		}
		u.Partial = r
	}
	if p.pos == len(p.s) {
		return nil
	}
	if p.hasFold(";EXPIRE=") {
		p.pos += len(";EXPIRE=")
		end := strings.IndexByte(p.s[p.pos:], ';')
		if end < 0 {
			return p.fail(ErrBadURL, p.pos, ";EXPIRE= without ;URLAUTH=")
		}
		t, ok := parseDateTime(p.s[p.pos : p.pos+end])
		if !ok {
			return p.fail(ErrBadURL, p.pos, ";EXPIRE= is not an RFC 3339 date-time")
		}
		u.Expire = t
		p.pos += end
		if !p.hasFold(";URLAUTH=") {
			return p.fail(ErrBadURL, p.pos, ";EXPIRE= without ;URLAUTH=")
		}
	}
	if !p.hasFold(";URLAUTH=") {
		return p.fail(ErrBadURL, p.pos, "unexpected text after the message part")
	}
	p.pos += len(";URLAUTH=")
	end := strings.IndexByte(p.s[p.pos:], ':')
	if end < 0 {
		end = len(p.s)
	} else {
		end += p.pos
	}
	a, bad, reason := parseAccess(p.s[p.pos:end])
	if reason != "" {
		return p.fail(ErrBadAccess, p.pos+bad, reason)
	}
	u.Access = a
	u.rump = p.s[:end]
	p.pos = end
	if p.pos < len(p.s) { // ":" uauth-mechanism ":" enc-urlauth
		p.pos++
		mend := strings.IndexByte(p.s[p.pos:], ':')
		if mend <= 0 {
			return p.fail(ErrBadURL, p.pos, "URLAUTH mechanism missing")
		}
		mech := p.s[p.pos : p.pos+mend]
		for i := 0; i < len(mech); i++ {
			c := mech[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
				return p.fail(ErrBadURL, p.pos+i, "invalid character in URLAUTH mechanism")
			}
		}
		p.pos += mend + 1
		tok := p.s[p.pos:]
		if len(tok) < 32 {
			return p.fail(ErrBadURL, p.pos, "URLAUTH token shorter than 32 hex digits")
		}
		for i := 0; i < len(tok); i++ {
			if unhex(tok[i]) < 0 {
				return p.fail(ErrBadURL, p.pos+i, "URLAUTH token is not hex")
			}
		}
		u.Mechanism = strings.ToUpper(mech)
		u.Token = strings.ToLower(tok)
		p.pos = len(p.s)
	}
	u.rumpCanon = u.format()
	return nil
}

// nzNumber parses nz-number (RFC 9051: no leading zero, 1..4294967295).
func (p *parser) nzNumber(what string) (uint32, error) {
	if p.pos < len(p.s) && p.s[p.pos] == '0' {
		return 0, p.fail(ErrBadURL, p.pos, what+" is zero or has a leading zero")
	}
	return p.number(what)
}

// number parses number (1*DIGIT, at most 4294967295).
func (p *parser) number(what string) (uint32, error) {
	start := p.pos
	var n uint64
	for p.pos < len(p.s) && p.s[p.pos] >= '0' && p.s[p.pos] <= '9' {
		n = n*10 + uint64(p.s[p.pos]-'0')
		if n > math.MaxUint32 {
			return 0, p.fail(ErrBadURL, start, what+" out of range")
		}
		p.pos++
	}
	if p.pos == start {
		return 0, p.fail(ErrBadURL, start, what+" is not a number")
	}
	return uint32(n), nil
}

// parseDateTime parses an RFC 3339 s5.6 date-time; "T" and "Z" may be of
// either case (RFC 3339 s5.6 note).
func parseDateTime(s string) (time.Time, bool) {
	// 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm)
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(a, b int) int {
		n := 0
		for i := a; i < b; i++ {
			if s[i] < '0' || s[i] > '9' {
				return -1
			}
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec := num(11, 13), num(14, 16), num(17, 19)
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 60 {
		return time.Time{}, false
	}
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	rest := s[19:]
	nsec := 0
	if rest != "" && rest[0] == '.' {
		i := 1
		scale := 100000000
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			nsec += int(rest[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == 1 {
			return time.Time{}, false
		}
		rest = rest[i:]
	}
	var loc *time.Location
	switch {
	case rest == "Z" || rest == "z":
		loc = time.UTC
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, om := 0, 0
		for _, c := range []byte{rest[1], rest[2], rest[4], rest[5]} {
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
		}
		oh = int(rest[1]-'0')*10 + int(rest[2]-'0')
		om = int(rest[4]-'0')*10 + int(rest[5]-'0')
		if oh > 23 || om > 59 {
			return time.Time{}, false
		}
		off := (oh*60 + om) * 60
		if rest[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	default:
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc), true
}

// formatDateTime is the canonical RFC 3339 form of t: its own offset ("Z"
// for UTC), fractional seconds only when non-zero.
func formatDateTime(t time.Time) string {
	return t.Format("2006-01-02T15:04:05.999999999Z07:00")
}

// validSection reports whether s is an IMAP section-spec (RFC 9051 s9),
// parsed as FETCH parses it (vmstore/message).
func validSection(s string) bool {
	if s == "" {
		return false
	}
	_, err := message.Parse(s)
	return err == nil
}

// format writes the canonical form of u without its URLAUTH verifier
// (":mechanism:token"). For a message URL with an access identifier that
// is the rump.
func (u *URL) format() string {
	var b strings.Builder
	b.WriteString("imap://")
	if u.User != "" || u.AuthType != "" {
		b.WriteString(EscapeUser(u.User))
		if u.AuthType != "" {
			b.WriteString(";AUTH=")
			if u.AuthType == "*" {
				b.WriteByte('*')
			} else {
				b.WriteString(EscapeUser(u.AuthType))
			}
		}
		b.WriteByte('@')
	}
	if strings.Contains(u.Host, ":") {
		b.WriteByte('[')
		b.WriteString(u.Host)
		b.WriteByte(']')
	} else {
		b.WriteString(u.Host)
	}
	if u.Port != 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(u.Port))
	}
	b.WriteByte('/')
	if u.Mailbox == "" {
		return b.String()
	}
	b.WriteString(EscapeMailbox(u.Mailbox))
	if u.UIDValidity != 0 {
		b.WriteString(";UIDVALIDITY=")
		b.WriteString(strconv.FormatUint(uint64(u.UIDValidity), 10))
	}
	if u.UID == 0 {
		if u.Search != "" {
			b.WriteByte('?')
			b.WriteString(escape(u.Search, classB))
		}
		return b.String()
	}
	b.WriteString("/;UID=")
	b.WriteString(strconv.FormatUint(uint64(u.UID), 10))
	if u.Section != "" {
		b.WriteString("/;SECTION=")
		b.WriteString(escape(u.Section, classB))
	}
	if u.Partial != nil {
		b.WriteString("/;PARTIAL=")
		b.WriteString(strconv.FormatUint(uint64(u.Partial.Offset), 10))
		if u.Partial.Length != 0 {
			b.WriteByte('.')
			b.WriteString(strconv.FormatUint(uint64(u.Partial.Length), 10))
		}
	}
	if u.Access.Kind != AccessNone {
		if !u.Expire.IsZero() {
			b.WriteString(";EXPIRE=")
			b.WriteString(formatDateTime(u.Expire))
		}
		b.WriteString(";URLAUTH=")
		b.WriteString(u.Access.String())
	}
	return b.String()
}

// Rump returns the URL up to and including ";URLAUTH=<access>", the octets
// an authorization token covers (RFC 4467 s3; for a URL without access
// identifier, the whole URL). For a URL that Parse returned and whose
// fields were not changed since, these are the exact input octets (case
// and percent-encoding as the client wrote them), because the token was
// computed over them; otherwise the canonical form.
func (u *URL) Rump() string {
	c := u.format()
	if u.rump != "" && c == u.rumpCanon {
		return u.rump
	}
	return c
}

// String returns the URL in canonical form: lower-case scheme, upper-case
// parameter names, percent-encoding only where RFC 5092 s11 requires it,
// with upper-case hex, ";UID=" after "/", mechanism and token in lower
// case. A URL with an access identifier is Rump() followed by
// ":mechanism:token" when it has a token, so a parsed URLAUTH URL keeps the
// octets its token covers.
func (u *URL) String() string {
	if u.Access.Kind == AccessNone {
		return u.format()
	}
	r := u.Rump()
	if u.Mechanism == "" {
		return r
	}
	return r + ":" + strings.ToLower(u.Mechanism) + ":" + strings.ToLower(u.Token)
}

// Equal reports whether u and v have the same fields (Expire compared as
// instants; mechanism, token and application name case-insensitively).
func (u *URL) Equal(v *URL) bool {
	if u == nil || v == nil {
		return u == v
	}
	if (u.Partial == nil) != (v.Partial == nil) || u.Partial != nil && *u.Partial != *v.Partial {
		return false
	}
	return u.User == v.User && u.AuthType == v.AuthType && u.Host == v.Host && u.Port == v.Port &&
		u.Mailbox == v.Mailbox && u.UIDValidity == v.UIDValidity && u.Search == v.Search &&
		u.UID == v.UID && u.Section == v.Section && u.Expire.Equal(v.Expire) &&
		u.Access.Kind == v.Access.Kind && u.Access.User == v.Access.User &&
		strings.EqualFold(u.Access.Application, v.Access.Application) &&
		strings.EqualFold(u.Mechanism, v.Mechanism) && strings.EqualFold(u.Token, v.Token)
}

// Validate reports whether u's fields make a valid URL, by formatting and
// parsing it again: a field that the grammar cannot carry (an empty host,
// a section without UID, an expiry without access identifier, a token of
// less than 32 hex digits...) makes the result differ or fail to parse.
// Offsets in the error refer to String().
func (u *URL) Validate() error {
	v, err := Parse(u.String())
	if err != nil {
		return err
	}
	if !v.Equal(u) {
		return urlErr(ErrBadURL, 0, "fields that no URL can carry as given (component without its prerequisite, or a value out of range)")
	}
	return nil
}

// HostPort returns u's server as "host:port", with DefaultPort when the URL
// names none and brackets around an IPv6 address: the form to compare with
// the configured public name or to dial.
func (u *URL) HostPort() string {
	port := u.Port
	if port == 0 {
		port = DefaultPort
	}
	return net.JoinHostPort(u.Host, strconv.Itoa(port))
}

// IsMessagePart reports whether u names a message or a part of one.
func (u *URL) IsMessagePart() bool { return u.UID != 0 }

// Expired reports whether u carries an ;EXPIRE= time before now (RFC 5092
// s6.1.2: valid up to and including that time).
func (u *URL) Expired(now time.Time) bool {
	return !u.Expire.IsZero() && now.After(u.Expire)
}

// ParseRef resolves an IMAP URL reference against base, for the forms an
// absolute URL can be made from without path arithmetic: an absolute URL,
// a network-path reference ("//server/..."), or an absolute-path reference
// ("/INBOX;UIDVALIDITY=1/;UID=2", RFC 5092 s7.1, as CATENATE uses them),
// which takes the user, ;AUTH=, host and port of base. Relative-path and
// empty references fail with ErrRelativeURL (RFC 5092 s7.2 forbids
// accepting the former). A reference may not carry URLAUTH: its token
// covers the absolute URL's octets.
func ParseRef(base *URL, ref string) (*URL, error) {
	if schemeEnd(ref) >= 0 {
		return Parse(ref)
	}
	var prefix string
	switch {
	case strings.HasPrefix(ref, "//"):
		prefix = "imap:"
	case strings.HasPrefix(ref, "/"):
		if base == nil || base.Host == "" {
			return nil, urlErr(ErrRelativeURL, 0, "absolute-path reference without a base URL")
		}
		b := *base
		b.Mailbox, b.UID = "", 0
		prefix = strings.TrimSuffix(b.format(), "/")
	default:
		return nil, urlErr(ErrRelativeURL, 0, "relative-path reference (RFC 5092 s7.2)")
	}
	u, err := Parse(prefix + ref)
	if err != nil {
		var ue *URLError
		if errors.As(err, &ue) {
			e := *ue
			e.Offset = max(0, e.Offset-len(prefix))
			return nil, &e
		}
		return nil, err
	}
	if u.Access.Kind != AccessNone {
		return nil, urlErr(ErrRelativeURL, 0, "URLAUTH in a relative reference; an absolute URL is required")
	}
	return u, nil
}
