package imap

import (
	"fmt"
	"math/rand"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/lemonvox/lemonvox/vmstore"
)

// threadFixture deposits messages that exercise RFC 5256 s2.2: references
// through a missing parent (a dummy under a message, pruned), a missing
// root (a dummy with one child, promoted), two children of one missing
// parent (a dummy kept at the top), a reply merged under its original by
// subject, two non-replies of one subject merged under a new dummy, a
// duplicate Message-ID, a message without one, and a reference loop.
func threadFixture(e interface {
	deposit(user, mailbox, msg string, flags ...string) uint32
}) {
	type m struct{ id, refs, irt, subject, date string }
	for _, x := range []m{
		{"<a@x>", "", "", "alpha", "1 Nov"},                      // 1
		{"<b@x>", "<a@x>", "", "Re: alpha", "2 Nov"},             // 2
		{"<c@x>", "<a@x> <missing@x>", "", "Re: alpha", "3 Nov"}, // 3
		{"<d@x>", "", "<gone@x>", "Re: beta", "4 Nov"},           // 4
		{"<e@x>", "", "", "beta", "5 Nov"},                       // 5
		{"<f@x>", "<zz1@x>", "", "gamma", "6 Nov"},               // 6
		{"<g@x>", "<zz1@x>", "", "Re: gamma", "7 Nov"},           // 7
		{"<h@x>", "", "", "delta", "8 Nov"},                      // 8
		{"<i@x>", "", "", "delta", "31 Oct"},                     // 9
		{"<a@x>", "", "", "dup", "10 Nov"},                       // 10
		{"", "<b@x>", "", "Re: alpha", "11 Nov"},                 // 11
		{"<l1@x>", "<l2@x>", "", "loop", "12 Nov"},               // 12
		{"<\"l2\"@x>", "<l1@x>", "", "loop", "13 Nov"},           // 13
	} {
		var b strings.Builder
		b.WriteString("From: t@x\r\nSubject: " + x.subject + "\r\nDate: " + x.date + " 2026 10:00:00 +0000\r\n")
		if x.id != "" {
			b.WriteString("Message-ID: " + x.id + "\r\n")
		}
		if x.refs != "" {
			b.WriteString("References: " + x.refs + "\r\n")
		}
		if x.irt != "" {
			b.WriteString("In-Reply-To: " + x.irt + "\r\n")
		}
		b.WriteString("\r\nbody\r\n")
		e.deposit("alice", "INBOX", b.String())
	}
}

const (
	wantReferences     = "* THREAD ((9)(8))(1 (2 11)(3))(5 4)((6)(7))(10)(13 12)"
	wantOrderedSubject = "* THREAD (9 8)(1 (2)(3)(11))(4 5)(6 7)(10)(12 13)"
)

