package imap

import (
	"fmt"
	"strings"
	"testing"
)

// Scenario tests for what a session is told about flags while other
// sessions change the same mailbox: never a state older than one already
// sent, never a keyword before FLAGS listed it, and UID commands that act
// on messages the session has not been told of yet.

// wantLines fails unless got is exactly want, in order.
func wantLines(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\ngot  %q\nwant %q", what, got, want)
	}
}

// msgState reads a message's flags (space-separated) and modseq.
func msgState(t *testing.T, e *testEnv, mailbox string, uid uint32) (string, uint64) {
	t.Helper()
	mb, err := e.store.Mailbox("alice", mailbox)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.store.Message(mb.ID, uid)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(m.Flags, " "), m.ModSeq
}

// twoSessions returns two IMAP4rev2 sessions of alice with INBOX selected
// (CONDSTORE on), so that no \Recent enters the expected lines.
func twoSessions(t *testing.T, e *testEnv) (*rawClient, *rawClient) {
	t.Helper()
	var out [2]*rawClient
	for i := range out {
		rc := e.raw()
		rc.login("alice")
		rc.ok("ENABLE IMAP4rev2")
		rc.ok("SELECT INBOX (CONDSTORE)")
		out[i] = rc
	}
	return out[0], out[1]
}

// TestStoreNoStaleUpdateAfterOwn: B changes message 1, then A stores on it
// before it was told of B's change. A's own FETCH has the newest state; B's
// older state must not follow it (it would take \Seen away in the
// client's cache).
func TestStoreNoStaleUpdateAfterOwn(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("one", "x"))
	a, b := twoSessions(t, e)
	b.ok(`STORE 1 +FLAGS (\Flagged)`)
	lines := a.ok(`STORE 1 +FLAGS (\Seen)`)
	flags, mod := msgState(t, e, "INBOX", 1)
	if flags != `\Flagged \Seen` {
		t.Fatalf("store state %q", flags)
	}
	wantLines(t, "A's STORE", lines, fmt.Sprintf(`* 1 FETCH (FLAGS (\Flagged \Seen) MODSEQ (%d))`, mod))
	wantLines(t, "A's NOOP", a.ok("NOOP"))

	// .SILENT: A's store reports nothing, but the client still has to
	// learn of B's change; it gets the newest state, not B's.
	b.ok(`STORE 1 +FLAGS ($Heard)`)
	lines = a.ok(`STORE 1 -FLAGS.SILENT (\Seen)`)
	flags, mod = msgState(t, e, "INBOX", 1)
	want := []string{
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Forwarded $SubmitPending $Submitted $MDNSent $Junk $NotJunk $Heard)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Forwarded $SubmitPending $Submitted $MDNSent $Junk $NotJunk $Heard \*)] flags permitted`,
		fmt.Sprintf(`* 1 FETCH (FLAGS (%s) MODSEQ (%d))`, flags, mod),
	}
	wantLines(t, "A's STORE .SILENT", lines, want...)
	if strings.Contains(flags, `\Seen`) {
		t.Fatalf("store state %q", flags)
	}
}

// TestFetchNoStaleUpdateAfterOwn: FETCH BODY[] sets \Seen and reports the
// new flags; B's earlier change, queued, must not follow.
func TestFetchNoStaleUpdateAfterOwn(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("one", "x"))
	a, b := twoSessions(t, e)
	b.ok(`STORE 1 +FLAGS (\Answered)`)
	lines := a.ok(`FETCH 1 (FLAGS BODY[TEXT])`)
	flags, mod := msgState(t, e, "INBOX", 1)
	if flags != `\Answered \Seen` {
		t.Fatalf("store state %q", flags)
	}
	// The FETCH told the flags but not the MODSEQ (not asked): the update
	// that follows may repeat that state with its MODSEQ, never B's older
	// one.
	wantLines(t, "A's FETCH", lines, fmt.Sprintf("* 1 FETCH (FLAGS (%s) BODY[TEXT] {3}", flags), "x", ")",
		fmt.Sprintf(`* 1 FETCH (FLAGS (%s) MODSEQ (%d))`, flags, mod))
	wantLines(t, "A's NOOP", a.ok("NOOP"))
}

// TestKeywordFlagsBeforeFetch: a keyword new to the mailbox is announced
// in FLAGS and PERMANENTFLAGS to every session before a FETCH carries it
// (RFC 9051 s7.3.5); a read-only session's PERMANENTFLAGS () stays.
func TestKeywordFlagsBeforeFetch(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("one", "x"))
	a, b := twoSessions(t, e)
	ro := e.raw()
	ro.login("alice")
	ro.ok("ENABLE IMAP4rev2")
	ro.ok("EXAMINE INBOX")
	const sys = `\Answered \Flagged \Deleted \Seen \Draft $Forwarded $SubmitPending $Submitted $MDNSent $Junk $NotJunk`
	flagsLine := "* FLAGS (" + sys + " $Callback)"
	permLine := "* OK [PERMANENTFLAGS (" + sys + ` $Callback \*)] flags permitted`

	lines := b.ok(`STORE 1 +FLAGS ($Callback)`)
	_, mod := msgState(t, e, "INBOX", 1)
	fetch := fmt.Sprintf(`* 1 FETCH (FLAGS ($Callback) MODSEQ (%d))`, mod)
	wantLines(t, "B's STORE", lines, flagsLine, permLine, fetch)
	wantLines(t, "A's NOOP", a.ok("NOOP"), flagsLine, permLine, fetch)
	wantLines(t, "read-only NOOP", ro.ok("NOOP"), flagsLine, "* 1 FETCH (FLAGS ($Callback))")
	// Announced once.
	b.ok(`STORE 1 -FLAGS ($Callback)`)
	b.ok(`STORE 1 +FLAGS ($Callback)`)
	for _, rc := range []*rawClient{a, ro} {
		for _, l := range rc.ok("NOOP") {
			if strings.HasPrefix(l, "* FLAGS") || strings.Contains(l, "PERMANENTFLAGS") {
				t.Fatalf("FLAGS announced again: %q", l)
			}
		}
	}

	// APPEND with a new keyword: the other session learns of it before
	// its FETCH shows it.
	msg := testMessage("two", "y")
	_, tagged := b.cmd("APPEND INBOX ($Urgent) {%d+}\r\n%s", len(msg), msg)
	if !strings.Contains(tagged, "OK [APPENDUID") {
		t.Fatal(tagged)
	}
	wantLines(t, "A's NOOP after APPEND", a.ok("NOOP"), "* 2 EXISTS")
	flags2 := "* FLAGS (" + sys + " $Callback $Urgent)"
	perm2 := "* OK [PERMANENTFLAGS (" + sys + ` $Callback $Urgent \*)] flags permitted`
	wantLines(t, "A's FETCH of the new message", a.ok("FETCH 2 FLAGS"), flags2, perm2, "* 2 FETCH (FLAGS ($Urgent))")
	wantLines(t, "read-only NOOP after APPEND", ro.ok("NOOP"), "* 2 EXISTS")
	wantLines(t, "read-only FETCH", ro.ok("FETCH 2 FLAGS"), flags2, "* 2 FETCH (FLAGS ($Urgent))")
}

// TestUIDCommandsOnUnannouncedMessage: a UID command acts on every
// existing UID of its set, also a message appended by another session
// after this session's last update: it is announced (EXISTS) and acted on.
func TestUIDCommandsOnUnannouncedMessage(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("one", "x"))
	a, b := twoSessions(t, e)
	if _, err := e.store.CreateMailbox("alice", "Saved", ""); err != nil {
		t.Fatal(err)
	}
	appendB := func(flags string) uint32 {
		t.Helper()
		msg := testMessage("new", "z")
		_, tagged := b.cmd("APPEND INBOX (%s) {%d+}\r\n%s", flags, len(msg), msg)
		var v, uid uint32
		if _, err := fmt.Sscanf(tagged[strings.Index(tagged, "[APPENDUID"):], "[APPENDUID %d %d]", &v, &uid); err != nil {
			t.Fatalf("%s: %v", tagged, err)
		}
		return uid
	}

	// UID STORE.
	u := appendB("")
	lines := a.ok(`UID STORE %d +FLAGS (\Flagged)`, u)
	flags, mod := msgState(t, e, "INBOX", u)
	if flags != `\Flagged` {
		t.Fatalf("UID STORE did not set the flag: %q", flags)
	}
	wantLines(t, "UID STORE", lines, "* 2 EXISTS", fmt.Sprintf(`* 2 FETCH (UID %d FLAGS (\Flagged) MODSEQ (%d))`, u, mod))

	// UID FETCH.
	u = appendB(`\Seen`)
	_, mod = msgState(t, e, "INBOX", u)
	wantLines(t, "UID FETCH", a.ok("UID FETCH %d (FLAGS MODSEQ)", u), "* 3 EXISTS", fmt.Sprintf(`* 3 FETCH (UID %d FLAGS (\Seen) MODSEQ (%d))`, u, mod))

	// UID SEARCH.
	u = appendB("")
	wantLines(t, "UID SEARCH", a.ok("UID SEARCH UID %d", u), "* 4 EXISTS", fmt.Sprintf(`* ESEARCH (TAG "t%d") UID ALL %d`, a.n, u))

	// UID COPY.
	u = appendB("")
	lines, tagged := a.cmd("UID COPY %d Saved", u)
	wantLines(t, "UID COPY", lines, "* 5 EXISTS")
	if !strings.Contains(tagged, fmt.Sprintf(" %d 1] ", u)) {
		t.Fatalf("UID COPY: %s", tagged)
	}

	// UID EXPUNGE.
	u = appendB(`\Deleted`)
	wantLines(t, "UID EXPUNGE", a.ok("UID EXPUNGE %d", u), "* 6 EXISTS", "* 6 EXPUNGE")
	mb, _ := e.store.Mailbox("alice", "INBOX")
	if _, err := e.store.Message(mb.ID, u); err == nil {
		t.Fatal("UID EXPUNGE left the message")
	}

	// UID MOVE.
	u = appendB("")
	lines = a.ok("UID MOVE %d Saved", u)
	if len(lines) != 3 || lines[0] != "* 6 EXISTS" || !strings.HasPrefix(lines[1], "* OK [COPYUID ") || lines[2] != "* 6 EXPUNGE" {
		t.Fatalf("UID MOVE: %q", lines)
	}
	// The view matches the store.
	uids, err := e.store.UIDs(mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	lines = a.ok("UID SEARCH ALL")
	want := fmt.Sprintf(`* ESEARCH (TAG "t%d") UID ALL %s`, a.n, uidSetString(uids))
	wantLines(t, "final UID SEARCH", lines, want)
}

// TestExpungeKeepsOthersFlagChanges: EXPUNGE and MOVE once took the
// mailbox's highest modseq, read after the operation, for the session's
// own change; when another session's flag change had committed in
// between, its update was then skipped as if the client knew it.
func TestExpungeKeepsOthersFlagChanges(t *testing.T) {
	e := newTestEnv(t)
	target := e.deposit("alice", "INBOX", testMessage("target", "x"))
	e.deposit("alice", "INBOX", testMessage("gone", "y"), `\Deleted`)
	e.deposit("alice", "INBOX", testMessage("moved", "z"))
	if _, err := e.store.CreateMailbox("alice", "Saved", ""); err != nil {
		t.Fatal(err)
	}
	a, _ := twoSessions(t, e)
	t.Cleanup(func() { testHookAfterRemove = nil })
	store := func(flag string) {
		testHookAfterRemove = func() {
			testHookAfterRemove = nil
			if _, err := e.store.StoreFlags(storeReq(t, e, "alice", target, flag)); err != nil {
				t.Error(err)
			}
		}
	}

	store("$during1")
	lines := a.ok("EXPUNGE")
	flags, mod := msgState(t, e, "INBOX", target)
	const sys = `\Answered \Flagged \Deleted \Seen \Draft $Forwarded $SubmitPending $Submitted $MDNSent $Junk $NotJunk`
	wantLines(t, "EXPUNGE", lines, "* 2 EXPUNGE",
		"* FLAGS ("+sys+" $during1)",
		"* OK [PERMANENTFLAGS ("+sys+` $during1 \*)] flags permitted`,
		fmt.Sprintf("* 1 FETCH (FLAGS (%s) MODSEQ (%d))", flags, mod))

	store("$during2")
	lines = a.ok("MOVE 2 Saved")
	flags, mod = msgState(t, e, "INBOX", target)
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "* OK [COPYUID ") {
		t.Fatalf("MOVE: %q", lines)
	}
	wantLines(t, "MOVE", lines[1:], "* 2 EXPUNGE",
		"* FLAGS ("+sys+" $during1 $during2)",
		"* OK [PERMANENTFLAGS ("+sys+` $during1 $during2 \*)] flags permitted`,
		fmt.Sprintf("* 1 FETCH (FLAGS (%s) MODSEQ (%d))", flags, mod))
	wantLines(t, "NOOP", a.ok("NOOP"))
}
