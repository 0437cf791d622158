package vmstore

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func deposit(t *testing.T, s *Store, user, mailbox, body string) *DepositRes {
	t.Helper()
	res, err := s.Deposit(DepositReq{User: user, Mailbox: mailbox, Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestHubDeliversCommittedEventsInOrder(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "h")
	sub := s.Hub().Subscribe("h", 0)
	defer sub.Close()
	other := s.Hub().Subscribe("someone-else", 0)
	defer other.Close()
	for i := 0; i < 5; i++ {
		deposit(t, s, "h", "", "Subject: x\r\n\r\nbody"+string(rune('a'+i)))
	}
	select {
	case <-sub.C():
	case <-time.After(time.Second):
		t.Fatal("no wake-up")
	}
	evs, over := sub.Drain()
	if over || len(evs) != 5 {
		t.Fatalf("got %d events, overflow %v", len(evs), over)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 || evs[i].UIDs[0] != evs[i-1].UIDs[0]+1 {
			t.Fatalf("out of order: %+v then %+v", evs[i-1], evs[i])
		}
	}
	if evs, _ := other.Drain(); len(evs) != 0 {
		t.Fatalf("other account's subscriber got %d events", len(evs))
	}
	// Overflow: a slow subscriber is told to resynchronize.
	small := s.Hub().Subscribe("h", 2)
	defer small.Close()
	for i := 0; i < 3; i++ {
		deposit(t, s, "h", "", "Subject: y\r\n\r\nmore"+string(rune('a'+i)))
	}
	if _, over := small.Drain(); !over {
		t.Fatal("expected overflow")
	}
}

func TestRenameDeleteAndInbox(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "r")
	if _, err := s.CreateMailbox("r", "Work/Projects/A", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailbox("r", "Work/Projects"); err != nil {
		t.Fatal("parent not created:", err)
	}
	deposit(t, s, "r", "Work/Projects/A", "Subject: a\r\n\r\nA")
	if err := s.RenameMailbox("r", "Work", "Jobs"); err != nil {
		t.Fatal(err)
	}
	mb, err := s.Mailbox("r", "Jobs/Projects/A")
	if err != nil || mb.Counts.Messages != 1 {
		t.Fatalf("renamed child: %v %+v", err, mb)
	}
	if _, err := s.Mailbox("r", "Work/Projects/A"); !errors.Is(err, ErrNotFound) {
		t.Fatal("old name still there")
	}
	if err := s.RenameMailbox("r", "Jobs", "Jobs/Sub"); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("rename into itself: %v", err)
	}
	if err := s.RenameMailbox("r", "Jobs", "Trash"); !errors.Is(err, ErrExists) {
		t.Fatalf("rename onto existing: %v", err)
	}
	if err := s.DeleteMailbox("r", "inbox"); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("delete INBOX: %v", err)
	}
	if _, err := s.CreateMailbox("r", "bad//name", ""); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	// Renaming INBOX moves its messages and leaves it empty.
	deposit(t, s, "r", "", "Subject: i\r\n\r\nI")
	if err := s.RenameMailbox("r", "INBOX", "Old-Inbox"); err != nil {
		t.Fatal(err)
	}
	in, _ := s.Mailbox("r", "INBOX")
	old, _ := s.Mailbox("r", "Old-Inbox")
	if in.Counts.Messages != 0 || old.Counts.Messages != 1 {
		t.Fatalf("INBOX rename: inbox %d, old %d", in.Counts.Messages, old.Counts.Messages)
	}
	if err := s.DeleteMailbox("r", "Jobs/Projects/A"); err != nil {
		t.Fatal(err)
	}
	st, _ := s.CollectGarbage(t.Context())
	if st.BlobsRemoved != 1 {
		t.Fatalf("blob of deleted mailbox not collected: %+v", st)
	}
	if err := s.Subscribe("r", "Nonexistent", true); err != nil {
		t.Fatal(err)
	}
	subs, _ := s.Subscriptions("r")
	if !strings.Contains(strings.Join(subs, ","), "Nonexistent") {
		t.Fatalf("subscriptions %v", subs)
	}
	if err := s.DeleteAccount("r"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailboxes("r"); !errors.Is(err, ErrNotFound) {
		t.Fatal("account still has mailboxes")
	}
}

func TestRetentionSweep(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s, err := Open(Options{InMemory: true, GCInterval: -1, Hash: HashParams{Time: 1, MemKiB: 64}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.CreateAccount(AccountSpec{Name: "ret", Password: "x", Options: AccountOptions{Retention: Retention{TrashDays: 7, HeardDays: 30}}}); err != nil {
		t.Fatal(err)
	}
	heard := deposit(t, s, "ret", "", "Subject: heard\r\n\r\n1")
	deposit(t, s, "ret", "", "Subject: new\r\n\r\n2")
	trash := deposit(t, s, "ret", "Trash", "Subject: trash\r\n\r\n3")
	s.StoreFlags(StoreReq{User: "ret", MailboxID: heard.Mailbox.ID, UIDs: []uint32{heard.Message.UID}, Op: FlagsAdd, Flags: []string{FlagSeen}})
	now = now.Add(8 * 24 * time.Hour)
	st, err := s.Sweep(t.Context())
	if err != nil || st.Expired != 1 {
		t.Fatalf("after 8 days: %+v %v", st, err)
	}
	if _, err := s.Message(trash.Mailbox.ID, trash.Message.UID); !errors.Is(err, ErrNotFound) {
		t.Fatal("trash message kept")
	}
	now = now.Add(23 * 24 * time.Hour)
	st, _ = s.Sweep(t.Context())
	if st.Expired != 1 {
		t.Fatalf("after 31 days: %+v", st)
	}
	in, _ := s.Mailbox("ret", "INBOX")
	if in.Counts.Messages != 1 {
		t.Fatalf("unheard message must stay: %d", in.Counts.Messages)
	}
	evs, _ := s.ReadJournal(0, 1000)
	if evs[len(evs)-1].Type != EventMessageExpire {
		t.Fatalf("last event %s", evs[len(evs)-1].Type)
	}
	// Maximum duration refuses long deposits.
	s.SetOptions("ret", AccountOptions{Retention: Retention{MaxDurationSec: 10}})
	_, err = s.Deposit(DepositReq{User: "ret", Body: strings.NewReader("Content-Duration: 60\r\nSubject: long\r\n\r\naudio")})
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("long message: %v", err)
	}
}

func TestBackupRestore(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "b")
	res := deposit(t, s, "b", "", "Subject: keep\r\n\r\nkeep me")
	var buf bytes.Buffer
	var calls int
	if _, err := s.Backup(&buf, func(done, total int64) { calls++ }); err != nil {
		t.Fatal(err)
	}
	if calls == 0 {
		t.Fatal("no progress reported")
	}
	s2 := openTest(t, t.TempDir())
	if err := s2.Restore(bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil); err != nil {
		t.Fatal(err)
	}
	m, err := s2.Message(res.Mailbox.ID, res.Message.UID)
	if err != nil {
		t.Fatal(err)
	}
	got := new(bytes.Buffer)
	got.ReadFrom(s2.OpenMessage(m).Reader())
	if !strings.HasSuffix(got.String(), "keep me") {
		t.Fatalf("restored content %q", got)
	}
	if p, err := s2.Verify(t.Context(), true); err != nil || len(p) > 0 {
		t.Fatal(p, err)
	}
	// The journal continues after the restored one; new ids do not collide.
	res2 := deposit(t, s2, "b", "", "Subject: after\r\n\r\nnew")
	if res2.Message.UID != 2 || s2.LastSeq() <= s.LastSeq() {
		t.Fatalf("after restore: uid %d seq %d (orig %d)", res2.Message.UID, s2.LastSeq(), s.LastSeq())
	}
	if err := s2.Restore(bytes.NewReader(buf.Bytes()), 0, nil); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("restore into non-empty: %v", err)
	}
	s3 := openTest(t, "")
	if err := s3.Restore(strings.NewReader("garbage"), 0, nil); !errors.Is(err, ErrNotBackup) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestPasswordAndPIN(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "p")
	if _, err := s.CheckPassword("p", "pw-p"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckPassword("p", "wrong"); !errors.Is(err, ErrAuth) {
		t.Fatal("wrong password accepted")
	}
	if _, err := s.CheckPassword("nobody", "x"); !errors.Is(err, ErrAuth) {
		t.Fatal("unknown user accepted")
	}
	if _, err := s.CheckPIN("p", "1234"); err != nil {
		t.Fatal(err)
	}
	a, _ := s.GetAccount("p")
	if !strings.HasPrefix(a.PasswordHash, "$argon2id$v=19$") || strings.Contains(a.PasswordHash, "pw-p") {
		t.Fatalf("hash %q", a.PasswordHash)
	}
	if err := s.SetPIN("p", "12a4"); !errors.Is(err, ErrInvalid) {
		t.Fatal("bad PIN accepted")
	}
	if _, err := s.CreateAccount(AccountSpec{Name: "has space", Password: "x"}); !errors.Is(err, ErrInvalidName) {
		t.Fatal("bad name accepted")
	}
}

func TestConditionalStore(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "c")
	r := deposit(t, s, "c", "", "Subject: c\r\n\r\nc")
	r2 := deposit(t, s, "c", "", "Subject: d\r\n\r\nd")
	res, err := s.StoreFlags(StoreReq{User: "c", MailboxID: r.Mailbox.ID, UIDs: []uint32{1, 2}, Op: FlagsAdd, Flags: []string{"$Heard"},
		UnchangedSince: r.Message.ModSeq})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Changed) != 1 || len(res.Modified) != 1 || res.Modified[0] != r2.Message.UID {
		t.Fatalf("unchangedsince: %+v", res)
	}
	ch, _ := s.ChangedSince(r.Mailbox.ID, r2.Message.ModSeq)
	if len(ch) != 1 || ch[0].UID != 1 {
		t.Fatalf("changedsince %+v", ch)
	}
	s.StoreFlags(StoreReq{User: "c", MailboxID: r.Mailbox.ID, UIDs: []uint32{1, 2}, Op: FlagsAdd, Flags: []string{FlagDeleted}})
	before, _ := s.Mailbox("c", "INBOX")
	gone, _ := s.Expunge("c", r.Mailbox.ID, []uint32{2})
	if len(gone) != 1 {
		t.Fatalf("uid expunge %v", gone)
	}
	v, _ := s.ExpungedSince(r.Mailbox.ID, before.HighestModSeq)
	if len(v) != 1 || v[0] != 2 {
		t.Fatalf("vanished %v", v)
	}
	if _, err := s.StoreFlags(StoreReq{User: "c", MailboxID: r.Mailbox.ID, UIDs: []uint32{1}, Op: FlagsAdd, Flags: []string{`\Recent`}}); !errors.Is(err, ErrInvalid) {
		t.Fatal("\\Recent accepted")
	}
}

