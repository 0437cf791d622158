package imap

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func codeValue(t *testing.T, lines []string, code string) uint64 {
	t.Helper()
	re := regexp.MustCompile(`\[` + code + ` (\d+)\]`)
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in %q", code, lines)
	return 0
}

// TestQresyncResync is the RFC 7162 s3.2.5 flow: a client remembers
// UIDVALIDITY and HIGHESTMODSEQ, disconnects; another session changes flags
// and expunges; the client reselects with QRESYNC and learns exactly what
// changed.
func TestQresyncResync(t *testing.T) {
	e := newTestEnv(t)
	for i := 1; i <= 6; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	if l := rc.ok("ENABLE QRESYNC"); len(l) != 1 || l[0] != "* ENABLED QRESYNC" {
		t.Fatalf("ENABLE: %q", l)
	}
	lines := rc.ok("SELECT INBOX")
	uidValidity := codeValue(t, lines, "UIDVALIDITY")
	modseq := codeValue(t, lines, "HIGHESTMODSEQ")
	rc.conn.Close()

	// Another session (go-imap's client) changes things.
	c := e.client("alice")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(3, 4), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	e.deposit("alice", "INBOX", testMessage("m7", "x"))

	rc = e.raw()
	rc.login("alice")
	rc.ok("ENABLE QRESYNC")
	lines = rc.ok("SELECT INBOX (QRESYNC (%d %d 1:6))", uidValidity, modseq)
	var got []string
	for _, l := range lines {
		if strings.Contains(l, "VANISHED") || strings.Contains(l, "FETCH") {
			got = append(got, regexp.MustCompile(`MODSEQ \(\d+\)`).ReplaceAllString(l, "MODSEQ (n)"))
		}
	}
	want := []string{
		"* VANISHED (EARLIER) 3:4",
		`* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (n))`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("QRESYNC select:\n%s\nwant:\n%s\nall: %q", strings.Join(got, "\n"), strings.Join(want, "\n"), lines)
	}
	// UID 7 is new (deposited after the client's modseq) but was not in its
	// known UIDs: with known-uids 1:6 it must not appear.
	_ = got

	// UID FETCH ... (CHANGEDSINCE VANISHED) gives the same answer.
	lines = rc.ok("UID FETCH 1:6 (FLAGS) (CHANGEDSINCE %d VANISHED)", modseq)
	if len(lines) != 2 || lines[0] != "* VANISHED (EARLIER) 3:4" || !strings.HasPrefix(lines[1], `* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (`) {
		t.Fatalf("UID FETCH VANISHED: %q", lines)
	}
	// Live: an expunge by the other session arrives as VANISHED.
	if _, err := c.Store(imap.UIDSetNum(5), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	lines = rc.ok("NOOP")
	if len(lines) == 0 || lines[len(lines)-1] != "* VANISHED 5" {
		t.Fatalf("live VANISHED: %q", lines)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "* 3 FETCH (UID 5 FLAGS (\\Deleted) MODSEQ (") {
			t.Fatalf("live update: %q", lines)
		}
	}
	// The client's own EXPUNGE: VANISHED and HIGHESTMODSEQ in the OK.
	rc.ok("UID STORE 6 +FLAGS.SILENT (\\Deleted)")
	l, tagged := rc.cmd("UID EXPUNGE 6")
	if len(l) != 1 || l[0] != "* VANISHED 6" || !strings.Contains(tagged, "OK [HIGHESTMODSEQ ") {
		t.Fatalf("UID EXPUNGE: %q %s", l, tagged)
	}
	// Reselect: CLOSED first.
	lines = rc.ok("EXAMINE INBOX")
	if lines[0] != "* OK [CLOSED] previous mailbox closed" {
		t.Fatalf("no CLOSED: %q", lines)
	}
	// UIDVALIDITY mismatch: nothing reported.
	lines = rc.ok("SELECT INBOX (QRESYNC (%d %d))", uidValidity+1, modseq)
	for _, l := range lines {
		if strings.Contains(l, "VANISHED") || strings.Contains(l, "FETCH") {
			t.Fatalf("reported despite UIDVALIDITY mismatch: %q", lines)
		}
	}
}

