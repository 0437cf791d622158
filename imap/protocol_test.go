package imap

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestTenBadCommands(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	for i := 0; i < 9; i++ {
		if _, tagged := rc.cmd("BOGUS%d", i); !strings.Contains(tagged, "BAD") {
			t.Fatal(tagged)
		}
	}
	// A good command resets the count.
	rc.ok("NOOP")
	for i := 0; i < 9; i++ {
		rc.cmd("BOGUS")
	}
	rc.send("x10 BOGUS")
	if l := rc.line(); !strings.HasPrefix(l, "x10 BAD") {
		t.Fatal(l)
	}
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatal(l)
	}
	if _, err := rc.r.ReadString('\n'); err == nil {
		t.Fatal("connection still open")
	}
}

func TestLiterals(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	// Synchronizing literal in LOGIN.
	rc.send(fmt.Sprintf("a1 LOGIN {5}"))
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	rc.send("alice " + testPass)
	if _, tagged := rc.until("a1"); !strings.Contains(tagged, "OK") {
		t.Fatal(tagged)
	}
	// LITERAL+ APPEND, then literal8 APPEND with NULs, as MULTIAPPEND.
	m1 := testMessage("one", "first")
	m2 := "Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n"
	rc.send(fmt.Sprintf("a2 APPEND INBOX (\\Seen) {%d+}\r\n%s ~{%d+}\r\n%s", len(m1), m1, len(m2), m2))
	_, tagged := rc.until("a2")
	if !strings.Contains(tagged, "OK [APPENDUID ") || !strings.Contains(tagged, " 1:2]") {
		t.Fatal(tagged)
	}
	rc.ok("SELECT INBOX")
	// The NULs are presented base64-encoded (RFC 3516 s4.3), BINARY[]
	// returns them as stored.
	if _, got := fetchRaw(t, rc, "2", "BODY.PEEK[]"); got != strings.Replace(m2, "binary\r\n\r\n\x00\x01\x02\r\n", "base64\r\n\r\nAAECDQo=", 1) {
		t.Fatalf("FETCH binary message: %q", got)
	}
	if _, got := fetchRaw(t, rc, "2", "BINARY.PEEK[]"); got != m2 {
		t.Fatalf("BINARY[]: %q", got)
	}
	// A syntax error before a non-synchronizing literal: the literal is
	// skipped, not taken for a command.
	rc.send("a3 APPEND INBOX (\\Bogus\\) {10+}\r\nLOGOUT xyz")
	if _, tagged := rc.until("a3"); !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
	rc.ok("NOOP")
	// APPEND to a missing mailbox: TRYCREATE, literal skipped.
	rc.send(fmt.Sprintf("a4 APPEND Nope {%d+}\r\n%s", len(m1), m1))
	if _, tagged := rc.until("a4"); !strings.Contains(tagged, "NO [TRYCREATE]") {
		t.Fatal(tagged)
	}
	rc.ok("NOOP")
	// Too big synchronizing literal: NO [TOOBIG] without continuation.
	rc.send(fmt.Sprintf("a5 APPEND INBOX {%d}", DefaultAppendLimit+1))
	if _, tagged := rc.until("a5"); !strings.Contains(tagged, "NO [TOOBIG]") {
		t.Fatal(tagged)
	}
	rc.ok("NOOP")
	// MULTIAPPEND is all or nothing: the second message has a bad flag...
	// checked after the first was stored, so the first must be removed.
	before := rc.ok("STATUS INBOX (MESSAGES)")
	rc.send(fmt.Sprintf("a6 APPEND INBOX {%d+}\r\n%s (\\Recent) {%d+}\r\n%s", len(m1), m1, len(m1), m1))
	if _, tagged := rc.until("a6"); !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
	after := rc.ok("STATUS INBOX (MESSAGES)")
	if before[0] != after[0] {
		t.Fatalf("MULTIAPPEND not atomic: %q -> %q", before, after)
	}
	// AUTHENTICATE with a continuation on a second connection.
	rc2 := e.raw()
	rc2.send("b1 AUTHENTICATE PLAIN")
	if l := rc2.line(); l != "+ " {
		t.Fatalf("%q", l)
	}
	rc2.send(base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + testPass)))
	if _, tagged := rc2.until("b1"); !strings.Contains(tagged, "OK") {
		t.Fatal(tagged)
	}
}

