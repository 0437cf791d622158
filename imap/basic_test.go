package imap

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

func TestGreetingCapabilityLogin(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	lines, tagged := rc.cmd("CAPABILITY")
	if !strings.Contains(lines[0], "IMAP4rev2") || !strings.Contains(lines[0], "AUTH=PLAIN") || strings.Contains(lines[0], "LOGINDISABLED") {
		t.Fatalf("capability on loopback: %q %s", lines, tagged)
	}
	_, tagged = rc.cmd("LOGIN alice wrong")
	if !strings.Contains(tagged, "NO [AUTHENTICATIONFAILED]") {
		t.Fatal(tagged)
	}
	_, tagged = rc.cmd("LOGIN alice %s", testPass)
	if !strings.Contains(tagged, "OK [CAPABILITY ") || !strings.Contains(tagged, "CONDSTORE") {
		t.Fatal(tagged)
	}
	_, tagged = rc.cmd("LOGIN alice %s", testPass)
	if !strings.Contains(tagged, "BAD") {
		t.Fatal("LOGIN in authenticated state:", tagged)
	}
	lines, tagged = rc.cmd("LOGOUT")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "* BYE") || !strings.Contains(tagged, "OK") {
		t.Fatal(lines, tagged)
	}
}

func TestClientBasics(t *testing.T) {
	e := newTestEnv(t)
	c := e.client("alice")
	// LIST with special use.
	mbs, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]*imap.ListData{}
	for _, mb := range mbs {
		names[mb.Mailbox] = mb
	}
	if names["INBOX"] == nil || names["Trash"] == nil || !hasAttr(names["Trash"].Attrs, imap.MailboxAttrTrash) {
		t.Fatalf("LIST: %+v", mbs)
	}
	if err := c.Create("Saved/2026", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("Saved/2026", "Saved/old", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe("Saved/old").Wait(); err != nil {
		t.Fatal(err)
	}
	mbs, err = c.List("", "Saved/%", &imap.ListOptions{SelectSubscribed: true}).Collect()
	if err != nil || len(mbs) != 1 || mbs[0].Mailbox != "Saved/old" {
		t.Fatalf("LIST subscribed: %+v %v", mbs, err)
	}
	// APPEND with flags, APPENDUID.
	msg := testMessage("hello", "voice message body")
	ac := c.Append("INBOX", int64(len(msg)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagFlagged}})
	ac.Write([]byte(msg))
	ac.Close()
	ad, err := ac.Wait()
	if err != nil || ad.UID == 0 {
		t.Fatalf("APPEND: %+v %v", ad, err)
	}
	st, err := c.Status("INBOX", &imap.StatusOptions{NumMessages: true, UIDNext: true, NumUnseen: true, Size: true, HighestModSeq: true}).Wait()
	if err != nil || *st.NumMessages != 1 || *st.NumUnseen != 1 || *st.Size != int64(len(msg)) || st.HighestModSeq == 0 {
		t.Fatalf("STATUS: %+v %v", st, err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 || sel.UIDValidity == 0 {
		t.Fatalf("SELECT: %+v %v", sel, err)
	}
	// FETCH of everything the client can ask for.
	bodySec := &imap.FetchItemBodySection{}
	hdrSec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Subject"}, Peek: true}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		Flags: true, UID: true, InternalDate: true, RFC822Size: true, Envelope: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection: []*imap.FetchItemBodySection{bodySec, hdrSec},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("FETCH: %v %v", msgs, err)
	}
	m := msgs[0]
	if m.Envelope == nil || m.Envelope.Subject != "hello" || len(m.Envelope.From) != 1 || m.Envelope.From[0].Host != "example.net" {
		t.Fatalf("ENVELOPE: %+v", m.Envelope)
	}
	if string(m.FindBodySection(bodySec)) != msg {
		t.Fatalf("BODY[]: %q", m.FindBodySection(bodySec))
	}
	if got := string(m.FindBodySection(hdrSec)); got != "Subject: hello\r\n\r\n" {
		t.Fatalf("HEADER.FIELDS: %q", got)
	}
	if m.RFC822Size != int64(len(msg)) || m.BodyStructure == nil || m.BodyStructure.MediaType() != "text/plain" {
		t.Fatalf("size/bodystructure: %d %+v", m.RFC822Size, m.BodyStructure)
	}
	// BODY[] without PEEK set \Seen.
	if !hasFlag(m.Flags, imap.FlagSeen) {
		t.Fatalf("flags after BODY[]: %v", m.Flags)
	}
	// STORE, SEARCH.
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{"$Forwarded"}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{"$Forwarded"}, Header: []imap.SearchCriteriaHeaderField{{Key: "Subject", Value: "HELLO"}}}, nil).Wait()
	if err != nil || len(sd.AllUIDs()) != 1 || sd.AllUIDs()[0] != ad.UID {
		t.Fatalf("UID SEARCH: %+v %v", sd, err)
	}
	sd, err = c.Search(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
	if err != nil || len(sd.AllSeqNums()) != 0 {
		t.Fatalf("SEARCH UNSEEN: %+v %v", sd, err)
	}
	// COPY, MOVE with COPYUID; EXPUNGE.
	cd, err := c.Copy(imap.SeqSetNum(1), "Saved/old").Wait()
	if err != nil || cd.UIDValidity == 0 || len(cd.DestUIDs) != 1 {
		t.Fatalf("COPY: %+v %v", cd, err)
	}
	md, err := c.Move(imap.SeqSetNum(1), "Trash").Wait()
	if err != nil || md == nil || md.DestUIDs.String() == "" {
		t.Fatalf("MOVE: %+v %v", md, err)
	}
	if mb, _ := e.store.Mailbox("alice", "INBOX"); mb.Counts.Messages != 0 {
		t.Fatal("MOVE left the message")
	}
	if _, err := c.Select("Trash", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Expunge().Collect(); err != nil {
		t.Fatal(err)
	}
	if mb, _ := e.store.Mailbox("alice", "Trash"); mb.Counts.Messages != 0 {
		t.Fatal("EXPUNGE left the message")
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("Saved/old").Wait(); err != nil {
		t.Fatal(err)
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) != 1 || ns.Personal[0].Delim != '/' {
		t.Fatalf("NAMESPACE: %+v %v", ns, err)
	}
	if _, err := c.ID(&imap.IDData{Name: "test"}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}

func hasAttr(attrs []imap.MailboxAttr, a imap.MailboxAttr) bool {
	for _, x := range attrs {
		if strings.EqualFold(string(x), string(a)) {
			return true
		}
	}
	return false
}

func hasFlag(flags []imap.Flag, f imap.Flag) bool {
	for _, x := range flags {
		if strings.EqualFold(string(x), string(f)) {
			return true
		}
	}
	return false
}
