package channel

import (
	"encoding/base64"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Mailbox names in URLs are UTF-8 (RFC 5092 s8, as in IMAP4rev2); an
// IMAP4rev1 session names the same mailbox in modified UTF-7 (RFC 3501
// s5.1.3). These two functions convert between the forms. channel keeps its
// own small codec instead of importing a front end's.

// mbase64 is modified BASE64: "," instead of "/", no padding. Strict makes
// the decoder refuse non-zero trailing bits, so each name has one spelling.
var mbase64 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").
	WithPadding(base64.NoPadding).Strict()

// MailboxToMUTF7 returns the modified UTF-7 form of a UTF-8 mailbox name:
// printable US-ASCII but "&" stands for itself, "&" is "&-", every other
// run of characters is UTF-16BE in modified BASE64 between "&" and "-".
// Invalid UTF-8 octets are encoded as U+FFFD.
func MailboxToMUTF7(name string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		raw := make([]byte, 0, 2*len(run))
		for _, u := range run {
			raw = append(raw, byte(u>>8), byte(u))
		}
		b.WriteByte('&')
		b.WriteString(mbase64.EncodeToString(raw))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range name {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteByte(byte(r))
			}
			continue
		}
		run = utf16.AppendRune(run, r)
	}
	flush()
	return b.String()
}

// MailboxFromMUTF7 decodes a modified UTF-7 mailbox name to UTF-8. It
// refuses, with ErrMUTF7, octets outside printable US-ASCII, an
// unterminated shift, BASE64 that encodes printable US-ASCII (which must
// stand for itself), odd-length or non-canonical BASE64, and unpaired
// UTF-16 surrogates.
func MailboxFromMUTF7(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", ErrMUTF7
		}
		if c != '&' {
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+1:], '-')
		if end < 0 {
			return "", ErrMUTF7
		}
		enc := s[i+1 : i+1+end]
		i += end + 1
		if enc == "" {
			b.WriteByte('&')
			continue
		}
		raw, err := mbase64.DecodeString(enc)
		if err != nil || len(raw)%2 != 0 {
			return "", ErrMUTF7
		}
		units := make([]uint16, len(raw)/2)
		for k := range units {
			units[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for k := 0; k < len(units); k++ {
			u := units[k]
			var r rune
			switch {
			case utf16.IsSurrogate(rune(u)):
				if u >= 0xdc00 || k+1 == len(units) {
					return "", ErrMUTF7
				}
				r = utf16.DecodeRune(rune(u), rune(units[k+1]))
				if r == utf8.RuneError {
					return "", ErrMUTF7
				}
				k++
			default:
				r = rune(u)
			}
			if r >= 0x20 && r <= 0x7e {
				return "", ErrMUTF7
			}
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}
