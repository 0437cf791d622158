package imap

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// RFC 5267 s4.3 scenario tests: ADDTO and REMOVEFROM go out with the
// responses of the command that caused them, as position plus ranges, with
// sequence numbers that are valid when they are read.

func contextEnv(t *testing.T, n int) (*testEnv, *rawClient) {
	t.Helper()
	e := newTestEnv(t)
	for i := 1; i <= n; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("m%d", i), "x"))
	}
	rc := e.raw()
	rc.login("alice")
	rc.ok("ENABLE IMAP4rev2")
	rc.ok("SELECT INBOX")
	return e, rc
}

// TestContextSearchOwnStore: a STORE (by sequence number, during which no
// EXPUNGE may be sent) updates the context in its own responses, one pair
// with ranges.
func TestContextSearchOwnStore(t *testing.T) {
	_, rc := contextEnv(t, 6)
	wantLines(t, "SEARCH", rc.ok("SEARCH RETURN (UPDATE) FLAGGED"), `* ESEARCH (TAG "t4")`)
	wantLines(t, "STORE", rc.ok(`STORE 2:3,5 +FLAGS.SILENT (\Flagged)`), `* ESEARCH (TAG "t4") ADDTO (0 2:3,5)`)
	wantLines(t, "NOOP", rc.ok("NOOP"))
	wantLines(t, "STORE", rc.ok(`STORE 2,5 -FLAGS (\Flagged)`),
		`* 2 FETCH (FLAGS ())`, `* 5 FETCH (FLAGS ())`, `* ESEARCH (TAG "t4") REMOVEFROM (0 2,5)`)
	wantLines(t, "NOOP", rc.ok("NOOP"))
}

// TestContextSearchExpunge: the REMOVEFROM of expunged messages comes
// before the EXPUNGE responses, with the sequence numbers they had (RFC
// 5267 s4.3.4); a UID context names UIDs.
func TestContextSearchExpunge(t *testing.T) {
	_, rc := contextEnv(t, 5)
	rc.ok(`STORE 2:3 +FLAGS.SILENT (\Flagged \Deleted)`)
	rc.ok(`STORE 5 +FLAGS.SILENT (\Flagged)`)
	wantLines(t, "SEARCH", rc.ok("SEARCH RETURN (UPDATE ALL) FLAGGED"), `* ESEARCH (TAG "t6") ALL 2:3,5`)
	wantLines(t, "UID SEARCH", rc.ok("UID SEARCH RETURN (UPDATE COUNT) FLAGGED"), `* ESEARCH (TAG "t7") UID COUNT 3`)
	wantLines(t, "EXPUNGE", rc.ok("EXPUNGE"),
		`* ESEARCH (TAG "t6") REMOVEFROM (0 2:3)`,
		`* ESEARCH (TAG "t7") UID REMOVEFROM (0 2:3)`,
		"* 3 EXPUNGE", "* 2 EXPUNGE")
	wantLines(t, "NOOP", rc.ok("NOOP"))
	// Message 5 is now message 3.
	wantLines(t, "STORE", rc.ok(`STORE 3 -FLAGS.SILENT (\Flagged)`),
		`* ESEARCH (TAG "t6") REMOVEFROM (0 3)`, `* ESEARCH (TAG "t7") UID REMOVEFROM (0 5)`)
}

// TestContextSearchOtherSession: changes by another session reach the
// context with the FETCH and EXISTS that carry them; ADDTO of a new
// message follows its EXISTS, REMOVEFROM of an expunged one precedes its
// EXPUNGE.
func TestContextSearchOtherSession(t *testing.T) {
	e, rc := contextEnv(t, 3)
	other := e.raw()
	other.login("alice")
	other.ok("SELECT INBOX")
	wantLines(t, "SEARCH", rc.ok("SEARCH RETURN (UPDATE) UNSEEN"), `* ESEARCH (TAG "t4") ALL 1:3`)
	other.ok(`STORE 1:2 +FLAGS.SILENT (\Seen \Deleted)`)
	e.deposit("alice", "INBOX", testMessage("m4", "x"))
	wantLines(t, "NOOP", rc.ok("NOOP"),
		"* 4 EXISTS",
		`* 1 FETCH (FLAGS (\Deleted \Seen))`, `* 2 FETCH (FLAGS (\Deleted \Seen))`,
		`* ESEARCH (TAG "t4") REMOVEFROM (0 1:2) ADDTO (0 4)`)
	other.ok(`STORE 3 +FLAGS.SILENT (\Deleted)`)
	other.ok("EXPUNGE")
	wantLines(t, "NOOP", rc.ok("NOOP"),
		`* ESEARCH (TAG "t4") REMOVEFROM (0 3)`,
		"* 3 EXPUNGE", "* 2 EXPUNGE", "* 1 EXPUNGE")
}

