package imap

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/lemonvox/lemonvox/vmstore"
)

func msgFrom(from, subject, date, body string) string {
	return "From: " + from + "\r\nSubject: " + subject + "\r\nDate: " + date + "\r\n\r\n" + body + "\r\n"
}

func TestSort(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", msgFrom("zed@example.net", "Re: beta", "Mon, 2 Nov 2026 10:00:00 +0000", "xx"))
	e.deposit("alice", "INBOX", msgFrom("amy@example.net", "alpha", "Tue, 3 Nov 2026 10:00:00 +0000", "xxxxxxxx"))
	e.deposit("alice", "INBOX", msgFrom("bob@example.net", "[list] Fwd: Gamma (fwd)", "Sun, 1 Nov 2026 10:00:00 +0000", "x"))
	c := e.client("alice")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key     imapclient.SortKey
		reverse bool
		want    []uint32
	}{
		{imapclient.SortKeyFrom, false, []uint32{2, 3, 1}},
		{imapclient.SortKeySubject, false, []uint32{2, 1, 3}},
		{imapclient.SortKeyDate, false, []uint32{3, 1, 2}},
		{imapclient.SortKeySize, true, []uint32{3, 2, 1}},
		{imapclient.SortKeyArrival, false, []uint32{1, 2, 3}},
	} {
		got, err := c.Sort(&imapclient.SortOptions{
			SearchCriteria: &imap.SearchCriteria{},
			SortCriteria:   []imapclient.SortCriterion{{Key: tc.key, Reverse: tc.reverse}},
		}).Wait()
		if err != nil || !equalU32(got, tc.want) {
			t.Errorf("SORT %s: %v %v, want %v", tc.key, got, err, tc.want)
		}
	}
	if baseSubject("Re: [list] FWD: Re: Hello  world (fwd)") != "HELLO WORLD" {
		t.Fatal(baseSubject("Re: [list] FWD: Re: Hello  world (fwd)"))
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	lines := rc.ok("UID SORT RETURN (MIN MAX COUNT ALL) (FROM) UTF-8 ALL")
	if lines[0] != `* ESEARCH (TAG "t3") UID MIN 2 MAX 1 ALL 2:3,1 COUNT 3` {
		t.Fatalf("ESORT: %q", lines)
	}
	lines = rc.ok("SORT RETURN (PARTIAL 1:2) (REVERSE ARRIVAL) UTF-8 ALL")
	if lines[0] != `* ESEARCH (TAG "t4") PARTIAL (1:2 3,2)` {
		t.Fatalf("PARTIAL: %q", lines)
	}
}

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestContextUpdate: RFC 5267 RETURN (UPDATE) keeps reporting changes of
// the result until CANCELUPDATE.
func TestContextUpdate(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("a", "x"))
	e.deposit("alice", "INBOX", testMessage("b", "x"), vmstore.FlagSeen)
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	lines := rc.ok("UID SEARCH RETURN (UPDATE COUNT) UNSEEN")
	if lines[0] != `* ESEARCH (TAG "t3") UID COUNT 1` {
		t.Fatalf("%q", lines)
	}
	lines = rc.ok("UID SORT RETURN (UPDATE) (REVERSE ARRIVAL) UTF-8 ALL")
	if lines[0] != `* ESEARCH (TAG "t4") UID ALL 2,1` {
		t.Fatalf("%q", lines)
	}
	e.deposit("alice", "INBOX", testMessage("c", "x"))
	time.Sleep(10 * time.Millisecond)
	lines = rc.ok("NOOP")
	want := []string{"* 3 EXISTS", "* 3 RECENT", `* ESEARCH (TAG "t3") UID ADDTO (0 3)`, `* ESEARCH (TAG "t4") UID ADDTO (1 3)`}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got %q want %q", lines, want)
	}
	lines = rc.ok("UID STORE 1 +FLAGS.SILENT (\\Seen)")
	if len(lines) != 1 || lines[0] != `* ESEARCH (TAG "t3") UID REMOVEFROM (0 1)` {
		t.Fatalf("%q", lines)
	}
	rc.ok(`CANCELUPDATE "t3" "t4"`)
	rc.ok("UID STORE 2 -FLAGS.SILENT (\\Seen)")
	if lines := rc.ok("NOOP"); len(lines) != 0 {
		t.Fatalf("after CANCELUPDATE: %q", lines)
	}
}

