package imapcheck

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// fakeServer answers each command line with the scripted responses (the
// tag of the command replaces "TAG").
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
				nc.Write([]byte(strings.ReplaceAll(x, "TAG", tag) + "\r\n"))
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
		ses := &Session{uids: []uint32{1, 0, 3}, flags: map[uint32][]string{}, modseq: map[uint32]uint64{}, keywords: map[string]bool{}, Check: &Checker{}}
		ses.untagged(s, []string{lit}, &Result{Fetched: map[uint32]bool{}})
		ses.untagged("2 FETCH "+s, []string{lit}, &Result{Fetched: map[uint32]bool{}})
	})
}
