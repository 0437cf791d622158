package imap

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

// voiceMessage deposits a VPIM voice message of secs seconds of 8 kHz
// audio (part 1, base64) into user's INBOX; it returns its UID, the
// mailbox's UIDVALIDITY and the audio.
func voiceMessage(t *testing.T, e *testEnv, user string, secs int) (uint32, uint32, []byte) {
	t.Helper()
	audio := make([]byte, 8000*secs)
	rand.New(rand.NewSource(int64(secs))).Read(audio)
	vm := vmstore.VoiceMessage{From: "+15551234567@vm.example.net", To: user + "@example.net", MediaType: "audio/basic",
		Duration: time.Duration(secs) * time.Second, Media: bytes.NewReader(audio), Date: time.Now()}
	res, err := e.store.Deposit(vmstore.DepositReq{User: user, Body: vm.Compose()})
	if err != nil {
		t.Fatal(err)
	}
	return res.Message.UID, res.Mailbox.UIDValidity, audio
}

// storedSection returns BODY.PEEK[sec] of a stored message (or BINARY.PEEK[sec]
// when decoded).
func storedSection(t *testing.T, e *testEnv, user, mailbox string, uid uint32, sec string, decoded bool) []byte {
	t.Helper()
	s, err := message.Parse(sec)
	if err != nil {
		t.Fatal(err)
	}
	mode := message.Raw
	if decoded {
		mode = message.Decoded
	}
	p, err := message.Open(e.store, user, mailbox, uid, s, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b, err := io.ReadAll(p.Reader())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// literalData runs a command whose answer carries one literal (FETCH of
// one section) and returns the literal's octets.
func (rc *rawClient) literalData(format string, args ...any) []byte {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("t%d", rc.n)
	rc.send(tag + " " + fmt.Sprintf(format, args...))
	var data []byte
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				rc.t.Fatalf("%s: %s", fmt.Sprintf(format, args...), l)
			}
			return data
		}
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}") {
			n, err := strconv.Atoi(l[i+1 : len(l)-1])
			if err != nil {
				rc.t.Fatalf("literal marker in %q", l)
			}
			data = make([]byte, n)
			rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(rc.r, data); err != nil {
				rc.t.Fatal(err)
			}
		}
	}
}

// expect reads one line that must be want.
func (rc *rawClient) expect(want string) {
	rc.t.Helper()
	if l := rc.line(); l != want {
		rc.t.Fatalf("got  %q\nwant %q", l, want)
	}
}

// write sends octets as they are (literal data, the rest of a line).
func (rc *rawClient) write(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.conn, s); err != nil {
		rc.t.Fatal(err)
	}
}

func messages(t *testing.T, e *testEnv, user string) int64 {
	t.Helper()
	u, err := e.store.Usage(user)
	if err != nil {
		t.Fatal(err)
	}
	return u.Messages
}

func uidValidity(t *testing.T, e *testEnv, user, mailbox string) uint32 {
	t.Helper()
	mb, err := e.store.Mailbox(user, mailbox)
	if err != nil {
		t.Fatal(err)
	}
	return mb.UIDValidity
}

const fwdHead = "From: Alice <alice@example.net>\r\nTo: carol@example.net\r\nSubject: Fwd: voice message\r\n" +
	"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n" +
	"Listen to this.\r\n--b1\r\n"

const fwdTail = "\r\n--b1--\r\n"