// TestContextSortPositions: a SORT context names positions in the sorted
// result, one pair per run, each pair applied after the previous ones
// (RFC 5267 s4.3.3, s4.3.4 and the "1 2731:2733" example).
func TestContextSortPositions(t *testing.T) {
	_, rc := contextEnv(t, 8)
	rc.ok(`STORE 1:8 +FLAGS.SILENT (\Flagged)`)
	wantLines(t, "SORT", rc.ok("SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 FLAGGED"), `* ESEARCH (TAG "t5") ALL 8,7,6,5,4,3,2,1`)
	wantLines(t, "UID SORT", rc.ok("UID SORT RETURN (UPDATE) (ARRIVAL) UTF-8 FLAGGED"), `* ESEARCH (TAG "t6") UID ALL 1:8`)
	// Removed: 7 (position 2), then 4 and 3 (positions 4 and 5 of what
	// is left: 8,6,5,4,3,2,1).
	wantLines(t, "STORE", rc.ok(`STORE 3:4,7 -FLAGS.SILENT (\Flagged)`),
		`* ESEARCH (TAG "t5") REMOVEFROM (2 7 4 4,3)`,
		`* ESEARCH (TAG "t6") UID REMOVEFROM (3 3:4 5 7)`)
	// Added back: each run goes where it belongs once the earlier runs
	// are in place.
	wantLines(t, "STORE", rc.ok(`STORE 3:4,7 +FLAGS.SILENT (\Flagged)`),
		`* ESEARCH (TAG "t5") ADDTO (2 7 5 4,3)`,
		`* ESEARCH (TAG "t6") UID ADDTO (3 3:4 7 7)`)
	// Expunge: sequence numbers before the EXPUNGE, positions too.
	rc.ok(`STORE 2,6 +FLAGS.SILENT (\Deleted)`)
	wantLines(t, "EXPUNGE", rc.ok("EXPUNGE"),
		`* ESEARCH (TAG "t5") REMOVEFROM (3 6 6 2)`,
		`* ESEARCH (TAG "t6") UID REMOVEFROM (2 2 5 6)`,
		"* 6 EXPUNGE", "* 2 EXPUNGE")
	// A new message: after its EXISTS, with its new sequence number.
	m9 := testMessage("m9", "x")
	lines, tagged := rc.cmd("APPEND INBOX (\\Flagged) {%d+}\r\n%s", len(m9), m9)
	if !strings.Contains(tagged, "OK [APPENDUID") {
		t.Fatal(tagged)
	}
	wantLines(t, "APPEND", lines,
		"* 7 EXISTS",
		`* ESEARCH (TAG "t5") ADDTO (1 7)`,
		`* ESEARCH (TAG "t6") UID ADDTO (7 9)`)
}