func TestBinaryFetch(t *testing.T) {
	e := newTestEnv(t)
	audio := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00")
	b64 := base64.StdEncoding.EncodeToString(audio)
	msg := "From: +15551234567@vm.example.net\r\nSubject: Voice message\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/voice-message; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCall me =\r\nback=3D\r\n" +
		"--XX\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline; filename=msg.wav\r\n\r\n" + b64 + "\r\n" +
		"--XX\r\nContent-Type: audio/x-unknown\r\nContent-Transfer-Encoding: x-foo\r\n\r\nzzz\r\n--XX--\r\n"
	e.deposit("alice", "INBOX", msg)
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	lines := rc.ok("FETCH 1 (BINARY.SIZE[2] BINARY.PEEK[2])")
	want := fmt.Sprintf("* 1 FETCH (BINARY.SIZE[2] %d BINARY[2] ~{%d}", len(audio), len(audio))
	if lines[0] != want {
		t.Fatalf("got %q want %q", lines[0], want)
	}
	lines = rc.ok("FETCH 1 (BINARY.PEEK[1] BODY.PEEK[2]<0.4> BODY.PEEK[2.MIME] FLAGS)")
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, "Call me back=") || !strings.Contains(all, "BODY[2]<0> {4}\n"+b64[:4]) || !strings.Contains(all, "filename=msg.wav") {
		t.Fatalf("sections: %q", all)
	}
	if strings.Contains(all, `\Seen`) {
		t.Fatal("PEEK set \\Seen")
	}
	if _, tagged := rc.cmd("FETCH 1 (BINARY.PEEK[3])"); !strings.Contains(tagged, "NO [UNKNOWN-CTE]") {
		t.Fatal(tagged)
	}
	if _, got := fetchRaw(t, rc, "1", "BINARY.PEEK[]"); got != msg {
		t.Fatalf("BINARY[]: %q", got)
	}
	lines = rc.ok("FETCH 1 (BODYSTRUCTURE)")
	if !strings.Contains(lines[0], `("AUDIO" "WAV" NIL NIL NIL "BASE64" `) || !strings.Contains(lines[0], `"VOICE-MESSAGE" ("boundary" "XX")`) {
		t.Fatalf("BODYSTRUCTURE: %q", lines[0])
	}
	lines = rc.ok("FETCH 1 (BINARY[2]<4.4>)")
	if !strings.Contains(strings.Join(lines, "\n"), "BINARY[2]<4> ~{4}") || !strings.Contains(strings.Join(lines, "\n"), `FLAGS (\Seen`) {
		t.Fatalf("BINARY partial: %q", lines)
	}
}

func TestMailboxNameEncoding(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	rc.ok("CREATE Entw&APw-rfe")
	if _, err := e.store.Mailbox("alice", "Entwürfe"); err != nil {
		t.Fatal("modified UTF-7 name not decoded:", err)
	}
	if lines := rc.ok(`LIST "" Entw*`); lines[0] != `* LIST (\HasNoChildren) "/" Entw&APw-rfe` {
		t.Fatalf("%q", lines)
	}
	rc.ok("ENABLE IMAP4rev2")
	if lines := rc.ok(`LIST "" Entw*`); lines[0] != `* LIST (\HasNoChildren) "/" "Entwürfe"` {
		t.Fatalf("%q", lines)
	}
}

func TestMultiAppendLargeAndAtomic(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	big := testMessage("big", strings.Repeat("0123456789abcdef", 200000)) // 3.2 MB: spooled to a file
	small := testMessage("small", "x")
	rc.send(fmt.Sprintf("a1 APPEND INBOX {%d+}\r\n%s (\\Seen) {%d+}\r\n%s", len(big), big, len(small), small))
	if _, tagged := rc.until("a1"); !strings.Contains(tagged, "OK [APPENDUID ") || !strings.Contains(tagged, " 1:2]") {
		t.Fatal(tagged)
	}
	rc.ok("SELECT INBOX")
	lines := rc.ok("FETCH 1 (RFC822.SIZE)")
	if lines[0] != fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d)", len(big)) {
		t.Fatal(lines)
	}
	// Over quota on the second message: neither is stored.
	if err := e.store.SetQuota("alice", vmstore.Quota{Messages: 3}); err != nil {
		t.Fatal(err)
	}
	rc.send(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\n%s {%d+}\r\n%s", len(small), small, len(small), small))
	if _, tagged := rc.until("a2"); !strings.Contains(tagged, "NO [OVERQUOTA]") {
		t.Fatal(tagged)
	}
	if mb, _ := e.store.Mailbox("alice", "INBOX"); mb.Counts.Messages != 2 {
		t.Fatalf("MULTIAPPEND not atomic: %d messages", mb.Counts.Messages)
	}
}

