package channel

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// validURLs are URLs from the RFCs (section noted) and edge cases of the
// grammar, each with the fields Parse must give and its canonical String.
var validURLs = []struct {
	name  string
	in    string
	want  URL
	canon string // "" when equal to in
}{
	{"RFC 5092 s9 partial", "imap://minbari.example.org/gray-council;UIDVALIDITY=385759045/;UID=20/;PARTIAL=0.1024",
		URL{Host: "minbari.example.org", Mailbox: "gray-council", UIDValidity: 385759045, UID: 20, Partial: &Range{0, 1024}}, ""},
	{"RFC 5092 s9 UTF-8 mailbox", "imap://psicorp.example.org/~peter/%E6%97%A5%E6%9C%AC%E8%AA%9E/%E5%8F%B0%E5%8C%97",
		URL{Host: "psicorp.example.org", Mailbox: "~peter/日本語/台北"}, ""},
	{"RFC 5092 s9 AUTH=GSSAPI section", "imap://;AUTH=GSSAPI@minbari.example.org/gray-council/;uid=20/;section=1.2",
		URL{AuthType: "GSSAPI", Host: "minbari.example.org", Mailbox: "gray-council", UID: 20, Section: "1.2"},
		"imap://;AUTH=GSSAPI@minbari.example.org/gray-council/;UID=20/;SECTION=1.2"},
	{"RFC 5092 s9 AUTH=* search", "imap://;AUTH=*@minbari.example.org/gray%20council?SUBJECT%20shadows",
		URL{AuthType: "*", Host: "minbari.example.org", Mailbox: "gray council", Search: "SUBJECT shadows"}, ""},
	{"RFC 5092 s9 literal+ search", "imap://john;AUTH=*@minbari.example.org/babylon5/personel?charset%20UTF-8%20SUBJECT%20%7B14+%7D%0D%0A%D0%98%D0%B2%D0%B0%D0%BD%D0%BE%D0%B2%D0%B0",
		URL{User: "john", AuthType: "*", Host: "minbari.example.org", Mailbox: "babylon5/personel", Search: "charset UTF-8 SUBJECT {14+}\r\nИванова"}, ""},
	{"RFC 5092 s3.1 naming scope", "imap://michael@example.org/INBOX", URL{User: "michael", Host: "example.org", Mailbox: "INBOX"}, ""},
	{"RFC 5092 s3.1 other user", "imap://bester@example.org/INBOX", URL{User: "bester", Host: "example.org", Mailbox: "INBOX"}, ""},
	{"RFC 5092 appendix B server", "imap://imap.example.com", URL{Host: "imap.example.com"}, "imap://imap.example.com/"},
	{"RFC 5092 appendix B server slash", "imap://imap.example.com/", URL{Host: "imap.example.com"}, ""},
	{"RFC 5092 s6.1.2 URLAUTH", "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038",
		URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.2", Access: Access{Kind: AccessSubmit, User: "fred"},
			Mechanism: "INTERNAL", Token: "91354a473744909de610943775f92038"}, ""},
	{"RFC 4467 s1 plain", "imap://fred@example.com/INBOX/;uid=20",
		URL{User: "fred", Host: "example.com", Mailbox: "INBOX", UID: 20}, "imap://fred@example.com/INBOX/;UID=20"},
	{"RFC 4467 GENURLAUTH rump", "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred",
		URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.2", Access: Access{Kind: AccessSubmit, User: "fred"}}, ""},
	{"rump without owner", "imap://example.com/Shared/;uid=20/;section=1.2;urlauth=submit+fred",
		URL{Host: "example.com", Mailbox: "Shared", UID: 20, Section: "1.2", Access: Access{Kind: AccessSubmit, User: "fred"}}, ""},
	{"RFC 5524 s4 BINARY", "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=anonymous:internal:91354a473744909de610943775f92038",
		URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.2", Access: Access{Kind: AccessAnonymous},
			Mechanism: "INTERNAL", Token: "91354a473744909de610943775f92038"}, ""},
	{"RFC 5524 s4 BODYPARTSTRUCTURE", "imap://joe@example.com/INBOX/;uid=20/;section=1.3;urlauth=anonymous:internal:ae354a473744909de610943775f92038",
		URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.3", Access: Access{Kind: AccessAnonymous},
			Mechanism: "INTERNAL", Token: "ae354a473744909de610943775f92038"}, ""},
	{"RFC 5524 s4 undecodable", "imap://joe@example.com/INBOX/;uid=20/;section=1.4;urlauth=anonymous:internal:87ecbd02095b815e699503fc20d869c8",
		URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.4", Access: Access{Kind: AccessAnonymous},
			Mechanism: "INTERNAL", Token: "87ecbd02095b815e699503fc20d869c8"}, ""},
	{"RFC 5524 s4 missing part", "imap://joe@example.com/INBOX/;uid=20/;section=200;urlauth=anonymous:internal:88066d37e2e5410e1a6486350a8836ee",
		URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "200", Access: Access{Kind: AccessAnonymous},
			Mechanism: "INTERNAL", Token: "88066d37e2e5410e1a6486350a8836ee"}, ""},
	{"RFC 4468 BURL", "imap://harry@gryffindor.example.com/outbox;uidvalidity=1078863300/;uid=25;urlauth=submit+harry:internal:91354a473744909de610943775f92038",
		URL{User: "harry", Host: "gryffindor.example.com", Mailbox: "outbox", UIDValidity: 1078863300, UID: 25,
			Access: Access{Kind: AccessSubmit, User: "harry"}, Mechanism: "INTERNAL", Token: "91354a473744909de610943775f92038"}, ""},
	{"notes s1.10 stream with expiry", "imap://bob@vm.example.net/INBOX;UIDVALIDITY=1700000000/;UID=4711/;SECTION=2;EXPIRE=2026-05-01T12:00:00Z;URLAUTH=stream",
		URL{User: "bob", Host: "vm.example.net", Mailbox: "INBOX", UIDValidity: 1700000000, UID: 4711, Section: "2",
			Expire: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), Access: Access{Kind: AccessApplication, Application: "stream"}}, ""},
	{"URL-PARTIAL offset only", "imap://a@h/INBOX/;UID=1/;SECTION=2/;PARTIAL=100",
		URL{User: "a", Host: "h", Mailbox: "INBOX", UID: 1, Section: "2", Partial: &Range{Offset: 100}}, ""},
	{"expire with offset and fraction", "imap://a@h/INBOX/;UID=1;EXPIRE=2009-06-01T12:00:00.25-08:00;URLAUTH=authuser",
		URL{User: "a", Host: "h", Mailbox: "INBOX", UID: 1, Expire: time.Date(2009, 6, 1, 20, 0, 0, 250000000, time.UTC),
			Access: Access{Kind: AccessAuthUser}}, ""},
	{"upper-case scheme and hex", "IMAP://A@H:1143/Old%20messages/;UID=7;URLAUTH=user+%41lice:INTERNAL:0123456789ABCDEF0123456789abcdef",
		URL{User: "A", Host: "H", Port: 1143, Mailbox: "Old messages", UID: 7, Access: Access{Kind: AccessUser, User: "Alice"},
			Mechanism: "INTERNAL", Token: "0123456789abcdef0123456789abcdef"},
		"IMAP://A@H:1143/Old%20messages/;UID=7;URLAUTH=user+%41lice:internal:0123456789abcdef0123456789abcdef"},
	{"IPv6 host", "imap://[2001:db8::1]:993/INBOX", URL{Host: "2001:db8::1", Port: 993, Mailbox: "INBOX"}, ""},
	{"user with reserved octets", "imap://%2B1555%40example.net@vm/INBOX", URL{User: "+1555@example.net", Host: "vm", Mailbox: "INBOX"},
		"imap://+1555%40example.net@vm/INBOX"},
	{"header fields section", "imap://h/INBOX/;UID=3/;SECTION=HEADER.FIELDS%20(From%20To)",
		URL{Host: "h", Mailbox: "INBOX", UID: 3, Section: "HEADER.FIELDS (From To)"}, ""},
	{"MIME section", "imap://h/INBOX/;UID=3/;SECTION=2.MIME", URL{Host: "h", Mailbox: "INBOX", UID: 3, Section: "2.MIME"}, ""},
	{"mailbox ending in slash", "imap://h/a%2F/;UID=3", URL{Host: "h", Mailbox: "a/", UID: 3}, "imap://h/a//;UID=3"},
	{"leading slash mailbox", "imap://h//x", URL{Host: "h", Mailbox: "/x"}, "imap://h/%2Fx"},
	{"dot level encoded", "imap://h/a/%2E%2E/b", URL{Host: "h", Mailbox: "a/../b"}, "imap://h/a/%2E%2E/b"},
	{"dots glued to UIDVALIDITY", "imap://h/..;UIDVALIDITY=385759045/;UID=20",
		URL{Host: "h", Mailbox: "..", UIDValidity: 385759045, UID: 20}, "imap://h/%2E%2E;UIDVALIDITY=385759045/;UID=20"},
	{"empty port", "imap://h:/INBOX", URL{Host: "h", Mailbox: "INBOX"}, "imap://h/INBOX"},
	{"RFC 5593 app with user", "imap://h/INBOX/;UID=1;URLAUTH=Stream+bob", URL{Host: "h", Mailbox: "INBOX", UID: 1,
		Access: Access{Kind: AccessApplication, Application: "stream", User: "bob"}}, ""},
}

