package imap

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// binaryMessage is appended with a literal8: part 2 and the body of the
// message in part 3 contain NUL.
func binaryMessage(blob []byte) (msg, part2Hdr, part3Body string) {
	part2Hdr = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment;\r\n filename=x.bin\r\n\r\n"
	part3Body = "Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding:\r\n binary\r\n\r\nnul\x00here\r\nline 2"
	msg = "Subject: bin\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--XX\r\n" + part2Hdr + string(blob) + "\r\n" +
		"--XX\r\nContent-Type: message/rfc822\r\n\r\n" + part3Body + "\r\n" +
		"--XX--\r\n"
	return
}

// b64Lines is base64 in lines of 76 characters joined by CRLF.
func b64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var lines []string
	for len(s) > 76 {
		lines = append(lines, s[:76])
		s = s[76:]
	}
	return strings.Join(append(lines, s), "\r\n")
}

// TestBinaryPresented: a part appended with a literal8 whose content has
// NUL is never sent in a plain literal. BODY[], BODY[n], BODY[n.MIME] and
// BODYSTRUCTURE present it base64-encoded (RFC 3516 s4.3) and agree with
// each other and with RFC822.SIZE; BINARY returns the stored octets in a
// literal8, for a leaf, a message/rfc822 part and the whole message.
func TestBinaryPresented(t *testing.T) {
	e := newTestEnv(t)
	blob := make([]byte, 300)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	msg, part2Hdr, part3Body := binaryMessage(blob)
	rc := e.raw()
	rc.login("alice")
	rc.ok("APPEND INBOX ~{%d+}\r\n%s", len(msg), msg)
	rc.ok("SELECT INBOX")

	hdr2 := strings.Replace(part2Hdr, "Content-Transfer-Encoding: binary\r\n", "", 1)
	hdr2 = strings.TrimSuffix(hdr2, "\r\n") + "Content-Transfer-Encoding: base64\r\n\r\n"
	body2 := b64Lines(blob)
	inner := "nul\x00here\r\nline 2"
	body3 := "Subject: inner\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64Lines([]byte(inner))
	presented := strings.Replace(strings.Replace(msg, part2Hdr+string(blob), hdr2+body2, 1), part3Body, body3, 1)

	first, got := fetchRaw(t, rc, "1", "BODY.PEEK[]")
	if got != presented || !strings.HasSuffix(first, fmt.Sprintf("BODY[] {%d}", len(presented))) {
		t.Fatalf("BODY[]: %s\n%q\nwant\n%q", first, got, presented)
	}
	lines := rc.ok("FETCH 1 (RFC822.SIZE BODYSTRUCTURE)")
	want := fmt.Sprintf(`* 1 FETCH (RFC822.SIZE %d BODYSTRUCTURE (`+
		`("TEXT" "PLAIN" NIL NIL NIL "7BIT" 5 0 NIL NIL NIL NIL)`+
		`("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" %d NIL ("ATTACHMENT" ("filename" "x.bin")) NIL NIL)`+
		`("MESSAGE" "RFC822" NIL NIL NIL "7BIT" %d (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" NIL NIL NIL "BASE64" %d 0 NIL NIL NIL NIL) 4 NIL NIL NIL NIL)`+
		` "MIXED" ("boundary" "XX") NIL NIL NIL))`, len(presented), len(body2), len(body3), len(b64Lines([]byte(inner))))
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("got  %q\nwant %q", lines, want)
	}
	for _, tc := range []struct{ item, want string }{
		{"BODY.PEEK[2]", body2},
		{"BODY.PEEK[2.MIME]", hdr2},
		{"BODY.PEEK[3]", body3},
		{"BODY.PEEK[3.TEXT]", b64Lines([]byte(inner))},
		{"BODY.PEEK[3.1.MIME]", body3[:strings.Index(body3, "\r\n\r\n")+4]},
		{"BODY.PEEK[TEXT]", presented[strings.Index(presented, "\r\n\r\n")+4:]},
		{"BODY.PEEK[2]<70.100>", body2[70:170]},
		{"BODY.PEEK[]<100.250>", presented[100:350]},
		{"RFC822.TEXT", presented[strings.Index(presented, "\r\n\r\n")+4:]},
	} {
		first, got := fetchRaw(t, rc, "1", tc.item)
		if got != tc.want || strings.Contains(first, "~{") {
			t.Errorf("%s: %s\n%q\nwant\n%q", tc.item, first, got, tc.want)
		}
	}
	// BINARY: the stored octets, in a literal8 when they have NUL.
	for _, tc := range []struct{ item, lit, want string }{
		{"BINARY.PEEK[2]", "~{", string(blob)},
		{"BINARY.PEEK[3]", "~{", part3Body},
		{"BINARY.PEEK[3.1]", "~{", inner},
		{"BINARY.PEEK[1]", "{", "hello"},
		{"BINARY.PEEK[]", "~{", msg},
		{"BINARY.PEEK[]<10.20>", "~{", msg[10:30]},
	} {
		first, got := fetchRaw(t, rc, "1", tc.item)
		if got != tc.want || !strings.HasSuffix(first, tc.lit+strconv.Itoa(len(tc.want))+"}") {
			t.Errorf("%s: %s\n%q\nwant\n%q", tc.item, first, got, tc.want)
		}
	}
	lines = rc.ok("FETCH 1 (BINARY.SIZE[] BINARY.SIZE[2] BINARY.SIZE[3] BINARY.SIZE[3.1])")
	if want := fmt.Sprintf("* 1 FETCH (BINARY.SIZE[] %d BINARY.SIZE[2] %d BINARY.SIZE[3] %d BINARY.SIZE[3.1] %d)", len(msg), len(blob), len(part3Body), len(inner)); lines[0] != want {
		t.Errorf("got %q want %q", lines[0], want)
	}
	if _, tagged := rc.cmd("FETCH 1 (BINARY.PEEK[4])"); !strings.Contains(tagged, "NO [NONEXISTENT]") {
		t.Errorf("BINARY[4]: %s", tagged)
	}

	// go-imap's client reads BINARY[2] and BINARY.SIZE[] back.
	c := e.client("alice")
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	bufs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{
		BinarySection:     []*imap.FetchItemBinarySection{{Part: []int{2}, Peek: true}},
		BinarySectionSize: []*imap.FetchItemBinarySectionSize{{}},
		RFC822Size:        true,
	}).Collect()
	if err != nil || len(bufs) != 1 {
		t.Fatalf("client FETCH: %v %v", bufs, err)
	}
	if got := bufs[0].FindBinarySection(&imap.FetchItemBinarySection{Part: []int{2}}); string(got) != string(blob) {
		t.Errorf("client BINARY[2]: %q", got)
	}
	if len(bufs[0].BinarySectionSize) != 1 || bufs[0].BinarySectionSize[0].Size != uint32(len(msg)) || bufs[0].RFC822Size != int64(len(presented)) {
		t.Errorf("client sizes: %+v %d", bufs[0].BinarySectionSize, bufs[0].RFC822Size)
	}
}