func TestSearchRes(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 4; i++ {
		e.deposit("alice", "INBOX", testMessage("m"+u32(uint32(i)), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	rc.ok("STORE 2 +FLAGS.SILENT (\\Answered)")
	if lines := rc.ok("UID SEARCH RETURN (SAVE) UNANSWERED"); len(lines) != 0 {
		t.Fatalf("SAVE alone answered: %q", lines)
	}
	if lines := rc.ok("UID FETCH $ (UID)"); len(lines) != 3 {
		t.Fatalf("%q", lines)
	}
	if lines := rc.ok("SEARCH $ SMALLER 1000000"); lines[0] != "* SEARCH 1 3 4" {
		t.Fatalf("%q", lines)
	}
	rc.ok("UID COPY $ Trash")
	if mb, _ := e.store.Mailbox("alice", "Trash"); mb.Counts.Messages != 3 {
		t.Fatal(mb.Counts.Messages)
	}
}

func TestSelectedMailboxDeleted(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	rc.ok("CREATE Work")
	rc.ok("SELECT Work")
	if err := e.store.DeleteMailbox("alice", "Work"); err != nil {
		t.Fatal(err)
	}
	lines, tagged := rc.cmd("NOOP")
	if len(lines) != 1 || lines[0] != "* BYE selected mailbox was deleted" || !strings.Contains(tagged, "OK") {
		t.Fatalf("%q %s", lines, tagged)
	}
	if _, err := rc.r.ReadString('\n'); err == nil {
		t.Fatal("connection still open")
	}
}

func TestListExtended(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	rc.ok("CREATE Archive/2026 (USE (\\Archive))")
	rc.ok("SUBSCRIBE Archive/2026")
	rc.ok("SUBSCRIBE Gone")
	lines := rc.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" %%`)
	all := strings.Join(lines, "\n")
	if !strings.Contains(all, `* LIST (\HasChildren) "/" Archive ("CHILDINFO" ("SUBSCRIBED"))`) ||
		!strings.Contains(all, `* LIST (\NonExistent \Subscribed) "/" Gone`) || strings.Contains(all, "Archive/2026") {
		t.Fatalf("%s", all)
	}
	lines = rc.ok(`LIST (SPECIAL-USE) "" *`)
	if len(lines) != 4 || !strings.Contains(strings.Join(lines, "\n"), `\Archive) "/" Archive/2026`) {
		t.Fatalf("%q", lines)
	}
	lines = rc.ok(`LIST "" (INBOX Archive/%%) RETURN (CHILDREN STATUS (MESSAGES UIDVALIDITY))`)
	if len(lines) != 4 || !strings.HasPrefix(lines[1], "* STATUS Archive/2026 (MESSAGES 0 UIDVALIDITY ") {
		t.Fatalf("%q", lines)
	}
	if lines := rc.ok(`LIST "" ""`); lines[0] != `* LIST (\Noselect) "/" ""` {
		t.Fatalf("%q", lines)
	}
	if lines := rc.ok(`LSUB "" *`); len(lines) != 7 {
		t.Fatalf("LSUB: %q", lines)
	}
}

// TestRev2Behaviour: ENABLE IMAP4rev2 switches SEARCH to ESEARCH and drops
// RECENT/UNSEEN from SELECT (RFC 9051 s6.3.1, appendix E).
func TestRev2Behaviour(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("r", "x"))
	rc := e.raw()
	rc.login("alice")
	lines := rc.ok("SELECT INBOX")
	if !strings.Contains(strings.Join(lines, "\n"), "RECENT") {
		t.Fatalf("rev1 SELECT without RECENT: %q", lines)
	}
	if l := rc.ok("SEARCH ALL"); l[0] != "* SEARCH 1" {
		t.Fatal(l)
	}
	if l := rc.ok("ENABLE IMAP4rev2"); l[0] != "* ENABLED IMAP4REV2" {
		t.Fatal(l)
	}
	lines = rc.ok("SELECT INBOX")
	if strings.Contains(strings.Join(lines, "\n"), "RECENT") || strings.Contains(strings.Join(lines, "\n"), "UNSEEN") {
		t.Fatalf("rev2 SELECT: %q", lines)
	}
	if l := rc.ok("SEARCH ALL"); l[0] != `* ESEARCH (TAG "t6") ALL 1` {
		t.Fatal(l)
	}
}

func TestRecentRev1(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("r1", "x"))
	e.deposit("alice", "INBOX", testMessage("r2", "x"))
	rc := e.raw()
	rc.login("alice")
	if lines := rc.ok("SELECT INBOX"); !slices.Contains(lines, "* 2 RECENT") {
		t.Fatalf("%q", lines)
	}
	if lines := rc.ok("FETCH 1 (FLAGS)"); lines[0] != `* 1 FETCH (FLAGS (\Recent))` {
		t.Fatalf("%q", lines)
	}
	rc2 := e.raw()
	rc2.login("alice")
	if lines := rc2.ok("SELECT INBOX"); !slices.Contains(lines, "* 0 RECENT") {
		t.Fatalf("second session: %q", lines)
	}
	if lines := rc2.ok("SEARCH RECENT"); lines[0] != "* SEARCH" {
		t.Fatalf("%q", lines)
	}
	rc2.ok("LOGOUT")
	e.deposit("alice", "INBOX", testMessage("r3", "x"))
	if lines := rc.ok("NOOP"); strings.Join(lines, "|") != "* 3 EXISTS|* 3 RECENT" {
		t.Fatalf("%q", lines)
	}
	if lines := rc.ok("SEARCH NEW"); lines[0] != "* SEARCH 1 2 3" {
		t.Fatalf("%q", lines)
	}
}

// TestLemonadeKeywords: $Forwarded, $SubmitPending and $Submitted are
// stored, kept by COPY and found by SEARCH KEYWORD (RFC 5550 s5.9, s5.10),
// and UNCHANGEDSINCE claims a message for submission atomically.
func TestLemonadeKeywords(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("k", "x"))
	rc := e.raw()
	rc.login("alice")
	lines := rc.ok("SELECT INBOX (CONDSTORE)")
	modseq := codeValue(t, lines, "HIGHESTMODSEQ")
	rc.ok("STORE 1 +FLAGS.SILENT ($Forwarded)")
	_, tagged := rc.cmd("UID STORE 1 (UNCHANGEDSINCE %d) +FLAGS ($SubmitPending)", modseq)
	if !strings.Contains(tagged, "[MODIFIED 1]") {
		t.Fatalf("stale claim succeeded: %s", tagged)
	}
	lines = rc.ok("FETCH 1 (MODSEQ)")
	cur := lines[0][strings.Index(lines[0], "MODSEQ (")+8 : strings.LastIndex(lines[0], "))")]
	lines, tagged = rc.cmd("UID STORE 1 (UNCHANGEDSINCE %s) +FLAGS ($SubmitPending $Submitted)", cur)
	if strings.Contains(tagged, "MODIFIED") || !strings.Contains(lines[0], "$SubmitPending") {
		t.Fatalf("claim: %q %s", lines, tagged)
	}
	rc.ok("COPY 1 Sent")
	rc.ok("SELECT Sent")
	if l := rc.ok("SEARCH KEYWORD $Submitted KEYWORD $Forwarded KEYWORD $SubmitPending"); l[0] != "* SEARCH 1" {
		t.Fatalf("%q", l)
	}
}