func TestQresyncNeedsEnable(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	_, tagged := rc.cmd("SELECT INBOX (QRESYNC (1 1))")
	if !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
	_, tagged = rc.cmd("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
	if !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
}

func TestCondstoreStore(t *testing.T) {
	e := newTestEnv(t)
	for i := 1; i <= 3; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	lines := rc.ok("SELECT INBOX (CONDSTORE)")
	modseq := codeValue(t, lines, "HIGHESTMODSEQ")
	// All unchanged: everything stored, FETCH with MODSEQ even with .SILENT.
	lines, tagged := rc.cmd("STORE 1:3 (UNCHANGEDSINCE %d) +FLAGS.SILENT ($Submitted)", modseq)
	if len(lines) != 3 || !strings.Contains(lines[0], "MODSEQ (") || strings.Contains(tagged, "MODIFIED") {
		t.Fatalf("conditional store: %q %s", lines, tagged)
	}
	// Now stale: every message fails, MODIFIED lists sequence numbers.
	_, tagged = rc.cmd("STORE 1:2 (UNCHANGEDSINCE %d) +FLAGS.SILENT (\\Flagged)", modseq)
	if !strings.Contains(tagged, "OK [MODIFIED 1:2]") {
		t.Fatal(tagged)
	}
	_, tagged = rc.cmd("UID STORE 3 (UNCHANGEDSINCE 0) -FLAGS ($Submitted)")
	if !strings.Contains(tagged, "[MODIFIED 3]") {
		t.Fatal(tagged)
	}
	// Setting a flag that is already set does not bump the modseq.
	before := rc.ok("FETCH 1 (MODSEQ)")
	rc.ok("STORE 1 +FLAGS.SILENT ($Submitted)")
	after := rc.ok("FETCH 1 (MODSEQ)")
	if before[0] != after[0] {
		t.Fatalf("no-op STORE changed modseq: %q -> %q", before, after)
	}
	// SEARCH MODSEQ.
	lines = rc.ok("SEARCH MODSEQ %d", modseq+1)
	if !strings.HasPrefix(lines[0], "* SEARCH 1 2 3 (MODSEQ ") {
		t.Fatalf("SEARCH MODSEQ: %q", lines)
	}
	lines = rc.ok("UID SEARCH RETURN (COUNT MAX) MODSEQ %d", modseq+1)
	if !strings.Contains(lines[0], "UID MAX 3 COUNT 3 MODSEQ ") {
		t.Fatalf("ESEARCH MODSEQ: %q", lines)
	}
	// FETCH CHANGEDSINCE.
	lines = rc.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE %d)", modseq)
	if len(lines) != 3 {
		t.Fatalf("CHANGEDSINCE: %q", lines)
	}
	// 2^63 is out of range.
	if _, tagged := rc.cmd("FETCH 1 (FLAGS) (CHANGEDSINCE 9223372036854775808)"); !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
}

// TestQresyncModseqHeldBelowPendingExpunge: while an expunge cannot be sent
// (FETCH by sequence number), MODSEQs above it go out, and the server must
// then announce a HIGHESTMODSEQ below the expunge (RFC 7162 s3.2.10,
// erratum 1810), so that a client that disconnects now still learns of it.
func TestQresyncModseqHeldBelowPendingExpunge(t *testing.T) {
	e := newTestEnv(t)
	for i := 1; i <= 3; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("ENABLE QRESYNC")
	rc.ok("SELECT INBOX")
	st := e.store
	if _, err := st.StoreFlags(storeReq(t, e, "alice", 1, `\Deleted`)); err != nil {
		t.Fatal(err)
	}
	mb, _ := st.Mailbox("alice", "INBOX")
	if _, err := st.Expunge("alice", mb.ID, nil); err != nil {
		t.Fatal(err)
	}
	mb, _ = st.Mailbox("alice", "INBOX")
	expModseq := mb.HighestModSeq
	if _, err := st.StoreFlags(storeReq(t, e, "alice", 2, `\Flagged`)); err != nil {
		t.Fatal(err)
	}
	lines := rc.ok("FETCH 1:* (FLAGS)")
	held := uint64(0)
	for _, l := range lines {
		if strings.Contains(l, "VANISHED") || strings.Contains(l, "EXPUNGE") {
			t.Fatalf("expunge sent during FETCH: %q", lines)
		}
		if strings.Contains(l, "HIGHESTMODSEQ") {
			held = codeValue(t, []string{l}, "HIGHESTMODSEQ")
		}
	}
	if held == 0 || held >= expModseq {
		t.Fatalf("HIGHESTMODSEQ %d after MODSEQs above the pending expunge at %d: %q", held, expModseq, lines)
	}
	lines = rc.ok("NOOP")
	if len(lines) != 1 || lines[0] != "* VANISHED 1" {
		t.Fatalf("NOOP: %q", lines)
	}
	// Nothing pending any more: no held HIGHESTMODSEQ.
	for _, l := range rc.ok("FETCH 1:* (FLAGS)") {
		if strings.Contains(l, "HIGHESTMODSEQ") {
			t.Fatalf("held HIGHESTMODSEQ without pending expunges: %q", l)
		}
	}
}
