package imap

import (
	"bufio"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dovecotCorpus is a mailbox on which Dovecot's imap and ours must give
// the same ENVELOPE, SEARCH FROM, SORT and THREAD answers: the RFC 5322
// appendix A addresses, groups, source routes, comments, display names and
// subjects of the SORT tests and the THREAD fixture. Every message has a
// Date, so that no answer depends on the arrival time.
func dovecotCorpus() []string {
	date := func(d string) string { return "Date: " + d + " 2026 10:00:00 +0000\r\n" }
	msgs := []string{
		"From: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>\r\n" +
			"Sender: <@relay.test,@gw.test:agent@sender.test>\r\n" +
			"To:A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n" +
			"         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the group)\r\n" +
			"Cc:(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;\r\n" +
			"Subject: groups\r\n" + date("2 Nov") + "Message-ID: <g1@silly.test>\r\n\r\nbody\r\n",
		"From: Mary Smith <@node.test:mary@example.net>\r\nReply-To: <user (c)@ (c) domain.org>\r\n" +
			"To: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>, Empty:;\r\n" +
			"Subject: routes\r\n" + date("3 Nov") + "\r\nbody\r\n",
		"From: <user (c)@ (c) domain.org>\r\nSubject: comments\r\n" + date("4 Nov") + "\r\nbody\r\n",
		"From: John Doe <jdoe@machine.example>\r\nSender: Michael Jones <mjones@machine.example>\r\n" +
			"To: Mary Smith <mary@example.net>\r\nSubject: Saying Hello\r\n" + date("21 Nov") +
			"Message-ID: <1234@local.machine.example>\r\n\r\nThis is a message just to say hello.\r\n",
		"From: \"Joe Q. Public\" <john.q.public@example.com>\r\n" +
			"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\r\n" +
			"Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\r\n" + date("1 Jul") +
			"Message-ID: <5678.21-Nov-1997@example.com>\r\n\r\nHi everyone.\r\n",
		"From: Pete <pete@silly.example>\r\nTo: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\r\n" +
			"Cc: Undisclosed recipients:;\r\n" + date("13 Mar") + "Message-ID: <testabcd.1234@silly.example>\r\n\r\nTesting.\r\n",
		// A.6.1 without its null list element, which Dovecot keeps as an
		// address (MISSING_MAILBOX) and we ignore (RFC 5322 s4.4).
		"From: Joe Q. Public <john.q.public@example.com>\r\nTo: Mary Smith <@node.test:mary@example.net>, jdoe@test  . example\r\n" +
			date("1 Jul") + "Message-ID: <5678.21-Nov-1997@example.com>\r\n\r\nHi everyone.\r\n",
		"From: John Doe <jdoe@machine(comment).  example>\r\nTo: Mary Smith\r\n  \r\n          <mary@example.net>\r\n" +
			"Subject: Saying Hello\r\n" + date("21 Nov") + "\r\nThis is a message just to say hello.\r\n",
		"From: \"Zulu\" <a@x.test>\r\nTo: Bravo: zulu@x.test;\r\nCc: Hotel:;\r\n" + date("5 Nov") +
			"Subject: re: [fwd: [fwd: re: [fwd: babylon]]]\r\n\r\none\r\n",
		"From: =?utf-8?q?Bj=C3=B6rn?= <z@x.test>\r\nTo: \"Charlie\" <alpha@x.test>\r\n" + date("6 Nov") +
			"Cc: <@r.test:foxtrot@x.test>\r\nSubject: [list] Re: alpha\r\n\r\ntwo\r\n",
		"From: mike@x.test\r\nTo: \"Able\" <delta@x.test>\r\nCc: Golf <golf (c) @x.test>\r\n" + date("7 Nov") +
			"Subject: Cairo\r\n\r\nthree\r\n",
		// A.6.3: white space before the colons of field names.
		"From  : John Doe <jdoe@machine(comment).  example>\r\nTo    : Mary Smith\r\n  \r\n          <mary@example.net>\r\n" +
			"Subject     : Saying Hello\r\nDate  : Fri, 21 Nov 1997 09(comment):   55  :  06 -0600\r\n" +
			"Message-ID  : <1234   @   local(blah)  .machine .example>\r\n\r\nThis is a message just to say hello.\r\n",
		// A header line that is no field.
		"From: a@b.test\r\nBad header line\r\nTo: c@d.test\r\n" + date("10 Nov") + "Message-ID: <bad@y>\r\n\r\nbody\r\n",
		// Display names and subjects in other charsets.
		"From: =?KOI8-R?B?8NLJ18XU?= <p@x.test>\r\nTo: =?ISO-8859-15?Q?=C9mile?= <e@x.test>\r\n" + date("8 Nov") +
			"Subject: =?windows-1252?Q?=C0_bient=F4t?=\r\n\r\nfour\r\n",
		"From: =?ISO-8859-15?Q?=C9lodie?= <l@x.test>\r\nTo: =?iso-2022-jp?B?GyRCJEskWyRzGyhC?= <j@x.test>\r\n" + date("9 Nov") +
			"Subject: =?ISO-8859-15?Q?Re:_=E9t=E9?=\r\n\r\nfive\r\n",
	}
	e := &captureEnv{}
	threadFixture(e)
	return append(msgs, e.msgs...)
}

// captureEnv collects what threadFixture deposits.
type captureEnv struct{ msgs []string }

func (c *captureEnv) deposit(_, _, msg string, _ ...string) uint32 {
	c.msgs = append(c.msgs, msg)
	return uint32(len(c.msgs))
}

var dovecotCommands = []string{
	"FETCH 1:* ENVELOPE",
	`SEARCH FROM "user@domain.org"`,
	`SEARCH FROM "pete@silly.test"`,
	`SEARCH FROM "mary@example.net"`,
	"SORT (TO) UTF-8 ALL",
	"SORT (CC) UTF-8 ALL",
	"SORT (FROM) UTF-8 ALL",
	"SORT (DISPLAYFROM) UTF-8 ALL",
	"SORT (DISPLAYTO) UTF-8 ALL",
	"SORT (SUBJECT) UTF-8 ALL",
	"SORT (REVERSE SUBJECT DATE) UTF-8 ALL",
	"THREAD REFERENCES UTF-8 ALL",
	"THREAD ORDEREDSUBJECT UTF-8 ALL",
	"UID THREAD REFERENCES UTF-8 SUBJECT alpha",
}

// keepUntagged is the part of an answer compared: the command's data.
func keepUntagged(l string) bool {
	for _, p := range []string{"* SORT", "* THREAD", "* SEARCH"} {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return strings.HasPrefix(l, "* ") && strings.Contains(l, " FETCH (ENVELOPE")
}

// TestDovecotDifferential runs the corpus through Debian's Dovecot imap
// and through our server, and compares the answers line by line.
func TestDovecotDifferential(t *testing.T) {
	compareWithDovecot(t, dovecotCorpus(), dovecotCommands)
}

// TestDovecotThreadRandom: random reference graphs (dangling and missing
// parents, duplicate and absent Message-IDs, loops, truncated References,
// In-Reply-To only) and decorated subjects thread and sort the same way in
// Dovecot and here.
func TestDovecotThreadRandom(t *testing.T) {
	for seed := int64(1); seed <= 2; seed++ {
		r := rand.New(rand.NewSource(seed))
		n := 150
		id := func() string { return fmt.Sprintf("<m%d@x>", r.Intn(n+20)) }
		subjects := []string{"alpha", "beta", "gamma", "delta", ""}
		decor := []string{"", "Re: ", "RE: re: ", "Fwd: ", "[list] ", "[list] Re: ", "Re: [fwd: %s]", "%s (fwd)"}
		var corpus []string
		for i := 0; i < n; i++ {
			var b strings.Builder
			subj := subjects[r.Intn(len(subjects))]
			d := decor[r.Intn(len(decor))]
			if strings.Contains(d, "%s") {
				subj = fmt.Sprintf(d, subj)
			} else {
				subj = d + subj
			}
			fmt.Fprintf(&b, "From: u%d@x\r\nSubject: %s\r\nDate: %s\r\n", r.Intn(5), subj,
				time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(r.Intn(100000))*time.Second).Format(time.RFC1123Z))
			if r.Intn(10) != 0 {
				fmt.Fprintf(&b, "Message-ID: %s\r\n", id())
			}
			switch r.Intn(4) {
			case 0:
			case 1:
				fmt.Fprintf(&b, "In-Reply-To: %s\r\n", id())
			default:
				b.WriteString("References:")
				for k := r.Intn(4) + 1; k > 0; k-- {
					b.WriteString(" " + id())
				}
				b.WriteString("\r\n")
			}
			b.WriteString("\r\nbody\r\n")
			corpus = append(corpus, b.String())
		}
		compareWithDovecot(t, corpus, []string{
			"THREAD REFERENCES UTF-8 ALL",
			"THREAD ORDEREDSUBJECT UTF-8 ALL",
			"SORT (SUBJECT) UTF-8 ALL",
			"UID THREAD REFERENCES UTF-8 NOT SUBJECT beta",
		})
	}
}

// compareWithDovecot appends the corpus to Debian's Dovecot imap
// (preauthenticated on stdin, a Maildir in a temporary directory) and to
// our server, runs the commands on both, and compares the answers.
func compareWithDovecot(t *testing.T, corpus, commands []string) {
	imapBin := needTool(t, "/usr/lib/dovecot/imap")
	dir := t.TempDir()
	conf := filepath.Join(dir, "dovecot.conf")
	os.MkdirAll(filepath.Join(dir, "Maildir"), 0o755)
	os.WriteFile(conf, []byte(fmt.Sprintf("mail_location = maildir:%s/Maildir\nlog_path = /dev/null\nssl = no\n"+
		"base_dir = %s/run\nstate_dir = %s/state\n", dir, dir, dir)), 0o644)
	cmd := exec.Command(imapBin, "-c", conf)
	cmd.Env = []string{"HOME=" + dir, "USER=" + os.Getenv("USER")}
	if os.Geteuid() == 0 {
		// Dovecot refuses to serve mail as root: run it as nobody.
		setpriv := needTool(t, "setpriv")
		filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, 65534, 65534) })
		os.Chmod(filepath.Dir(dir), 0o755) // the test's own temporary directory
		cmd = exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", imapBin, "-c", conf)
		cmd.Env = []string{"HOME=" + dir, "USER=nobody"}
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	br := bufio.NewReader(stdout)
	// run sends one command and reads to its tagged answer.
	n := 0
	run := func(c string) []string {
		n++
		tag := fmt.Sprintf("d%d", n)
		io.WriteString(stdin, tag+" "+c+"\r\n")
		var lines []string
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("dovecot %s: %v", c, err)
			}
			l = strings.TrimRight(l, "\r\n")
			// Dovecot sends strings with quotes as literals, we quote them:
			// compare as quoted strings.
			for strings.HasSuffix(l, "}") && strings.LastIndexByte(l, '{') >= 0 {
				i := strings.LastIndexByte(l, '{')
				size, err := strconv.Atoi(l[i+1 : len(l)-1])
				if err != nil {
					break
				}
				lit := make([]byte, size)
				if _, err := io.ReadFull(br, lit); err != nil {
					t.Fatal(err)
				}
				rest, _ := br.ReadString('\n')
				q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(string(lit))
				l = l[:i] + `"` + q + `"` + strings.TrimRight(rest, "\r\n")
			}
			if strings.HasPrefix(l, tag+" ") {
				if !strings.HasPrefix(l, tag+" OK") {
					t.Fatalf("dovecot %s: %s", c, l)
				}
				return lines
			}
			if keepUntagged(l) {
				lines = append(lines, l)
			}
		}
	}
	for _, m := range corpus {
		run(fmt.Sprintf("APPEND INBOX {%d+}\r\n%s", len(m), m))
	}
	run("SELECT INBOX")
	theirs := make([][]string, len(commands))
	for i, c := range commands {
		theirs[i] = run(c)
	}
	run("LOGOUT")

	e := newTestEnv(t)
	for _, m := range corpus {
		e.deposit("alice", "INBOX", m)
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	for i, c := range commands {
		var ours []string
		for _, l := range rc.ok("%s", c) {
			if keepUntagged(l) {
				ours = append(ours, l)
			}
		}
		want := theirs[i]
		if len(ours) != len(want) {
			t.Errorf("%s:\nours   %s\ndovecot %s", c, strings.Join(ours, "\n       "), strings.Join(want, "\n        "))
			continue
		}
		for j := range ours {
			if ours[j] != want[j] {
				t.Errorf("%s:\nours    %s\ndovecot %s", c, ours[j], want[j])
			}
		}
	}
}

