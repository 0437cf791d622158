package imap

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap/wire"
)

// fuzzCat collects what the CATENATE parser hands over.
type fuzzCat struct {
	t     *testing.T
	text  int64
	urls  []string
	bases []*channel.URL
}

func (h *fuzzCat) textPart(p *parser, l wire.Literal) {
	r, lit, err := p.OpenLiteral(true)
	p.xcheck(err)
	if lit != l {
		h.t.Fatalf("literal %+v opened as %+v", l, lit)
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != l.Size {
		panic(ioError{io.ErrUnexpectedEOF})
	}
	p.xcheck(p.CloseLiteral())
	h.text += n
}

func (h *fuzzCat) urlPart(p *parser, raw string) {
	if raw == "" || len(raw) > channel.MaxURLLen {
		h.t.Fatalf("URL %q handed over", raw)
	}
	h.urls = append(h.urls, raw)
	// What the session does with it: a relative reference resolves
	// against the session's base and stays in the user's namespace; the
	// BADURL text is one url-resp-text token.
	for _, base := range h.bases {
		if strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, "//") {
			u, err := channel.ParseRef(base, raw)
			if err == nil && (u.User != base.User || u.Access.Kind != channel.AccessNone) {
				h.t.Fatalf("%q against %q names %q (access %v)", raw, base.String(), u.User, u.Access.Kind)
			}
		}
	}
	txt := badURLText(raw)
	if strings.ContainsAny(txt, "] \r\n\x00") || txt == "" {
		h.t.Fatalf("BADURL text %q", txt)
	}
	for i := 0; i < len(txt); i++ {
		if txt[i] >= 0x7f {
			h.t.Fatalf("BADURL text %q has non-ASCII", txt)
		}
	}
}

type fuzzCatHandler struct{ h *fuzzCat }

func (f fuzzCatHandler) text(p *parser, l wire.Literal) { f.h.textPart(p, l) }
func (f fuzzCatHandler) url(p *parser, raw string)      { f.h.urlPart(p, raw) }

// FuzzCatenateList feeds arbitrary octets to the CATENATE list parser (a
// command line from "(" on, with its literals): it must end in a syntax
// error or a parsed list, never panic otherwise or read past the input.
// FuzzCommand's corpus has whole CATENATE commands run by a session.
func FuzzCatenateList(f *testing.F) {
	for _, s := range []string{
		"(TEXT {3+}\r\nabc URL \"/INBOX;UIDVALIDITY=1/;UID=2/;SECTION=1.MIME\" URL /INBOX/;UID=2/;SECTION=1 TEXT {2+}\r\n\r\n)\r\n",
		"(URL \"/INBOX;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT ~{4+}\r\n\x00\x01\r\n)\r\n",
		"(UTF8 (~{3+}\r\nabc) URL {20+}\r\n/Drafts/;UID=1/;PARTIAL=0.10)\r\n",
		"(URL \"imap://bob@vm.example.net/INBOX;UIDVALIDITY=7/;UID=4711/;SECTION=2;URLAUTH=user+alice:internal:02a94f00000000000000000000000000000000\")\r\n",
		"(URL \"INBOX/;UID=1\" URL \"//h/INBOX/;UID=1\" URL \"/%E2%82%AC/;UID=1\" URL \"/a]b/;UID=1\")\r\n",
		"()\r\n",
		"(TEXT \"x\")\r\n",
		"(TEXT {0}\r\n TEXT {0+}\r\n)\r\n",
		"(FOO {1+}\r\nx)\r\n",
	} {
		f.Add([]byte(s))
	}
	bases := []*channel.URL{
		{User: "alice", Host: "localhost"},
		{User: "a;b@c", Host: "vm.example.net", Port: 1993, Mailbox: "INBOX/Sub"},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := wire.NewDecoder(bytes.NewReader(data))
		d.MaxLiteral = 1 << 16
		if d.Begin() != nil {
			return
		}
		h := &fuzzCat{t: t, bases: bases}
		p := &parser{Decoder: d}
		func() {
			defer func() {
				switch x := recover().(type) {
				case nil, syntaxError, userError, ioError:
				default:
					panic(x)
				}
			}()
			xparseCatenate(p, true, fuzzCatHandler{h})
			p.xend()
		}()
		if h.text > int64(len(data)) {
			t.Fatalf("%d literal octets from %d input octets", h.text, len(data))
		}
	})
}

// TestBadURLText: the BADURL text is the URL as sent, with what cannot
// appear in a response code percent-encoded.
func TestBadURLText(t *testing.T) {
	for in, want := range map[string]string{
		"/INBOX/;UID=1":          "/INBOX/;UID=1",
		"/a]b c/;UID=1":          "/a%5Db%20c/;UID=1",
		"/\u20ac\r\n":            "/%E2%82%AC%0D%0A",
		"/x;URLAUTH=anonymous\t": "/x;URLAUTH=anonymous%09",
	} {
		if got := badURLText(in); got != want {
			t.Errorf("badURLText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPartialRange: ;PARTIAL= within, across and past the end.
func TestPartialRange(t *testing.T) {
	for _, c := range []struct {
		r            *channel.Range
		size, off, n int64
	}{
		{nil, 10, 0, 10},
		{&channel.Range{Offset: 2, Length: 3}, 10, 2, 3},
		{&channel.Range{Offset: 2}, 10, 2, 8},
		{&channel.Range{Offset: 8, Length: 5}, 10, 8, 2},
		{&channel.Range{Offset: 10, Length: 5}, 10, 10, 0},
		{&channel.Range{Offset: 4000000000}, 10, 10, 0},
	} {
		if off, n := partialRange(c.r, c.size); off != c.off || n != c.n {
			t.Errorf("partialRange(%+v, %d) = %d, %d; want %d, %d", c.r, c.size, off, n, c.off, c.n)
		}
	}
}
