package wire

import (
	"errors"

	"github.com/lemonvox/lemonvox/channel"
)

// Modified UTF-7 mailbox names (RFC 3501 s5.1.3), for IMAP4rev1 clients;
// IMAP4rev2 uses UTF-8 (RFC 9051 s5.1). The codec is channel's, which IMAP
// URLs need as well (RFC 5092 s8); these names keep the wire's vocabulary.

// ErrMUTF7 reports a name that is not valid modified UTF-7.
var ErrMUTF7 = errors.New("wire: invalid modified UTF-7")

// EncodeMUTF7 encodes a UTF-8 mailbox name.
func EncodeMUTF7(s string) string { return channel.MailboxToMUTF7(s) }

// DecodeMUTF7 decodes a modified UTF-7 mailbox name to UTF-8.
func DecodeMUTF7(s string) (string, error) {
	n, err := channel.MailboxFromMUTF7(s)
	if err != nil {
		return "", ErrMUTF7
	}
	return n, nil
}