func TestThread(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", "Subject: gone\r\n\r\nx\r\n") // UID 1, expunged: UIDs are seq+1
	threadFixture(e)
	rc := e.raw()
	rc.login("alice")
	if l := rc.ok("CAPABILITY"); !strings.Contains(l[0], " THREAD=ORDEREDSUBJECT THREAD=REFERENCES") {
		t.Fatalf("capability: %q", l)
	}
	rc.ok("SELECT INBOX")
	rc.ok("STORE 1 +FLAGS (\\Deleted)")
	rc.ok("EXPUNGE")
	if l := rc.ok("THREAD REFERENCES UTF-8 ALL"); len(l) != 1 || l[0] != wantReferences {
		t.Fatalf("REFERENCES:\n got %q\nwant %q", l, wantReferences)
	}
	if l := rc.ok("THREAD ORDEREDSUBJECT US-ASCII ALL"); len(l) != 1 || l[0] != wantOrderedSubject {
		t.Fatalf("ORDEREDSUBJECT:\n got %q\nwant %q", l, wantOrderedSubject)
	}
	// UID THREAD answers UIDs; the search criteria choose the messages
	// threaded (the dummy <missing@x> under 1 is still pruned).
	if l := rc.ok("UID THREAD REFERENCES UTF-8 SUBJECT alpha"); len(l) != 1 || l[0] != "* THREAD (2 (3 12)(4))" {
		t.Fatalf("UID THREAD: %q", l)
	}
	if l := rc.ok("UID THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing-matches"); len(l) != 1 || l[0] != "* THREAD" {
		t.Fatalf("empty THREAD: %q", l)
	}
	if l := rc.ok("THREAD REFERENCES UTF-8 NOT SUBJECT alpha UNSEEN 1:9"); len(l) != 1 || l[0] != "* THREAD ((9)(8))(5 4)((6)(7))" {
		t.Fatalf("THREAD with criteria: %q", l)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"THREAD FOO UTF-8 ALL", " BAD "},
		{"THREAD REFERENCES", " BAD "},
		{"THREAD REFERENCES UTF-8", " BAD "},
		{"THREAD REFERENCES KOI8-R ALL", " NO [BADCHARSET (UTF-8 US-ASCII)]"},
		{"UID THREAD ORDEREDSUBJECT UTF-8 BOGUS", " BAD "},
	} {
		if _, tagged := rc.cmd("%s", tc.cmd); !strings.Contains(tagged, tc.want) {
			t.Errorf("%s: %s", tc.cmd, tagged)
		}
	}
	rc.ok("UNSELECT")
	if _, tagged := rc.cmd("THREAD REFERENCES UTF-8 ALL"); !strings.Contains(tagged, " BAD ") {
		t.Errorf("THREAD without a mailbox: %s", tagged)
	}
}

// TestThreadImapclient reads THREAD answers with go-imap's client.
func TestThreadImapclient(t *testing.T) {
	e := newTestEnv(t)
	threadFixture(e)
	c := e.client("alice")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Thread(&imapclient.ThreadOptions{Algorithm: imap.ThreadReferences, SearchCriteria: &imap.SearchCriteria{}}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(got); s != "[{[] [{[9] []} {[8] []}]} {[1] [{[2 11] []} {[3] []}]} {[5 4] []} {[] [{[6] []} {[7] []}]} {[10] []} {[13 12] []}]" {
		t.Fatalf("imapclient thread: %s", s)
	}
	got, err = c.UIDThread(&imapclient.ThreadOptions{
		Algorithm:      imap.ThreadOrderedSubject,
		SearchCriteria: &imap.SearchCriteria{Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "beta"}}},
	}).Wait()
	if err != nil || fmt.Sprint(got) != "[{[4 5] []}]" {
		t.Fatalf("imapclient UID THREAD: %v %v", got, err)
	}
}

// TestThreadPythonImaplib: Python's imaplib sends THREAD and reads the
// whole answer.
func TestThreadPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	e := newTestEnv(t)
	threadFixture(e)
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	script := `
import imaplib, sys
m = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
m.login(sys.argv[3], sys.argv[4])
m.select("INBOX")
typ, data = m.thread("REFERENCES", "UTF-8", "ALL")
print(typ, data[0].decode())
typ, data = m.uid("THREAD", "ORDEREDSUBJECT", "UTF-8", "ALL")
print(typ, data[0].decode())
typ, data = m.sort("(DISPLAYFROM)", "UTF-8", "ALL")
print(typ, data[0].decode())
m.logout()
`
	out, err := exec.Command(py, "-c", script, host, port, "alice", testPass).CombinedOutput()
	want := "OK " + strings.TrimPrefix(wantReferences, "* THREAD ") + "\nOK " + strings.TrimPrefix(wantOrderedSubject, "* THREAD ") +
		"\nOK 1 2 3 4 5 6 7 8 9 10 11 12 13\n"
	if err != nil || string(out) != want {
		t.Fatalf("imaplib: %v\n%s\nwant\n%s", err, out, want)
	}
}

