package channel

import "strings"

// Character classes of RFC 5092 s11:
//
//	sub-delims-sh = "!" / "$" / "'" / "(" / ")" / "*" / "+" / ","
//	uchar         = unreserved / sub-delims-sh / pct-encoded
//	achar         = uchar / "&" / "="          ; enc-user, enc-auth-type
//	bchar         = achar / ":" / "@" / "/"    ; enc-mailbox, enc-section, enc-search
//
// unreserved is RFC 3986's ALPHA / DIGIT / "-" / "." / "_" / "~".
type charClass uint8

const (
	classA charClass = 1 << iota // achar without pct-encoded
	classB                       // bchar without pct-encoded
)

var charClasses = func() (t [256]charClass) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' ||
			strings.IndexByte("-._~!$'()*+,&=", b) >= 0 {
			t[c] = classA | classB
		} else if strings.IndexByte(":@/", b) >= 0 {
			t[c] = classB
		}
	}
	return t
}()

const upperHex = "0123456789ABCDEF"

// escape percent-encodes every octet of s outside class, with upper-case
// hex digits (RFC 3986 s2.1 recommends them for consistency).
func escape(s string, class charClass) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if charClasses[s[i]]&class == 0 {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if charClasses[c]&class != 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// EscapeUser percent-encodes a user name (an IMAP authorization identity,
// UTF-8) as enc-user: every octet outside achar is encoded.
func EscapeUser(s string) string { return escape(s, classA) }

// EscapeMailbox percent-encodes a UTF-8 mailbox name as enc-mailbox
// (RFC 5092 s8: the URL carries UTF-8, percent-encoded). A leading "/" and
// the dots of "." and ".." hierarchy levels are encoded too, so that the
// name cannot be mistaken for a network-path reference or dot-segments
// (RFC 5092 s7, s7.1).
func EscapeMailbox(name string) string {
	e := escape(name, classB)
	if !strings.HasPrefix(e, "/") && !strings.Contains(e, ".") {
		return e
	}
	segs := strings.Split(e, "/")
	for i, s := range segs {
		if s == "." || s == ".." {
			segs[i] = strings.ReplaceAll(s, ".", "%2E")
		}
	}
	e = strings.Join(segs, "/")
	if strings.HasPrefix(e, "/") {
		e = "%2F" + e[1:]
	}
	return e
}

// unhex returns the value of a hex digit, or -1.
func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape decodes s, which must consist of octets of class and
// pct-encoded triplets only. It returns the decoded string, or the offset
// within s of the first offending octet and false.
func unescape(s string, class charClass) (string, int, bool) {
	pct := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			if i+2 >= len(s) || unhex(s[i+1]) < 0 || unhex(s[i+2]) < 0 {
				return "", i, false
			}
			pct = true
			i += 2
			continue
		}
		if charClasses[c]&class == 0 {
			return "", i, false
		}
	}
	if !pct {
		return s, 0, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			b = append(b, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return string(b), 0, true
}
