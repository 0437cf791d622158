package wire

import (
	"bytes"
	"io"
	"testing"
)

var seedCommands = []string{
	"a1 LOGIN user pass\r\n",
	"a2 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))\r\n",
	"a3 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]<0.100>) (CHANGEDSINCE 12345 VANISHED)\r\n",
	"a4 APPEND INBOX (\\Seen $Forwarded) \"21-Nov-2026 10:00:00 +0000\" {5+}\r\nhello\r\n",
	"a5 APPEND INBOX ~{3}\r\n\x00\x01\x02\r\n",
	"a6 STORE 1,3:5 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Deleted)\r\n",
	"a7 SEARCH RETURN (MIN MAX SAVE) OR FROM \"x\" SUBJECT {3}\r\nabc\r\n",
	"a8 SETMETADATA INBOX (/private/comment {3+}\r\nabc)\r\n",
	"a9 NOTIFY SET (SELECTED (MessageNew (UID FLAGS) MessageExpunge)) (personal (MailboxName))\r\n",
	"b1 COPY $ Trash\r\n",
	"b2 LIST (SUBSCRIBED) \"\" (INBOX %) RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
}

func FuzzDecodeCommand(f *testing.F) {
	for _, s := range seedCommands {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		d.MaxLiteral = 1 << 16
		d.Continue = func() error { return nil }
		for i := 0; i < 100; i++ {
			_, _, _, err := parseAll(d)
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil && !IsSyntax(err) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
		}
	})
}

func FuzzDecodeSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:*", "$", "3,5:7,9:*", "4294967295", "*:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d := NewDecoder(bytes.NewReader(append([]byte(s), '\r', '\n')))
		if err := d.Begin(); err != nil {
			return
		}
		set, dollar, err := d.SeqSet()
		if err != nil {
			if !IsSyntax(err) {
				t.Fatalf("error type %T", err)
			}
			return
		}
		if dollar {
			return
		}
		// What we parsed prints back to something that parses the same.
		d2 := NewDecoder(bytes.NewReader([]byte(set.String() + "\r\n")))
		d2.Begin()
		set2, _, err := d2.SeqSet()
		if err != nil || set2.String() != set.String() {
			t.Fatalf("round trip %q -> %q: %v", set.String(), set2.String(), err)
		}
	})
}
