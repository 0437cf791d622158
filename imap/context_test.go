package imap

import (
	"fmt"
	"strings"
	"testing"
)

// RFC 5267 s4.3 scenario tests: ADDTO and REMOVEFROM go out with the
// responses of the command that caused them, as position plus ranges, with
// sequence numbers that are valid when they are read.

func contextEnv(t *testing.T, n int) (*testEnv, *rawClient) {
	t.Helper()
	e := newTestEnv(t)
	for i := 1; i <= n; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("ENABLE IMAP4rev2")
	rc.ok("SELECT INBOX")
	return e, rc
}

// TestContextSearchOwnStore: a STORE (by sequence number, during which no
// EXPUNGE may be sent) updates the context in its own responses, one pair
// with ranges.
func TestContextSearchOwnStore(t *testing.T) {
	_, rc := contextEnv(t, 6)
	wantLines(t, "SEARCH", rc.ok("SEARCH RETURN (UPDATE) FLAGGED"), `* ESEARCH (TAG "t4")`)
	wantLines(t, "STORE", rc.ok(`STORE 2:3,5 +FLAGS.SILENT (\Flagged)`), `* ESEARCH (TAG "t4") ADDTO (0 2:3,5)`)
	wantLines(t, "NOOP", rc.ok("NOOP"))
	wantLines(t, "STORE", rc.ok(`STORE 2,5 -FLAGS (\Flagged)`),
		`* 2 FETCH (FLAGS ())`, `* 5 FETCH (FLAGS ())`, `* ESEARCH (TAG "t4") REMOVEFROM (0 2,5)`)
	wantLines(t, "NOOP", rc.ok("NOOP"))
}

// TestContextSearchExpunge: the REMOVEFROM of expunged messages comes
// before the EXPUNGE responses, with the sequence numbers they had (RFC
// 5267 s4.3.4); a UID context names UIDs.
func TestContextSearchExpunge(t *testing.T) {
	_, rc := contextEnv(t, 5)
	rc.ok(`STORE 2:3 +FLAGS.SILENT (\Flagged \Deleted)`)
	rc.ok(`STORE 5 +FLAGS.SILENT (\Flagged)`)
	wantLines(t, "SEARCH", rc.ok("SEARCH RETURN (UPDATE ALL) FLAGGED"), `* ESEARCH (TAG "t6") ALL 2:3,5`)
	wantLines(t, "UID SEARCH", rc.ok("UID SEARCH RETURN (UPDATE COUNT) FLAGGED"), `* ESEARCH (TAG "t7") UID COUNT 3`)
	wantLines(t, "EXPUNGE", rc.ok("EXPUNGE"),
		`* ESEARCH (TAG "t6") REMOVEFROM (0 2:3)`,
		`* ESEARCH (TAG "t7") UID REMOVEFROM (0 2:3)`,
		"* 3 EXPUNGE", "* 2 EXPUNGE")
	wantLines(t, "NOOP", rc.ok("NOOP"))
	// Message 5 is now message 3.
	wantLines(t, "STORE", rc.ok(`STORE 3 -FLAGS.SILENT (\Flagged)`),
		`* ESEARCH (TAG "t6") REMOVEFROM (0 3)`, `* ESEARCH (TAG "t7") UID REMOVEFROM (0 5)`)
}

// TestContextSearchOtherSession: changes by another session reach the
// context with the FETCH and EXISTS that carry them; ADDTO of a new
// message follows its EXISTS, REMOVEFROM of an expunged one precedes its
// EXPUNGE.
func TestContextSearchOtherSession(t *testing.T) {
	e, rc := contextEnv(t, 3)
	other := e.raw()
	other.login("alice")
	other.ok("SELECT INBOX")
	wantLines(t, "SEARCH", rc.ok("SEARCH RETURN (UPDATE) UNSEEN"), `* ESEARCH (TAG "t4") ALL 1:3`)
	other.ok(`STORE 1:2 +FLAGS.SILENT (\Seen \Deleted)`)
	e.deposit("alice", "INBOX", testMessage("m4", "x"))
	wantLines(t, "NOOP", rc.ok("NOOP"),
		"* 4 EXISTS",
		`* 1 FETCH (FLAGS (\Deleted \Seen))`, `* 2 FETCH (FLAGS (\Deleted \Seen))`,
		`* ESEARCH (TAG "t4") REMOVEFROM (0 1:2) ADDTO (0 4)`)
	other.ok(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	wantLines(t, "NOOP", rc.ok("NOOP"),
		`* ESEARCH (TAG "t4") REMOVEFROM (0 3)`,
		"* 3 EXPUNGE", "* 2 EXPUNGE", "* 1 EXPUNGE")
}

// TestContextSortPositions: a SORT context names positions in the sorted
// result, one pair per run, each pair applied after the previous ones
// (RFC 5267 s4.3.3, s4.3.4 and the "1 2731:2733" example).
func TestContextSortPositions(t *testing.T) {
	_, rc := contextEnv(t, 8)
	rc.ok(`STORE 1:8 +FLAGS.SILENT (\Flagged)`)
	wantLines(t, "SORT", rc.ok("SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 FLAGGED"), `* ESEARCH (TAG "t5") ALL 8,7,6,5,4,3,2,1`)
	wantLines(t, "UID SORT", rc.ok("UID SORT RETURN (UPDATE) (ARRIVAL) UTF-8 FLAGGED"), `* ESEARCH (TAG "t6") UID ALL 1:8`)
	// Removed: 7 (position 2), then 4 and 3 (positions 4 and 5 of what
	// is left: 8,6,5,4,3,2,1).
	wantLines(t, "STORE", rc.ok(`STORE 3:4,7 -FLAGS.SILENT (\Flagged)`),
		`* ESEARCH (TAG "t5") REMOVEFROM (2 7 4 4,3)`,
		`* ESEARCH (TAG "t6") UID REMOVEFROM (3 3:4 5 7)`)
	// Added back: each run goes where it belongs once the earlier runs
	// are in place.
	wantLines(t, "STORE", rc.ok(`STORE 3:4,7 +FLAGS.SILENT (\Flagged)`),
		`* ESEARCH (TAG "t5") ADDTO (2 7 5 4,3)`,
		`* ESEARCH (TAG "t6") UID ADDTO (3 3:4 7 7)`)
	// Expunge: sequence numbers before the EXPUNGE, positions too.
	rc.ok(`STORE 2,6 +FLAGS.SILENT (\Deleted)`)
	wantLines(t, "EXPUNGE", rc.ok("EXPUNGE"),
		`* ESEARCH (TAG "t5") REMOVEFROM (3 6 6 2)`,
		`* ESEARCH (TAG "t6") UID REMOVEFROM (2 2 5 6)`,
		"* 6 EXPUNGE", "* 2 EXPUNGE")
	// A new message: after its EXISTS, with its new sequence number.
	m9 := testMessage("m9", "x")
	lines, tagged := rc.cmd("APPEND INBOX (\\Flagged) {%d+}\r\n%s", len(m9), m9)
	if !strings.Contains(tagged, "OK [APPENDUID") {
		t.Fatal(tagged)
	}
	wantLines(t, "APPEND", lines,
		"* 7 EXISTS",
		`* ESEARCH (TAG "t5") ADDTO (1 7)`,
		`* ESEARCH (TAG "t6") UID ADDTO (7 9)`)
}
