package imap

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// viewUIDs returns the UIDs of the session's view in sequence order.
func viewUIDs(t *testing.T, c *imapclient.Client) []uint32 {
	t.Helper()
	if err := c.Noop().Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for i, m := range msgs {
		if m.SeqNum != uint32(i+1) {
			t.Fatalf("sequence numbers out of order: %d at %d", m.SeqNum, i+1)
		}
		out = append(out, uint32(m.UID))
	}
	return out
}

// TestConcurrentSessions: writers append, flag, expunge and move in one
// mailbox while idlers watch it; afterwards every session's view (and the
// idlers' own count kept from EXISTS/EXPUNGE) matches the store.
func TestConcurrentSessions(t *testing.T) {
	const writers, idlers, rounds = 5, 3, 12
	e := newTestEnv(t)
	for i := 0; i < 10; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("seed%d", i), "x"))
	}
	type idler struct {
		c     *imapclient.Client
		count atomic.Int64
		idle  *imapclient.IdleCommand
	}
	var ids []*idler
	for i := 0; i < idlers; i++ {
		id := &idler{}
		c, err := imapclient.DialInsecure(e.srv.PlainAddr(), &imapclient.Options{
			UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Expunge: func(uint32) { id.count.Add(-1) },
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						id.count.Store(int64(*d.NumMessages))
					}
				},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.Login("alice", testPass).Wait(); err != nil {
			t.Fatal(err)
		}
		sd, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		id.count.Store(int64(sd.NumMessages))
		if id.idle, err = c.Idle(); err != nil {
			t.Fatal(err)
		}
		id.c = c
		ids = append(ids, id)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	clients := make([]*imapclient.Client, writers)
	for w := 0; w < writers; w++ {
		c := e.client("alice")
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		clients[w] = c
		wg.Add(1)
		go func(w int, c *imapclient.Client) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for r := 0; r < rounds; r++ {
				msg := testMessage(fmt.Sprintf("w%dr%d", w, r), "x")
				ac := c.Append("INBOX", int64(len(msg)), nil)
				ac.Write([]byte(msg))
				ac.Close()
				ad, err := ac.Wait()
				if err != nil {
					errs <- err
					return
				}
				target := imap.UIDSetNum(imap.UID(1 + rng.IntN(int(ad.UID))))
				var cmdErr error
				switch rng.IntN(3) {
				case 0:
					_, cmdErr = c.Store(target, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Collect()
				case 1:
					if _, cmdErr = c.Store(target, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Collect(); cmdErr == nil {
						_, cmdErr = c.UIDExpunge(target).Collect()
					}
				case 2:
					_, cmdErr = c.Move(target, "Trash").Wait()
				}
				if cmdErr != nil {
					errs <- fmt.Errorf("writer %d round %d: %w", w, r, cmdErr)
					return
				}
			}
		}(w, clients[w])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	mb, err := e.store.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.Messages(mb.ID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var want []uint32
	for _, m := range stored {
		want = append(want, m.UID)
	}
	// Idlers got their updates while idling: the counts they kept agree.
	deadline := time.Now().Add(3 * time.Second)
	for _, id := range ids {
		for id.count.Load() != int64(len(want)) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := id.count.Load(); got != int64(len(want)) {
			t.Errorf("idler count %d, store has %d", got, len(want))
		}
		if err := id.idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := id.idle.Wait(); err != nil {
			t.Fatal(err)
		}
		if got := viewUIDs(t, id.c); !slices.Equal(got, want) {
			t.Errorf("idler view %v, store %v", got, want)
		}
	}
	for w, c := range clients {
		if got := viewUIDs(t, c); !slices.Equal(got, want) {
			t.Errorf("writer %d view %v, store %v", w, got, want)
		}
	}
	if probs, err := e.store.Verify(t.Context(), true); err != nil || len(probs) > 0 {
		t.Fatalf("store verify: %v %v", probs, err)
	}
}
