package imap

import (
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestMoveSameMailbox: MOVE into the selected mailbox is COPY plus
// EXPUNGE (RFC 6851 s3.3): the messages get new UIDs (COPYUID), the
// originals are expunged and the copies announced with EXISTS, all before
// the tagged OK; with QRESYNC the expunges are VANISHED (RFC 6851 s4.3).
func TestMoveSameMailbox(t *testing.T) {
	e := newTestEnv(t)
	for i := 1; i <= 3; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("ENABLE IMAP4rev2")
	lines := rc.ok("SELECT INBOX")
	uv := codeValue(t, lines, "UIDVALIDITY")
	rc.ok("STORE 2 +FLAGS.SILENT (\\Flagged)")
	lines = rc.ok("MOVE 1:2 INBOX")
	want := []string{
		fmt.Sprintf("* OK [COPYUID %d 1:2 4:5] moved", uv),
		"* 2 EXPUNGE",
		"* 1 EXPUNGE",
		"* 3 EXISTS",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("MOVE:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	lines = rc.ok("FETCH 1:* (UID FLAGS)")
	want = []string{
		"* 1 FETCH (UID 3 FLAGS ())",
		"* 2 FETCH (UID 4 FLAGS ())",
		`* 3 FETCH (UID 5 FLAGS (\Flagged))`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after MOVE:\n%s", strings.Join(lines, "\n"))
	}
	rc.ok("ENABLE QRESYNC")
	lines = rc.ok("UID MOVE 3 INBOX")
	want = []string{
		fmt.Sprintf("* OK [COPYUID %d 3 6] moved", uv),
		"* VANISHED 3",
		"* 3 EXISTS",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("UID MOVE:\n%s", strings.Join(lines, "\n"))
	}
	// A second session sees the same mailbox afterwards.
	c := e.client("alice")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(msgs) != 3 || msgs[0].UID != 4 || msgs[1].UID != 5 || msgs[2].UID != 6 {
		t.Fatalf("second session: %+v %v", msgs, err)
	}
	// go-imap's client: MOVE into the selected mailbox reports the copy.
	md, err := c.Move(imap.SeqSetNum(1), "INBOX").Wait()
	if err != nil || md.UIDValidity != uint32(uv) || md.SourceUIDs.String() != "4" || md.DestUIDs.String() != "7" {
		t.Fatalf("client MOVE: %+v %v", md, err)
	}
}