// TestCatenateForwardVoice forwards a voice message the way a handset does:
// new headers and a text part as TEXT, the audio part by URL (its MIME
// header and its body), the closing boundary as TEXT. The new message is
// exactly those octets, its audio decodes to the same bytes (same hash),
// the source stays unseen.
func TestCatenateForwardVoice(t *testing.T) {
	e := newTestEnv(t)
	uid, v, audio := voiceMessage(t, e, "alice", 10)
	rc := e.raw()
	rc.login("alice")
	rc.ok("CREATE Fwd")
	if l, _ := rc.cmd("CAPABILITY"); !strings.Contains(l[0], " CATENATE") {
		t.Fatalf("CATENATE not announced: %q", l)
	}
	src := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid)
	rc.send(fmt.Sprintf(`a1 APPEND Fwd (\Seen) CATENATE (TEXT {%d}`, len(fwdHead)))
	rc.expect("+ Ready for literal data")
	rc.write(fwdHead)
	rc.send(fmt.Sprintf(` URL "%s/;SECTION=1.MIME" URL "%s/;SECTION=1" TEXT {%d}`, src, src, len(fwdTail)))
	rc.expect("+ Ready for literal data")
	rc.write(fwdTail)
	rc.send(")")
	fv := uidValidity(t, e, "alice", "Fwd")
	rc.expect(fmt.Sprintf("a1 OK [APPENDUID %d 1] APPEND completed", fv))

	want := fwdHead + string(storedSection(t, e, "alice", "INBOX", uid, "1.MIME", false)) +
		string(storedSection(t, e, "alice", "INBOX", uid, "1", false)) + fwdTail
	rc.ok("SELECT Fwd")
	got := rc.literalData("UID FETCH 1 BODY.PEEK[]")
	if string(got) != want {
		t.Fatalf("forwarded message differs: %d octets, want %d", len(got), len(want))
	}
	audioGot := rc.literalData("UID FETCH 1 BINARY.PEEK[2]")
	if sha256.Sum256(audioGot) != sha256.Sum256(audio) {
		t.Fatalf("audio of the forward (%d octets) is not the original's (%d octets)", len(audioGot), len(audio))
	}
	// The source is not marked \Seen by being read.
	rc.ok("SELECT INBOX")
	if l := rc.ok("UID FETCH %d FLAGS", uid); strings.Contains(l[0], `\Seen`) {
		t.Fatalf("source marked seen: %q", l)
	}
	rc.ok("NOOP")

	// Whole-message and HEADER URLs, ;PARTIAL= (URL-PARTIAL) inside and
	// past the end of the part, a relative URL while a mailbox is selected
	// (the base is still the server: absolute-path reference).
	rc.send(fmt.Sprintf(`a2 APPEND Fwd CATENATE (URL "%s/;SECTION=HEADER" URL "%s/;SECTION=1/;PARTIAL=4.10" URL "%s/;SECTION=1/;PARTIAL=99999999" TEXT {2+}`, src, src, src))
	rc.write("\r\n)\r\n")
	rc.expect(fmt.Sprintf("a2 OK [APPENDUID %d 2] APPEND completed", fv))
	body := storedSection(t, e, "alice", "INBOX", uid, "1", false)
	want = string(storedSection(t, e, "alice", "INBOX", uid, "HEADER", false)) + string(body[4:14]) + "\r\n"
	if got := storedSection(t, e, "alice", "Fwd", 2, "", false); string(got) != want {
		t.Fatalf("HEADER + PARTIAL: got %q...", got[:min(len(got), 80)])
	}
	rc.send(fmt.Sprintf(`a3 APPEND Fwd CATENATE (URL "%s")`, src))
	rc.expect(fmt.Sprintf("a3 OK [APPENDUID %d 3] APPEND completed", fv))
	if !bytes.Equal(storedSection(t, e, "alice", "Fwd", 3, "", false), storedSection(t, e, "alice", "INBOX", uid, "", false)) {
		t.Fatal("whole-message URL: copy differs")
	}
}

