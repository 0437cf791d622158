package notify

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

// TestWebhookMessageURL: the webhook payload's vnd.lemonvox.url is an
// URLAUTH URL to the message that resolves for the configured access
// until the event time plus the lifetime, and is the same on every build
// of the payload (retries sign the same bytes).
func TestWebhookMessageURL(t *testing.T) {
	s := openStore(t, "")
	if _, err := s.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader("From: <x@example.net>\r\nSubject: hi\r\n\r\nvoice\r\n")})
	if err != nil {
		t.Fatal(err)
	}
	evTime := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	ev := &vmstore.Event{Seq: 7, Type: vmstore.EventMessageNew, Time: evTime, User: "alice", Mailbox: "INBOX",
		UIDValidity: res.Mailbox.UIDValidity, UIDs: []uint32{res.Message.UID}}
	now := evTime
	r := channel.NewResolver(s, "vm.example.net:993")
	r.Now = func() time.Time { return now }
	for _, c := range []struct {
		access string
		req    channel.Requester
		other  channel.Requester
	}{
		{"anonymous", channel.Requester{}, channel.Requester{}},
		{"submit", channel.Requester{User: "alice", Authenticated: true, Submit: true}, channel.Requester{User: "alice", Authenticated: true}},
	} {
		m := &MessageURLs{Resolver: r, Access: c.access, Lifetime: 24 * time.Hour}
		if err := m.Check(); err != nil {
			t.Fatal(err)
		}
		p := PayloadBuilder{ServerName: "vm.example.net", URLFor: m.URLFor}
		b1, err := p.Build(ev)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := p.Build(ev)
		if string(b1) != string(b2) {
			t.Fatal("payload not deterministic")
		}
		u := m.URLFor(ev)
		if !strings.HasPrefix(u, "imap://alice@vm.example.net:993/INBOX;UIDVALIDITY=") || !strings.Contains(u, ";EXPIRE=2026-12-06T10:00:00Z;URLAUTH=") ||
			!strings.Contains(string(b1), `"vnd.lemonvox.url":"`+u+`"`) {
			t.Fatalf("%s: URL %q in %s", c.access, u, b1)
		}
		now = evTime.Add(time.Hour)
		rs, err := r.ResolveURL(context.Background(), u, c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.access, err)
		}
		rs.Close()
		if c.access == "submit" {
			if _, err := r.ResolveURL(context.Background(), u, c.other); !errors.Is(err, channel.ErrNotPermitted) {
				t.Fatalf("submit URL by alice herself: %v", err)
			}
		}
		now = evTime.Add(25 * time.Hour)
		if _, err := r.ResolveURL(context.Background(), u, c.req); !errors.Is(err, channel.ErrExpired) {
			t.Fatalf("%s after the lifetime: %v", c.access, err)
		}
	}
	// No URL for events about several or no messages, nor expunges.
	m := &MessageURLs{Resolver: r, Access: "anonymous", Lifetime: time.Hour}
	for _, e := range []vmstore.Event{
		{Type: vmstore.EventMessageExpunge, User: "alice", Mailbox: "INBOX", UIDValidity: 1, UIDs: []uint32{1}},
		{Type: vmstore.EventFlagsSet, User: "alice", Mailbox: "INBOX", UIDValidity: 1, UIDs: []uint32{1, 2}},
		{Type: vmstore.EventMessageNew, User: "alice", Mailbox: "Nope", UIDValidity: 1, UIDs: []uint32{1}},
	} {
		if u := m.URLFor(&e); u != "" {
			t.Errorf("%s: %q", e.Type, u)
		}
	}
	for _, bad := range []MessageURLs{{Resolver: r, Access: "anonymous"}, {Resolver: r, Access: "user+bob", Lifetime: time.Hour}, {Resolver: r, Access: "", Lifetime: time.Hour}} {
		if err := bad.Check(); err == nil {
			t.Errorf("%+v accepted", bad.Access)
		}
	}
}
