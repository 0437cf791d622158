package imap

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

// appendAt APPENDs msg with an internal date and returns its UID.
func (rc *rawClient) appendAt(mailbox, flags string, date time.Time, msg string) {
	rc.t.Helper()
	rc.ok("APPEND %s (%s) \"%s\" {%d+}\r\n%s", mailbox, flags, date.Format("02-Jan-2006 15:04:05 -0700"), len(msg), msg)
}

// searchMailbox fills INBOX with four messages for the SEARCH tests:
//
//	1 "alpha", small, \Seen, internal date 2026-01-10, sent 2026-01-09
//	2 "beta", large, \Flagged, internal date 2 hours ago
//	3 "alpha beta", body "needle", keyword $Label, internal date now
//	4 "gamma", X-Tag header, internal date now
func searchMailbox(t *testing.T, rc *rawClient) {
	now := time.Now()
	rc.appendAt("INBOX", `\Seen`, time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC),
		"Subject: alpha\r\nDate: Fri, 9 Jan 2026 10:00:00 +0000\r\n\r\nshort\r\n")
	rc.appendAt("INBOX", `\Flagged`, now.Add(-2*time.Hour),
		"Subject: beta\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\n"+strings.Repeat("long line of text\r\n", 20))
	rc.appendAt("INBOX", `$Label`, now,
		"Subject: alpha beta\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nfind the needle here\r\n")
	rc.appendAt("INBOX", ``, now,
		"Subject: gamma\r\nX-Tag: foo\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nplain\r\n")
}

