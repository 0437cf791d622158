package wire

import "testing"

func TestMUTF7(t *testing.T) {
	for _, tc := range []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"},
		{"a&b", "a&-b"},
		{"Entwürfe", "Entw&APw-rfe"},
		{"台北/日本語", "&U,BTFw-/&ZeVnLIqe-"},
		{"~peter/mail/日本語/台北", "~peter/mail/&ZeVnLIqe-/&U,BTFw-"},
	} {
		if got := EncodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("encode %q: %q want %q", tc.utf8, got, tc.mutf7)
		}
		if got, err := DecodeMUTF7(tc.mutf7); err != nil || got != tc.utf8 {
			t.Errorf("decode %q: %q %v", tc.mutf7, got, err)
		}
	}
	for _, bad := range []string{"&", "&AGE", "&AGE-", "\x01", "&ZeVnLIqe"} {
		if _, err := DecodeMUTF7(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzMUTF7(f *testing.F) {
	f.Add("Entwürfe/台北&x")
	f.Fuzz(func(t *testing.T, s string) {
		if !validUTF8NoCtl(s) {
			return
		}
		got, err := DecodeMUTF7(EncodeMUTF7(s))
		if err != nil || got != s {
			t.Fatalf("%q -> %q -> %q %v", s, EncodeMUTF7(s), got, err)
		}
	})
}

func validUTF8NoCtl(s string) bool {
	for _, r := range s {
		if r == 0xfffd || r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