// TestBinarySingleLeaf: a message that is one binary leaf is presented
// with its header rewritten; BINARY[1] and BINARY[] are its octets.
func TestBinarySingleLeaf(t *testing.T) {
	e := newTestEnv(t)
	m := "Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n"
	rc := e.raw()
	rc.login("alice")
	rc.ok("APPEND INBOX ~{%d+}\r\n%s", len(m), m)
	rc.ok("SELECT INBOX")
	presented := "Subject: bin\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECDQo="
	if _, got := fetchRaw(t, rc, "1", "BODY.PEEK[]"); got != presented {
		t.Fatalf("BODY[]: %q", got)
	}
	lines := rc.ok("FETCH 1 (RFC822.SIZE BODYSTRUCTURE BINARY.SIZE[1])")
	if want := fmt.Sprintf(`* 1 FETCH (RFC822.SIZE %d BODYSTRUCTURE ("APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" 8 NIL NIL NIL NIL) BINARY.SIZE[1] 5)`, len(presented)); lines[0] != want {
		t.Fatalf("got  %q\nwant %q", lines[0], want)
	}
	if first, got := fetchRaw(t, rc, "1", "BINARY.PEEK[1]"); got != "\x00\x01\x02\r\n" || !strings.HasSuffix(first, "~{5}") {
		t.Fatalf("BINARY[1]: %s %q", first, got)
	}
	if first, got := fetchRaw(t, rc, "1", "BINARY.PEEK[]"); got != m || !strings.HasSuffix(first, fmt.Sprintf("~{%d}", len(m))) {
		t.Fatalf("BINARY[]: %s %q", first, got)
	}
	if _, got := fetchRaw(t, rc, "1", "BODY.PEEK[1]"); got != "AAECDQo=" {
		t.Fatalf("BODY[1]: %q", got)
	}
}

