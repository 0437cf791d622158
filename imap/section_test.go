package imap

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/imap/wire"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// imapSection parses "[" s "]" with the FETCH tokenizer; ok is false when
// it answers BAD.
func imapSection(s string, binary bool) (sec section, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, syn := r.(syntaxError); !syn {
				panic(r)
			}
			ok = false
		}
	}()
	p := &parser{Decoder: wire.NewDecoder(strings.NewReader("[" + s + "]\r\n"))}
	p.xcheck(p.Begin())
	sec = p.xsection(binary)
	return sec, p.AtEnd()
}

// The FETCH tokenizer and message.Parse (IMAP URLs, URLFETCH) read a
// section-spec the same way: what the store's parser accepts FETCH
// accepts as the same Section, printed the same in the response.
func TestSectionParsersAgree(t *testing.T) {
	for _, s := range []string{"", "1", "1.2.3", "header", "TEXT", "2.Mime", "3.1.TEXT", "HEADER.FIELDS (From To)",
		"1.HEADER.FIELDS.NOT (x-a)", `HEADER.FIELDS ("Subject" "a b")`, "0", "1.0", "MIME", "BODY", "HEADER.FIELDS ()", "1."} {
		checkSectionAgree(t, s)
	}
}

func checkSectionAgree(t *testing.T, s string) {
	t.Helper()
	want, err := message.Parse(s)
	got, ok := imapSection(s, false)
	if err != nil {
		if ok && !strings.ContainsAny(s, ":{") {
			// FETCH takes any astring as a field name (IMAP atoms may
			// hold ":"), the store's parser only header field names.
			t.Errorf("FETCH accepts [%s] = %#v, message.Parse: %v", s, got, err)
		}
		return
	}
	if !ok {
		t.Errorf("FETCH refuses [%s], message.Parse gives %#v", s, want)
		return
	}
	if !reflect.DeepEqual(got, want) || got.String() != want.String() {
		t.Errorf("[%s]: FETCH %#v %q, message.Parse %#v %q", s, got, got.String(), want, want.String())
	}
	if bin, ok := imapSection(s, true); ok != want.PartOnly() || ok && !reflect.DeepEqual(bin, want) {
		t.Errorf("BINARY[%s]: %v %#v", s, ok, bin)
	}
}

func FuzzSectionParsersAgree(f *testing.F) {
	for _, s := range []string{"", "1.2", "HEADER.FIELDS (From To)", "2.MIME", "1.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "]\r\n") {
			return // ends the section or the line: not one section-spec
		}
		checkSectionAgree(t, s)
	})
}

// A section-spec cannot end with a dot (RFC 9051 s9 section-part): BODY[1.]
// was served as BODY[1].
func TestFetchSectionTrailingDot(t *testing.T) {
	e := newTestEnv(t)
	m := "Subject: s\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
	rc := e.raw()
	rc.login("alice")
	rc.ok("APPEND INBOX {%d+}\r\n%s", len(m), m)
	rc.ok("SELECT INBOX")
	for _, item := range []string{"BODY.PEEK[1.]", "BINARY.PEEK[1.]", "BINARY.SIZE[1.]", "BODY.PEEK[1.2.]"} {
		if _, tagged := rc.cmd("FETCH 1 (%s)", item); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %s", item, tagged)
		}
	}
	if _, got := fetchRaw(t, rc, "1", "BODY.PEEK[1]"); got != "hello\r\n" {
		t.Fatalf("BODY[1]: %q", got)
	}
}
