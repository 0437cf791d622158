package vmstore

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

func TestBase64Chars(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"", 0}, {"QUJD\r\n", 4}, {"QU=\n", 2}, {"Q U\tJ*D+/9==\r\n", 7}, {"\x00\xff-_.", 0}} {
		if got := base64Chars([]byte(c.in)); got != c.want {
			t.Errorf("base64Chars(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func BenchmarkBase64Chars(b *testing.B) {
	raw := make([]byte, 57)
	for i := range raw {
		raw[i] = byte(rand.IntN(256))
	}
	line := []byte(base64.StdEncoding.EncodeToString(raw) + "\r\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		base64Chars(line)
	}
}

func FuzzBase64Chars(f *testing.F) {
	f.Add([]byte("QUJD+/09azAZ==\r\n"))
	f.Add([]byte{0x80, 0xc1, 0xe1, 0xaf, 0xab, 'A', 'z', '0', '9', '/', '+', '@', '[', '`', '{', ':', '.', ',', '-'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var want int64
		for _, c := range b {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
				want++
			}
		}
		if got := base64Chars(b); got != want {
			t.Fatalf("base64Chars(%q) = %d, want %d", b, got, want)
		}
	})
}