// TestSearchConjunction: every key of a search program applies, however
// many of one kind appear, through nested lists, OR and NOT (RFC 9051
// s6.4.4: keys are ANDed). SMALLER followed by another key and MODSEQ
// used to be dropped.
func TestSearchConjunction(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	searchMailbox(t, rc)
	lines := rc.ok("SELECT INBOX (CONDSTORE)")
	base := codeValue(t, lines, "HIGHESTMODSEQ")
	// Messages 2 and 4 change after base.
	rc.ok("STORE 2 +FLAGS.SILENT ($Done)")
	rc.ok("STORE 4 +FLAGS.SILENT ($Done)")
	mod := map[int]uint64{}
	for _, l := range rc.ok("FETCH 1:* (MODSEQ)") {
		var seq int
		var m uint64
		if _, err := fmt.Sscanf(l, "* %d FETCH (MODSEQ (%d))", &seq, &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		mod[seq] = m
	}
	if mod[1] > base || mod[2] <= base || mod[4] <= mod[2] {
		t.Fatalf("modseqs %v base %d", mod, base)
	}
	small := 100 // messages 1, 3 and 4 are below, 2 above
	cases := []struct{ keys, want string }{
		{"ALL", "* SEARCH 1 2 3 4"},
		{fmt.Sprintf("SMALLER %d SUBJECT alpha", small), "* SEARCH 1 3"},
		{fmt.Sprintf("SUBJECT alpha SMALLER %d", small), "* SEARCH 1 3"},
		{fmt.Sprintf("SMALLER %d SMALLER 10", small), "* SEARCH"},
		{fmt.Sprintf("LARGER 10 SMALLER %d", small), "* SEARCH 1 3 4"},
		{fmt.Sprintf("LARGER %d", small), "* SEARCH 2"},
		{fmt.Sprintf("MODSEQ %d", base+1), fmt.Sprintf("* SEARCH 2 4 (MODSEQ %d)", mod[4])},
		{fmt.Sprintf(`MODSEQ "/flags/\\Seen" all %d`, base+1), fmt.Sprintf("* SEARCH 2 4 (MODSEQ %d)", mod[4])},
		{fmt.Sprintf("MODSEQ %d SMALLER %d", base+1, small), fmt.Sprintf("* SEARCH 4 (MODSEQ %d)", mod[4])},
		{fmt.Sprintf("NOT MODSEQ %d", base+1), fmt.Sprintf("* SEARCH 1 3 (MODSEQ %d)", max(mod[1], mod[3]))},
		{"SEEN UNSEEN", "* SEARCH"},
		{"FLAGGED KEYWORD $Done", "* SEARCH 2"},
		{"UNKEYWORD $Done UNSEEN", "* SEARCH 3"},
		{"OR SUBJECT gamma FLAGGED", "* SEARCH 2 4"},
		{"OR SUBJECT gamma FLAGGED NOT KEYWORD $Done", "* SEARCH"},
		{"NOT OR SEEN FLAGGED", "* SEARCH 3 4"},
		{"1:2 2:4", "* SEARCH 2"},
		{"UID 1:3 UID 2:4", "* SEARCH 2 3"},
		{"2:* UID 1:3 (SUBJECT beta)", "* SEARCH 2 3"},
		{"(SUBJECT alpha (SUBJECT beta)) KEYWORD $Label", "* SEARCH 3"},
		{"HEADER X-Tag foo SUBJECT gamma", "* SEARCH 4"},
		{"HEADER X-Tag foo SUBJECT alpha", "* SEARCH"},
		{`HEADER X-Tag ""`, "* SEARCH 4"},
		{"BODY needle TEXT alpha", "* SEARCH 3"},
		{"BODY needle SUBJECT gamma", "* SEARCH"},
		{"TEXT X-Tag", "* SEARCH 4"},
		{"SINCE 1-Jan-2026 BEFORE 11-Jan-2026", "* SEARCH 1"},
		{"ON 10-Jan-2026", "* SEARCH 1"},
		{"SINCE 11-Jan-2026 SUBJECT alpha", "* SEARCH 3"},
		{"SENTON 9-Jan-2026", "* SEARCH 1"},
		{"SENTSINCE 10-Jan-2026 SENTBEFORE 22-Nov-2026", "* SEARCH 2 3 4"},
		{"SENTSINCE 10-Jan-2026 SENTBEFORE 21-Nov-2026", "* SEARCH"},
		// RFC 5032 WITHIN: seconds relative to now, against the internal date.
		{"YOUNGER 600", "* SEARCH 3 4"},
		{"YOUNGER 36000", "* SEARCH 2 3 4"},
		{"OLDER 600", "* SEARCH 1 2"},
		{"OLDER 600 YOUNGER 36000", "* SEARCH 2"},
	}
	for _, tc := range cases {
		lines := rc.ok("SEARCH %s", tc.keys)
		if len(lines) != 1 || lines[0] != tc.want {
			t.Errorf("SEARCH %s: got %q, want %q", tc.keys, lines, tc.want)
		}
	}
	for _, bad := range []string{"OLDER 0", "YOUNGER x", `MODSEQ "/flags/\\Seen" bogus 1`, "MODSEQ 9223372036854775808", "SMALLER"} {
		if _, tagged := rc.cmd("SEARCH %s", bad); !strings.Contains(tagged, " BAD ") {
			t.Errorf("SEARCH %s: %s", bad, tagged)
		}
	}
}

// TestSearchModSeqMinMax: RFC 7162 s3.1.5, with RETURN (MIN) and/or (MAX)
// alone the MODSEQ of the ESEARCH response is that of the returned
// messages; with ALL or COUNT it is the highest of every match.
func TestSearchModSeqMinMax(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	for i := 0; i < 3; i++ {
		rc.ok("APPEND INBOX {%d+}\r\n%s", len(testMessage("m", "x")), testMessage("m", "x"))
	}
	rc.ok("SELECT INBOX")
	rc.ok("STORE 2 +FLAGS.SILENT (\\Seen)")
	rc.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
	mod := map[int]uint64{}
	for _, l := range rc.ok("FETCH 1:* (MODSEQ)") {
		var seq int
		var m uint64
		fmt.Sscanf(l, "* %d FETCH (MODSEQ (%d))", &seq, &m)
		mod[seq] = m
	}
	top := slices.Max([]uint64{mod[1], mod[2], mod[3]})
	if mod[3] >= top {
		t.Fatalf("modseqs %v", mod)
	}
	cases := []struct{ ret, want string }{
		{"MIN", fmt.Sprintf("MIN 1 MODSEQ %d", mod[1])},
		{"MAX", fmt.Sprintf("MAX 3 MODSEQ %d", mod[3])},
		{"MIN MAX", fmt.Sprintf("MIN 1 MAX 3 MODSEQ %d", max(mod[1], mod[3]))},
		{"MIN COUNT", fmt.Sprintf("MIN 1 COUNT 3 MODSEQ %d", top)},
		{"", fmt.Sprintf("ALL 1:3 MODSEQ %d", top)},
	}
	for _, tc := range cases {
		rc.n++
		tag := fmt.Sprintf("t%d", rc.n)
		rc.send(fmt.Sprintf("%s SEARCH RETURN (%s) MODSEQ 1", tag, tc.ret))
		lines, tagged := rc.until(tag)
		want := fmt.Sprintf(`* ESEARCH (TAG "%s") %s`, tag, tc.want)
		if !strings.Contains(tagged, " OK") || len(lines) != 1 || lines[0] != want {
			t.Errorf("RETURN (%s): got %q %s, want %q", tc.ret, lines, tagged, want)
		}
	}
	// UID SEARCH RETURN (MAX) with another key after MODSEQ.
	lines := rc.ok("UID SEARCH RETURN (MAX) MODSEQ 1 UNSEEN")
	if want := fmt.Sprintf(`* ESEARCH (TAG "t%d") UID MAX 3 MODSEQ %d`, rc.n, mod[3]); lines[0] != want {
		t.Errorf("got %q want %q", lines[0], want)
	}
}

// TestSearchClient: go-imap's client expresses MODSEQ with other keys;
// the server applies all of them. WITHIN is announced.
func TestSearchClient(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 3; i++ {
		e.deposit("alice", "INBOX", testMessage(fmt.Sprintf("c%d", i), strings.Repeat("x", 100*i)))
	}
	c := e.client("alice")
	caps, err := c.Capability().Wait()
	if err != nil || !caps.Has("WITHIN") {
		t.Fatalf("CAPABILITY: %v %v", caps, err)
	}
	sd, err := c.Select("INBOX", &imap.SelectOptions{CondStore: true}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Collect(); err != nil {
		t.Fatal(err)
	}
	res, err := c.UIDSearch(&imap.SearchCriteria{
		ModSeq:  &imap.SearchCriteriaModSeq{ModSeq: sd.HighestModSeq + 1},
		Smaller: 200,
	}, nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if got := res.AllUIDs(); !slices.Equal(got, []imap.UID{1}) {
		t.Fatalf("UID SEARCH MODSEQ SMALLER: %v", got)
	}
}

func init() {
	fuzzSeeds = append(fuzzSeeds,
		"a SEARCH SMALLER 10 LARGER 2 OLDER 5 YOUNGER 100000 UID 1:* NOT (MODSEQ 1 SENTON 1-Jan-2026)\r\n",
		"a SEARCH RETURN (MAX) MODSEQ \"/flags/$Junk\" priv 0 OR HEADER X y BODY z\r\n",
		"a MOVE 1 INBOX\r\na EXAMINE INBOX\r\na LSUB \"\" \"%/%\"\r\n",
		"a FETCH 1:* (PREVIEW (LAZY) BINARY[] BINARY.SIZE[2] BINARY[2.1]<1.2> RFC822.SIZE)\r\na FETCH 1 PREVIEW (CHANGEDSINCE 1)\r\n",
	)
}