// addrGen writes random RFC 5322 address lists: groups (empty ones too),
// display names of atoms, quoted strings and dots, obs-routes, quoted and
// obsolete local parts, domain literals and obsolete domains, and CFWS
// (spaces, folding, nested comments with quoted pairs) between tokens.
type addrGen struct{ r *rand.Rand }

func (g addrGen) pick(s ...string) string { return s[g.r.Intn(len(s))] }

func (g addrGen) cfws() string {
	switch g.r.Intn(8) {
	case 0:
		return " (" + g.pick("c", "a \\) b", "x (nested) y", "") + ") "
	case 1:
		return "\r\n "
	case 2, 3:
		return " "
	}
	return ""
}

func (g addrGen) atom() string {
	return g.pick("a", "bob", "x-y", "o'k", "j_d", "Zed", "q+1", "=?utf-8?q?Zo=C3=AB?=")
}

func (g addrGen) phrase() string {
	var b strings.Builder
	for n := g.r.Intn(3) + 1; n > 0; n-- {
		switch g.r.Intn(5) {
		case 0:
			// (no empty quoted string: Dovecot sorts DISPLAYFROM on its
			// quotes)
			b.WriteString(`"` + g.pick("Joe Q. Public", `Giant; \"Big\" Box`, "a, b") + `"`)
		case 1:
			b.WriteString(g.atom() + ".")
		default:
			b.WriteString(g.atom())
		}
		b.WriteString(g.pick(" ", " ", "  ", g.cfws()))
	}
	return b.String()
}

