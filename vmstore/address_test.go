package vmstore

import (
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envString renders a parsed list the way an ENVELOPE address list reads,
// for compact expectations: (name adl mailbox host), NIL for empty.
func envString(l []Address) string {
	if len(l) == 0 {
		return "NIL"
	}
	n := func(s string) string {
		if s == "" {
			return "NIL"
		}
		return fmt.Sprintf("%q", s)
	}
	var b strings.Builder
	b.WriteString("(")
	for _, a := range l {
		switch a.Group {
		case GroupStart:
			fmt.Fprintf(&b, "(NIL NIL %q NIL)", a.Mailbox)
		case GroupEnd:
			b.WriteString("(NIL NIL NIL NIL)")
		default:
			fmt.Fprintf(&b, "(%s %s %q %q)", n(a.Name), n(a.Adl), a.Mailbox, a.Host)
		}
	}
	b.WriteString(")")
	return b.String()
}

// TestParseAddressListRFC5322 parses every address example of RFC 5322
// appendix A (A.1.1-A.1.3, A.2, A.4, A.5, A.6.1, A.6.3) and more forms
// net/mail refuses.
func TestParseAddressListRFC5322(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// A.1.1
		{`John Doe <jdoe@machine.example>`, `(("John Doe" NIL "jdoe" "machine.example"))`},
		{`Michael Jones <mjones@machine.example>`, `(("Michael Jones" NIL "mjones" "machine.example"))`},
		{`Mary Smith <mary@example.net>`, `(("Mary Smith" NIL "mary" "example.net"))`},
		// A.1.2
		{`"Joe Q. Public" <john.q.public@example.com>`, `(("Joe Q. Public" NIL "john.q.public" "example.com"))`},
		{`Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>`,
			`(("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org")("Who?" NIL "one" "y.test"))`},
		{`<boss@nil.test>, "Giant; \"Big\" Box" <sysservices@example.net>`,
			`((NIL NIL "boss" "nil.test")("Giant; \"Big\" Box" NIL "sysservices" "example.net"))`},
		// A.1.3 groups
		{`Pete <pete@silly.example>`, `(("Pete" NIL "pete" "silly.example"))`},
		{`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`,
			`((NIL NIL "A Group" NIL)("Ed Jones" NIL "c" "a.test")(NIL NIL "joe" "where.test")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL))`},
		{`Undisclosed recipients:;`, `((NIL NIL "Undisclosed recipients" NIL)(NIL NIL NIL NIL))`},
		// A.2 (reply) and A.4 (resent) addresses
		{`"Mary Smith: Personal Account" <smith@home.example>`, `(("Mary Smith: Personal Account" NIL "smith" "home.example"))`},
		{`Jane Brown <j-brown@other.example>`, `(("Jane Brown" NIL "j-brown" "other.example"))`},
		// A.5 white space, comments
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, `(("Pete" NIL "pete" "silly.test"))`},
		{"A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)",
			`((NIL NIL "A Group" NIL)("Chris Jones" NIL "c" "public.example")(NIL NIL "joe" "example.org")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL))`},
		{`(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;`, `((NIL NIL "Hidden recipients" NIL)(NIL NIL NIL NIL))`},
		// A.6.1 obsolete addressing
		{`Joe Q. Public <john.q.public@example.com>`, `(("Joe Q. Public" NIL "john.q.public" "example.com"))`},
		{`Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example`,
			`(("Mary Smith" "@node.test" "mary" "example.net")(NIL NIL "jdoe" "test.example"))`},
		// A.6.3 obsolete white space and comments
		{`John Doe <jdoe@machine(comment).  example>`, `(("John Doe" NIL "jdoe" "machine.example"))`},
		{"Mary Smith\r\n  \r\n          <mary@example.net>", `(("Mary Smith" NIL "mary" "example.net"))`},
		// Source routes with several hops, comments and empty hops.
		{`<@route1,@route2:user@domain>`, `((NIL "@route1,@route2" "user" "domain"))`},
		{`<@a.test, ,@b.test:u@c.test>`, `((NIL "@a.test,@b.test" "u" "c.test"))`},
		// Comments inside the addr-spec.
		{`<user (c)@ (c) domain.org>`, `((NIL NIL "user" "domain.org"))`},
		{`user (c)@ (c) domain.org`, `(("c" NIL "user" "domain.org"))`},
		{`(lead) a(x)@b.test`, `(("x" NIL "a" "b.test"))`},
		// Legacy "addr (Full Name)".
		{`jdoe@example.org (John Doe)`, `(("John Doe" NIL "jdoe" "example.org"))`},
		// Quoted local parts, obs-local-part.
		{`"john q"@example.com`, `((NIL NIL "john q" "example.com"))`},
		{`"a\"b"@example.com, john . q . public@example.com`, `((NIL NIL "a\"b" "example.com")(NIL NIL "john.q.public" "example.com"))`},
		// Domain literals.
		{`Joe <joe@[192.0.2.1]>, x@[IPv6:2001:db8::1]`, `(("Joe" NIL "joe" "[192.0.2.1]")(NIL NIL "x" "[IPv6:2001:db8::1]"))`},
		// Encoded words stay encoded in the envelope.
		{`=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>`, `(("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk"))`},
		{`"=?utf-8?q?J=C3=B6rg?=" <j@x.test>`, `(("=?utf-8?q?J=C3=B6rg?=" NIL "j" "x.test"))`},
		// Empty groups among addresses, a group without its ";".
		{`a@b.test, Empty:;, c@d.test, Open: e@f.test`,
			`((NIL NIL "a" "b.test")(NIL NIL "Empty" NIL)(NIL NIL NIL NIL)(NIL NIL "c" "d.test")(NIL NIL "Open" NIL)(NIL NIL "e" "f.test")(NIL NIL NIL NIL))`},
		// Best effort: nothing is lost.
		{`a@b.test c@d.test`, `((NIL NIL "a" "b.test")(NIL NIL "c" "d.test"))`},
		{`alice`, `((NIL NIL "alice" "MISSING_DOMAIN"))`},
		{`<bob>`, `((NIL NIL "bob" "MISSING_DOMAIN"))`},
		{`Broken <x@y.test`, `(("Broken" NIL "x" "y.test"))`},
		{`"unterminated <u@v.test>`, `((NIL NIL "unterminated <u@v.test>" "MISSING_DOMAIN"))`},
		{`user@host.test <real@other.test>`, `(("user@host.test" NIL "real" "other.test"))`},
		{`<>, <@x.test>`, `((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN")(NIL NIL "MISSING_MAILBOX" "x.test"))`},
		{``, `NIL`},
		{` , ,`, `NIL`},
	} {
		got := envString(ParseAddressList(tc.in))
		if got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

func TestParseMsgIDs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`<a@b>`, []string{"a@b"}},
		{`<"01KF8JCEOCBS0045PS"@xxx.yyy.com>`, []string{"01KF8JCEOCBS0045PS@xxx.yyy.com"}},
		{" <a@b>\r\n <c@d> (comment) <e (x)@ f>", []string{"a@b", "c@d", "e@f"}},
		{`Your message of "Tue" <x@y>`, []string{"x@y"}},
		{`<[1.2.3]@b> <a@[lit]>`, []string{"a@[lit]"}},
		{`no ids here`, nil},
	} {
		if got := ParseMsgIDs(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestSortKeysOfHeader: the record keeps the addr-mailbox and display
// forms of the first address (a group's name for a group).
func TestSortKeysOfHeader(t *testing.T) {
	msg := "From: =?utf-8?q?Zo=C3=AB?= <zoe@example.net>\r\n" +
		"To: Team: a@x.test, b@x.test;\r\n" +
		"Cc: <@r.test:carol@example.net>\r\n" +
		"Message-ID: <\"m 1\"@example.net>\r\n" +
		"In-Reply-To: <p@example.net>\r\n\r\nbody\r\n"
	p, err := parseMessage(strings.NewReader(msg), nil)
	if err != nil {
		t.Fatal(err)
	}
	k := p.keys
	want := HeaderKeys{FromMailbox: "zoe", DisplayFrom: "Zoë", ToMailbox: "Team", DisplayTo: "Team", CcMailbox: "carol",
		MessageID: "m 1@example.net", Refs: []string{"p@example.net"}}
	if !reflect.DeepEqual(k, want) {
		t.Fatalf("keys %+v, want %+v", k, want)
	}
	if p.from != "Zoë <zoe@example.net>" || p.to != "a@x.test" || p.cc != "carol@example.net" {
		t.Fatalf("from %q to %q cc %q", p.from, p.to, p.cc)
	}
}

// TestMessageRecordKeys: the keys survive the binary record; a record
// written without them (earlier versions) still decodes.
func TestMessageRecordKeys(t *testing.T) {
	m := Message{MailboxID: 3, UID: 9, Flags: []string{`\Seen`}, From: "a", To: "b@c", Cc: "d@e",
		Keys: &HeaderKeys{FromMailbox: "a", ToMailbox: "b", CcMailbox: "d", DisplayFrom: "A", DisplayTo: "B",
			MessageID: "id@x", Refs: []string{"r1@x", "r2@x"}}}
	var got Message
	if err := decodeMessage(encodeMessage(&m), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.HeaderKeys(), m.Keys) || got.Cc != "d@e" {
		t.Fatalf("round trip: %+v", got)
	}
	old := m
	old.Keys = nil
	b := encodeMessage(&old)
	var o Message
	if err := decodeMessage(b, &o); err != nil || o.HeaderKeys() != nil || o.Cc != "d@e" {
		t.Fatalf("old record: %+v %v", o, err)
	}
	// A record of a later version with an unknown extension still reads.
	if err := decodeMessage(append(b, 7, 1, 2, 3), &o); err != nil || o.HeaderKeys() != nil {
		t.Fatalf("unknown extension: %v", err)
	}
	// A record read and written again keeps its keys without decoding
	// them.
	var again Message
	rec := got2(t, encodeMessage(&m))
	if err := decodeMessage(encodeMessage(&rec), &again); err != nil || !reflect.DeepEqual(again.HeaderKeys(), m.Keys) {
		t.Fatalf("rewritten record: %v %+v", err, again.HeaderKeys())
	}
	// A truncated extension loses the keys, never panics.
	full := encodeMessage(&m)
	for n := len(b) + 2; n < len(full); n++ {
		if err := decodeMessage(full[:n], &o); err == nil && reflect.DeepEqual(o.HeaderKeys(), m.Keys) {
			t.Fatalf("truncated at %d decoded whole", n)
		}
	}
}

// FuzzAddressList: any input parses without panic into balanced groups,
// and every address net/mail finds (where it accepts the input) is found
// too, with the same local part and domain.
func FuzzAddressList(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/fuzz/FuzzAddressList/*")
	if len(seeds) == 0 {
		f.Add(`A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;`)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := ParseAddressList(s)
		if len(got) > maxAddrs {
			t.Fatalf("%d addresses", len(got))
		}
		depth := 0
		for _, a := range got {
			switch a.Group {
			case GroupStart:
				depth++
			case GroupEnd:
				depth--
			}
			if depth < 0 || depth > 1 {
				t.Fatalf("unbalanced groups: %s", envString(got))
			}
		}
		if depth != 0 {
			t.Fatalf("unclosed group: %s", envString(got))
		}
		ParseMsgIDs(s)
		list, err := mail.ParseAddressList(s)
		if err != nil || len(got) >= maxAddrs {
			return
		}
		have := map[string]int{}
		for _, a := range got {
			if a.Group == 0 {
				mbox := a.Mailbox
				if mbox == MissingMailbox {
					mbox = ""
				}
				have[mbox+"@"+a.Host]++
			}
		}
		for _, a := range list {
			if have[a.Address] == 0 {
				t.Fatalf("%q: net/mail found %q, we have %s", s, a.Address, envString(got))
			}
			have[a.Address]--
		}
	})
}

func TestFuzzSeedsPresent(t *testing.T) {
	if _, err := os.Stat("testdata/fuzz/FuzzAddressList"); err != nil {
		t.Fatal("fuzz seeds missing:", err)
	}
}

// TestFormatAddresses: the From kept in the record (SEARCH FROM, events)
// has decoded names, quoted when needed so that it parses back.
func TestFormatAddresses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"Doe, John" <j@x.test>, Team: a@b.test, (c) b (c)@c.test;`, `"Doe, John" <j@x.test>, Team: a@b.test, c <b@c.test>;`},
		{`=?utf-8?q?Zo=C3=AB?= <zoe@example.net>`, `Zoë <zoe@example.net>`},
		{`Pete(A nice \) chap) <pete(his account)@silly.test(his host)>`, `Pete <pete@silly.test>`},
		{`"a \"q\" b" <q@x.test>`, `"a \"q\" b" <q@x.test>`},
	} {
		got := formatAddresses(ParseAddressList(tc.in))
		if got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
		if !strings.Contains(got, ":") {
			if _, err := mail.ParseAddressList(got); err != nil {
				t.Errorf("%q does not parse back: %v", got, err)
			}
		}
	}
}

func got2(t *testing.T, rec []byte) Message {
	var m Message
	if err := decodeMessage(rec, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestDecodeWordsCharsets: encoded words in charsets beyond UTF-8 and
// ISO-8859-1 decode (SORT DISPLAYFROM, SUBJECT and SEARCH see the text).
func TestDecodeWordsCharsets(t *testing.T) {
	for in, want := range map[string]string{
		"=?ISO-8859-15?Q?caf=E9_=A4?=":          "café €",
		"=?windows-1252?Q?J=F6rg_=80?=":         "Jörg €",
		"=?KOI8-R?B?8NLJ18XU?=":                 "Привет",
		"=?iso-2022-jp?B?GyRCJEskWyRzGyhC?=":    "にほん",
		"=?x-unknown?Q?abc?=":                   "=?x-unknown?Q?abc?=",
		"=?utf-8?q?Zo=C3=AB?= =?utf-8?q?_bis?=": "Zoë bis",
	} {
		if got := decodeWords(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestAddressListLimit: a list cut at the limit still closes its group.
func TestAddressListLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString("G: ")
	for i := 0; i < 2*maxAddrs; i++ {
		fmt.Fprintf(&b, "u%d@x.test, ", i)
	}
	b.WriteString(";")
	l := ParseAddressList(b.String())
	if len(l) != maxAddrs || l[0].Group != GroupStart || l[len(l)-1].Group != GroupEnd {
		t.Fatalf("%d addresses, first %+v last %+v", len(l), l[0], l[len(l)-1])
	}
}

// TestLenientHeader: RFC 5322 A.6.3 (white space before the colons of
// field names) and a header with a line that is no field still give their
// envelope instead of an empty one.
func TestLenientHeader(t *testing.T) {
	for _, tc := range []struct{ msg, from, to, id string }{
		{"From  : John Doe <jdoe@machine(comment).  example>\r\nTo    : Mary Smith\r\n  \r\n          <mary@example.net>\r\n" +
			"Subject     : Saying Hello\r\nDate  : Fri, 21 Nov 1997 09(comment):   55  :  06 -0600\r\n" +
			"Message-ID  : <1234   @   local(blah)  .machine .example>\r\n\r\nThis is a message just to say hello.\r\n",
			`(("John Doe" NIL "jdoe" "machine.example"))`, `(("Mary Smith" NIL "mary" "example.net"))`, "1234@local.machine.example"},
		{"From: a@b.test\r\nBad header line\r\n continued\r\nTo: c@d.test\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n",
			`((NIL NIL "a" "b.test"))`, `((NIL NIL "c" "d.test"))`, "x@y"},
	} {
		p, err := parseMessage(strings.NewReader(tc.msg), nil)
		if err != nil {
			t.Fatal(err)
		}
		env := p.root.Envelope
		if envString(env.From) != tc.from || envString(env.To) != tc.to || p.keys.MessageID != tc.id {
			t.Errorf("%q: from %s to %s id %q", tc.msg, envString(env.From), envString(env.To), p.keys.MessageID)
		}
	}
}

func TestParseDate(t *testing.T) {
	for in, want := range map[string]string{
		"Fri, 21 Nov 1997 09:55:06 -0600":                 "1997-11-21T09:55:06-06:00",
		"Fri, 21 Nov 1997 09(comment):   55  :  06 -0600": "1997-11-21T09:55:06-06:00",
		"(lead) 21 Nov 97 09:55:06 GMT":                   "1997-11-21T09:55:06Z",
		"Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      23:32\r\n               -0330 (Newfoundland Time)": "1969-02-13T23:32:00-03:30",
	} {
		got, ok := ParseDate(in)
		if !ok || got.Format(time.RFC3339) != want {
			t.Errorf("%q: %v %v, want %s", in, got, ok, want)
		}
	}
	if _, ok := ParseDate("not a date"); ok {
		t.Error("garbage parsed")
	}
}