// TestSortDisplay: RFC 5957 DISPLAYFROM sorts on the display name when
// there is one, else on the address; FROM sorts on the mailbox part.
func TestSortDisplay(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", msgFrom(`"Zoe Caller" <aaa@example.net>`, "one", "Mon, 2 Nov 2026 10:00:00 +0000", "x"))
	e.deposit("alice", "INBOX", msgFrom(`mike@example.net`, "two", "Mon, 2 Nov 2026 10:00:00 +0000", "x"))
	e.deposit("alice", "INBOX", msgFrom(`"anna" <zzz@example.net>`, "three", "Mon, 2 Nov 2026 10:00:00 +0000", "x"))
	rc := e.raw()
	rc.login("alice")
	if caps := strings.Join(rc.ok("CAPABILITY"), " "); !strings.Contains(caps, "SORT=DISPLAY") {
		t.Fatalf("no SORT=DISPLAY: %s", caps)
	}
	rc.ok("SELECT INBOX")
	if l := rc.ok("SORT (DISPLAYFROM) UTF-8 ALL"); l[0] != "* SORT 3 2 1" {
		t.Fatalf("DISPLAYFROM: %q", l)
	}
	if l := rc.ok("SORT (FROM) UTF-8 ALL"); l[0] != "* SORT 1 2 3" {
		t.Fatalf("FROM: %q", l)
	}
	if l := rc.ok("SORT (REVERSE DISPLAYFROM) UTF-8 ALL"); l[0] != "* SORT 1 2 3" {
		t.Fatalf("REVERSE DISPLAYFROM: %q", l)
	}
	if _, tagged := rc.cmd("SORT (DISPLAYCC) UTF-8 ALL"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("unknown key: %s", tagged)
	}
}

// TestSortAddressKeys: RFC 5256 s3 CC/TO sort on the addr-mailbox of the
// first address, the group name for a group (its start marker's
// addr-mailbox); RFC 5957 DISPLAYFROM/DISPLAYTO on the decoded display
// name, else the addr-spec; SUBJECT on the RFC 5256 s2.1 base subject.
func TestSortAddressKeys(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", "From: \"Zulu\" <a@x.test>\r\nTo: Bravo: zulu@x.test;\r\nCc: Hotel:;\r\n"+
		"Subject: re: [fwd: [fwd: re: [fwd: babylon]]]\r\n\r\none\r\n")
	e.deposit("alice", "INBOX", "From: =?utf-8?q?Bj=C3=B6rn?= <z@x.test>\r\nTo: \"Charlie\" <alpha@x.test>\r\n"+
		"Cc: <@r.test:foxtrot@x.test>\r\nSubject: [list] Re: alpha\r\n\r\ntwo\r\n")
	e.deposit("alice", "INBOX", "From: mike@x.test\r\nTo: \"Able\" <delta@x.test>\r\nCc: (c) golf (c) @x.test\r\n"+
		"Subject: Cairo\r\n\r\nthree\r\n")
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	for _, tc := range []struct{ keys, want string }{
		{"TO", "* SORT 2 1 3"},
		{"DISPLAYTO", "* SORT 3 1 2"},
		{"CC", "* SORT 2 3 1"},
		{"FROM", "* SORT 1 3 2"},
		{"DISPLAYFROM", "* SORT 2 3 1"},
		{"SUBJECT", "* SORT 2 1 3"},
		{"REVERSE SUBJECT", "* SORT 3 1 2"},
	} {
		if l := rc.ok("SORT (%s) UTF-8 ALL", tc.keys); len(l) != 1 || l[0] != tc.want {
			t.Errorf("SORT (%s): %q, want %q", tc.keys, l, tc.want)
		}
	}
}

// TestBaseSubject: RFC 5256 s2.1, step by step.
func TestBaseSubject(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		reply    bool
	}{
		{"re: [fwd: [fwd: re: [fwd: babylon]]]", "babylon", true},
		{"Re: [list] FWD: Re: Hello  world (fwd)", "Hello world", true},
		{"babylon", "babylon", false},
		{"[list] [other]", "[other]", false},
		{"[x]", "[x]", false},
		{"[fwd: hello]", "hello", true},
		{"Re:", "", true},
		{"re [foo]: bar", "bar", true},
		{"  Fw:   x  ", "x", true},
		{"Fwd:Fwd: Re:re: x", "x", true},
		{"x (fwd) (FWD)", "x", true},
		{"[a]re: [b]fw: c", "c", true},
		{"rex: y", "rex: y", false},
		{"[fwd: ]", "", true},
		{"[fwd: a] (fwd)", "a", true},
		{"re: re: [list]", "[list]", true},
		{"\t re:\tfoo\r\n bar", "foo bar", true},
		{"[fwd: [list] re: x]", "x", true},
		{"fwd: [fwd: x] y", "y", true},
		{"[list] hello", "hello", false},
		{"[a][b] c", "c", false},
		{"[a [b] c]", "[a [b] c]", false},
		{"Re: [a [b] c]", "[a [b] c]", true},
		{"(fwd)", "", true},
		{"hello (fwd", "hello (fwd", false},
		{"[fwd: re: [fwd: x]] (fwd)", "x", true},
		{"re:re", "re", true},
	} {
		got, reply := extractBaseSubject(tc.in)
		if got != tc.want || reply != tc.reply {
			t.Errorf("%q: %q reply %v, want %q reply %v", tc.in, got, reply, tc.want, tc.reply)
		}
	}
}
