package vmstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// diskImage reads a mailbox from Badger, bypassing the index.
func diskImage(t *testing.T, s *Store, mbid uint64) *mbImage {
	t.Helper()
	var img *mbImage
	err := s.view(func(txn *badger.Txn) error {
		var err error
		img, err = readImage(txn, mbid, 1<<30)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func sameImage(t *testing.T, what string, got, want *mbImage) {
	t.Helper()
	if got.mb != want.mb {
		t.Fatalf("%s: mailbox record\n got %+v\nwant %+v", what, got.mb, want.mb)
	}
	if len(got.msgs) != len(want.msgs) {
		t.Fatalf("%s: %d messages, want %d", what, len(got.msgs), len(want.msgs))
	}
	for i := range got.msgs {
		g, w := got.msgs[i], want.msgs[i]
		if g.UID != w.UID || g.ModSeq != w.ModSeq || !slices.Equal(g.Flags, w.Flags) || g.Recent != w.Recent || g.Size != w.Size || g.Blob != w.Blob {
			t.Fatalf("%s: message %d\n got %+v\nwant %+v", what, i, *g, *w)
		}
	}
}

// TestIndexFollowsEveryWrite runs random operations with an index small
// enough to evict and to refuse the largest mailbox, and compares what the
// readers return with Badger after every step.
func TestIndexFollowsEveryWrite(t *testing.T) {
	s, err := Open(Options{InMemory: true, Hash: HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1, IndexMessages: 40})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const user = "idx"
	mustAccount(t, s, user)
	for _, n := range []string{"A", "B"} {
		if _, err := s.CreateMailbox(user, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	mbs, _ := s.Mailboxes(user)
	rng := rand.New(rand.NewPCG(7, 11))
	uidsOf := func(mbid uint64) []uint32 {
		u, err := s.UIDs(mbid)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	some := func(u []uint32) []uint32 {
		var out []uint32
		for _, x := range u {
			if rng.IntN(3) == 0 {
				out = append(out, x)
			}
		}
		return out
	}
	for step := 0; step < 400; step++ {
		mb := mbs[rng.IntN(len(mbs))]
		// Readers first, so that images exist when the writes come.
		if _, err := s.Snapshot(mb.ID); err != nil {
			t.Fatal(err)
		}
		switch k := rng.IntN(8); k {
		case 0, 1, 2:
			body := fmt.Sprintf("Subject: s%d\r\n\r\nbody %d\r\n", step, rng.IntN(5))
			if _, err := s.Deposit(DepositReq{User: user, Mailbox: mb.Name, Body: bytes.NewReader([]byte(body))}); err != nil {
				t.Fatal(err)
			}
		case 3:
			op := FlagOp(rng.IntN(3))
			flags := [][]string{{FlagSeen}, {FlagDeleted}, {FlagSeen, "Heard"}, nil}[rng.IntN(4)]
			if _, err := s.StoreFlags(StoreReq{User: user, MailboxID: mb.ID, UIDs: some(uidsOf(mb.ID)), Op: op, Flags: flags}); err != nil {
				t.Fatal(err)
			}
		case 4:
			if _, err := s.Expunge(user, mb.ID, nil); err != nil {
				t.Fatal(err)
			}
		case 5:
			to := mbs[rng.IntN(len(mbs))]
			if to.ID == mb.ID {
				continue
			}
			if _, err := s.Copy(CopyReq{User: user, From: mb.ID, To: to.ID, UIDs: some(uidsOf(mb.ID)), Move: rng.IntN(2) == 0}); err != nil {
				t.Fatal(err)
			}
		case 6:
			if _, err := s.ClearRecent(user, mb.ID); err != nil {
				t.Fatal(err)
			}
		case 7:
			if _, err := s.Remove(user, mb.ID, some(uidsOf(mb.ID))); err != nil {
				t.Fatal(err)
			}
		}
		for _, m := range mbs {
			want := diskImage(t, s, m.ID)
			snap, err := s.Snapshot(m.ID)
			if err != nil {
				t.Fatal(err)
			}
			got := &mbImage{mb: snap.Mailbox}
			for i := range snap.Messages {
				got.msgs = append(got.msgs, &snap.Messages[i])
			}
			sameImage(t, fmt.Sprintf("step %d, %s", step, m.Name), got, want)
			if snap.LastSeq != s.LastSeq() {
				t.Fatalf("step %d: snapshot at seq %d, journal at %d", step, snap.LastSeq, s.LastSeq())
			}
		}
		s.idx.mu.RLock()
		total, n := 0, 0
		for _, e := range s.idx.entries {
			if e.img != nil {
				total += len(e.img.msgs)
				n++
			}
		}
		if total != s.idx.total || total > s.idx.max {
			t.Fatalf("step %d: index holds %d records in %d images, counted %d, budget %d", step, total, n, s.idx.total, s.idx.max)
		}
		s.idx.mu.RUnlock()
	}
	// Deleting a mailbox drops its image.
	a, err := s.Mailbox(user, "A")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(a.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(user, "A"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("snapshot of a deleted mailbox: %v", err)
	}
	s.idx.mu.RLock()
	defer s.idx.mu.RUnlock()
	if s.idx.entries[a.ID] != nil {
		t.Fatal("deleted mailbox still in the index")
	}
}

// TestIndexSnapshotPositionIsExact has sessions that subscribe, take a
// snapshot and then apply only the events after its LastSeq, while writers
// deposit, flag and expunge concurrently. A snapshot that missed a change,
// or already held one whose event is still to come, shows as a duplicate
// add, an expunge of an unknown UID, or a view that differs from the
// store at the end.
func TestIndexSnapshotPositionIsExact(t *testing.T) {
	s := openTest(t, "")
	const user = "race"
	mustAccount(t, s, user)
	inbox, err := s.Mailbox(user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var ww sync.WaitGroup
	for wi := 0; wi < 3; wi++ {
		ww.Add(1)
		go func(wi int) {
			defer ww.Done()
			rng := rand.New(rand.NewPCG(uint64(wi), 3))
			for i := 0; i < 120; i++ {
				body := fmt.Sprintf("Subject: w%d-%d\r\n\r\nx\r\n", wi, i)
				res, err := s.Deposit(DepositReq{User: user, Body: bytes.NewReader([]byte(body))})
				if err != nil {
					errs <- err
					return
				}
				if rng.IntN(2) == 0 {
					if _, err := s.StoreFlags(StoreReq{User: user, MailboxID: inbox.ID, UIDs: []uint32{res.Message.UID}, Op: FlagsAdd, Flags: []string{FlagDeleted}}); err != nil {
						errs <- err
						return
					}
				}
				if rng.IntN(4) == 0 {
					if _, err := s.Expunge(user, inbox.ID, nil); err != nil {
						errs <- err
						return
					}
				}
			}
		}(wi)
	}
	// Images are dropped all the time, so that loads race with commits.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			s.idx.mu.Lock()
			for id, e := range s.idx.entries {
				if e.img != nil {
					s.idx.total -= len(e.img.msgs)
					delete(s.idx.entries, id)
				}
			}
			s.idx.mu.Unlock()
			time.Sleep(200 * time.Microsecond)
		}
	}()
	type view struct {
		sub  *Subscription
		uids map[uint32]bool
		seq  uint64
	}
	apply := func(v *view) error {
		evs, over := v.sub.Drain()
		if over {
			return fmt.Errorf("overflow")
		}
		for _, ev := range evs {
			if ev.Seq <= v.seq || ev.MailboxID != inbox.ID {
				continue
			}
			switch ev.Type {
			case EventMessageNew, EventMessageAppend:
				for _, u := range ev.UIDs {
					if v.uids[u] {
						return fmt.Errorf("event %d adds UID %d already in the snapshot at %d", ev.Seq, u, v.seq)
					}
					v.uids[u] = true
				}
			case EventMessageExpunge:
				for _, u := range ev.UIDs {
					if !v.uids[u] {
						return fmt.Errorf("event %d expunges UID %d unknown to the snapshot at %d", ev.Seq, u, v.seq)
					}
					delete(v.uids, u)
				}
			}
		}
		return nil
	}
	var views []*view
	var rwg sync.WaitGroup
	var vmu sync.Mutex
	for r := 0; r < 4; r++ {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for !stop.Load() {
				v := &view{sub: s.Hub().Subscribe(user, 100000), uids: map[uint32]bool{}}
				snap, err := s.Snapshot(inbox.ID)
				if err != nil {
					errs <- err
					return
				}
				v.seq = snap.LastSeq
				for _, m := range snap.Messages {
					v.uids[m.UID] = true
				}
				if err := apply(v); err != nil {
					errs <- err
					return
				}
				vmu.Lock()
				views = append(views, v)
				if len(views) > 40 {
					views[0].sub.Close()
					views = views[1:]
				}
				vmu.Unlock()
			}
		}()
	}
	ww.Wait()
	stop.Store(true)
	wg.Wait()
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	final, err := s.UIDs(inbox.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range views {
		if err := apply(v); err != nil {
			t.Fatal(err)
		}
		var got []uint32
		for u := range v.uids {
			got = append(got, u)
		}
		slices.Sort(got)
		if !slices.Equal(got, final) {
			t.Fatalf("view %d (snapshot at %d) ends with %v, store has %v", i, v.seq, got, final)
		}
		v.sub.Close()
	}
}