// applyContextUpdate applies REMOVEFROM then ADDTO payloads to a result
// as RFC 5267 s4.3.3 and s4.3.4 tell a client to, failing when a pair
// does not fit the result.
func applyContextUpdate(t testing.TB, list []uint32, removed, added string, mailboxOrder bool) []uint32 {
	t.Helper()
	pairs := func(s string) (out []struct {
		pos   int
		items []uint32
	}) {
		if s == "" {
			return nil
		}
		f := strings.Fields(s)
		if len(f)%2 != 0 {
			t.Fatalf("odd pair list %q", s)
		}
		for i := 0; i < len(f); i += 2 {
			pos, err := strconv.Atoi(f[i])
			if err != nil {
				t.Fatalf("position in %q", s)
			}
			var items []uint32
			for _, r := range strings.Split(f[i+1], ",") {
				lo, hi, isRange := strings.Cut(r, ":")
				a, _ := strconv.Atoi(lo)
				b := a
				if isRange {
					b, _ = strconv.Atoi(hi)
				}
				if a > b {
					t.Fatalf("range %s not in increasing order (RFC 5267 s3.2)", r)
				}
				for n := a; n <= b; n++ {
					items = append(items, uint32(n))
				}
			}
			out = append(out, struct {
				pos   int
				items []uint32
			}{pos, items})
		}
		return out
	}
	l := slices.Clone(list)
	for _, p := range pairs(removed) {
		if p.pos == 0 {
			l = slices.DeleteFunc(l, func(u uint32) bool { return slices.Contains(p.items, u) })
			continue
		}
		if p.pos-1+len(p.items) > len(l) || !slices.Equal(l[p.pos-1:p.pos-1+len(p.items)], p.items) {
			t.Fatalf("REMOVEFROM (%d %v) does not match %v", p.pos, p.items, l)
		}
		l = slices.Delete(l, p.pos-1, p.pos-1+len(p.items))
	}
	for _, p := range pairs(added) {
		if p.pos == 0 {
			if !mailboxOrder {
				t.Fatalf("position 0 in a sorted context")
			}
			l = append(l, p.items...)
			slices.Sort(l)
			continue
		}
		if p.pos-1 > len(l) {
			t.Fatalf("ADDTO (%d %v) beyond %v", p.pos, p.items, l)
		}
		l = slices.Insert(l, p.pos-1, p.items...)
	}
	return l
}

// TestContextDiffRFCExample: RFC 5267 s4.3.3's preferred form.
func TestContextDiffRFCExample(t *testing.T) {
	id := func(u uint32) uint32 { return u }
	rem, add := contextDiff([]uint32{2734, 2735}, []uint32{2731, 2732, 2733, 2734, 2735}, true, id)
	if rem != "" || add != "1 2731:2733" {
		t.Fatalf("got REMOVEFROM %q ADDTO %q", rem, add)
	}
	rem, add = contextDiff([]uint32{32760, 32768, 32769}, []uint32{32760}, false, id)
	if rem != "0 32768:32769" || add != "" {
		t.Fatalf("got REMOVEFROM %q ADDTO %q", rem, add)
	}
}

// FuzzContextDiff: whatever the old and new results, a client applying
// the update gets the new result, numbered as the context numbers.
func FuzzContextDiff(f *testing.F) {
	f.Add([]byte{8, 7, 6, 5, 4, 3, 2, 1}, []byte{8, 6, 5, 2, 1}, true)
	f.Add([]byte{1, 2, 3, 9}, []byte{2, 3, 4, 5, 9, 10}, false)
	f.Add([]byte{3, 1, 2}, []byte{2, 1, 3, 4}, true)
	f.Fuzz(func(t *testing.T, a, b []byte, sorted bool) {
		uniq := func(x []byte) []uint32 {
			var out []uint32
			for _, v := range x {
				if u := uint32(v) + 1; !slices.Contains(out, u) {
					out = append(out, u)
				}
			}
			if !sorted {
				slices.Sort(out)
			}
			return out
		}
		old, now := uniq(a), uniq(b)
		num := func(u uint32) uint32 { return u*3 + 1 } // sequence numbers: monotonic in UID
		nums := func(l []uint32) []uint32 {
			out := make([]uint32, len(l))
			for i, u := range l {
				out[i] = num(u)
			}
			return out
		}
		rem, add := contextDiff(old, now, sorted, num)
		got := applyContextUpdate(t, nums(old), rem, add, !sorted)
		if !slices.Equal(got, nums(now)) {
			t.Fatalf("old %v now %v: REMOVEFROM (%s) ADDTO (%s) gives %v", nums(old), nums(now), rem, add, got)
		}
	})
}
