package imapcheck

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// fakeServer answers each command line with the scripted responses (the
// command's tag replaces a leading "TAG" and a quoted "TAG").
func fakeServer(t *testing.T, script map[string][]string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		nc.Write([]byte("* OK ready\r\n"))
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			tag, cmd, _ := strings.Cut(strings.TrimRight(l, "\r\n"), " ")
			resp, ok := script[cmd]
			if !ok {
				resp = []string{"TAG OK done"}
			}
			for _, x := range resp {
				if rest, ok := strings.CutPrefix(x, "TAG "); ok {
					x = tag + " " + rest
				}
				nc.Write([]byte(strings.ReplaceAll(x, `"TAG"`, `"`+tag+`"`) + "\r\n"))
			}
		}
	}()
	return ln.Addr().String()
}

// TestSessionFindsErrors: each kind of wrong response is counted, and a
// correct exchange is not.
func TestSessionFindsErrors(t *testing.T) {
	addr := fakeServer(t, map[string][]string{
		`SELECT "INBOX" (CONDSTORE)`: {
			"* 2 EXISTS", `* FLAGS (\Seen \Flagged $Known)`, "* OK [HIGHESTMODSEQ 5] x", "TAG OK [READ-WRITE] done",
		},
		"FETCH 1:* (UID FLAGS MODSEQ)": {
			`* 1 FETCH (UID 10 FLAGS (\Seen) MODSEQ (4))`, `* 2 FETCH (UID 11 FLAGS ($Known \Recent) MODSEQ (5))`, "TAG OK done",
		},
		// Own newer state, then an older one: MODSEQ backwards.
		`STORE 1 +FLAGS (\Flagged)`: {
			`* 1 FETCH (FLAGS (\Flagged \Seen) MODSEQ (7))`, `* 1 FETCH (FLAGS (\Seen) MODSEQ (6))`, "TAG OK done",
		},
		// A keyword no FLAGS listed; same MODSEQ with other flags.
		"NOOP": {
			`* 2 FETCH (FLAGS ($Known $Other) MODSEQ (8))`, `* 2 FETCH (FLAGS ($Known) MODSEQ (8))`, "TAG OK done",
		},
		// EXPUNGE beyond the view, FETCH whose UID contradicts.
		"CHECK": {"* 5 EXPUNGE", "* 2 FETCH (UID 12 FLAGS () MODSEQ (9))", "TAG OK done"},
	})
	chk := &Checker{}
	s, err := Dial(addr, 1, chk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Select("INBOX"); err != nil {
		t.Fatal(err)
	}
	if got := s.UIDs(); len(got) != 2 || got[0] != 10 || got[1] != 11 {
		t.Fatalf("view %v", got)
	}
	if chk.Total() != 0 {
		t.Fatalf("errors on a correct exchange: %s", chk.Summary())
	}
	for _, cmd := range []string{`STORE 1 +FLAGS (\Flagged)`, "NOOP", "CHECK"} {
		if _, err := s.Do(cmd); err != nil {
			t.Fatal(err)
		}
	}
	c := chk.Counts()
	for _, k := range []Kind{ModseqBackwards, KeywordBeforeFlags, ModseqConflict, BadSequence, UIDMismatch} {
		if c[k] != 1 {
			t.Errorf("%s: %d errors, want 1 (%s)", k, c[k], chk.Summary())
		}
	}
	if f, _ := s.Flags(10); strings.Join(f, " ") != `\Flagged \Seen` {
		t.Errorf("UID 10 kept %v, want the newer state", f)
	}
}

func TestParseSetAndFormat(t *testing.T) {
	got, err := parseSet("1:3,7,9:8")
	if err != nil || FormatSet(got) != "1:3,7:9" {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := parseSet("1:*"); err == nil {
		t.Fatal("* accepted")
	}
}

// FuzzTokenize: response parsing never panics, whatever the server sends.
func FuzzTokenize(f *testing.F) {
	f.Add(`(UID 5 FLAGS (\Seen $k1) MODSEQ (12) BODY[HEADER.FIELDS (A B)] {3})`, "abc")
	f.Add(`("quoted \" str" NIL ((a b) c))`, "")
	f.Add(`(FLAGS (`, "")
	f.Fuzz(func(t *testing.T, s, lit string) {
		toks, err := tokenize(s, []string{lit})
		if err == nil && toks == nil && strings.TrimSpace(s) != "" {
			t.Fatalf("no tokens and no error for %q", s)
		}
		parseSet(s)
		cutCode(s)
		literalSize(s)
		ses := &Session{uids: []uint32{1, 0, 3}, flags: map[uint32][]string{}, modseq: map[uint32]uint64{}, flagsAt: map[uint32]uint64{}, keywords: map[string]bool{}, Check: &Checker{}}
		ses.untagged(s, []string{lit}, &Result{Fetched: map[uint32]bool{}, FlagsFetched: map[uint32]bool{}})
		ses.untagged("2 FETCH "+s, []string{lit}, &Result{Fetched: map[uint32]bool{}, FlagsFetched: map[uint32]bool{}})
	})
}

// TestSessionContexts: ADDTO/REMOVEFROM are applied as a client applies
// them; an EXPUNGE of a sequence number still in a context, or a
// REMOVEFROM that does not fit, is an error; VerifyContexts compares with
// the search run again.
func TestSessionContexts(t *testing.T) {
	addr := fakeServer(t, map[string][]string{
		`SELECT "INBOX" (CONDSTORE)`: {"* 4 EXISTS", `* FLAGS (\Seen \Flagged)`, "TAG OK done"},
		"FETCH 1:* (UID FLAGS MODSEQ)": {
			`* 1 FETCH (UID 1 FLAGS (\Flagged) MODSEQ (1))`, `* 2 FETCH (UID 2 FLAGS (\Flagged) MODSEQ (1))`,
			`* 3 FETCH (UID 3 FLAGS () MODSEQ (1))`, `* 4 FETCH (UID 4 FLAGS (\Flagged) MODSEQ (1))`, "TAG OK done",
		},
		"SEARCH RETURN (UPDATE ALL) FLAGGED":                       {`* ESEARCH (TAG "TAG") ALL 1:2,4`, "TAG OK done"},
		"UID SORT RETURN (UPDATE ALL) (REVERSE ARRIVAL) UTF-8 ALL": {`* ESEARCH (TAG "TAG") UID ALL 4,3,2,1`, "TAG OK done"},
		// Right: REMOVEFROM, then EXPUNGE; sorted positions applied in
		// order.
		"NOOP": {
			`* ESEARCH (TAG "c3") REMOVEFROM (0 2)`, `* ESEARCH (TAG "c4") UID REMOVEFROM (3 2)`, "* 2 EXPUNGE",
			`* 3 FETCH (FLAGS () MODSEQ (2))`, `* ESEARCH (TAG "c3") REMOVEFROM (0 3)`, "TAG OK done",
		},
		"SEARCH FLAGGED":                       {"* SEARCH 1", "TAG OK done"},
		"UID SORT (REVERSE ARRIVAL) UTF-8 ALL": {"* SORT 4 3 1", "TAG OK done"},
		// Wrong: EXPUNGE first; a REMOVEFROM that does not fit.
		"CHECK": {"* 1 EXPUNGE", `* ESEARCH (TAG "c3") REMOVEFROM (0 1)`, `* ESEARCH (TAG "c4") UID REMOVEFROM (1 3)`, "TAG OK done"},
	})
	chk := &Checker{}
	s, err := Dial(addr, 1, chk)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Select("INBOX"); err != nil {
		t.Fatal(err)
	}
	if err := s.OpenContext(false, false, "FLAGGED"); err != nil {
		t.Fatal(err)
	}
	if err := s.OpenContext(true, true, "(REVERSE ARRIVAL) UTF-8 ALL"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Do("NOOP"); err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyContexts(); err != nil {
		t.Fatal(err)
	}
	if chk.Total() != 0 {
		t.Fatalf("errors on a correct exchange: %s %q", chk.Summary(), chk.Samples())
	}
	if _, err := s.Do("CHECK"); err != nil {
		t.Fatal(err)
	}
	// EXPUNGE of a context member, REMOVEFROM (0 1) of a number no longer
	// there, REMOVEFROM (1 3) where 4 is first.
	if n := chk.Counts()[ContextMismatch]; n != 3 {
		t.Fatalf("%d context errors, want 3: %q", n, chk.Samples())
	}
}
