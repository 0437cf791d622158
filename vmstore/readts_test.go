package vmstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// TestReadsDoNotWaitForCommitsInProgress holds a commit in the middle of
// the commit chain (as a commit whose fsync takes long would be) and checks
// that every read a session makes per command (message content, MIME
// structure, mailbox list and records, subscriptions, metadata, account)
// still answers, with everything acknowledged before, and that what the
// held commit and the commits behind it wrote shows up once it ends.
func TestReadsDoNotWaitForCommitsInProgress(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "alice")
	mustAccount(t, s, "bob")
	audio := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3*chunkSize/7) // three chunks once encoded
	raw := voiceMessage("<+15551234@example.net>", "held", audio)
	res, err := s.Deposit(DepositReq{User: "alice", Body: bytes.NewReader(raw), Service: "test"})
	if err != nil {
		t.Fatal(err)
	}
	m := res.Message
	if err := s.Subscribe("alice", "INBOX", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMetadata("alice", 0, []MetadataEntry{{Name: "/private/comment", Value: []byte("hi")}}); err != nil {
		t.Fatal(err)
	}
	// Structure from Badger, not from the cache filled by the deposit.
	s.parts = newPartCache(16)

	// A commit that has its timestamp and place in the chain but is not
	// applied yet, and another account's write queued behind it.
	held := make(chan struct{})
	release := make(chan struct{})
	heldDone := make(chan error, 1)
	go func() {
		heldDone <- s.writeOutside(func(ts uint64) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	behind := make(chan error, 1)
	go func() {
		_, err := s.CreateMailbox("bob", "Later", "")
		behind <- err
	}()

	reads := make(chan error, 1)
	go func() {
		reads <- func() error {
			got, err := io.ReadAll(s.OpenMessage(&m).Reader())
			if err != nil {
				return err
			}
			if !bytes.Equal(got, raw) {
				return errors.New("content differs")
			}
			if _, err := s.Structure(&m); err != nil {
				return err
			}
			mbs, err := s.Mailboxes("alice")
			if err != nil || len(mbs) == 0 {
				return errors.Join(errors.New("mailboxes"), err)
			}
			mb, err := s.Mailbox("alice", "INBOX")
			if err != nil {
				return err
			}
			if mb.Counts.Messages != 1 {
				return errors.New("INBOX record without the acknowledged deposit")
			}
			if subs, err := s.Subscriptions("alice"); err != nil || !slices.Contains(subs, "INBOX") {
				return errors.Join(errors.New("subscriptions"), err)
			}
			if md, err := s.Metadata("alice", 0, "/private/comment"); err != nil || len(md) != 1 {
				return errors.Join(errors.New("metadata"), err)
			}
			if _, err := s.GetAccount("bob"); err != nil {
				return err
			}
			if _, err := s.Mailbox("bob", "Later"); !errors.Is(err, ErrNotFound) {
				return errors.New("a mailbox of a commit not yet acknowledged is visible")
			}
			return nil
		}()
	}()
	select {
	case err := <-reads:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("reads waited for a commit in progress")
	}
	select {
	case err := <-behind:
		t.Fatalf("a commit behind the held one was acknowledged first (err %v)", err)
	default:
	}
	close(release)
	if err := <-heldDone; err != nil {
		t.Fatal(err)
	}
	if err := <-behind; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mailbox("bob", "Later"); err != nil {
		t.Fatalf("acknowledged mailbox not readable: %v", err)
	}
}

// TestDiscardKeepsOpenReaders: a read transaction open at an old timestamp
// still sees its versions after the discard timestamp moved and Badger
// compacted.
func TestDiscardKeepsOpenReaders(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "alice")
	mb, err := s.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	ts := s.beginRead()
	defer s.endRead(ts)
	if d := s.discardTs(); d >= ts {
		t.Fatalf("discard timestamp %d not below the open reader at %d", d, ts)
	}
	for i := 0; i < 20; i++ {
		if _, err := s.Deposit(DepositReq{User: "alice", Body: bytes.NewReader(voiceMessage("<a@b.c>", "x", []byte{byte(i)})), Service: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	s.db.SetDiscardTs(s.discardTs())
	if err := s.db.Flatten(1); err != nil {
		t.Fatal(err)
	}
	var old Mailbox
	txn := s.db.NewTransactionAt(ts, false)
	defer txn.Discard()
	if err := getMailbox(txn, mb.ID, &old); err != nil {
		t.Fatal(err)
	}
	if old.Counts.Messages != 0 {
		t.Fatalf("reader at %d sees %d messages, want the record of its time", ts, old.Counts.Messages)
	}
	if _, err := s.CollectGarbage(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAccountWritesWaitOnlyForTheirAccount: behind a commit in progress,
// another account's transaction is built and queued for the committer
// instead of waiting; a second transaction of the same account waits for
// its first one and reads what it wrote.
func TestAccountWritesWaitOnlyForTheirAccount(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "alice")
	mustAccount(t, s, "bob")
	held := make(chan struct{})
	release := make(chan struct{})
	heldDone := make(chan error, 1)
	go func() {
		heldDone <- s.writeOutside(func(ts uint64) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	queued := func() int {
		s.seqMu.Lock()
		defer s.seqMu.Unlock()
		return len(s.queue)
	}
	bob := make(chan error, 1)
	go func() {
		_, err := s.CreateMailbox("bob", "Calls", "")
		bob <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for queued() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("bob's transaction waited for a commit of no account of his")
		}
		time.Sleep(time.Millisecond)
	}
	first := make(chan error, 1)
	go func() {
		_, err := s.CreateMailbox("alice", "Work", "")
		first <- err
	}()
	for queued() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("alice's transaction waited for bob's")
		}
		time.Sleep(time.Millisecond)
	}
	second := make(chan error, 1)
	go func() {
		_, err := s.CreateMailbox("alice", "Work", "")
		second <- err
	}()
	// Give the second transaction time to reach its wait (if it comes
	// later, it reads the first one's commit anyway).
	time.Sleep(20 * time.Millisecond)
	close(release)
	for _, c := range []chan error{heldDone, bob, first} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-second; !errors.Is(err, ErrExists) {
		t.Fatalf("second CREATE of the same mailbox: %v, want ErrExists (it must read the first one)", err)
	}
}

// TestGroupCommit: transactions of several accounts queued behind a commit
// in progress are written together, as one Badger transaction at one
// timestamp, and each is acknowledged with its events in journal order.
func TestGroupCommit(t *testing.T) {
	s := openTest(t, t.TempDir())
	const n = 8
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("user%d", i)
		mustAccount(t, s, names[i])
	}
	sub := s.Hub().Subscribe("", 1000)
	defer sub.Close()
	held := make(chan struct{})
	release := make(chan struct{})
	go s.writeOutside(func(ts uint64) error {
		close(held)
		<-release
		return nil
	})
	<-held
	s.seqMu.Lock()
	before := s.nextTs
	s.seqMu.Unlock()
	done := make(chan error, n)
	for _, u := range names {
		go func() {
			_, err := s.CreateMailbox(u, "Calls", "")
			done <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.seqMu.Lock()
		q := len(s.queue)
		s.seqMu.Unlock()
		if q == n {
			break
		}
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("%d of %d transactions queued", q, n)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	for range n {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	s.seqMu.Lock()
	used := s.nextTs - before
	s.seqMu.Unlock()
	if used != 1 {
		t.Fatalf("%d transactions took %d commit timestamps, want one group", n, used)
	}
	for _, u := range names {
		if _, err := s.Mailbox(u, "Calls"); err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	var last uint64
	for i := 0; i < n; {
		select {
		case <-sub.C():
			evs, _ := sub.Drain()
			for _, ev := range evs {
				if ev.Seq <= last {
					t.Fatalf("event %d published after %d", ev.Seq, last)
				}
				last = ev.Seq
				if ev.Type == EventMailboxCreate {
					i++
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d MailboxCreate events published", i, n)
		}
	}
}

// TestOpensStoreWrittenWithoutManagedTimestamps: a data directory last
// written by Badger's own timestamps (stores of earlier versions) opens with
// its latest versions readable, and new commits supersede them.
func TestOpensStoreWrittenWithoutManagedTimestamps(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Options{Dir: dir, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s, "alice")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// An earlier version's write: a subscription, at Badger's own
	// timestamp (one past the highest version on disk).
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set(subKey("alice", "Old"), nil) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir)
	subs, err := s.Subscriptions("alice")
	if err != nil || !slices.Contains(subs, "Old") {
		t.Fatalf("subscriptions %v (%v): the earlier version's write is not visible", subs, err)
	}
	if err := s.Subscribe("alice", "Old", false); err != nil {
		t.Fatal(err)
	}
	subs, err = s.Subscriptions("alice")
	if err != nil || slices.Contains(subs, "Old") {
		t.Fatalf("subscriptions %v (%v): a new commit does not supersede the earlier version's", subs, err)
	}
}

// TestAccountTransactionsReadQueuedOnes: an EXPUNGE issued while the same
// account's STORE \Deleted is still queued (not yet durable) reads that
// STORE, through the transaction and the mailbox image, and removes the
// message.
func TestAccountTransactionsReadQueuedOnes(t *testing.T) {
	s := openTest(t, t.TempDir())
	mustAccount(t, s, "alice")
	var mbid uint64
	for i := 0; i < 2; i++ {
		res, err := s.Deposit(DepositReq{User: "alice", Body: bytes.NewReader(voiceMessage("<a@b.c>", "x", []byte{byte(i)})), Service: "test"})
		if err != nil {
			t.Fatal(err)
		}
		mbid = res.Mailbox.ID
	}
	held := make(chan struct{})
	release := make(chan struct{})
	go s.writeOutside(func(ts uint64) error {
		close(held)
		<-release
		return nil
	})
	<-held
	queued := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s.seqMu.Lock()
			q := len(s.queue)
			s.seqMu.Unlock()
			if q == n {
				return
			}
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("%d transactions queued, want %d", q, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	stored := make(chan error, 1)
	go func() {
		_, err := s.StoreFlags(StoreReq{User: "alice", MailboxID: mbid, UIDs: []uint32{1}, Op: FlagsAdd, Flags: []string{FlagDeleted}})
		stored <- err
	}()
	queued(1)
	type result struct {
		uids []uint32
		err  error
	}
	expunged := make(chan result, 1)
	go func() {
		uids, err := s.Expunge("alice", mbid, nil)
		expunged <- result{uids, err}
	}()
	// The EXPUNGE waits for the STORE (not observable from here); if it
	// comes later, it reads the STORE anyway.
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-stored; err != nil {
		t.Fatal(err)
	}
	r := <-expunged
	if r.err != nil || !slices.Equal(r.uids, []uint32{1}) {
		t.Fatalf("EXPUNGE behind a queued STORE \\Deleted removed %v (%v), want [1]", r.uids, r.err)
	}
	uids, err := s.UIDs(mbid)
	if err != nil || !slices.Equal(uids, []uint32{2}) {
		t.Fatalf("mailbox holds %v (%v), want [2]", uids, err)
	}
}