func (g addrGen) addrSpec() string {
	// Dovecot refuses CFWS around the dots of an obs-local-part and
	// encoded-word-like atoms in a local part (we take both): none here.
	atom := func() string { return g.pick("a", "bob", "x-y", "o'k", "j_d", "Zed", "q+1") }
	var local string
	switch g.r.Intn(4) {
	case 0:
		local = `"` + g.pick("john q", "a@b", `x\"y`) + `"`
	case 1:
		local = atom() + "." + atom()
	default:
		local = atom()
	}
	var dom string
	switch g.r.Intn(4) {
	case 0:
		dom = g.pick("[192.0.2.1]", "[IPv6:2001:db8::1]")
	case 1:
		dom = "ex" + g.cfws() + "." + g.cfws() + "test"
	default:
		dom = g.pick("example.net", "x.test", "a.b.c")
	}
	return local + g.cfws() + "@" + g.cfws() + dom
}

func (g addrGen) mailbox() string {
	switch g.r.Intn(4) {
	case 0:
		return g.addrSpec() + g.cfws()
	case 1:
		return g.cfws() + "<" + g.pick("", "@r.test:", "@a.test,@b.test:") + g.addrSpec() + ">" + g.cfws()
	}
	return g.phrase() + g.cfws() + "<" + g.pick("", "", "@r.test:") + g.addrSpec() + ">" + g.cfws()
}

