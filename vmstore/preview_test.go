package vmstore

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPreviewStoredBefore: a message whose structure has no preview (one
// stored before previews were kept) gets none with lazy, and one computed
// from its content otherwise, which is then cached for lazy requests.
func TestPreviewStoredBefore(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "u")
	res, err := s.Deposit(DepositReq{User: "u", Body: strings.NewReader("Subject: x\r\n\r\n  old\r\n message\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	m := &res.Message
	root, err := s.Structure(m)
	if err != nil || root.Preview == nil || *root.Preview != "old message" {
		t.Fatalf("stored preview: %v %v", root.Preview, err)
	}
	old := *root
	old.Preview = nil
	if p, ok, err := s.Preview(m, &old, true); ok || p != "" || err != nil {
		t.Fatalf("lazy, not computed: %q %v %v", p, ok, err)
	}
	if p, ok, err := s.Preview(m, &old, false); !ok || p != "old message" || err != nil {
		t.Fatalf("computed: %q %v %v", p, ok, err)
	}
	if p, ok, _ := s.Preview(m, &old, true); !ok || p != "old message" {
		t.Fatalf("lazy, cached: %q %v", p, ok)
	}
}

// FuzzPreview: any message gets a preview of valid UTF-8, at most 256
// characters, without control characters or runs of spaces.
func FuzzPreview(f *testing.F) {
	f.Add([]byte("Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: base64\r\n\r\n8cXS\r\n"))
	f.Add([]byte("Content-Type: text/html\r\n\r\n<p>a&amp;b<script>x</script>\x00\xff</p>"))
	f.Add([]byte("Message-Context: voice-message\r\nFrom: =?utf-8?q?J=C3=B6rg?= <1@x>\r\nContent-Duration: 4000\r\nDate: bogus\r\n\r\nhi"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pm, err := parseMessage(strings.NewReader(string(data)), nil)
		if err != nil {
			t.Fatal(err)
		}
		p := *pm.root.Preview
		if !utf8.ValidString(p) || utf8.RuneCountInString(p) > PreviewChars || strings.Contains(p, "  ") || strings.ContainsAny(p, "\r\n\t\x00") {
			t.Fatalf("bad preview %q", p)
		}
	})
}
