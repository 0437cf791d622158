package imap

import (
	"slices"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"
)

// TestClientMore drives the commands TestClientBasics does not, all through
// go-imap's client.
func TestClientMore(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 4; i++ {
		e.deposit("alice", "INBOX", testMessage("m"+u32(uint32(i)), "x"))
	}
	c, err := imapclient.DialInsecure(e.srv.PlainAddr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// AUTHENTICATE PLAIN (SASL-IR).
	if err := c.Authenticate(sasl.NewPlainClient("", "alice", testPass)); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil || !caps.Has(imap.CapCondStore) || !caps.Has(imap.CapQResync) || !caps.Has("NOTIFY") {
		t.Fatalf("CAPABILITY: %v %v", caps, err)
	}
	en, err := c.Enable(imap.CapMetadata).Wait()
	if err != nil || !en.Caps.Has(imap.CapMetadata) {
		t.Fatalf("ENABLE: %+v %v", en, err)
	}
	// LIST RETURN (STATUS SPECIAL-USE), STATUS APPENDLIMIT.
	mbs, err := c.List("", "%", &imap.ListOptions{ReturnStatus: &imap.StatusOptions{NumMessages: true, UIDNext: true}, ReturnSpecialUse: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	for _, mb := range mbs {
		if mb.Mailbox == "INBOX" && (mb.Status == nil || *mb.Status.NumMessages != 4) {
			t.Fatalf("LIST-STATUS: %+v", mb)
		}
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{AppendLimit: true, NumDeleted: true}).Wait()
	if err != nil || st.AppendLimit == nil || *st.AppendLimit != DefaultAppendLimit {
		t.Fatalf("STATUS APPENDLIMIT: %+v %v", st, err)
	}
	// SUBSCRIBE / UNSUBSCRIBE.
	if err := c.Subscribe("Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe("Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if subs, _ := e.store.Subscriptions("alice"); slices.Contains(subs, "Trash") {
		t.Fatalf("UNSUBSCRIBE: %v", subs)
	}
	// EXAMINE is read-only.
	sd, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil || sd.NumMessages != 4 || sd.HighestModSeq == 0 {
		t.Fatalf("EXAMINE: %+v %v", sd, err)
	}
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err == nil {
		t.Fatal("STORE in a read-only mailbox succeeded")
	}
	sd, err = c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	modseq := sd.HighestModSeq
	// UID STORE with UNCHANGEDSINCE, UID FETCH with CHANGEDSINCE.
	if _, err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagAnswered}}, &imap.StoreOptions{UnchangedSince: modseq}).Collect(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.UIDSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{Flags: true, ModSeq: true, ChangedSince: modseq}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].UID != 2 || msgs[0].ModSeq <= modseq {
		t.Fatalf("CHANGEDSINCE: %+v %v", msgs, err)
	}
	// ESEARCH.
	sr, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagAnswered}}, &imap.SearchOptions{ReturnCount: true, ReturnMin: true}).Wait()
	if err != nil || sr.Count != 1 || sr.Min != 2 {
		t.Fatalf("ESEARCH: %+v %v", sr, err)
	}
	// imapclient (beta.8) does not send RETURN (SAVE); SEARCHRES is covered
	// by TestSearchRes with a raw client.
	// UID COPY, UID MOVE, UID EXPUNGE.
	if _, err := c.Copy(imap.UIDSetNum(1), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Move(imap.UIDSetNum(4), "Trash").Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.UIDSetNum(1, 3), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	gone, err := c.UIDExpunge(imap.UIDSetNum(3)).Collect()
	if err != nil || len(gone) != 1 {
		t.Fatalf("UID EXPUNGE: %v %v", gone, err)
	}
	// CLOSE expunges the rest of the \Deleted messages.
	if err := c.UnselectAndExpunge().Wait(); err != nil {
		t.Fatal(err)
	}
	if mb, _ := e.store.Mailbox("alice", "INBOX"); mb.Counts.Messages != 1 {
		t.Fatalf("after CLOSE: %d messages", mb.Counts.Messages)
	}
	if mb, _ := e.store.Mailbox("alice", "Trash"); mb.Counts.Messages != 2 {
		t.Fatalf("Trash: %d messages", mb.Counts.Messages)
	}
}