func (g addrGen) list() string {
	var parts []string
	for n := g.r.Intn(3) + 1; n > 0; n-- {
		if g.r.Intn(4) == 0 {
			var members []string
			for m := g.r.Intn(3); m > 0; m-- {
				members = append(members, g.mailbox())
			}
			// Dovecot keeps the white space of a group name as sent (we
			// collapse it, as in display names): single spaces here.
			name := g.pick("Team", "A Group", `"a, b"`, "x-y q+1", "Undisclosed recipients", "=?utf-8?q?Zo=C3=AB?= bob")
			parts = append(parts, name+g.pick("", "(c)")+":"+strings.Join(members, ",")+";"+g.cfws())
			continue
		}
		parts = append(parts, g.mailbox())
	}
	return strings.Join(parts, ",")
}

// TestDovecotEnvelopeRandom: random address lists give the same ENVELOPE
// and the same SORT orders in Dovecot and here.
func TestDovecotEnvelopeRandom(t *testing.T) {
	g := addrGen{rand.New(rand.NewSource(7))}
	var corpus []string
	for i := 0; i < 200; i++ {
		corpus = append(corpus, fmt.Sprintf("From: %s\r\nTo: %s\r\nCc: %s\r\nSubject: s%d\r\nDate: 1 Jan 2026 10:00:00 +0000\r\n\r\nbody\r\n",
			g.list(), g.list(), g.list(), i))
	}
	compareWithDovecot(t, corpus, []string{
		"FETCH 1:* ENVELOPE",
		"SORT (FROM) UTF-8 ALL",
		"SORT (TO) UTF-8 ALL",
		"SORT (CC) UTF-8 ALL",
		"SORT (DISPLAYFROM) UTF-8 ALL",
		"SORT (DISPLAYTO) UTF-8 ALL",
	})
}
