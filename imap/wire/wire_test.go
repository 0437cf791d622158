package wire

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// parseAll reads one command as tag, name and generic values.
func parseAll(d *Decoder) (tag, name string, args []Value, err error) {
	if err = d.Begin(); err != nil {
		return
	}
	if tag, err = d.Atom(); err != nil {
		return
	}
	if err = d.SP(); err != nil {
		return
	}
	if name, err = d.Atom(); err != nil {
		return
	}
	for !d.AtEnd() {
		if err = d.SP(); err != nil {
			return
		}
		var v Value
		if v, err = d.Value(); err != nil {
			return
		}
		args = append(args, v)
	}
	return
}

func TestDecodeCommand(t *testing.T) {
	var cont int
	in := "a1 LOGIN {4}\r\nuser \"pa\\\"ss\"\r\n" +
		"a2 APPEND INBOX (\\Seen) {5+}\r\nhello ~{3}\r\n\x00\x01\x02\r\n" +
		"a3 X (a (b (c)) NIL \"\") {0}\r\n\r\n"
	d := NewDecoder(strings.NewReader(in))
	d.Continue = func() error { cont++; return nil }
	tag, name, args, err := parseAll(d)
	if err != nil || tag != "a1" || name != "LOGIN" || len(args) != 2 || string(args[0].String) != "user" || string(args[1].String) != `pa"ss` {
		t.Fatalf("a1: %q %q %+v %v", tag, name, args, err)
	}
	if cont != 1 {
		t.Fatalf("continuations %d, want 1", cont)
	}
	_, _, args, err = parseAll(d)
	if err != nil || len(args) != 4 || string(args[2].String) != "hello" || !bytes.Equal(args[3].String, []byte{0, 1, 2}) {
		t.Fatalf("a2: %+v %v", args, err)
	}
	if cont != 2 {
		t.Fatalf("continuations %d, want 2 (literal8 is synchronizing)", cont)
	}
	_, _, args, err = parseAll(d)
	if err != nil || len(args) != 2 || !args[0].IsList || len(args[0].List) != 4 || !args[0].List[2].IsNil || args[1].String == nil {
		t.Fatalf("a3: %+v %v", args, err)
	}
	if err := d.Begin(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{
		"a1 X \"unterminated\r\n",
		"a1 X \"bad\\escape\"\r\n",
		"a1 X (a b\r\n",
		"a1 X " + strings.Repeat("(", 40) + strings.Repeat(")", 40) + "\r\n",
		"a1 X )\r\n",
		"a1 X ~{3}x\r\n",
	} {
		d := NewDecoder(strings.NewReader(in))
		_, _, _, err := parseAll(d)
		if !IsSyntax(err) {
			t.Errorf("%q: got %v, want syntax error", in, err)
		}
	}
	// Line limit: the long line is dropped and the next command parses.
	d := NewDecoder(strings.NewReader("a1 X " + strings.Repeat("a", 70000) + "\r\na2 NOOP\r\n"))
	if _, _, _, err := parseAll(d); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
	if tag, _, _, err := parseAll(d); err != nil || tag != "a2" {
		t.Fatalf("after long line: %q %v", tag, err)
	}
	// Literal limit, synchronizing: no continuation is sent.
	d = NewDecoder(strings.NewReader("a1 APPEND x {100}\r\n"))
	d.MaxLiteral = 10
	d.Continue = func() error { t.Fatal("continuation sent for refused literal"); return nil }
	_, _, _, err := parseAll(d)
	var le *LiteralTooBigError
	if !errors.As(err, &le) || !le.Sync {
		t.Fatalf("literal limit: %v", err)
	}
	// LITERAL-: non-synchronizing literals above 4096 refused.
	d = NewDecoder(strings.NewReader("a1 APPEND x {5000+}\r\n"))
	d.MaxNonSync = MaxNonSyncLiteral
	if _, _, _, err := parseAll(d); !errors.As(err, &le) || le.Sync {
		t.Fatalf("literal- limit: %v", err)
	}
}

func TestSeqSet(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   string
		dollar bool
		bad    bool
	}{
		{in: "1", want: "1"},
		{in: "1:*", want: "1:*"},
		{in: "*", want: "*"},
		{in: "3,5:7,9:*", want: "3,5:7,9:*"},
		{in: "$", dollar: true},
		{in: "0", bad: true},
		{in: "1:", bad: true},
		{in: "4294967296", bad: true},
		{in: ",", bad: true},
	} {
		d := NewDecoder(strings.NewReader(tc.in + "\r\n"))
		if err := d.Begin(); err != nil {
			t.Fatal(err)
		}
		set, dollar, err := d.SeqSet()
		if err == nil {
			err = d.End()
		}
		if tc.bad {
			if err == nil {
				t.Errorf("%q: no error", tc.in)
			}
			continue
		}
		if err != nil || dollar != tc.dollar || (!dollar && set.String() != tc.want) {
			t.Errorf("%q: %v %v %v", tc.in, set, dollar, err)
		}
	}
	var _ imap.NumSet = imap.SeqSet{}
}

func TestNumber64(t *testing.T) {
	d := NewDecoder(strings.NewReader("9223372036854775807 9223372036854775808\r\n"))
	d.Begin()
	if n, err := d.Number64(); err != nil || n != 1<<63-1 {
		t.Fatalf("max: %d %v", n, err)
	}
	d.SP()
	if _, err := d.Number64(); !IsSyntax(err) {
		t.Fatalf("2^63: %v", err)
	}
}

func TestStreamLiteral(t *testing.T) {
	body := strings.Repeat("0123456789", 100000)
	d := NewDecoder(strings.NewReader("a APPEND INBOX {1000000}\r\n" + body + " extra\r\n"))
	d.Begin()
	d.Atom()
	d.SP()
	d.Atom()
	d.SP()
	d.Astring()
	d.SP()
	r, l, err := d.OpenLiteral(true)
	if err != nil || l.Size != 1000000 {
		t.Fatal(l, err)
	}
	var got bytes.Buffer
	if _, err := io.Copy(&got, r); err != nil || got.String() != body {
		t.Fatal("literal content", err)
	}
	if err := d.CloseLiteral(); err != nil {
		t.Fatal(err)
	}
	if d.Rest() != " extra" {
		t.Fatal("rest")
	}
}

func TestEncoder(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	s := "x\"y"
	e.Raw("* ").Astring("INBOX").SP().Astring("a b").SP().String("é").SP().Nstring(nil).SP().Nstring(&s).SP().
		Literal(3, strings.NewReader("abc"), false).SP().Literal(2, strings.NewReader("\x00\x01"), true).SP().Number(1 << 40).CRLF()
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	want := "* INBOX \"a b\" {2}\r\né NIL \"x\\\"y\" {3}\r\nabc ~{2}\r\n\x00\x01 1099511627776\r\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
	b.Reset()
	e.UTF8 = true
	e.String("é").Flush()
	if b.String() != "\"é\"" {
		t.Fatalf("utf8: %q", b.String())
	}
	// A short reader is an error, not a silent truncation.
	e.Literal(10, strings.NewReader("abc"), false)
	if e.Err() == nil {
		t.Fatal("short literal accepted")
	}
}
