package imap

import (
	"context"
	"flag"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/bench/imapcheck"
)

var checkSessions = flag.Int("sessions", 0, "sessions of TestConsistency (default 12; 50 when LEMONVOX_CHECK_SECONDS is set)")

// TestConsistency runs the concurrent consistency checker: sessions of one
// account on shared mailboxes with random STORE (keywords, +/-/replace,
// .SILENT, UNCHANGEDSINCE), APPEND, EXPUNGE, COPY, MOVE, FETCH and SEARCH,
// by sequence number and by UID, each session checking what it is told
// (bench/imapcheck). The default is short; LEMONVOX_CHECK_SECONDS=60 runs
// the full mode (50 sessions unless -sessions or LEMONVOX_CHECK_SESSIONS
// says otherwise). Each session also keeps a CONTEXT=SEARCH/SORT result
// up to date unless LEMONVOX_CHECK_CONTEXTS=0; LEMONVOX_CHECK_SEED fixes
// the random choices (not the interleaving).
func TestConsistency(t *testing.T) {
	sessions, dur := 12, 8*time.Second
	if testing.Short() {
		sessions, dur = 6, 3*time.Second
	}
	if v := os.Getenv("LEMONVOX_CHECK_SECONDS"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 {
			t.Fatalf("LEMONVOX_CHECK_SECONDS=%q", v)
		}
		sessions, dur = 50, time.Duration(secs*float64(time.Second))
	}
	if v := os.Getenv("LEMONVOX_CHECK_SESSIONS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("LEMONVOX_CHECK_SESSIONS=%q", v)
		}
		sessions = n
	}
	if *checkSessions > 0 {
		sessions = *checkSessions
	}
	var seed uint64
	if v := os.Getenv("LEMONVOX_CHECK_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	e := newTestEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), dur+2*time.Minute)
	defer cancel()
	rep, err := imapcheck.Run(ctx, imapcheck.Config{
		Addr: e.srv.PlainAddr(), User: "alice", Password: testPass,
		Mailboxes: []string{"INBOX", "Shared"},
		Sessions:  sessions, Duration: dur, Seed: seed,
		Contexts: os.Getenv("LEMONVOX_CHECK_CONTEXTS") != "0",
		Logf:     t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range imapcheck.Kinds {
		t.Logf("%-22s %d", k, rep.Counts[k])
	}
	if rep.Commands == 0 {
		t.Fatal("no commands ran")
	}
	if len(rep.Samples) > 0 {
		for _, s := range rep.Samples {
			t.Log(s)
		}
		t.Fatalf("%d sessions, %d commands: %s", sessions, rep.Commands, rep.Summary)
	}
}