// TestLiteralPlusAndMinus: LITERAL+ in every state by default (the
// capability lists before and after login agree, RFC 5550); configured
// with LiteralMinus, LITERAL- and non-synchronizing literals above 4096
// octets refused (RFC 7888 s5), before and after login.
func TestLiteralPlusAndMinus(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	caps := strings.Join(rc.ok("CAPABILITY"), " ")
	if !strings.Contains(caps, " LITERAL+") || strings.Contains(caps, "LITERAL-") {
		t.Fatalf("capabilities before login: %s", caps)
	}
	rc.send(fmt.Sprintf("a1 LOGIN alice {%d+}\r\n%s", len(testPass), testPass))
	_, tagged := rc.until("a1")
	if !strings.Contains(tagged, "OK [CAPABILITY ") || !strings.Contains(tagged, "LITERAL+") || strings.Contains(tagged, "LITERAL-") {
		t.Fatalf("LOGIN: %s", tagged)
	}
	big := strings.Repeat("x", 6000)
	rc.send(fmt.Sprintf("a2 APPEND INBOX {%d+}\r\nSubject: big\r\n\r\n%s", len(big)+17, big))
	if _, tagged := rc.until("a2"); !strings.Contains(tagged, "OK [APPENDUID") {
		t.Fatalf("LITERAL+ APPEND of 6000 octets: %s", tagged)
	}

	e2 := newTestEnv(t, func(s *Server) { s.LiteralMinus = true })
	rc2 := e2.raw()
	caps = strings.Join(rc2.ok("CAPABILITY"), " ")
	if !strings.Contains(caps, " LITERAL-") || strings.Contains(caps, "LITERAL+") {
		t.Fatalf("capabilities with LiteralMinus: %s", caps)
	}
	// Small non-synchronizing literals are fine.
	rc2.send(fmt.Sprintf("b1 LOGIN alice {%d+}\r\n%s", len(testPass), testPass))
	if _, tagged := rc2.until("b1"); !strings.Contains(tagged, "OK") {
		t.Fatalf("LOGIN with a small literal: %s", tagged)
	}
	rc2.send(fmt.Sprintf("b2 APPEND INBOX {%d+}", len(big)+17))
	if l := rc2.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("oversized non-synchronizing literal with LITERAL-: %q", l)
	}
	// Before login too.
	rc3 := e2.raw()
	rc3.send("c1 LOGIN alice {6000+}")
	if l := rc3.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("oversized non-synchronizing literal before login: %q", l)
	}
}

