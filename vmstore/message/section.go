// Package message turns "message, section" into bytes for every front end:
// the section-spec of RFC 9051 s6.4.5 (shared by IMAP FETCH, IMAP URLs,
// URLFETCH, CONVERT), resolution of a part path in the stored MIME
// structure, and the content of a section either as BODY[section] serves
// it (the presented form, vmstore/present.go) or as BINARY[section] serves
// it (RFC 3516: transfer encoding removed).
//
// It stands on vmstore and nothing else of ours; vmstore does not import it.
package message

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Errors. Front ends map them to protocol errors: IMAP answers BODY[] of a
// missing part with an empty string and BINARY[] of one with NO
// [NONEXISTENT]; ErrUnknownEncoding and ErrBadEncoding are NO [UNKNOWN-CTE].
var (
	// ErrSyntax: the text is not a section-spec.
	ErrSyntax = errors.New("message: bad section")
	// ErrNoSuchPart: the section names a part the message does not have.
	ErrNoSuchPart = errors.New("message: no such part")
	// ErrNotLeaf: a single-part body was asked for (DecodedLeaf) and the
	// section is a multipart or an encapsulated message.
	ErrNotLeaf = errors.New("message: not a leaf part")
	// ErrUnknownEncoding: decoding was asked for and the part's
	// Content-Transfer-Encoding is not one of RFC 2045's.
	ErrUnknownEncoding = errors.New("message: unknown content transfer encoding")
	// ErrBadEncoding: the content does not decode in its transfer encoding.
	ErrBadEncoding = errors.New("message: content does not decode")
)

// Section-text keywords (Section.Spec).
const (
	SpecHeader          = "HEADER"
	SpecHeaderFields    = "HEADER.FIELDS"
	SpecHeaderFieldsNot = "HEADER.FIELDS.NOT"
	SpecText            = "TEXT"
	SpecMIME            = "MIME"
)

// Section is an RFC 9051 s6.4.5 section-spec: a part path (empty for the
// whole message) and an optional section-text. The zero Section is the
// whole message (BODY[]).
type Section struct {
	// Path numbers parts from 1 (RFC 9051 s6.4.5 part numbering).
	Path []int
	// Spec is "", HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME.
	Spec string
	// Fields are the header field names of HEADER.FIELDS[.NOT], in upper
	// case; never empty for those specs.
	Fields []string
}

// PartOnly reports whether s is a BINARY section (RFC 3516): part numbers
// and no section-text.
func (s Section) PartOnly() bool { return s.Spec == "" }

// HeaderFields reports whether s is HEADER.FIELDS or HEADER.FIELDS.NOT.
func (s Section) HeaderFields() bool {
	return s.Spec == SpecHeaderFields || s.Spec == SpecHeaderFieldsNot
}

// Validate checks what a parser cannot tell from the tokens alone: the
// spec is known, MIME has a part number, a header list is not empty, part
// numbers are non-zero.
func (s Section) Validate() error {
	for _, n := range s.Path {
		if n < 1 || n > 1<<32-1 {
			return fmt.Errorf("%w: part number %d", ErrSyntax, n)
		}
	}
	switch s.Spec {
	case "", SpecHeader, SpecText:
	case SpecMIME:
		if len(s.Path) == 0 {
			return fmt.Errorf("%w: MIME needs a part number", ErrSyntax)
		}
	case SpecHeaderFields, SpecHeaderFieldsNot:
		if len(s.Fields) == 0 {
			return fmt.Errorf("%w: empty header list", ErrSyntax)
		}
	default:
		return fmt.Errorf("%w: %q", ErrSyntax, s.Spec)
	}
	if !s.HeaderFields() && len(s.Fields) > 0 {
		return fmt.Errorf("%w: header list after %s", ErrSyntax, s.Spec)
	}
	return nil
}

// String returns the section-spec as IMAP writes it in a response
// ("1.2.HEADER.FIELDS (FROM TO)"); "" for the whole message. A field name
// that is not an atom is written as a quoted string.
func (s Section) String() string {
	var b strings.Builder
	for i, n := range s.Path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(strconv.Itoa(n))
	}
	if s.Spec != "" {
		if len(s.Path) > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.Spec)
	}
	if len(s.Fields) > 0 {
		b.WriteString(" (")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteByte(' ')
			}
			if isAtom(f) {
				b.WriteString(f)
			} else {
				writeQuoted(&b, f)
			}
		}
		b.WriteString(")")
	}
	return b.String()
}

