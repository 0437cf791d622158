package imap

import (
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestNotify(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	rc.ok("ENABLE IMAP4rev2") // no \Recent
	rc.ok("SELECT INBOX")
	lines := rc.ok("NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (PERSONAL (MessageNew MessageExpunge MailboxName SubscriptionChange))")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], `* STATUS Drafts (MESSAGES 0 UIDNEXT 1 UIDVALIDITY `) {
		t.Fatalf("STATUS indicator: %q", lines)
	}
	// Pushed without any command from the client.
	e.deposit("alice", "INBOX", testMessage("n1", "x"))
	if l := rc.line(); l != "* 1 EXISTS" {
		t.Fatal(l)
	}
	if l := rc.line(); l != "* 1 FETCH (UID 1 FLAGS ())" {
		t.Fatal(l)
	}
	e.deposit("alice", "Trash", testMessage("n2", "x"))
	if l := rc.line(); l != `* STATUS "Trash" (MESSAGES 1 UIDNEXT 2 UNSEEN 1)` {
		t.Fatal(l)
	}
	if _, err := e.store.CreateMailbox("alice", "Work", ""); err != nil {
		t.Fatal(err)
	}
	if l := rc.line(); l != `* LIST () "/" "Work"` {
		t.Fatal(l)
	}
	e.store.Subscribe("alice", "Work", true)
	if l := rc.line(); l != `* LIST (\Subscribed) "/" "Work"` {
		t.Fatal(l)
	}
	mb, _ := e.store.Mailbox("alice", "INBOX")
	e.store.StoreFlags(vmstore.StoreReq{User: "alice", MailboxID: mb.ID, UIDs: []uint32{1}, Op: vmstore.FlagsAdd, Flags: []string{vmstore.FlagDeleted}})
	if l := rc.line(); l != `* 1 FETCH (FLAGS (\Deleted))` {
		t.Fatal(l)
	}
	e.store.Expunge("alice", mb.ID, nil)
	if l := rc.line(); l != "* 1 EXPUNGE" {
		t.Fatal(l)
	}
	// The session's own CREATE is not echoed.
	if lines := rc.ok("CREATE Mine"); len(lines) != 0 {
		t.Fatalf("own change echoed: %q", lines)
	}
	if _, tagged := rc.cmd("NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))"); !strings.Contains(tagged, "NO [BADEVENT (") {
		t.Fatal(tagged)
	}
	if _, tagged := rc.cmd("NOTIFY SET (PERSONAL (MessageNew))"); !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
	rc.ok("NOTIFY NONE")
	e.deposit("alice", "Trash", testMessage("n3", "x"))
	e.deposit("alice", "INBOX", testMessage("n4", "x"))
	rc.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if l, err := rc.r.ReadString('\n'); err == nil {
		t.Fatalf("pushed after NOTIFY NONE: %q", l)
	}
	// At the next command the selected mailbox's change still comes.
	if lines := rc.ok("NOOP"); len(lines) != 1 || lines[0] != "* 1 EXISTS" {
		t.Fatalf("%q", lines)
	}
	// INBOXES: deposits may name any mailbox, so it covers them all
	// (RFC 5465 s6.4).
	rc.ok("NOTIFY SET (INBOXES (MessageNew MessageExpunge))")
	e.deposit("alice", "Trash", testMessage("n5", "x"))
	if l := rc.line(); l != `* STATUS "Trash" (MESSAGES 3 UIDNEXT 4 UNSEEN 3)` {
		t.Fatal(l)
	}
}
