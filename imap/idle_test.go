package imap

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

func TestIdleRaw(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	rc.send("i1 IDLE")
	if l := rc.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatal(l)
	}
	start := time.Now()
	e.deposit("alice", "INBOX", testMessage("pushed", "x"))
	if l := rc.line(); l != "* 1 EXISTS" {
		t.Fatal(l)
	}
	if l := rc.line(); l != "* 1 RECENT" {
		t.Fatal(l)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("push took %v", d)
	}
	e.store.StoreFlags(storeReq(t, e, "alice", 1, `\Seen`))
	if l := rc.line(); !strings.HasPrefix(l, `* 1 FETCH (FLAGS (\Seen \Recent))`) {
		t.Fatal(l)
	}
	rc.send("done")
	if _, tagged := rc.until("i1"); !strings.Contains(tagged, "OK") {
		t.Fatal(tagged)
	}
	// Anything but DONE ends IDLE with BAD.
	rc.send("i2 IDLE")
	rc.line()
	rc.send("NOOP")
	if _, tagged := rc.until("i2"); !strings.Contains(tagged, "BAD") {
		t.Fatal(tagged)
	}
}

func TestIdleClient(t *testing.T) {
	e := newTestEnv(t)
	var mu sync.Mutex
	var exists uint32
	got := make(chan struct{}, 10)
	c, err := imapclient.DialInsecure(e.srv.PlainAddr(), &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Mailbox: func(d *imapclient.UnilateralDataMailbox) {
				if d.NumMessages != nil {
					mu.Lock()
					exists = *d.NumMessages
					mu.Unlock()
					got <- struct{}{}
				}
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	e.deposit("alice", "INBOX", testMessage("a", "x"))
	select {
	case <-got:
	case <-time.After(2 * time.Second):
		t.Fatal("no EXISTS during IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if exists != 1 {
		t.Fatal(exists)
	}
	_ = imap.FlagSeen
}