// TestBinaryNonLeaf: BINARY[], BINARY.SIZE[] and BINARY of a
// message/rfc822 or multipart part return the stored octets (their
// encoding is the identity), in a plain literal when there is no NUL.
func TestBinaryNonLeaf(t *testing.T) {
	e := newTestEnv(t)
	m := "Subject: m\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n" +
		"--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nl1\r\n" +
		"--XX\r\nContent-Type: multipart/alternative; boundary=YY\r\n\r\n--YY\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--YY--\r\n" +
		"--XX--\r\n"
	e.deposit("alice", "INBOX", m)
	rc := e.raw()
	rc.login("alice")
	rc.ok("SELECT INBOX")
	for _, tc := range []struct{ item, want string }{
		{"BINARY.PEEK[]", m},
		{"BINARY.PEEK[1]", "Subject: inner\r\n\r\nl1"},
		{"BINARY.PEEK[1.1]", "l1"},
		{"BINARY.PEEK[2]", "--YY\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--YY--"},
		{"BINARY.PEEK[2.1]", "hello"},
	} {
		first, got := fetchRaw(t, rc, "1", tc.item)
		if got != tc.want || !strings.HasSuffix(first, fmt.Sprintf(" {%d}", len(tc.want))) {
			t.Errorf("%s: %s %q", tc.item, first, got)
		}
	}
	lines := rc.ok("FETCH 1 (BINARY.SIZE[] BINARY.SIZE[1])")
	if want := fmt.Sprintf("* 1 FETCH (BINARY.SIZE[] %d BINARY.SIZE[1] 20)", len(m)); lines[0] != want {
		t.Fatalf("got %q want %q", lines[0], want)
	}
}

// TestBinarySearchSize: LARGER and SMALLER compare RFC822.SIZE, the size
// of the presented message.
func TestBinarySearchSize(t *testing.T) {
	e := newTestEnv(t)
	m := "Subject: bin\r\nContent-Transfer-Encoding: binary\r\n\r\n" + strings.Repeat("\x00", 300) + "\r\n"
	rc := e.raw()
	rc.login("alice")
	rc.ok("APPEND INBOX ~{%d+}\r\n%s", len(m), m)
	rc.ok("SELECT INBOX")
	var size int
	if _, err := fmt.Sscanf(rc.ok("FETCH 1 RFC822.SIZE")[0], "* 1 FETCH (RFC822.SIZE %d)", &size); err != nil || size <= len(m) {
		t.Fatalf("RFC822.SIZE %d (stored %d): %v", size, len(m), err)
	}
	if l := rc.ok("SEARCH LARGER %d", size-1); l[0] != "* SEARCH 1" {
		t.Errorf("LARGER: %q", l)
	}
	if l := rc.ok("SEARCH SMALLER %d", size); l[0] != "* SEARCH" {
		t.Errorf("SMALLER: %q", l)
	}
}