// TestCatenateBadURL: every URL that cannot be used ends the command with
// NO [BADURL <the URL as sent>] before the next continuation, nothing is
// appended, and the connection stays in step (with a LITERAL+ literal in
// flight too).
func TestCatenateBadURL(t *testing.T) {
	e := newTestEnv(t)
	uid, v, _ := voiceMessage(t, e, "alice", 1)
	gone, _, _ := voiceMessage(t, e, "alice", 2)
	bobUID, bobV, _ := voiceMessage(t, e, "bob", 1)
	mb, err := e.store.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.StoreFlags(vmstore.StoreReq{User: "alice", MailboxID: mb.ID, UIDs: []uint32{gone}, Op: vmstore.FlagsAdd, Flags: []string{`\Deleted`}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.Expunge("alice", mb.ID, []uint32{gone}); err != nil {
		t.Fatal(err)
	}
	before := messages(t, e, "alice")
	rc := e.raw()
	rc.login("alice")
	for _, c := range []struct{ url, code, text string }{
		{fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid+100), "", "no such message"},
		{fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, gone), "", "no such message"}, // expunged
		{fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v+1, uid), "", "UIDVALIDITY has changed"},
		{fmt.Sprintf("/INBOX/;UID=%d/;SECTION=7", uid), "", "no such part"},
		{fmt.Sprintf("/Nowhere/;UID=%d", uid), "", "no such mailbox"},
		{"/INBOX", "", "the URL names no message"},
		{fmt.Sprintf("INBOX/;UID=%d", uid), "", ""},               // relative-path reference (RFC 5092 s7.2)
		{fmt.Sprintf("/INBOX/;UID=%d/;SECTION=1.X", uid), "", ""}, // bad section
		{fmt.Sprintf("http://example.net/INBOX/;UID=%d", uid), "", ""},
		// Another user's message: no URLAUTH, no resolver for absolute URLs.
		{fmt.Sprintf("imap://bob@localhost/INBOX;UIDVALIDITY=%d/;UID=%d", bobV, bobUID), "", "absolute URLs are not resolved by this server"},
		{fmt.Sprintf("/INBOX/;UID=%d/;SECTION=1]", uid), "/INBOX/;UID=" + strconv.Itoa(int(uid)) + "/;SECTION=1%5D", ""},
	} {
		code := c.code
		if code == "" {
			code = c.url
		}
		// The URL fails before the client is asked for the TEXT literal.
		rc.send(fmt.Sprintf(`b1 APPEND INBOX CATENATE (URL "%s" TEXT {5}`, c.url))
		l := rc.line()
		if !strings.HasPrefix(l, "b1 NO [BADURL "+code+"] CATENATE: "+c.text) {
			t.Fatalf("%s: got %q", c.url, l)
		}
		rc.ok("NOOP")
	}
	// Two bad URLs: the first is named; a LITERAL+ literal already sent
	// is read and dropped with the rest of the command.
	bad1, bad2 := fmt.Sprintf("/INBOX/;UID=%d", uid+7), fmt.Sprintf("/INBOX/;UID=%d", uid+8)
	rc.send(fmt.Sprintf(`b2 APPEND INBOX CATENATE (TEXT {4+}`))
	rc.write("abcd")
	rc.send(fmt.Sprintf(` URL "%s" TEXT {5+}`, bad1))
	rc.write("hello")
	rc.send(fmt.Sprintf(` URL "%s")`, bad2))
	rc.expect("b2 NO [BADURL " + bad1 + "] CATENATE: no such message")
	rc.ok("NOOP")
	if n := messages(t, e, "alice"); n != before {
		t.Fatalf("%d messages after failed CATENATEs, want %d", n, before)
	}
}

// TestCatenateSyntax: malformed CATENATE lists are BAD; an empty result is
// NO; both leave the connection in step.
func TestCatenateSyntax(t *testing.T) {
	e := newTestEnv(t)
	rc := e.raw()
	rc.login("alice")
	for _, c := range []string{
		"APPEND INBOX CATENATE ()",
		"APPEND INBOX CATENATE (FOO {3+}\r\nabc)",
		`APPEND INBOX CATENATE (TEXT "quoted")`,
		`APPEND INBOX CATENATE (URL "")`,
		"APPEND INBOX CATENATE (TEXT {1+}\r\nx",
		"APPEND INBOX CATENATE (TEXT {1+}\r\nx URL)",
		`APPEND INBOX CATENATE URL "/INBOX/;UID=1"`,
		"APPEND INBOX CATENATE (UTF8 (~{3+}\r\nabc))", // UTF8=ACCEPT not enabled
	} {
		if _, tagged := rc.cmd("%s", c); !strings.Contains(tagged, " BAD ") {
			t.Fatalf("%q: %s", c, tagged)
		}
	}
	if _, tagged := rc.cmd("APPEND INBOX CATENATE (TEXT {0+}\r\n TEXT {0+}\r\n)"); !strings.Contains(tagged, " NO [CANNOT] empty message") {
		t.Fatalf("empty: %s", tagged)
	}
	rc.ok("NOOP")
	// TEXT takes a literal8: NULs are stored as they are.
	bin := "Subject: binary\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\x01\x02\r\n"
	rc.ok("APPEND INBOX CATENATE (TEXT ~{%d+}\r\n%s)", len(bin), bin)
	uid := uint32(1)
	if got := storedSection(t, e, "alice", "INBOX", uid, "1", true); !bytes.Equal(got, []byte("\x00\x01\x02\r\n")) {
		t.Fatalf("binary TEXT part: %q", got)
	}
	if n := messages(t, e, "alice"); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

// TestCatenateTooBig: a message assembled past APPENDLIMIT is NO [TOOBIG],
// refused before the continuation of the literal that would pass it and
// as soon as a URL part would.
func TestCatenateTooBig(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.AppendLimit = 20000 })
	uid, v, _ := voiceMessage(t, e, "alice", 2) // 16000 octets of audio, 21 KiB base64
	small, _, _ := voiceMessage(t, e, "alice", 1)
	rc := e.raw()
	rc.login("alice")
	before := messages(t, e, "alice")
	src := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid)
	rc.send(fmt.Sprintf(`c1 APPEND INBOX CATENATE (TEXT {%d}`, len(fwdHead)))
	rc.expect("+ Ready for literal data")
	rc.write(fwdHead)
	rc.send(fmt.Sprintf(` URL "%s/;SECTION=1" TEXT {%d}`, src, len(fwdTail)))
	rc.expect("c1 NO [TOOBIG] the message would exceed APPENDLIMIT 20000")
	rc.ok("NOOP")
	// A URL part that fits, then a literal that does not: refused
	// instead of its continuation.
	rc.send(fmt.Sprintf(`c2 APPEND INBOX CATENATE (URL "/INBOX/;UID=%d/;SECTION=1" TEXT {15000}`, small))
	rc.expect("c2 NO [TOOBIG] the message would exceed APPENDLIMIT 20000")
	rc.ok("NOOP")
	// A large non-synchronizing literal past the limit is not read: the
	// session ends.
	rc.send(fmt.Sprintf(`c3 APPEND INBOX CATENATE (URL "/INBOX/;UID=%d/;SECTION=1" TEXT {400000+}`, small))
	if l := rc.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("got %q", l)
	}
	if n := messages(t, e, "alice"); n != before {
		t.Fatalf("%d messages, want %d", n, before)
	}
}

