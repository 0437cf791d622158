package notify

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// A deleted account's MWI subscriptions end at once with a final NOTIFY
// "terminated;reason=noresource", and an account created again under the
// name is not reported to them.
func TestMWIDeletedAccountEndsSubscriptions(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "dave", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, nil)
	phone, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	notifies := make(chan string, 64)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := phone.ReadFrom(buf)
			if err != nil {
				close(notifies)
				return
			}
			notifies <- string(buf[:n])
		}
	}()
	c := sipClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := subscribeReq(t, m.Addr(), "dave", "message-summary", 600)
	req.Contact().Address.Port = phone.LocalAddr().(*net.UDPAddr).Port
	res, err := c.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %v %v", res, err)
	}
	waitNotify := func(want string) {
		t.Helper()
		deadline := time.After(5 * time.Second)
		for {
			select {
			case n, ok := <-notifies:
				if !ok {
					t.Fatal("phone socket closed")
				}
				if strings.HasPrefix(n, "NOTIFY ") && strings.Contains(n, want) {
					return
				}
			case <-deadline:
				t.Fatalf("no NOTIFY with %q", want)
			}
		}
	}
	waitNotify("Subscription-State: active")
	if m.Subscriptions("dave") != 1 {
		t.Fatalf("subscriptions %d", m.Subscriptions("dave"))
	}
	if err := s.DeleteAccount("dave"); err != nil {
		t.Fatal(err)
	}
	if n := m.Subscriptions("dave"); n != 0 {
		t.Fatalf("%d subscriptions after the account was deleted", n)
	}
	waitNotify("Subscription-State: terminated;reason=noresource")
	mustAccount(t, s, "dave", vmstore.AccountOptions{})
	deposit(t, s, "dave")
	if n := m.Subscriptions("dave"); n != 0 {
		t.Fatalf("the new dave has %d subscriptions", n)
	}
}

// Presence belongs to the account identity: the sessions of a deleted
// account do not make an account created again under the name online.
func TestPresenceForgetsDeletedAccount(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "erin", vmstore.AccountOptions{})
	p := &Presence{Store: s, Logger: testLogger(t)}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := s.RecordSession("erin", true, "imap", "127.0.0.1:1", "127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if on, err := p.Online(ctx, "erin", s.LastSeq()); err != nil || !on {
		t.Fatalf("online after Login: %v %v", on, err)
	}
	if err := s.DeleteAccount("erin"); err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "erin", vmstore.AccountOptions{})
	if on, err := p.Online(ctx, "erin", s.LastSeq()); err != nil || on {
		t.Fatalf("the new erin is online through the old one's session: %v %v", on, err)
	}
}

// Held notifications belong to the account identity: an event of a deleted
// account is not held because an account created again under the name is
// online.
func TestHoldWhileOnlineIgnoresOtherIdentity(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "fay", vmstore.AccountOptions{HoldWhileOnline: true})
	old, _ := s.GetAccount("fay")
	if err := s.DeleteAccount("fay"); err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "fay", vmstore.AccountOptions{HoldWhileOnline: true})
	cur, _ := s.GetAccount("fay")
	p := &Presence{Store: s, Logger: testLogger(t)}
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := s.RecordSession("fay", true, "imap", "127.0.0.1:1", "127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	sink := newFakeSink("hook")
	h := &HoldWhileOnline{Sink: sink, Presence: p, Store: s}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev := vmstore.Event{Seq: s.LastSeq(), Type: vmstore.EventMessageNew, User: "fay", AccountID: cur.ID}
	if err := h.Deliver(ctx, &ev, 1); err != ErrHeld {
		t.Fatalf("event of the online account: %v, want held", err)
	}
	ev.AccountID = old.ID
	if err := h.Deliver(ctx, &ev, 1); err != nil {
		t.Fatalf("event of the deleted account: %v, want delivered", err)
	}
}
