package imap

import (
	"slices"
	"testing"
)

// TestExamineRecent: EXAMINE reports the \Recent count and shows the
// flag without taking it, so a later SELECT still gets the messages as
// recent (RFC 3501 s6.3.2: EXAMINE is SELECT read-only, and \Recent is not
// lost).
func TestExamineRecent(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("r1", "x"))
	e.deposit("alice", "INBOX", testMessage("r2", "x"))
	rc := e.raw()
	rc.login("alice")
	if lines := rc.ok("EXAMINE INBOX"); !slices.Contains(lines, "* 2 RECENT") {
		t.Fatalf("EXAMINE: %q", lines)
	}
	if lines := rc.ok("FETCH 1:2 (FLAGS)"); !slices.Equal(lines, []string{`* 1 FETCH (FLAGS (\Recent))`, `* 2 FETCH (FLAGS (\Recent))`}) {
		t.Fatalf("FETCH: %q", lines)
	}
	if lines := rc.ok("SEARCH RECENT"); lines[0] != "* SEARCH 1 2" {
		t.Fatalf("SEARCH RECENT: %q", lines)
	}
	rc2 := e.raw()
	rc2.login("alice")
	if lines := rc2.ok("EXAMINE INBOX"); !slices.Contains(lines, "* 2 RECENT") {
		t.Fatalf("second EXAMINE: %q", lines)
	}
	if lines := rc.ok("SELECT INBOX"); !slices.Contains(lines, "* 2 RECENT") {
		t.Fatalf("SELECT after EXAMINE: %q", lines)
	}
	// Taken by the SELECT: the next EXAMINE and SELECT report none.
	if lines := rc2.ok("EXAMINE INBOX"); !slices.Contains(lines, "* 0 RECENT") {
		t.Fatalf("EXAMINE after SELECT: %q", lines)
	}
	if lines := rc2.ok("SEARCH RECENT"); lines[0] != "* SEARCH" {
		t.Fatalf("%q", lines)
	}
}
