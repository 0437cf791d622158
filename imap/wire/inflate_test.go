package wire

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

func inflateAll(t testing.TB, data []byte) ([]byte, error) {
	f := NewInflater(bytes.NewReader(data))
	defer f.Close()
	return io.ReadAll(f)
}

func TestInflateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 100, 70000, 300000} {
		for _, level := range []int{flate.NoCompression, flate.BestSpeed, flate.DefaultCompression, flate.HuffmanOnly} {
			src := make([]byte, size)
			for i := range src {
				if i%7 == 0 {
					src[i] = byte(rng.IntN(256))
				} else {
					src[i] = "voicemail "[i%10]
				}
			}
			var buf bytes.Buffer
			w, _ := flate.NewWriter(&buf, level)
			w.Write(src[:size/2])
			w.Flush()
			w.Write(src[size/2:])
			w.Close()
			got, err := inflateAll(t, buf.Bytes())
			if err != nil || !bytes.Equal(got, src) {
				t.Fatalf("size %d level %d: %v (got %d octets)", size, level, err, len(got))
			}
		}
	}
}

// TestInflatePartialFlush: output must come out while the stream is still
// open, without a stored block (what Z_PARTIAL_FLUSH produces; these octets
// are zlib's output for "3 NAMESPACE\r\n" with Z_PARTIAL_FLUSH).
func TestInflatePartialFlush(t *testing.T) {
	data := []byte{0x32, 0x56, 0xf0, 0x73, 0xf4, 0x75, 0x0d, 0x0e, 0x70, 0x74, 0x76, 0xe5, 0xe5, 0x02, 0x08}
	pr, pw := io.Pipe()
	go pw.Write(data)
	f := NewInflater(pr)
	defer pw.Close()
	got := make(chan string, 1)
	go func() {
		b := make([]byte, 100)
		n, _ := io.ReadAtLeast(f, b, 13)
		got <- string(b[:n])
	}()
	select {
	case s := <-got:
		if s != "3 NAMESPACE\r\n" {
			t.Fatalf("%q", s)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("inflater held back decoded data")
	}
}

func FuzzInflate(f *testing.F) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write([]byte("a1 LOGIN user pass\r\na2 SELECT INBOX\r\n"))
	w.Close()
	f.Add(buf.Bytes())
	f.Add([]byte{0x32, 0x56, 0xf0, 0x73, 0xf4, 0x75, 0x0d, 0x0e, 0x70, 0x74, 0x76, 0xe5, 0xe5, 0x02, 0x08})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := inflateAll(t, data)
		want, werr := io.ReadAll(flate.NewReader(bytes.NewReader(data)))
		if werr == nil && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("stdlib decodes %d octets, we got %d: %v", len(want), len(got), err)
		}
	})
}