// TestUTF8Accept: RFC 6855. After ENABLE UTF8=ACCEPT mailbox names travel
// in UTF-8 and APPEND takes UTF8 (literal8) with UTF-8 header fields;
// without it, UTF8 data is refused and names are modified UTF-7.
func TestUTF8Accept(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	if caps := strings.Join(rc.ok("CAPABILITY"), " "); !strings.Contains(caps, " UTF8=ACCEPT") {
		t.Fatalf("capabilities: %s", caps)
	}
	msg := "From: Jürgen <j@example.net>\r\nSubject: Grüße aus Köln\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nRückruf\r\n"
	rc.send(fmt.Sprintf("a0 APPEND INBOX UTF8 (~{%d+}\r\n%s)", len(msg), msg))
	if _, tagged := rc.until("a0"); !strings.Contains(tagged, "BAD") {
		t.Fatalf("UTF8 APPEND before ENABLE: %s", tagged)
	}
	if l := rc.ok("ENABLE UTF8=ACCEPT"); len(l) != 1 || l[0] != "* ENABLED UTF8=ACCEPT" {
		t.Fatalf("ENABLE: %q", l)
	}
	rc.ok("CREATE \"Grüße\"")
	rc.send(fmt.Sprintf("a1 APPEND \"Grüße\" (\\Seen) UTF8 (~{%d+}\r\n%s)", len(msg), msg))
	if _, tagged := rc.until("a1"); !strings.Contains(tagged, "OK [APPENDUID ") {
		t.Fatalf("UTF8 APPEND: %s", tagged)
	}
	lines := rc.ok("LIST \"\" \"Grü*\"")
	if len(lines) != 1 || !strings.HasSuffix(lines[0], "\"Grüße\"") {
		t.Fatalf("LIST in UTF-8: %q", lines)
	}
	rc.ok("SELECT \"Grüße\"")
	lines = rc.ok("FETCH 1 (ENVELOPE)")
	if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), "Grüße aus Köln") {
		t.Fatalf("ENVELOPE: %q", lines)
	}
	// A session without UTF8=ACCEPT sees modified UTF-7.
	rc2 := e.raw()
	rc2.login("alice")
	lines = rc2.ok("LIST \"\" \"*\"")
	if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasSuffix(l, " Gr&APwA3w-e") }) {
		t.Fatalf("LIST in modified UTF-7: %q", lines)
	}
}