func TestTrimOldJournal(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s, err := Open(Options{InMemory: true, GCInterval: -1, Hash: HashParams{Time: 1, MemKiB: 64}, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mustAccount(t, s, "j")
	deposit(t, s, "j", "", "Subject: 1\r\n\r\n1")
	old := s.LastSeq()
	now = now.Add(8 * 24 * time.Hour)
	deposit(t, s, "j", "", "Subject: 2\r\n\r\n2")
	// A consumer that has not read anything keeps everything.
	s.SetCursor("slow", 0)
	if n, _ := s.TrimOldJournal(); n != 0 {
		t.Fatalf("trimmed %d events a consumer still needs", n)
	}
	s.SetCursor("slow", s.LastSeq())
	n, err := s.TrimOldJournal()
	if err != nil || n != int(old) {
		t.Fatalf("trimmed %d, want %d (%v)", n, old, err)
	}
	evs, _ := s.ReadJournal(0, 10)
	if len(evs) != 1 || evs[0].Seq != old+1 {
		t.Fatalf("left %+v", evs)
	}
}

func TestAuthCacheFollowsPasswordChange(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "ac")
	for i := 0; i < 3; i++ {
		if _, err := s.CheckPassword("ac", "pw-ac"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CheckPassword("ac", "pw-ac-wrong"); !errors.Is(err, ErrAuth) {
		t.Fatal("wrong password accepted from cache")
	}
	if err := s.SetPassword("ac", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckPassword("ac", "pw-ac"); !errors.Is(err, ErrAuth) {
		t.Fatal("old password still accepted after change")
	}
	if _, err := s.CheckPassword("ac", "new"); err != nil {
		t.Fatal(err)
	}
}

func TestDepositManyIsAtomic(t *testing.T) {
	s := openTest(t, "")
	if _, err := s.CreateAccount(AccountSpec{Name: "multi", Password: "x", Quota: Quota{Messages: 3}}); err != nil {
		t.Fatal(err)
	}
	body := func(i int) DepositReq {
		return DepositReq{User: "multi", Body: strings.NewReader("Subject: m" + string(rune('0'+i)) + "\r\nDate: Mon, 02 Nov 2026 10:00:00 +0000\r\nTo: A <a@x>\r\n\r\nbody"), Event: EventMessageAppend}
	}
	res, err := s.DepositMany([]DepositReq{body(1), body(2)})
	if err != nil || len(res) != 2 || res[1].Message.UID != 2 {
		t.Fatalf("%v %+v", err, res)
	}
	if res[0].Message.SentDate.IsZero() || res[0].Message.To != "a@x" {
		t.Fatalf("sort keys not kept: %+v", res[0].Message)
	}
	// Two more exceed the quota of 3: neither is stored.
	before := s.LastSeq()
	_, err = s.DepositMany([]DepositReq{body(3), body(4)})
	if !errors.Is(err, ErrOverQuota) {
		t.Fatalf("err = %v", err)
	}
	mb, _ := s.Mailbox("multi", "INBOX")
	if mb.Counts.Messages != 2 || mb.UIDNext != 3 {
		t.Fatalf("partial MULTIAPPEND stored: %+v", mb.Counts)
	}
	evs, _ := s.ReadJournal(before, 10)
	if len(evs) != 1 || evs[0].Type != EventQuotaExceed {
		t.Fatalf("events of the refused MULTIAPPEND: %+v", evs)
	}
	if _, err := s.DepositMany([]DepositReq{body(1), {User: "other", Body: strings.NewReader("x: y\r\n\r\n")}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("mixed accounts: %v", err)
	}
	if n, _ := s.collectOrphans(math.MaxUint64); n != 0 {
		t.Fatalf("%d orphan chunks", n)
	}
	// Snapshot: consistent view with its journal position.
	snap, err := s.Snapshot(mb.ID)
	if err != nil || len(snap.Messages) != 2 || snap.LastSeq != s.LastSeq() {
		t.Fatalf("snapshot %v %+v", err, snap)
	}
	// Conditional STORE with UNCHANGEDSINCE 0 fails for every message.
	r, err := s.StoreFlags(StoreReq{User: "multi", MailboxID: mb.ID, UIDs: []uint32{1, 2}, Op: FlagsAdd, Flags: []string{FlagDeleted}, Conditional: true})
	if err != nil || len(r.Modified) != 2 || len(r.Changed) != 0 {
		t.Fatalf("unchangedsince 0: %v %+v", err, r)
	}
	s.StoreFlags(StoreReq{User: "multi", MailboxID: mb.ID, UIDs: []uint32{1}, Op: FlagsAdd, Flags: []string{FlagDeleted}})
	mb2, _ := s.Mailbox("multi", "INBOX")
	if mb2.Counts.DeletedBytes != res[0].Message.Size {
		t.Fatalf("deleted bytes %d", mb2.Counts.DeletedBytes)
	}
	// Metadata on a mailbox bumps its modseq.
	if err := s.SetMetadata("multi", mb.ID, []MetadataEntry{{Name: "/private/comment", Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	mb3, _ := s.Mailbox("multi", "INBOX")
	if mb3.HighestModSeq != mb2.HighestModSeq+1 {
		t.Fatalf("metadata modseq %d -> %d", mb2.HighestModSeq, mb3.HighestModSeq)
	}
}

func TestHubKeepsSessionEventsFromSessions(t *testing.T) {
	s := openTest(t, "")
	mustAccount(t, s, "sess")
	mine := s.Hub().Subscribe("sess", 0)
	defer mine.Close()
	all := s.Hub().Subscribe("", 0)
	defer all.Close()
	if err := s.RecordSession("sess", true, "imap", "127.0.0.1:1", "127.0.0.1:143"); err != nil {
		t.Fatal(err)
	}
	deposit(t, s, "sess", "", "Subject: x\\r\\n\\r\\nx")
	evs, _ := mine.Drain()
	if len(evs) != 1 || evs[0].Type != EventMessageNew {
		t.Fatalf("account subscriber got %+v", evs)
	}
	evs, _ = all.Drain()
	if len(evs) != 2 || evs[0].Type != EventLogin {
		t.Fatalf("all-account subscriber got %+v", evs)
	}
}
