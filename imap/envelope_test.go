package imap

import (
	"strings"
	"testing"
)

// TestEnvelopeGroupsRoutesComments: RFC 9051 s7.5.2 envelopes of RFC 5322
// groups (start and end markers, empty groups kept), obsolete source routes
// (the adl field) and comments inside addr-specs, none of which net/mail
// accepts.
func TestEnvelopeGroupsRoutesComments(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", "From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n"+
		"Sender: <@relay.test,@gw.test:agent@sender.test>\r\n"+
		"To:A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"+
		"         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)\r\n"+
		"Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\r\n"+
		"Subject: groups\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\nMessage-ID: <g1@silly.test>\r\n\r\nbody\r\n")
	e.deposit("alice", "INBOX", "From: Mary Smith <@node.test:mary@example.net>\r\n"+
		"Reply-To: <user (c)@ (c) domain.org>\r\n"+
		"To: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>, Empty:;\r\n"+
		"Subject: routes\r\n\r\nbody\r\n")
	e.deposit("alice", "INBOX", "From: <user (c)@ (c) domain.org>\r\nSubject: comments\r\n\r\nbody\r\n")
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	lines := rc.ok("FETCH 1:3 ENVELOPE")
	want := []string{
		`* 1 FETCH (ENVELOPE ("Mon, 2 Nov 2026 10:00:00 +0000" "groups" (("Pete" NIL "pete" "silly.test")) ` +
			`((NIL "@relay.test,@gw.test" "agent" "sender.test")) (("Pete" NIL "pete" "silly.test")) ` +
			`((NIL NIL "A Group" NIL)("Chris Jones" NIL "c" "public.example")(NIL NIL "joe" "example.org")("John" NIL "jdoe" "one.test")(NIL NIL NIL NIL)) ` +
			`((NIL NIL "Hidden recipients" NIL)(NIL NIL NIL NIL)) NIL NIL "<g1@silly.test>"))`,
		`* 2 FETCH (ENVELOPE (NIL "routes" (("Mary Smith" "@node.test" "mary" "example.net")) (("Mary Smith" "@node.test" "mary" "example.net")) ` +
			`((NIL NIL "user" "domain.org")) ` +
			`(("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?=" NIL "keld" "dkuug.dk")(NIL NIL "Empty" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL))`,
		`* 3 FETCH (ENVELOPE (NIL "comments" ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) ((NIL NIL "user" "domain.org")) NIL NIL NIL NIL NIL))`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// SEARCH FROM sees the addresses as the envelope has them.
	if l := rc.ok(`SEARCH FROM "user@domain.org"`); len(l) != 1 || l[0] != "* SEARCH 3" {
		t.Fatalf("SEARCH FROM comment-laden address: %q", l)
	}
	if l := rc.ok(`SEARCH FROM "mary@example.net"`); len(l) != 1 || l[0] != "* SEARCH 2" {
		t.Fatalf("SEARCH FROM obs-route address: %q", l)
	}
	if l := rc.ok(`SEARCH FROM "pete@silly.test"`); len(l) != 1 || l[0] != "* SEARCH 1" {
		t.Fatalf("SEARCH FROM address with comments: %q", l)
	}
}

// TestEnvelopeObsoleteHeader: RFC 5322 A.6.3 (white space before field
// colons, a comment inside the date) and a header line that is no field
// still give the envelope, and the obsolete date is the sent date.
func TestEnvelopeObsoleteHeader(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", "From: a@b.test\r\nBad header line\r\nTo: c@d.test\r\nDate: 1 Jan 2026 10:00:00 +0000\r\n\r\nbody\r\n")
	e.deposit("alice", "INBOX", "From  : John Doe <jdoe@machine(comment).  example>\r\nTo    : Mary Smith\r\n  \r\n          <mary@example.net>\r\n"+
		"Subject     : Saying Hello\r\nDate  : Fri, 21 Nov 1997 09(comment):   55  :  06 -0600\r\n"+
		"Message-ID  : <1234   @   local(blah)  .machine .example>\r\n\r\nThis is a message just to say hello.\r\n")
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	want := []string{
		`* 1 FETCH (ENVELOPE ("1 Jan 2026 10:00:00 +0000" NIL ((NIL NIL "a" "b.test")) ((NIL NIL "a" "b.test")) ((NIL NIL "a" "b.test")) ((NIL NIL "c" "d.test")) NIL NIL NIL NIL))`,
		`* 2 FETCH (ENVELOPE ("Fri, 21 Nov 1997 09(comment):   55  :  06 -0600" "Saying Hello" (("John Doe" NIL "jdoe" "machine.example")) ` +
			`(("John Doe" NIL "jdoe" "machine.example")) (("John Doe" NIL "jdoe" "machine.example")) (("Mary Smith" NIL "mary" "example.net")) ` +
			`NIL NIL NIL "<1234   @   local(blah)  .machine .example>"))`,
	}
	if l := rc.ok("FETCH 1:2 ENVELOPE"); strings.Join(l, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(l, "\n"), strings.Join(want, "\n"))
	}
	if l := rc.ok("SORT (DATE) UTF-8 ALL"); len(l) != 1 || l[0] != "* SORT 2 1" {
		t.Fatalf("SORT DATE with an obsolete date: %q", l)
	}
}
