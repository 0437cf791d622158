package vmstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestPropertyRandomOperations drives random deposits, flag changes,
// copies, moves, expunges and renames over several mailboxes and checks,
// after every step, the store against a model: UIDs and MODSEQs only grow
// per mailbox, counters equal a recount, the journal is gap-free and holds
// exactly the events of the step.
func TestPropertyRandomOperations(t *testing.T) {
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runProperty(t, seed, 150) })
	}
}

type modelMsg struct {
	flags []string
}

func runProperty(t *testing.T, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	s := openTest(t, "")
	const user = "prop"
	mustAccount(t, s, user)
	for _, n := range []string{"Work", "Work/Old", "Archive"} {
		if _, err := s.CreateMailbox(user, n, ""); err != nil {
			t.Fatal(err)
		}
	}
	model := map[uint64]map[uint32]*modelMsg{}
	lastUID := map[uint64]uint32{}
	lastModseq := map[uint64]uint64{}
	mbs, _ := s.Mailboxes(user)
	for _, mb := range mbs {
		model[mb.ID] = map[uint32]*modelMsg{}
		lastModseq[mb.ID] = mb.HighestModSeq
	}
	seq := s.LastSeq()
	pick := func() Mailbox {
		mbs, err := s.Mailboxes(user)
		if err != nil {
			t.Fatal(err)
		}
		return mbs[rng.IntN(len(mbs))]
	}
	someUIDs := func(mb uint64) []uint32 {
		var all []uint32
		for u := range model[mb] {
			all = append(all, u)
		}
		slices.Sort(all)
		var out []uint32
		for _, u := range all {
			if rng.IntN(3) == 0 {
				out = append(out, u)
			}
		}
		if rng.IntN(5) == 0 {
			out = append(out, 99999) // a UID that does not exist
		}
		return out
	}
	flagsPool := []string{FlagSeen, FlagDeleted, FlagFlagged, FlagAnswered, "$Urgent", "Heard"}
	for step := 0; step < steps; step++ {
		var want []EventType // expected event types of this step, in order
		var op string
		switch k := rng.IntN(10); {
		case k < 3:
			mb := pick()
			op = "deposit " + mb.Name
			ctx := []string{"voice-message", "fax-message", "video-message"}[rng.IntN(3)]
			body := fmt.Sprintf("From: a@b\r\nSubject: s%d\r\nMessage-Context: %s\r\n\r\nbody %d\r\n", step, ctx, rng.IntN(4))
			var flags []string
			if rng.IntN(3) == 0 {
				flags = []string{FlagSeen}
			}
			res, err := s.Deposit(DepositReq{User: user, Mailbox: mb.Name, Body: strings.NewReader(body), Flags: flags, Urgent: rng.IntN(4) == 0})
			if err != nil {
				t.Fatal(err)
			}
			model[mb.ID][res.Message.UID] = &modelMsg{flags: res.Message.Flags}
			want = []EventType{EventMessageNew}
		case k < 6:
			mb := pick()
			uids := someUIDs(mb.ID)
			fl := []string{flagsPool[rng.IntN(len(flagsPool))]}
			opk := FlagOp(rng.IntN(3))
			op = fmt.Sprintf("store %s %v %d %v", mb.Name, uids, opk, fl)
			res, err := s.StoreFlags(StoreReq{User: user, MailboxID: mb.ID, UIDs: uids, Op: opk, Flags: fl})
			if err != nil {
				t.Fatal(err)
			}
			changed := 0
			for _, u := range uids {
				m := model[mb.ID][u]
				if m == nil {
					continue
				}
				nf := applyFlags(m.flags, opk, fl)
				if !slices.Equal(nf, m.flags) {
					changed++
				}
				m.flags = nf
			}
			if changed != len(res.Changed) {
				t.Fatalf("%s: %d changed, store says %d", op, changed, len(res.Changed))
			}
			if changed > 0 {
				want = []EventType{"flags"}
			}
		case k < 8:
			src, dst := pick(), pick()
			move := rng.IntN(2) == 0 && src.ID != dst.ID
			uids := someUIDs(src.ID)
			op = fmt.Sprintf("copy(move=%v) %s->%s %v", move, src.Name, dst.Name, uids)
			res, err := s.Copy(CopyReq{User: user, From: src.ID, To: dst.ID, UIDs: uids, Move: move})
			if err != nil {
				t.Fatal(err)
			}
			for i, su := range res.SrcUIDs {
				m := model[src.ID][su]
				model[dst.ID][res.DstUIDs[i]] = &modelMsg{flags: slices.Clone(m.flags)}
				if move {
					delete(model[src.ID], su)
				}
			}
			if len(res.SrcUIDs) > 0 {
				want = []EventType{EventMessageAppend}
				if move {
					want = append(want, EventMessageExpunge)
				}
			}
		case k < 9:
			mb := pick()
			op = "expunge " + mb.Name
			gone, err := s.Expunge(user, mb.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			var exp []uint32
			for u, m := range model[mb.ID] {
				if slices.Contains(m.flags, FlagDeleted) {
					exp = append(exp, u)
					delete(model[mb.ID], u)
				}
			}
			slices.Sort(exp)
			if !slices.Equal(exp, gone) {
				t.Fatalf("%s: expunged %v, want %v", op, gone, exp)
			}
			if len(gone) > 0 {
				want = []EventType{EventMessageExpunge}
			}
		default:
			mbs, _ := s.Mailboxes(user)
			var cand []Mailbox
			for _, mb := range mbs {
				if mb.Name != "INBOX" && !strings.Contains(mb.Name, "/") && mb.SpecialUse == "" && mb.Name != "Greetings" {
					cand = append(cand, mb)
				}
			}
			if len(cand) == 0 {
				continue
			}
			mb := cand[rng.IntN(len(cand))]
			to := fmt.Sprintf("R%d", step)
			op = "rename " + mb.Name + " " + to
			kids := 0
			for _, x := range mbs {
				if strings.HasPrefix(x.Name, mb.Name+"/") {
					kids++
				}
			}
			if err := s.RenameMailbox(user, mb.Name, to); err != nil {
				t.Fatal(err)
			}
			for i := 0; i <= kids; i++ {
				want = append(want, EventMailboxRename)
			}
		}
		// Journal: gap-free, and exactly this step's events.
		evs, err := s.ReadJournal(seq, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			if e.Seq != seq+uint64(i)+1 {
				t.Fatalf("%s: journal gap: got seq %d after %d", op, e.Seq, seq+uint64(i))
			}
		}
		if len(evs) > 0 {
			seq = evs[len(evs)-1].Seq
		}
		if !eventsMatch(evs, want) {
			var got []EventType
			for _, e := range evs {
				got = append(got, e.Type)
			}
			t.Fatalf("step %d %s: events %v, want %v", step, op, got, want)
		}
		// Store against model; UIDs and modseqs only grow.
		mbs, _ := s.Mailboxes(user)
		for _, mb := range mbs {
			msgs, err := s.Messages(mb.ID, 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != len(model[mb.ID]) {
				t.Fatalf("step %d %s: %s has %d messages, model %d", step, op, mb.Name, len(msgs), len(model[mb.ID]))
			}
			for _, m := range msgs {
				mm := model[mb.ID][m.UID]
				if mm == nil || !slices.Equal(mm.flags, m.Flags) {
					t.Fatalf("step %d %s: %s uid %d flags %v, model %+v", step, op, mb.Name, m.UID, m.Flags, mm)
				}
				if m.UID >= mb.UIDNext || m.ModSeq > mb.HighestModSeq {
					t.Fatalf("uid/modseq beyond mailbox")
				}
			}
			if mb.HighestModSeq < lastModseq[mb.ID] {
				t.Fatalf("%s: modseq went back", mb.Name)
			}
			lastModseq[mb.ID] = mb.HighestModSeq
			if mb.UIDNext-1 < lastUID[mb.ID] {
				t.Fatalf("%s: uidnext went back", mb.Name)
			}
			lastUID[mb.ID] = mb.UIDNext - 1
		}
		problems, err := s.Verify(t.Context(), step%25 == 0)
		if err != nil || len(problems) > 0 {
			t.Fatalf("step %d %s: verify: %v %v", step, op, err, problems)
		}
	}
	// Every blob still referenced is readable; unreferenced ones are collected.
	if _, err := s.CollectGarbage(t.Context()); err != nil {
		t.Fatal(err)
	}
	if problems, _ := s.Verify(t.Context(), true); len(problems) > 0 {
		t.Fatal(problems)
	}
}

// eventsMatch compares event types; "flags" stands for any non-empty run of
// flag events (FlagsClear, MessageRead, MessageTrash, FlagsSet).
func eventsMatch(evs []Event, want []EventType) bool {
	if len(want) == 1 && want[0] == "flags" {
		if len(evs) == 0 {
			return false
		}
		for _, e := range evs {
			switch e.Type {
			case EventFlagsClear, EventFlagsSet, EventMessageRead, EventMessageTrash:
			default:
				return false
			}
		}
		return true
	}
	if len(evs) != len(want) {
		return false
	}
	for i := range evs {
		if evs[i].Type != want[i] {
			return false
		}
	}
	return true
}
