package imap

import (
	"strings"
	"testing"
)

// TestCasemap checks the i;unicode-casemap keys (RFC 5051) on the cases
// where lower-casing is not enough: titlecase digraphs, compatibility
// ligatures, precomposed against decomposed accents, full-width forms.
func TestCasemap(t *testing.T) {
	same := [][2]string{
		{"Hello", "hELLO"},
		{"ǆemal", "ǅEMAL"},     // U+01C6 vs U+01C5 (titlecase digraph)
		{"ﬁle", "FILE"},        // U+FB01 ligature
		{"Café", "CAFE\u0301"}, // precomposed vs decomposed
		{"Ｖｏｉｃｅ", "voice"},     // full-width
		{"straße", "STRAßE"},   // no full case folding: ß stays
		{"Ωmega", "ωMEGA"},     // Greek
		{"Anruf von Jürgen", "ANRUF VON JU\u0308RGEN"},
	}
	for _, p := range same {
		if casemap(p[0]) != casemap(p[1]) {
			t.Errorf("casemap(%q) = %q, casemap(%q) = %q: want equal", p[0], casemap(p[0]), p[1], casemap(p[1]))
		}
	}
	differ := [][2]string{{"cafe", "café"}, {"a", "b"}, {"straße", "strasse"}}
	for _, p := range differ {
		if casemap(p[0]) == casemap(p[1]) {
			t.Errorf("casemap(%q) == casemap(%q)", p[0], p[1])
		}
	}
	if !containsFold("Voicemail from ǅoko Café", "ǆOKO CAFE\u0301") {
		t.Error("substring match across titlecase and decomposition")
	}
}

// TestSearchCasemap: SEARCH matches under i;unicode-casemap (I18NLEVEL=1).
func TestSearchCasemap(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", msgFrom(`"Jürgen" <j@example.net>`, "Rückruf ﬁnanzamt", "Mon, 2 Nov 2026 10:00:00 +0000", "Bitte zurückrufen"))
	e.deposit("alice", "INBOX", msgFrom(`bob@example.net`, "other", "Mon, 2 Nov 2026 10:00:00 +0000", "x"))
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	for _, q := range []string{
		"SEARCH CHARSET UTF-8 SUBJECT \"RU\u0308CKRUF\"",
		`SEARCH CHARSET UTF-8 SUBJECT "FINANZAMT"`,
		`SEARCH CHARSET UTF-8 FROM "jürgen"`,
		`SEARCH CHARSET UTF-8 BODY "ZURÜCKRUFEN"`,
	} {
		lines := rc.ok("%s", q)
		if strings.Join(lines, "|") != "* SEARCH 1" {
			t.Errorf("%s: %q", q, lines)
		}
	}
}
