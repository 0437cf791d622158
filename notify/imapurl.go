package notify

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/lemonvox/lemonvox/channel"
)

// imapURL builds an RFC 5092 IMAP URL of a mailbox, or of one message when
// uid is non-zero: imap://<enc-user>@<host>/<enc-mailbox>;UIDVALIDITY=<n>[/;UID=<uid>].
// server is a host name, or host:port when the IMAP listener is not on 143.
func imapURL(user, server, mailbox string, uidValidity, uid uint32) string {
	u := channel.URL{User: user, Host: server, Mailbox: mailbox, UIDValidity: uidValidity, UID: uid}
	if h, p, err := net.SplitHostPort(server); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			u.Host, u.Port = h, n
		}
	}
	return u.String()
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