func TestParseValid(t *testing.T) {
	for _, c := range validURLs {
		t.Run(c.name, func(t *testing.T) {
			u, err := Parse(c.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", c.in, err)
			}
			if !u.Equal(&c.want) {
				t.Fatalf("Parse(%q) = %+v\nwant %+v", c.in, *u, c.want)
			}
			canon := c.canon
			if canon == "" {
				canon = c.in
			}
			if got := u.String(); got != canon {
				t.Errorf("String() = %q, want %q", got, canon)
			}
			v, err := Parse(u.String())
			if err != nil || !v.Equal(u) || v.String() != u.String() {
				t.Errorf("round trip of %q: %+v, %v", u.String(), v, err)
			}
			if err := u.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// TestStringConstructed formats URLs built field by field (as notify and
// GENURLAUTH callers do): canonical form, and Validate agrees.
func TestStringConstructed(t *testing.T) {
	for _, c := range []struct {
		u    URL
		want string
	}{
		{URL{User: "alice", Host: "vm.example.net", Mailbox: "INBOX", UIDValidity: 1767000000, UID: 42},
			"imap://alice@vm.example.net/INBOX;UIDVALIDITY=1767000000/;UID=42"},
		{URL{User: "joe", Host: "example.com", Mailbox: "INBOX", UID: 20, Section: "1.2", Access: Access{Kind: AccessSubmit, User: "fred"},
			Mechanism: "internal", Token: "91354A473744909DE610943775F92038"},
			"imap://joe@example.com/INBOX/;UID=20/;SECTION=1.2;URLAUTH=submit+fred:internal:91354a473744909de610943775f92038"},
		{URL{User: "a;b", Host: "h", Mailbox: "Entwürfe?", UID: 1, Partial: &Range{5, 10},
			Expire: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 3600)), Access: Access{Kind: AccessUser, User: "x@y"}},
			"imap://a%3Bb@h/Entw%C3%BCrfe%3F/;UID=1/;PARTIAL=5.10;EXPIRE=2026-01-02T03:04:05+01:00;URLAUTH=user+x%40y"},
	} {
		if got := c.u.String(); got != c.want {
			t.Errorf("String() = %q, want %q", got, c.want)
		}
		if err := c.u.Validate(); err != nil {
			t.Errorf("Validate(%q): %v", c.want, err)
		}
	}
	for _, bad := range []URL{
		{Host: ""},
		{Host: "h", Section: "1"}, // section without UID
		{Host: "h", Mailbox: "INBOX", UID: 1, Expire: time.Now()},               // expiry without access
		{Host: "h", Mailbox: "INBOX", UID: 1, Search: "ALL"},                    // search on a message
		{Host: "h", Mailbox: "INBOX", UID: 1, Section: "1.0"},                   // not a section-spec
		{Host: "h", Mailbox: "INBOX", UID: 1, Access: Access{Kind: AccessUser}}, // user+ without user
		{Host: "h", Mailbox: "INBOX", UID: 1, Access: Access{Kind: AccessAnonymous}, Mechanism: "INTERNAL", Token: "abcd"},
		{Host: "h", Mailbox: "a\x00b"},
		{Host: "h", Port: 70000},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrBadURL) {
			t.Errorf("Validate(%+v) = %v, want ErrBadURL", bad, err)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", ErrRelativeURL},
		{"/INBOX;UIDVALIDITY=385759045/;UID=20", ErrRelativeURL},
		{";UID=20", ErrRelativeURL},                          // RFC 5092 s9.1 relative-path
		{"..;UIDVALIDITY=385759045/;UID=20", ErrRelativeURL}, // RFC 5092 s9.1 relative-path
		{"//minbari.example.org/gray-council", ErrRelativeURL},
		{"http://example.com/INBOX", ErrNotIMAP},
		{"imaps://example.com/INBOX", ErrNotIMAP},
		{"imap:example.com/INBOX", ErrBadURL},
		{"imap://", ErrBadURL},
		{"imap:///INBOX", ErrBadURL},
		{"imap://@h/INBOX", ErrBadURL},
		{"imap://u:pw@h/INBOX", ErrBadURL}, // no passwords (":" is not achar)
		{"imap://u;AUTH=@h/INBOX", ErrBadURL},
		{"imap://u;AUTH=%2A@h/INBOX", ErrBadURL}, // RFC 5092 s3.2: %2A is not "*"
		{"imap://u;FOO=x@h/INBOX", ErrBadURL},
		{"imap://h:99999/INBOX", ErrBadURL},
		{"imap://h:0/INBOX", ErrBadURL},
		{"imap://h:1a/INBOX", ErrBadURL},
		{"imap://[::1/INBOX", ErrBadURL},
		{"imap://[example]/INBOX", ErrBadURL},
		{"imap://h%41/INBOX", ErrBadURL},
		{"imap://h/INBOX#frag", ErrBadURL},
		{"imap://h/IN BOX", ErrBadURL},
		{"imap://h/INB\xc3\xa4X", ErrBadURL}, // raw non-ASCII must be encoded
		{"imap://h/%FF%FE", ErrBadURL},       // not UTF-8
		{"imap://h/a%0Db", ErrBadURL},        // control character
		{"imap://h/a%2", ErrBadURL},
		{"imap://h/a%zz", ErrBadURL},
		{"imap://h/a/../b", ErrBadURL}, // dot-segment
		{"imap://h/a/./;UID=1", ErrBadURL},
		{"imap://h/INBOX?", ErrBadURL},
		{"imap://h/INBOX?a?b", ErrBadURL},
		{"imap://h/INBOX?SUBJECT%20%00", ErrBadURL},
		{"imap://h/INBOX;UID=20", ErrBadURL}, // ";UID=" must follow "/"
		{"imap://h/INBOX/;UID=0", ErrBadURL},
		{"imap://h/INBOX/;UID=020", ErrBadURL},
		{"imap://h/INBOX/;UID=4294967296", ErrBadURL},
		{"imap://h/INBOX/;UID=", ErrBadURL},
		{"imap://h/INBOX/;UID=1?ALL", ErrBadURL},
		{"imap://h/INBOX;UIDVALIDITY=0", ErrBadURL},
		{"imap://h/INBOX;UIDVALIDITY=1;UIDVALIDITY=2", ErrBadURL},
		{"imap://h/INBOX;FOO=1", ErrBadURL},
		{"imap://h/INBOX/;SECTION=1.2", ErrMissingUID},
		{"imap://h/INBOX;UIDVALIDITY=5/;SECTION=1.2", ErrMissingUID},
		{"imap://h/INBOX/;PARTIAL=0.10", ErrMissingUID},
		{"imap://joe@h/INBOX;URLAUTH=anonymous", ErrMissingUID},
		{"imap://joe@h/INBOX;UIDVALIDITY=5;URLAUTH=anonymous:internal:91354a473744909de610943775f92038", ErrMissingUID},
		{"imap://h/INBOX/;UID=1/;SECTION=", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;SECTION=1.0", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;SECTION=0", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;SECTION=BODY", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;SECTION=MIME", ErrBadURL}, // MIME needs a part number
		{"imap://h/INBOX/;UID=1/;SECTION=HEADER.FIELDS%20()", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;SECTION=1/;SECTION=2", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;PARTIAL=", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;PARTIAL=1.0", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;PARTIAL=1.", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;PARTIAL=5000000000", ErrBadURL},
		{"imap://h/INBOX/;UID=1/;PARTIAL=1/;SECTION=1", ErrBadURL},
		{"imap://h/INBOX/;UID=1;EXPIRE=2026-01-01T00:00:00Z", ErrBadURL}, // EXPIRE without URLAUTH
		{"imap://h/INBOX/;UID=1;EXPIRE=2026-13-01T00:00:00Z;URLAUTH=anonymous", ErrBadURL},
		{"imap://h/INBOX/;UID=1;EXPIRE=2026-02-30T00:00:00Z;URLAUTH=anonymous", ErrBadURL},
		{"imap://h/INBOX/;UID=1;EXPIRE=2026-01-01 00:00:00Z;URLAUTH=anonymous", ErrBadURL},
		{"imap://h/INBOX/;UID=1;EXPIRE=2026-01-01T00:00:00;URLAUTH=anonymous", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous;EXPIRE=2026-01-01T00:00:00Z", ErrBadAccess},
		{"imap://h/INBOX/;UID=1/;URLAUTH=anonymous", ErrBadURL}, // no "/" before ;URLAUTH=
		{"imap://h/INBOX/;UID=1;URLAUTH=", ErrBadAccess},
		{"imap://h/INBOX/;UID=1;URLAUTH=user", ErrBadAccess},
		{"imap://h/INBOX/;UID=1;URLAUTH=submit+", ErrBadAccess},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous+bob", ErrBadAccess},
		{"imap://h/INBOX/;UID=1;URLAUTH=str-eam", ErrBadAccess},
		{"imap://h/INBOX/;UID=1;URLAUTH=user+a;b", ErrBadAccess},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous::91354a473744909de610943775f92038", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:internal", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a473744909de610943775f9203", ErrBadURL}, // 31 digits
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a473744909de610943775f9203g", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:in_ternal:91354a473744909de610943775f92038", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a473744909de610943775f92038:x", ErrBadURL},
		{"imap://h/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a473744909de610943775f92038/", ErrBadURL},
		{"imap://h/" + strings.Repeat("a", MaxURLLen), ErrBadURL},
	} {
		u, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error %v", c.in, u, c.want)
			continue
		}
		if !errors.Is(err, c.want) || !errors.Is(err, ErrBadURL) {
			t.Errorf("Parse(%q) error %v, want %v", c.in, err, c.want)
		}
		var ue *URLError
		if !errors.As(err, &ue) || ue.Offset < 0 || ue.Offset > len(c.in) {
			t.Errorf("Parse(%q) error %#v: not a URLError with an offset in the input", c.in, err)
		}
	}
}

// TestErrorHidesToken: an error never repeats the URL, whose token is a
// credential.
func TestErrorHidesToken(t *testing.T) {
	_, err := Parse("imap://h/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a473744909de610943775f92038 junk")
	if err == nil || strings.Contains(err.Error(), "91354a47") {
		t.Fatalf("error %v", err)
	}
}

// TestRumpKeepsOctets: the rump of a parsed URLAUTH URL is the input's
// octets (RFC 4467 s3: the token covers them), not a canonical spelling,
// until a field changes.
func TestRumpKeepsOctets(t *testing.T) {
	in := "IMAP://joe@Example.COM/INBOX/;uid=20/;section=1.2;urlauth=Submit+%66red:INTERNAL:91354A473744909DE610943775F92038"
	u, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	rump := "IMAP://joe@Example.COM/INBOX/;uid=20/;section=1.2;urlauth=Submit+%66red"
	if u.Rump() != rump {
		t.Fatalf("Rump() = %q", u.Rump())
	}
	if want := rump + ":internal:91354a473744909de610943775f92038"; u.String() != want {
		t.Fatalf("String() = %q, want %q", u.String(), want)
	}
	u.UID = 21
	if want := "imap://joe@Example.COM/INBOX/;UID=21/;SECTION=1.2;URLAUTH=submit+fred"; u.Rump() != want {
		t.Fatalf("Rump() after a change = %q, want %q", u.Rump(), want)
	}
	// A rump URL (no verifier) keeps its octets too, as GENURLAUTH returns them.
	r, err := Parse("imap://joe@example.com/INBOX/;uid=20;URLAuth=anonymous")
	if err != nil || r.Rump() != "imap://joe@example.com/INBOX/;uid=20;URLAuth=anonymous" || r.Mechanism != "" {
		t.Fatalf("%+v %v", r, err)
	}
	// A URL without access identifier has no special rump: canonical form.
	p, _ := Parse("imap://h/INBOX/;uid=1")
	if p.Rump() != "imap://h/INBOX/;UID=1" {
		t.Fatal(p.Rump())
	}
}

func TestExpired(t *testing.T) {
	u, err := Parse("imap://a@h/INBOX/;UID=1;EXPIRE=2026-05-01T12:00:00-08:00;URLAUTH=anonymous")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC)
	if u.Expired(exp) || !u.Expired(exp.Add(time.Nanosecond)) || u.Expired(exp.Add(-time.Hour)) {
		t.Fatal("expiry boundary: valid up to and including EXPIRE")
	}
	v, _ := Parse("imap://a@h/INBOX/;UID=1;URLAUTH=anonymous")
	if v.Expired(time.Now().Add(1000 * time.Hour)) {
		t.Fatal("no EXPIRE never expires")
	}
	// Lower-case t and z (RFC 3339 s5.6) and a leap second parse.
	for _, s := range []string{"2026-05-01t12:00:00z", "2016-12-31T23:59:60Z", "2026-05-01T12:00:00.123456789123+05:30"} {
		if _, err := Parse("imap://a@h/INBOX/;UID=1;EXPIRE=" + s + ";URLAUTH=anonymous"); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestParseRef(t *testing.T) {
	base, err := Parse("imap://joe;AUTH=PLAIN@vm.example.net:1143/INBOX/;UID=4")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ref, want string }{
		// RFC 4469 s5 style CATENATE parts.
		{"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER", "imap://joe;AUTH=PLAIN@vm.example.net:1143/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER"},
		{"/INBOX;UIDVALIDITY=1700000000/;UID=4711/;SECTION=2.MIME", "imap://joe;AUTH=PLAIN@vm.example.net:1143/INBOX;UIDVALIDITY=1700000000/;UID=4711/;SECTION=2.MIME"},
		{"/", "imap://joe;AUTH=PLAIN@vm.example.net:1143/"},
		{"//other.example/INBOX", "imap://other.example/INBOX"},
		{"imap://x@y/z", "imap://x@y/z"},
	} {
		u, err := ParseRef(base, c.ref)
		if err != nil || u.String() != c.want {
			t.Errorf("ParseRef(%q) = %v, %v; want %q", c.ref, u, err, c.want)
		}
	}
	for _, c := range []struct {
		ref  string
		want error
	}{
		{";UID=20", ErrRelativeURL},
		{"..;UIDVALIDITY=385759045/;UID=20", ErrRelativeURL},
		{"", ErrRelativeURL},
		{"/foo/;UID=20/..", ErrBadURL}, // RFC 5092 s9.1: dot-segments are refused, not resolved
		{"/INBOX/;UID=1;URLAUTH=anonymous:internal:91354a473744909de610943775f92038", ErrRelativeURL},
		{"/IN BOX", ErrBadURL},
	} {
		if _, err := ParseRef(base, c.ref); !errors.Is(err, c.want) {
			t.Errorf("ParseRef(%q) error %v, want %v", c.ref, err, c.want)
		}
	}
	if _, err := ParseRef(nil, "/INBOX"); !errors.Is(err, ErrRelativeURL) {
		t.Error(err)
	}
	// Offsets refer to the reference, not the resolved URL.
	_, err = ParseRef(base, "/IN BOX")
	var ue *URLError
	if !errors.As(err, &ue) || ue.Offset != 3 {
		t.Errorf("offset: %#v", err)
	}
}

func TestHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"imap://h/INBOX":               "h:143",
		"imap://u@h:1143/":             "h:1143",
		"imap://[2001:db8::1]:993/x":   "[2001:db8::1]:993",
		"imap://[2001:db8::1]/x":       "[2001:db8::1]:143",
		"imap://Vm.Example.NET:0143/x": "Vm.Example.NET:143",
	} {
		u, err := Parse(in)
		if err != nil || u.HostPort() != want {
			t.Errorf("HostPort(%q) = %v, %v; want %q", in, u, err, want)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	const s = "imap://bob@vm.example.net/INBOX;UIDVALIDITY=1700000000/;UID=4711/;SECTION=2;EXPIRE=2026-05-01T12:00:00Z;URLAUTH=submit+bob:internal:02a94f000000000000000000000000000000000000000000000000000000000000"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStringAndSign(b *testing.B) {
	key := make([]byte, KeySize)
	u := URL{User: "bob", Host: "vm.example.net", Mailbox: "INBOX", UIDValidity: 1700000000, UID: 4711, Section: "2",
		Access: Access{Kind: AccessSubmit, User: "bob"}}
	b.ReportAllocs()
	for b.Loop() {
		if err := u.Authorize(key); err != nil {
			b.Fatal(err)
		}
		_ = u.String()
	}
}