// TestCatenateMultiAppend: with MULTIAPPEND, plain and CATENATE messages
// mix and are stored together (one APPENDUID uid-set); one bad URL in the
// last message stores none of them.
func TestCatenateMultiAppend(t *testing.T) {
	e := newTestEnv(t)
	uid, v, _ := voiceMessage(t, e, "alice", 1)
	rc := e.raw()
	rc.login("alice")
	rc.ok("CREATE Out")
	ov := uidValidity(t, e, "alice", "Out")
	plain := testMessage("plain", "text")
	src := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid)
	rc.send(fmt.Sprintf(`d1 APPEND Out (\Seen) {%d}`, len(plain)))
	rc.expect("+ Ready for literal data")
	rc.write(plain)
	rc.send(fmt.Sprintf(` CATENATE (URL "%s") (\Flagged) CATENATE (URL "%s/;SECTION=HEADER" TEXT {4}`, src, src))
	rc.expect("+ Ready for literal data")
	rc.write("body")
	rc.send(")")
	rc.expect(fmt.Sprintf("d1 OK [APPENDUID %d 1:3] APPEND completed", ov))

	before := messages(t, e, "alice")
	rc.send(fmt.Sprintf(`d2 APPEND Out {%d}`, len(plain)))
	rc.expect("+ Ready for literal data")
	rc.write(plain)
	rc.send(fmt.Sprintf(` CATENATE (URL "%s") CATENATE (TEXT {4}`, src))
	rc.expect("+ Ready for literal data")
	rc.write("head")
	bad := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid+1)
	rc.send(fmt.Sprintf(` URL "%s")`, bad))
	rc.expect("d2 NO [BADURL " + bad + "] CATENATE: no such message")
	rc.ok("NOOP")
	if n := messages(t, e, "alice"); n != before {
		t.Fatalf("MULTIAPPEND with a bad URL stored %d messages", n-before)
	}
}

// TestCatenateQuota: the account's quota counts URL parts before they are
// copied: NO [OVERQUOTA], nothing stored.
func TestCatenateQuota(t *testing.T) {
	e := newTestEnv(t)
	uid, v, _ := voiceMessage(t, e, "alice", 4)
	u, err := e.store.Usage("alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.SetQuota("alice", vmstore.Quota{Bytes: u.Bytes + 20000}); err != nil {
		t.Fatal(err)
	}
	rc := e.raw()
	rc.login("alice")
	src := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid)
	rc.send(fmt.Sprintf(`q1 APPEND INBOX CATENATE (TEXT {%d+}`, len(fwdHead)))
	rc.write(fwdHead)
	rc.send(fmt.Sprintf(` URL "%s/;SECTION=1" TEXT {%d}`, src, len(fwdTail)))
	l := rc.line()
	if !strings.HasPrefix(l, "q1 NO [OVERQUOTA] ") {
		t.Fatalf("got %q", l)
	}
	// What fits is stored.
	rc.ok(`APPEND INBOX CATENATE (URL "%s/;SECTION=HEADER" TEXT {4+}`+"\r\nbody)", src)
	if n := messages(t, e, "alice"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	// The message count quota.
	if err := e.store.SetQuota("alice", vmstore.Quota{Messages: 2}); err != nil {
		t.Fatal(err)
	}
	rc.send(fmt.Sprintf(`q2 APPEND INBOX CATENATE (URL "%s/;SECTION=HEADER" TEXT {4}`, src))
	rc.expect("q2 NO [OVERQUOTA] message count quota reached")
	rc.ok("NOOP")
}