// TestThreadLargeMailbox: THREAD takes everything from the message records
// (no structure or content read), on a mailbox of a few thousand messages
// in long reply chains.
func TestThreadLargeMailbox(t *testing.T) {
	n := 3000 // 10000 took 70 ms for REFERENCES when measured
	if testing.Short() {
		n = 1000
	}
	e := newTestEnv(t)
	for start := 0; start < n; start += 500 {
		var reqs []vmstore.DepositReq
		for i := start; i < start+500 && i < n; i++ {
			refs := ""
			if i%50 != 0 {
				refs = fmt.Sprintf("References: <m%d@x> <m%d@x>\r\n", i-i%50, i-1)
			}
			msg := fmt.Sprintf("From: u%d@x\r\nSubject: Re: topic %d\r\nDate: %s\r\nMessage-ID: <m%d@x>\r\n%s\r\nbody\r\n",
				i%7, i/50, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute).Format(time.RFC1123Z), i, refs)
			reqs = append(reqs, vmstore.DepositReq{User: "alice", Mailbox: "INBOX", Body: strings.NewReader(msg)})
		}
		if _, err := e.store.DepositMany(reqs); err != nil {
			t.Fatal(err)
		}
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	before := threadStructureReads.Load()
	t0 := time.Now()
	l := rc.ok("THREAD REFERENCES UTF-8 ALL")
	d := time.Since(t0)
	if got := threadStructureReads.Load() - before; got != 0 {
		t.Fatalf("THREAD read the structure of %d messages", got)
	}
	// n/50 threads, each a chain of 50 messages.
	if len(l) != 1 || strings.Count(l[0], "(") != n/50 || !strings.HasPrefix(l[0], "* THREAD (1 2 3 4 ") {
		t.Fatalf("THREAD: %.200s", l)
	}
	t0 = time.Now()
	rc.ok("THREAD ORDEREDSUBJECT UTF-8 ALL")
	t.Logf("THREAD on %d messages: REFERENCES %v, ORDEREDSUBJECT %v", n, d, time.Since(t0))
}

// TestThreadProperties: on random reference graphs both algorithms place
// every message exactly once, leave no dummy without two children, and
// write a thread list whose numbers are those messages.
func TestThreadProperties(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	subjects := []string{"a", "b", "c", ""}
	for round := 0; round < 200; round++ {
		n := r.Intn(40) + 1
		msgs := make([]*threadMsg, n)
		for i := range msgs {
			m := &threadMsg{num: uint32(i + 1), seq: uint32(i + 1),
				sent: time.Unix(int64(r.Intn(20)), 0), subject: subjects[r.Intn(len(subjects))], reply: r.Intn(2) == 0}
			if r.Intn(8) != 0 {
				m.id = fmt.Sprint(r.Intn(n + 5))
			}
			for k := r.Intn(4); k > 0; k-- {
				m.refs = append(m.refs, fmt.Sprint(r.Intn(n+5)))
			}
			msgs[i] = m
		}
		for _, alg := range []string{"REFERENCES", "ORDEREDSUBJECT"} {
			var roots []*tnode
			if alg == "REFERENCES" {
				roots = threadReferences(msgs)
			} else {
				roots = threadOrderedSubject(msgs)
			}
			seen := map[uint32]int{}
			var walk func(nd *tnode, depth int)
			walk = func(nd *tnode, depth int) {
				if depth > n+2 {
					t.Fatalf("%s round %d: a cycle", alg, round)
				}
				if nd.m == nil && len(nd.children) < 2 {
					t.Fatalf("%s round %d: a dummy with %d children", alg, round, len(nd.children))
				}
				if nd.m != nil {
					seen[nd.m.num]++
				}
				for _, ch := range nd.children {
					walk(ch, depth+1)
				}
			}
			for _, rt := range roots {
				walk(rt, 0)
			}
			var b strings.Builder
			for _, rt := range roots {
				writeThreadList(&b, rt)
			}
			out := b.String()
			nums := strings.FieldsFunc(out, func(c rune) bool { return c == '(' || c == ')' || c == ' ' })
			if len(seen) != n || len(nums) != n || strings.Count(out, "(") != strings.Count(out, ")") {
				t.Fatalf("%s round %d: %d of %d messages placed, output %q", alg, round, len(seen), n, out)
			}
			for num, c := range seen {
				if c != 1 {
					t.Fatalf("%s round %d: message %d placed %d times", alg, round, num, c)
				}
			}
		}
	}
}
