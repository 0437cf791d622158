package notify

import (
	"slices"
	"strconv"
	"strings"
)

// imapURL builds an RFC 5092 IMAP URL of a mailbox, or of one message when
// uid is non-zero: imap://<enc-user>@<host>/<enc-mailbox>;UIDVALIDITY=<n>[/;UID=<uid>].
func imapURL(user, host, mailbox string, uidValidity, uid uint32) string {
	var b strings.Builder
	b.WriteString("imap://")
	b.WriteString(escapeURL(user, false))
	b.WriteByte('@')
	b.WriteString(host)
	b.WriteByte('/')
	b.WriteString(escapeURL(mailbox, true))
	if uidValidity != 0 {
		b.WriteString(";UIDVALIDITY=")
		b.WriteString(strconv.FormatUint(uint64(uidValidity), 10))
	}
	if uid != 0 {
		b.WriteString("/;UID=")
		b.WriteString(strconv.FormatUint(uint64(uid), 10))
	}
	return b.String()
}

// escapeURL percent-encodes s per RFC 5092 s11: achar (unreserved,
// sub-delims-sh, "&", "=", "~") for a user; bchar (achar, ":", "@", "/")
// for a mailbox.
func escapeURL(s string, mailbox bool) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			strings.IndexByte("-._~!$'()*+,&=", c) >= 0:
			b.WriteByte(c)
		case mailbox && strings.IndexByte(":@/", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// uidSet formats UIDs in IMAP sequence-set syntax (RFC 9051 s9
// sequence-set), sorted with runs collapsed: "3:7,9".
func uidSet(uids []uint32) string {
	if len(uids) == 0 {
		return ""
	}
	u := slices.Clone(uids)
	slices.Sort(u)
	u = slices.Compact(u)
	var b strings.Builder
	for i := 0; i < len(u); {
		j := i
		for j+1 < len(u) && u[j+1] == u[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(u[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(u[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}
