package channel

import (
	"errors"
	"testing"
	"unicode/utf8"
)

func TestMUTF7(t *testing.T) {
	for _, c := range []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"~peter/mail/日本語/台北", "~peter/mail/&ZeVnLIqe-/&U,BTFw-"}, // RFC 3501 s5.1.3
		{"~peter/日本語/台北", "~peter/&ZeVnLIqe-/&U,BTFw-"},           // RFC 5092 s9
		{"Tom & Jerry", "Tom &- Jerry"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"&", "&-"},
		{"😀 voice", "&2D3eAA- voice"}, // a surrogate pair
		{"", ""},
	} {
		if got := MailboxToMUTF7(c.utf8); got != c.mutf7 {
			t.Errorf("MailboxToMUTF7(%q) = %q, want %q", c.utf8, got, c.mutf7)
		}
		if got, err := MailboxFromMUTF7(c.mutf7); err != nil || got != c.utf8 {
			t.Errorf("MailboxFromMUTF7(%q) = %q, %v; want %q", c.mutf7, got, err, c.utf8)
		}
	}
	for _, bad := range []string{
		"&ZeVnLIqe",   // unterminated shift
		"&AGE-",       // BASE64 for "a", which must stand for itself
		"&U,BTFx-",    // non-zero trailing bits
		"&ZQ-",        // odd octet count
		"&2D0-",       // lone high surrogate
		"&3gA-",       // lone low surrogate
		"a\x7fb",      // not printable
		"Entwürfe",    // 8-bit
		"&Ze/nLIqe-",  // "/" is not modified BASE64
		"&ZeVnLIqe=-", // padding
	} {
		if got, err := MailboxFromMUTF7(bad); !errors.Is(err, ErrMUTF7) {
			t.Errorf("MailboxFromMUTF7(%q) = %q, %v; want ErrMUTF7", bad, got, err)
		}
	}
}

// TestMUTF7URL converts the RFC 5092 s9 example both ways: URL -> UTF-8 ->
// the modified UTF-7 name an IMAP4rev1 SELECT uses, and back.
func TestMUTF7URL(t *testing.T) {
	u, err := Parse("imap://psicorp.example.org/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97")
	if err != nil {
		t.Fatal(err)
	}
	if got := MailboxToMUTF7(u.Mailbox); got != "~peter/&ZeVnLIqe-/&U,BTFw-" {
		t.Fatalf("SELECT name %q", got)
	}
	name, _ := MailboxFromMUTF7("~peter/&ZeVnLIqe-/&U,BTFw-")
	if got := (&URL{Host: "psicorp.example.org", Mailbox: name}).String(); got != "imap://psicorp.example.org/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97" {
		t.Fatalf("URL %q", got)
	}
}

func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "~peter/&ZeVnLIqe-/&U,BTFw-", "&-", "&2D3eAA-", "Entw&APw-rfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if dec, err := MailboxFromMUTF7(s); err == nil {
			if MailboxToMUTF7(dec) != s {
				// Two adjacent shifted runs decode fine but encode as one.
				if again, err := MailboxFromMUTF7(MailboxToMUTF7(dec)); err != nil || again != dec {
					t.Fatalf("%q -> %q -> %q", s, dec, MailboxToMUTF7(dec))
				}
			}
		}
		if utf8.ValidString(s) {
			if back, err := MailboxFromMUTF7(MailboxToMUTF7(s)); err != nil || back != s {
				t.Fatalf("UTF-8 %q -> %q -> %q, %v", s, MailboxToMUTF7(s), back, err)
			}
		}
	})
}
