package imap

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBodyStructureLines: a body's size and line count cover the body
// only; the CRLF before a boundary belongs to the boundary (RFC 2046
// s5.1.1), and a message/rfc822 part counts the lines of the whole
// encapsulated message (RFC 9051 s7.5.2). The figures are those of the
// served BODY[n] sections.
func TestBodyStructureLines(t *testing.T) {
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", "Subject: m\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"+
		"--XX\r\nContent-Type: text/plain\r\n\r\na\r\nb\r\n"+
		"--XX\r\nContent-Type: text/plain\r\n\r\na\r\nb\r\n\r\n"+
		"--XX\r\nContent-Type: text/plain\r\n\r\n"+
		"--XX\r\nContent-Type: text/plain\r\n\r\nx\r\n"+
		"--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nX: y\r\n\r\nl1\r\nl2\r\n"+
		"--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\n\r\nq\r\n--YY--\r\n"+
		"--XX--\r\n")
	e.deposit("alice", "INBOX", "Subject: m\r\n\r\na\r\nb")
	e.deposit("alice", "INBOX", "Subject: m\r\n\r\na\r\nb\r\n")
	rc := e.raw()
	rc.login("alice")
	rc.ok("EXAMINE INBOX")
	lines := rc.ok("FETCH 1:3 (BODYSTRUCTURE)")
	want := []string{
		`* 1 FETCH (BODYSTRUCTURE (` +
			`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 4 1 NIL NIL NIL NIL)` +
			`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 6 2 NIL NIL NIL NIL)` +
			`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0 NIL NIL NIL NIL)` +
			`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 0 NIL NIL NIL NIL)` +
			`("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 30 (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 6 1 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)` +
			`(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 1 0 NIL NIL NIL NIL) "ALTERNATIVE" ("boundary" "YY") NIL NIL NIL)` +
			` "MIXED" ("boundary" "XX") NIL NIL NIL))`,
		`* 2 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 4 1 NIL NIL NIL NIL))`,
		`* 3 FETCH (BODYSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 6 2 NIL NIL NIL NIL))`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// The sizes are those of the sections served.
	for _, tc := range []struct{ sec, body string }{
		{"1", "a\r\nb"}, {"2", "a\r\nb\r\n"}, {"3", ""}, {"4", "x"},
		{"5", "Subject: inner\r\nX: y\r\n\r\nl1\r\nl2"}, {"6.1", "q"},
		{"6", "--YY\r\nContent-Type: text/plain\r\n\r\nq\r\n--YY--"},
	} {
		got := fetchLiteral(t, rc, "1", "BODY.PEEK["+tc.sec+"]")
		if got != tc.body {
			t.Errorf("BODY[%s] = %q, want %q", tc.sec, got, tc.body)
		}
	}
}

// fetchLiteral fetches one item of one message and returns its value, a
// literal read whole (CRLFs included) or the rest of the line.
func fetchLiteral(t *testing.T, rc *rawClient, seq, item string) string {
	t.Helper()
	_, v := fetchRaw(t, rc, seq, item)
	return v
}

// fetchRaw is fetchLiteral that also returns the first response line
// (up to and including the literal's length).
func fetchRaw(t *testing.T, rc *rawClient, seq, item string) (string, string) {
	t.Helper()
	rc.n++
	tag := "t" + itoa64(int64(rc.n))
	rc.send(tag + " FETCH " + seq + " (" + item + ")")
	first := rc.line()
	i := strings.LastIndex(first, "{")
	if i < 0 || !strings.HasSuffix(first, "}") {
		if _, tagged := rc.until(tag); !strings.Contains(tagged, "OK") {
			t.Fatalf("%s: %s / %s", item, first, tagged)
		}
		return first, first
	}
	n, err := strconv.Atoi(strings.TrimSuffix(first[i+1:], "}"))
	if err != nil {
		t.Fatalf("%q: %v", first, err)
	}
	buf := make([]byte, n)
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(rc.r, buf); err != nil {
		t.Fatal(err)
	}
	if _, tagged := rc.until(tag); !strings.Contains(tagged, "OK") {
		t.Fatalf("%s: %s", item, tagged)
	}
	return first, string(buf)
}