// testOpener stands for channel.Resolver: it opens URLAUTH URLs whose
// token starts with hex "valid" (any owner), and fails reading after half
// the octets for token "vanish" (the source expunged and collected while
// it is copied).
type testOpener struct {
	st    *vmstore.Store
	users []string
}

func (r *testOpener) OpenURL(ctx context.Context, raw, user string) (io.ReadCloser, int64, error) {
	r.users = append(r.users, user)
	u, err := channel.Parse(raw)
	if err != nil {
		return nil, 0, err
	}
	valid, vanish := strings.HasPrefix(u.Token, "76616c6964"), strings.HasPrefix(u.Token, "76616e697368")
	if u.Access.Kind == channel.AccessNone || !valid && !vanish {
		return nil, 0, channel.ErrBadToken
	}
	if !u.Access.Permits(channel.Requester{User: user, Authenticated: true}) {
		return nil, 0, channel.ErrNotPermitted
	}
	src, err := openOwnPart(r.st, u.User, u)
	if err != nil {
		return nil, 0, err
	}
	var rd io.Reader = src.r
	if vanish {
		rd = io.MultiReader(io.LimitReader(src.r, src.size/2), errReader{errors.New("blob gone")})
	}
	return readCloser{rd, func() error { src.Close(); return nil }}, src.size, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// TestCatenateURLAuth: absolute URLAUTH URLs go to the resolver with the
// session's requester; another user's voice message is forwarded with a
// valid token, refused with a token for someone else, and a source that
// vanishes while it is copied is a BADURL with nothing stored.
func TestCatenateURLAuth(t *testing.T) {
	res := &testOpener{}
	e := newTestEnv(t, func(s *Server) { s.CatenateURLs = res })
	res.st = e.store
	uid, v, audio := voiceMessage(t, e, "bob", 3)
	rc := e.raw()
	rc.login("alice")
	base := fmt.Sprintf("imap://bob@localhost/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=1", v, uid)
	tok := func(s string) string { return fmt.Sprintf("%x", s) + strings.Repeat("0", 64-2*len(s)) }
	ok := base + ";URLAUTH=user+alice:internal:" + tok("valid")
	rc.ok(`APPEND INBOX CATENATE (TEXT {%d+}`+"\r\n%s"+` URL "%s" URL "%s" TEXT {%d+}`+"\r\n%s)",
		len(fwdHead), fwdHead, strings.Replace(ok, "SECTION=1;", "SECTION=1.MIME;", 1), ok, len(fwdTail), fwdTail)
	if got := storedSection(t, e, "alice", "INBOX", 1, "2", true); sha256.Sum256(got) != sha256.Sum256(audio) {
		t.Fatal("audio forwarded by URLAUTH differs")
	}
	if len(res.users) != 2 || res.users[0] != "alice" {
		t.Fatalf("opened for %q", res.users)
	}
	before := messages(t, e, "alice")
	for _, u := range []string{
		base + ";URLAUTH=user+carol:internal:" + tok("valid"),
		base + ";URLAUTH=user+alice:internal:" + tok("wrong"),
		base + ";URLAUTH=user+alice:internal:" + tok("vanish"),
	} {
		rc.send(fmt.Sprintf(`e1 APPEND INBOX CATENATE (TEXT {4+}`))
		rc.write("head")
		rc.send(fmt.Sprintf(` URL "%s" TEXT {4}`, u))
		if l := rc.line(); !strings.HasPrefix(l, "e1 NO [BADURL "+u+"] ") {
			t.Fatalf("got %q", l)
		}
		rc.ok("NOOP")
	}
	if n := messages(t, e, "alice"); n != before {
		t.Fatalf("%d messages stored by failed CATENATEs", n-before)
	}
}

// TestCatenatePythonImaplib forwards a voice message with Python's
// imaplib (_simple_command with LITERAL+ literals) and checks the audio.
func TestCatenatePythonImaplib(t *testing.T) {
	py := needTool(t, "/usr/bin/python3")
	e := newTestEnv(t)
	uid, v, audio := voiceMessage(t, e, "alice", 5)
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	out, err := exec.Command(py, "testdata/catenate_client.py", host, port, "alice", testPass,
		strconv.Itoa(int(v)), strconv.Itoa(int(uid)), fmt.Sprintf("%x", sha256.Sum256(audio))).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

// TestCatenateChannelResolver uses the server's channel.Resolver: bob
// authorizes his voice message for alice (user+alice); alice forwards it
// with CATENATE, mixing it with a relative and an absolute URL of her own.
// A URL for someone else, one whose key was reset, bob's message without
// URLAUTH and another server's URL are BADURL.
func TestCatenateChannelResolver(t *testing.T) {
	var r *channel.Resolver
	e := newTestEnv(t, func(s *Server) {
		r = channel.NewResolver(s.Store, "vm.example.net:1993")
		s.URLResolver = r
	})
	uid, v, audio := voiceMessage(t, e, "bob", 3)
	own, ownV, _ := voiceMessage(t, e, "alice", 1)
	forAlice := channel.Access{Kind: channel.AccessUser, User: "alice"}
	mime, err := r.AuthorizeMessage("bob", "INBOX", v, uid, "1.MIME", forAlice, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	body, err := r.AuthorizeMessage("bob", "INBOX", v, uid, "1", forAlice, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rc := e.raw()
	rc.login("alice")
	// Alice's own voice message by absolute and by relative URL (the
	// mailbox name in another case), as the epilogue.
	ownAbs := fmt.Sprintf("imap://alice@vm.example.net:1993/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=1/;PARTIAL=0.20", ownV, own)
	rc.ok(`APPEND INBOX CATENATE (TEXT {%d+}`+"\r\n%s"+` URL "%s" URL "%s" TEXT {%d+}`+"\r\n%s"+
		` URL "%s" URL "/inbox/;UID=%d/;SECTION=1/;PARTIAL=20.20")`, len(fwdHead), fwdHead, mime, body, len(fwdTail), fwdTail, ownAbs, own)
	n := own + 1
	if got := storedSection(t, e, "alice", "INBOX", n, "2", true); sha256.Sum256(got) != sha256.Sum256(audio) {
		t.Fatal("audio forwarded through channel.Resolver differs")
	}
	all := storedSection(t, e, "alice", "INBOX", n, "", false)
	if want := storedSection(t, e, "alice", "INBOX", own, "1", false)[:40]; !bytes.HasSuffix(all, want) {
		t.Fatalf("own URLs: message ends %q, want %q", all[len(all)-40:], want)
	}
	forCarol, err := r.AuthorizeMessage("bob", "INBOX", v, uid, "1", channel.Access{Kind: channel.AccessUser, User: "carol"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	plain := fmt.Sprintf("imap://bob@vm.example.net:1993/INBOX;UIDVALIDITY=%d/;UID=%d", v, uid)
	other := fmt.Sprintf("imap://alice@elsewhere.example.net/INBOX;UIDVALIDITY=%d/;UID=%d", ownV, own)
	for _, u := range []string{forCarol, plain, other} {
		rc.send(fmt.Sprintf(`f1 APPEND INBOX CATENATE (URL "%s" TEXT {4}`, u))
		if l := rc.line(); !strings.HasPrefix(l, "f1 NO [BADURL "+u+"] ") {
			t.Fatalf("%s: got %q", u, l)
		}
	}
	if err := r.Reset("bob", "INBOX", "INTERNAL"); err != nil {
		t.Fatal(err)
	}
	rc.send(fmt.Sprintf(`f2 APPEND INBOX CATENATE (URL "%s" TEXT {4}`, body))
	if l := rc.line(); !strings.HasPrefix(l, "f2 NO [BADURL "+body+"] ") {
		t.Fatalf("after RESETKEY: got %q", l)
	}
	rc.ok("NOOP")
	if n := messages(t, e, "alice"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

// TestCatenateFourGiB: whatever APPENDLIMIT allows, a CATENATE message
// reaching 4 GiB is TOOBIG (RFC 4469 s5), refused before the literal.
func TestCatenateFourGiB(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.AppendLimit = 1 << 40; s.AppendSpoolLimit = 1 << 41 })
	rc := e.raw()
	rc.login("alice")
	rc.send("g1 APPEND INBOX CATENATE (TEXT {3+}\r\nabc TEXT {4294967293}")
	rc.expect("g1 NO [TOOBIG] the message would reach 4 GiB")
	rc.ok("NOOP")
}

// TestCatenateLiteralMinus: TEXT literals follow the LITERAL- rule as APPEND
// literals do: small non-synchronizing ones are taken, one above 4096
// octets ends the session unread; UTF8 parts after ENABLE UTF8=ACCEPT.
func TestCatenateLiteralMinus(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.LiteralMinus = true })
	uid, _, _ := voiceMessage(t, e, "alice", 1)
	rc := e.raw()
	rc.login("alice")
	rc.ok("ENABLE UTF8=ACCEPT")
	hdr := "Subject: caf\u00e9\r\n\r\n"
	rc.ok(`APPEND INBOX CATENATE (UTF8 (~{%d+}`+"\r\n%s"+`) URL "/INBOX/;UID=%d/;SECTION=1/;PARTIAL=0.76")`, len(hdr), hdr, uid)
	if got := storedSection(t, e, "alice", "INBOX", uid+1, "HEADER", false); string(got) != hdr {
		t.Fatalf("UTF8 part: %q", got)
	}
	rc.send(fmt.Sprintf(`h1 APPEND INBOX CATENATE (URL "/INBOX/;UID=%d/;SECTION=1" TEXT {5000+}`, uid))
	if l := rc.line(); !strings.HasPrefix(l, "* BYE [TOOBIG]") {
		t.Fatalf("oversized non-synchronizing TEXT literal with LITERAL-: %q", l)
	}
	if n := messages(t, e, "alice"); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

// vanishingOpener opens URLs with the server's resolver, and once the
// first octets of a source are read, expunges it and collects its blob:
// the rest of the source is gone from the store while it is copied.
type vanishingOpener struct {
	inner URLOpener
	gone  func()
}

func (v vanishingOpener) OpenURL(ctx context.Context, raw, user string) (io.ReadCloser, int64, error) {
	rc, n, err := v.inner.OpenURL(ctx, raw, user)
	if err != nil {
		return nil, 0, err
	}
	return readCloser{&hookReader{r: rc, hook: v.gone}, rc.Close}, n, nil
}

type hookReader struct {
	r    io.Reader
	hook func()
	done bool
}

func (h *hookReader) Read(b []byte) (int, error) {
	n, err := h.r.Read(b)
	if !h.done && n > 0 {
		h.done = true
		h.hook()
	}
	return n, err
}

// TestCatenateSourceCollected: a source expunged and garbage-collected
// while CATENATE copies it is NO [BADURL <url>], nothing is stored, and
// the session goes on.
func TestCatenateSourceCollected(t *testing.T) {
	var e *testEnv
	var mbID uint64
	var uid uint32
	e = newTestEnv(t, func(s *Server) {
		r := channel.NewResolver(s.Store, "")
		s.URLResolver = r
		s.CatenateURLs = vanishingOpener{inner: ChannelURLs(r), gone: func() {
			if _, err := e.store.Remove("alice", mbID, []uint32{uid}); err != nil {
				t.Error(err)
			}
			st, err := e.store.CollectGarbage(context.Background())
			if err != nil || st.BlobsRemoved == 0 {
				t.Errorf("collect: %+v %v", st, err)
			}
		}}
	})
	uid, _, _ = voiceMessage(t, e, "alice", 120) // several blob chunks, spooled to a file in pieces
	mb, err := e.store.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	mbID = mb.ID
	rc := e.raw()
	rc.login("alice")
	url := fmt.Sprintf("/INBOX/;UID=%d/;SECTION=1", uid)
	rc.send(fmt.Sprintf(`v1 APPEND INBOX CATENATE (TEXT {4+}`+"\r\nhead"+` URL "%s" TEXT {4}`, url))
	l := rc.line()
	if !strings.HasPrefix(l, "v1 NO [BADURL "+url+"] CATENATE: reading the URL's source: ") {
		t.Fatalf("got %q", l)
	}
	rc.ok("NOOP")
	if n := messages(t, e, "alice"); n != 0 {
		t.Fatalf("%d messages after the source vanished", n)
	}
}
