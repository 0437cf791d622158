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