// Parse reads a section-spec from its text form, as it appears between
// the brackets of BODY[...] or, percent-decoded, in an IMAP URL's
// ;SECTION= (RFC 5092 s5):
//
//	section-spec    = section-msgtext / (section-part ["." section-text])
//	section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
//	section-part    = nz-number *("." nz-number)
//	section-text    = section-msgtext / "MIME"
//	header-list     = "(" header-fld-name *(SP header-fld-name) ")"
//
// Keywords are case-insensitive; field names are returned in upper case.
// Header field names are atoms or quoted strings (literals cannot appear
// in this form). "" is the whole message.
func Parse(s string) (Section, error) {
	var sec Section
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if s[i] == '0' {
			return Section{}, fmt.Errorf("%w: part number %q", ErrSyntax, s[i:j])
		}
		n, err := strconv.ParseUint(s[i:j], 10, 32)
		if err != nil {
			return Section{}, fmt.Errorf("%w: part number %q", ErrSyntax, s[i:j])
		}
		sec.Path = append(sec.Path, int(n))
		i = j
		if i == len(s) {
			return sec, nil
		}
		if s[i] != '.' {
			return Section{}, fmt.Errorf("%w: unexpected %q after part number", ErrSyntax, s[i])
		}
		i++
		if i == len(s) {
			return Section{}, fmt.Errorf("%w: trailing dot", ErrSyntax)
		}
	}
	rest := s[i:]
	kw, list, hasList := strings.Cut(rest, " ")
	sec.Spec = strings.ToUpper(kw)
	switch sec.Spec {
	case SpecHeader, SpecText, SpecMIME:
		if hasList {
			return Section{}, fmt.Errorf("%w: text after %s", ErrSyntax, sec.Spec)
		}
	case SpecHeaderFields, SpecHeaderFieldsNot:
		if !hasList {
			return Section{}, fmt.Errorf("%w: %s needs a header list", ErrSyntax, sec.Spec)
		}
		fields, err := parseHeaderList(list)
		if err != nil {
			return Section{}, err
		}
		sec.Fields = fields
	case "":
		if hasList {
			return Section{}, fmt.Errorf("%w: unexpected space", ErrSyntax)
		}
	default:
		return Section{}, fmt.Errorf("%w: unknown section-text %q", ErrSyntax, kw)
	}
	if err := sec.Validate(); err != nil {
		return Section{}, err
	}
	return sec, nil
}

// ParseBinary reads a BINARY section (RFC 3516 section-binary): part
// numbers only.
func ParseBinary(s string) (Section, error) {
	sec, err := Parse(s)
	if err != nil {
		return Section{}, err
	}
	if !sec.PartOnly() {
		return Section{}, fmt.Errorf("%w: BINARY section takes part numbers only", ErrSyntax)
	}
	return sec, nil
}

// parseHeaderList reads "(" astring *(SP astring) ")" where each astring
// is an atom or a quoted string.
func parseHeaderList(s string) ([]string, error) {
	if len(s) < 3 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, fmt.Errorf("%w: header list %q", ErrSyntax, s)
	}
	s = s[1 : len(s)-1]
	var out []string
	for {
		var name string
		n := 0
		if s != "" && s[0] == '"' {
			var b strings.Builder
			n = 1
			for n < len(s) && s[n] != '"' {
				c := s[n]
				if c == '\\' {
					n++
					if n == len(s) || (s[n] != '"' && s[n] != '\\') {
						return nil, fmt.Errorf("%w: bad quoted field name", ErrSyntax)
					}
					c = s[n]
				} else if c < 0x20 || c > 0x7e {
					return nil, fmt.Errorf("%w: bad character in field name", ErrSyntax)
				}
				b.WriteByte(c)
				n++
			}
			if n == len(s) || n == 1 {
				return nil, fmt.Errorf("%w: bad quoted field name", ErrSyntax)
			}
			n++
			name = b.String()
		} else {
			for n < len(s) && isAtomChar(s[n]) {
				n++
			}
			if n == 0 {
				return nil, fmt.Errorf("%w: empty field name", ErrSyntax)
			}
			name = s[:n]
		}
		out = append(out, strings.ToUpper(name))
		s = s[n:]
		if s == "" {
			return out, nil
		}
		if s[0] != ' ' {
			return nil, fmt.Errorf("%w: header list", ErrSyntax)
		}
		s = s[1:]
	}
}

// isAtomChar: a character of a header field name atom (printable, not a
// space, not an IMAP special, not the colon that ends a field name).
func isAtomChar(c byte) bool {
	return c > 0x20 && c < 0x7f && strings.IndexByte(`()"{%*\:`, c) < 0
}

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// writeQuoted writes s as an IMAP quoted string.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}
