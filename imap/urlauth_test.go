package imap

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

const urlHost = "vm.test"

// urlEnv is a server with a URL resolver (host vm.test, a submission
// identity "submitter", a stream identity "mediaserver"), a settable clock and a voice message of alice's.
type urlEnv struct {
	*testEnv
	mu    sync.Mutex
	now   time.Time
	audio []byte
	uid   uint32
	uidv  uint32
}

func urlAudio() []byte {
	a := make([]byte, 96_000)
	for i := range a {
		a[i] = byte(i*13 + i>>10) // NULs included
	}
	return a
}

func urlVoiceMessage(audio []byte) string {
	var b strings.Builder
	b.WriteString("From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: voice\r\n" +
		"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n" +
		"You have a voice message\r\nfrom +15551234.\r\n--b\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(audio); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(audio[i:min(i+57, len(audio))]))
		b.WriteString("\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

func newURLEnv(t testing.TB, configure ...func(*Server)) *urlEnv {
	u := &urlEnv{now: time.Now(), audio: urlAudio()}
	u.testEnv = newTestEnv(t, func(s *Server) {
		for _, f := range configure {
			f(s)
		}
		r := channel.NewResolver(s.Store, urlHost)
		r.Roles = map[string][]string{"submit": {"submitter"}, "stream": {"mediaserver"}}
		r.Now = func() time.Time { u.mu.Lock(); defer u.mu.Unlock(); return u.now }
		s.URLResolver = r
	})
	if _, err := u.store.CreateAccount(vmstore.AccountSpec{Name: "submitter", Password: testPass}); err != nil {
		t.Fatal(err)
	}
	u.uid = u.deposit("alice", "INBOX", urlVoiceMessage(u.audio))
	mb, err := u.store.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	u.uidv = mb.UIDValidity
	return u
}

func (u *urlEnv) advance(d time.Duration) {
	u.mu.Lock()
	u.now = u.now.Add(d)
	u.mu.Unlock()
}

func (u *urlEnv) rump(rest string) string {
	return fmt.Sprintf("imap://alice@%s/INBOX;UIDVALIDITY=%d/;UID=%d%s", urlHost, u.uidv, u.uid, rest)
}

// resp reads one response, literals (and literal8s) inlined.
func (rc *rawClient) resp() string {
	rc.t.Helper()
	var b strings.Builder
	lit := regexp.MustCompile(`~?\{(\d+)\}$`)
	for {
		l := rc.line()
		b.WriteString(l)
		m := lit.FindStringSubmatch(l)
		if m == nil {
			return b.String()
		}
		n, _ := strconv.Atoi(m[1])
		buf := make([]byte, n)
		if _, err := io.ReadFull(rc.r, buf); err != nil {
			rc.t.Fatal(err)
		}
		b.WriteString("\r\n")
		b.Write(buf)
	}
}

// cmdLit is cmd for responses that may carry literals.
func (rc *rawClient) cmdLit(format string, args ...any) ([]string, string) {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("t%d", rc.n)
	rc.send(tag + " " + fmt.Sprintf(format, args...))
	var out []string
	for {
		r := rc.resp()
		if strings.HasPrefix(r, tag+" ") {
			return out, r
		}
		out = append(out, r)
	}
}

func (rc *rawClient) genurlauth(rump string) string {
	rc.t.Helper()
	lines, tagged := rc.cmd("GENURLAUTH %q INTERNAL", rump)
	if !strings.Contains(tagged, " OK") || len(lines) != 1 {
		rc.t.Fatalf("GENURLAUTH %s: %s %q", rump, tagged, lines)
	}
	want := "* GENURLAUTH \"" + rump + ":internal:"
	if !strings.HasPrefix(lines[0], want) {
		rc.t.Fatalf("GENURLAUTH answer %q does not extend the rump", lines[0])
	}
	return strings.Trim(strings.TrimPrefix(lines[0], "* GENURLAUTH "), `"`)
}

// urlfetch runs URLFETCH of one argument and returns what follows the
// URL in its response ("NIL", a literal...).
func (rc *rawClient) urlfetch(arg, url string) string {
	rc.t.Helper()
	lines, tagged := rc.cmdLit("URLFETCH %s", arg)
	if !strings.Contains(tagged, " OK") || len(lines) != 1 {
		rc.t.Fatalf("URLFETCH: %s %q", tagged, lines)
	}
	prefix := "* URLFETCH \"" + url + "\" "
	if !strings.HasPrefix(lines[0], prefix) {
		rc.t.Fatalf("URLFETCH response %.200q does not start with %q", lines[0], prefix)
	}
	return lines[0][len(prefix):]
}

func literalData(t *testing.T, s string) []byte {
	t.Helper()
	i := strings.Index(s, "}\r\n")
	if i < 0 {
		t.Fatalf("no literal in %.100q", s)
	}
	n, err := strconv.Atoi(s[strings.LastIndex(s[:i], "{")+1 : i])
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s[i+3 : i+3+n])
}

// TestURLAuthOverSocket: GENURLAUTH -> URLFETCH by the same user, by
// another user (user+ role), by another user of an anonymous URL, by the
// submission identity; and each refusal answered NIL.
func TestURLAuthOverSocket(t *testing.T) {
	e := newURLEnv(t)
	a := e.raw()
	_, tagged := a.cmd("CAPABILITY")
	if strings.Contains(tagged, "URLAUTH") {
		t.Fatal("URLAUTH before authentication")
	}
	lines, _ := a.cmd("CAPABILITY")
	if strings.Contains(strings.Join(lines, " "), "URLAUTH") {
		t.Fatalf("URLAUTH announced before authentication: %q", lines)
	}
	_, tagged = a.cmd("LOGIN alice %s", testPass)
	for _, c := range []string{" URLAUTH ", " URLAUTH=BINARY ", " URL-PARTIAL "} {
		if !strings.Contains(tagged+" ", c) {
			t.Fatalf("LOGIN OK lacks %s: %s", c, tagged)
		}
	}
	b := e.raw()
	b.login("bob")
	s := e.raw()
	s.login("submitter")

	text := "You have a voice message\r\nfrom +15551234."
	own := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=user+alice"))
	if got := a.urlfetch(strconv.Quote(own), own); !strings.HasSuffix(got, "\r\n"+text) {
		t.Fatalf("own URL: %q", got)
	}
	forBob := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=user+bob"))
	if got := a.urlfetch(strconv.Quote(forBob), forBob); got != "NIL" {
		t.Fatalf("user+bob fetched by alice: %q", got)
	}
	if got := b.urlfetch(strconv.Quote(forBob), forBob); string(literalData(t, got)) != text {
		t.Fatalf("user+bob fetched by bob: %q", got)
	}
	anon := a.genurlauth(e.rump("/;SECTION=1;EXPIRE=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + ";URLAUTH=anonymous"))
	if got := b.urlfetch(strconv.Quote(anon), anon); string(literalData(t, got)) != text {
		t.Fatalf("anonymous fetched by bob: %q", got)
	}
	sub := a.genurlauth(e.rump(";URLAUTH=submit+alice"))
	if got := b.urlfetch(strconv.Quote(sub), sub); got != "NIL" {
		t.Fatalf("submit+alice fetched by bob: %.80q", got)
	}
	if got := s.urlfetch(strconv.Quote(sub), sub); !strings.Contains(got, "Subject: voice") {
		t.Fatalf("submit+alice fetched by the submitter: %.80q", got)
	}
	// The fetch does not set \Seen.
	if m, _ := e.store.Mailbox("alice", "INBOX"); m.Counts.Unseen != 1 {
		t.Fatalf("URLFETCH changed \\Seen: unseen %d", m.Counts.Unseen)
	}

	// Refusals, each NIL with a tagged OK.
	flip := []byte(forBob)
	if flip[len(flip)-3] == '0' {
		flip[len(flip)-3] = '1'
	} else {
		flip[len(flip)-3] = '0'
	}
	if got := b.urlfetch(strconv.Quote(string(flip)), string(flip)); got != "NIL" {
		t.Fatalf("wrong token: %q", got)
	}
	short := a.genurlauth(e.rump("/;SECTION=1;EXPIRE=" + time.Now().Add(time.Minute).UTC().Format(time.RFC3339) + ";URLAUTH=authuser"))
	e.advance(2 * time.Minute)
	if got := b.urlfetch(strconv.Quote(short), short); got != "NIL" {
		t.Fatalf("expired: %q", got)
	}
	if got := b.urlfetch(`"imap://alice@vm.test/INBOX"`, "imap://alice@vm.test/INBOX"); got != "NIL" {
		t.Fatalf("mailbox URL: %q", got)
	}
	if got := b.urlfetch(`"not a url"`, "not a url"); got != "NIL" {
		t.Fatalf("garbage: %q", got)
	}
	// Mixed list: each URL in its own form and response.
	lines, tagged = b.cmdLit("URLFETCH %q  (%q BODYPARTSTRUCTURE) %q", forBob, forBob, own)
	if !strings.Contains(tagged, " OK") || len(lines) != 3 || !strings.Contains(lines[0], "{") ||
		!strings.Contains(lines[1], `(BODYPARTSTRUCTURE ("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 41 1`) || !strings.HasSuffix(lines[2], " NIL") {
		t.Fatalf("mixed URLFETCH: %s %q", tagged, lines)
	}
	// Syntax errors are BAD for the whole command.
	for _, bad := range []string{
		fmt.Sprintf("URLFETCH (%q BODY BINARY)", forBob),
		fmt.Sprintf("URLFETCH (%q BINARY BINARY)", forBob),
		fmt.Sprintf("URLFETCH (%q FOO)", forBob),
		"URLFETCH",
		fmt.Sprintf("GENURLAUTH %q X-OTHER", e.rump(";URLAUTH=authuser")),
		fmt.Sprintf("GENURLAUTH %q INTERNAL", e.rump("")),
		"RESETKEY INBOX X-OTHER",
	} {
		if _, tagged := b.cmd("%s", bad); !strings.Contains(tagged, " BAD ") {
			t.Errorf("%s: %s", bad, tagged)
		}
	}
	// GENURLAUTH of URLs that fail validation: BAD (RFC 4467 s7.1), and
	// nothing returned; TestGenURLAuthResponses has the exact replies.
	b.ok("NOOP") // ten BADs in a row end the connection
	for _, bad := range []string{
		fmt.Sprintf("GENURLAUTH %q INTERNAL", e.rump(";URLAUTH=authuser")), // alice's mailbox, bob asks
		fmt.Sprintf("GENURLAUTH %q INTERNAL", strings.Replace(e.rump(";URLAUTH=authuser"), "alice@", "bob@", 1)),
		fmt.Sprintf("GENURLAUTH %q INTERNAL", strings.Replace(e.rump(";URLAUTH=authuser"), urlHost, "other.test", 1)),
	} {
		if lines, tagged := b.cmd("%s", bad); !strings.Contains(tagged, " BAD ") || len(lines) != 0 {
			t.Errorf("%s: %s %q", bad, tagged, lines)
		}
	}
	if lines, tagged := b.cmd("RESETKEY NoSuchBox"); !strings.Contains(tagged, " NO [NONEXISTENT]") || len(lines) != 0 {
		t.Errorf("RESETKEY NoSuchBox: %s %q", tagged, lines)
	}
	if _, tagged := a.cmd("GENURLAUTH %q INTERNAL %q INTERNAL", e.rump(";URLAUTH=authuser"), e.rump(";EXPIRE=2001-01-01T00:00:00Z;URLAUTH=authuser")); !strings.Contains(tagged, " BAD ") {
		t.Errorf("GENURLAUTH with an expired URL: %s", tagged)
	}
	// SELECT announces the mechanism.
	if lines := a.ok("SELECT INBOX"); !strings.Contains(strings.Join(lines, "\n"), "* OK [URLMECH INTERNAL]") {
		t.Errorf("SELECT: %q", lines)
	}

	// RESETKEY invalidates every earlier token of the mailbox; another
	// session with the mailbox selected is told.
	a2 := e.raw()
	a2.login("alice")
	a2.ok("SELECT INBOX")
	if _, tagged := a.cmd("RESETKEY INBOX INTERNAL"); !strings.Contains(tagged, "OK [URLMECH INTERNAL]") {
		t.Fatalf("RESETKEY INBOX: %s", tagged)
	}
	told := false
	for i := 0; i < 500 && !told; i++ { // the hub delivers asynchronously
		lines := a2.ok("NOOP")
		told = strings.Contains(strings.Join(lines, "\n"), "* OK [URLMECH INTERNAL]")
		if !told {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if !told {
		t.Fatal("the other session was not told of the RESETKEY")
	}
	for _, u := range []string{forBob, anon} {
		if got := b.urlfetch(strconv.Quote(u), u); got != "NIL" {
			t.Fatalf("after RESETKEY: %q", got)
		}
	}
	fresh := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=user+bob"))
	a.ok("RESETKEY")
	if got := b.urlfetch(strconv.Quote(fresh), fresh); got != "NIL" {
		t.Fatalf("after RESETKEY (all): %q", got)
	}

	// A stale UIDVALIDITY and a section the message lacks (URLs the
	// server signs without GENURLAUTH's checks).
	for _, c := range []struct {
		uidv uint32
		sec  string
	}{{e.uidv + 1, "1"}, {e.uidv, "9"}} {
		u, err := e.srv.URLResolver.AuthorizeMessage("alice", "INBOX", c.uidv, e.uid, c.sec, channel.Access{Kind: channel.AccessAuthUser}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.urlfetch(strconv.Quote(u), u); got != "NIL" {
			t.Fatalf("UIDVALIDITY %d section %s: %q", c.uidv, c.sec, got)
		}
	}

	// Expunged.
	gone := a.genurlauth(e.rump(";URLAUTH=user+bob"))
	a.ok("UID STORE %d +FLAGS (\\Deleted)", e.uid)
	a.ok("EXPUNGE")
	if got := b.urlfetch(strconv.Quote(gone), gone); got != "NIL" {
		t.Fatalf("expunged: %q", got)
	}
}

// TestURLAuthAccountRecreated: an account deleted and created again under
// the name, with a message of the same UID and UIDVALIDITY range, never
// validates the old account's URLs.
func TestURLAuthAccountRecreated(t *testing.T) {
	e := newURLEnv(t)
	a := e.raw()
	a.login("alice")
	u := a.genurlauth(e.rump("/;SECTION=2;URLAUTH=authuser"))
	b := e.raw()
	b.login("bob")
	if got := b.urlfetch(strconv.Quote(u), u); got == "NIL" {
		t.Fatal("valid URL refused")
	}
	if err := e.store.DeleteAccount("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: testPass}); err != nil {
		t.Fatal(err)
	}
	e.deposit("alice", "INBOX", urlVoiceMessage(e.audio))
	a2 := e.raw()
	a2.login("alice")
	mb, err := e.store.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	e.uidv = mb.UIDValidity
	a2.genurlauth(e.rump("/;SECTION=2;URLAUTH=user+bob")) // the new account has keys of its own
	if got := b.urlfetch(strconv.Quote(u), u); got != "NIL" {
		t.Fatalf("old URL after re-creation: %.80q", got)
	}
}

// TestURLFetchBinary: URLAUTH=BINARY of a base64 audio part gives octets
// hash-identical to the stored audio, as a literal8, with a
// BODYPARTSTRUCTURE of the decoded data; BODY the encoded octets; ;PARTIAL=
// cuts the decoded octets and the structure says so.
func TestURLFetchBinary(t *testing.T) {
	e := newURLEnv(t)
	a := e.raw()
	a.login("alice")
	u := a.genurlauth(e.rump("/;SECTION=2;URLAUTH=user+bob"))
	b := e.raw()
	b.login("bob")
	got := b.urlfetch(fmt.Sprintf("(%q BODYPARTSTRUCTURE BINARY)", u), u)
	want := fmt.Sprintf(`(BODYPARTSTRUCTURE ("AUDIO" "WAV" NIL NIL NIL "BINARY" %d NIL NIL NIL NIL)) (BINARY ~{%d}`, len(e.audio), len(e.audio))
	if !strings.HasPrefix(got, want) {
		t.Fatalf("extended URLFETCH: %.200q, want prefix %q", got, want)
	}
	if data := literalData(t, got); sha256.Sum256(data) != sha256.Sum256(e.audio) {
		t.Fatal("BINARY differs from the stored audio")
	}
	got = b.urlfetch(fmt.Sprintf("(%q BODY)", u), u)
	body := literalData(t, got)
	if !strings.HasPrefix(got, "(BODY {") || len(body) < len(e.audio)*4/3 {
		t.Fatalf("BODY: %.100q", got)
	}
	dec, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(body), "\r\n", ""))
	if err != nil || !bytes.Equal(dec, e.audio) {
		t.Fatalf("BODY does not decode to the audio: %v", err)
	}
	// URL-PARTIAL: 1000 octets from 50000 of the decoded audio.
	p := a.genurlauth(e.rump("/;SECTION=2/;PARTIAL=50000.1000;URLAUTH=user+bob"))
	got = b.urlfetch(fmt.Sprintf("(%q BINARY BODYPARTSTRUCTURE)", p), p)
	if !strings.HasPrefix(got, `(BODYPARTSTRUCTURE ("AUDIO" "WAV" NIL NIL NIL "BINARY" 1000 `) || !bytes.Equal(literalData(t, got), e.audio[50000:51000]) {
		t.Fatalf("partial BINARY: %.150q", got)
	}
	// Past the end: an empty string.
	p = a.genurlauth(e.rump("/;SECTION=2/;PARTIAL=900000;URLAUTH=user+bob"))
	if got := b.urlfetch(fmt.Sprintf("(%q BINARY)", p), p); got != `(BINARY "")` {
		t.Fatalf("partial past the end: %q", got)
	}
	// A text part: BINARY without NUL is a plain literal; the header
	// section has no decoded form.
	tx := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=user+bob"))
	if got := b.urlfetch(fmt.Sprintf("(%q BINARY)", tx), tx); !strings.HasPrefix(got, "(BINARY {41}") {
		t.Fatalf("text BINARY: %q", got)
	}
	h := a.genurlauth(e.rump("/;SECTION=HEADER;URLAUTH=user+bob"))
	if got := b.urlfetch(fmt.Sprintf("(%q BODYPARTSTRUCTURE BINARY)", h), h); !strings.HasPrefix(got, `(BODYPARTSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "7BIT" `) || !strings.HasSuffix(got, "(BINARY NIL)") {
		t.Fatalf("HEADER BINARY: %q", got)
	}
	// The structure of a text range counts the range's octets and lines.
	tp := a.genurlauth(e.rump("/;SECTION=1/;PARTIAL=20.10;URLAUTH=user+bob"))
	if got := b.urlfetch(fmt.Sprintf("(%q BODYPARTSTRUCTURE BODY)", tp), tp); !strings.HasPrefix(got, `(BODYPARTSTRUCTURE ("TEXT" "PLAIN" ("charset" "us-ascii") NIL NIL "7BIT" 10 1 `) ||
		string(literalData(t, got)) != "sage\r\nfrom" {
		t.Fatalf("text range: %q", got)
	}
	// A parenthesised URL without items is the simple form.
	if got := b.urlfetch(fmt.Sprintf("(%q)", tx), tx); !strings.HasPrefix(got, "{41}") {
		t.Fatalf("(url): %q", got)
	}
}

// TestURLAuthPythonImaplib: Python's imaplib, a client we did not write,
// generates a URL as alice and fetches it as bob with BINARY.
func TestURLAuthPythonImaplib(t *testing.T) {
	py := needTool(t, "/usr/bin/python3")
	e := newURLEnv(t)
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	script := `
import imaplib, sys, hashlib, re
for c in ('GENURLAUTH', 'URLFETCH', 'RESETKEY'):
    imaplib.Commands[c] = ('AUTH', 'SELECTED')
a = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
a.login('alice', sys.argv[3])
typ, caps = a.capability()
assert b'URLAUTH=BINARY' in caps[0], caps
typ, data = a._simple_command('GENURLAUTH', '"%s"' % sys.argv[4], 'INTERNAL')
assert typ == 'OK', (typ, data)
typ, data = a._untagged_response(typ, data, 'GENURLAUTH')
url = data[0].decode().strip('"')
b = imaplib.IMAP4(sys.argv[1], int(sys.argv[2]))
b.login('bob', sys.argv[3])
typ, data = b._simple_command('URLFETCH', '("%s" BINARY)' % url)
assert typ == 'OK', (typ, data)
typ, data = b._untagged_response(typ, data, 'URLFETCH')
blob = b''.join(x[1] for x in data if isinstance(x, tuple))
print('SHA', hashlib.sha256(blob).hexdigest(), len(blob))
typ, data = b._simple_command('URLFETCH', '"%s"' % (url[:-1] + ('0' if url[-1] != '0' else '1')))
typ, data = b._untagged_response(typ, data, 'URLFETCH')
assert data[0].endswith(b' NIL'), data
a.logout(); b.logout()
`
	rump := e.rump("/;SECTION=2;EXPIRE=" + time.Now().Add(30*time.Minute).UTC().Format(time.RFC3339) + ";URLAUTH=anonymous")
	out, err := exec.Command(py, "-c", script, host, port, testPass, rump).CombinedOutput()
	sum := sha256.Sum256(e.audio)
	want := fmt.Sprintf("SHA %s %d", hex.EncodeToString(sum[:]), len(e.audio))
	if err != nil || !strings.Contains(string(out), want) {
		t.Fatalf("imaplib: %v\n%s\nwant %s", err, out, want)
	}
}

// TestURLFetchSASLAnonymous: with AllowAnonymous a session logged in with
// SASL ANONYMOUS (RFC 4505; RFC 5616 media servers without an identity)
// fetches anonymous URLs and nothing else: authuser and user+ URLs are
// NIL, every other command NO.
func TestURLFetchSASLAnonymous(t *testing.T) {
	e := newURLEnv(t, func(s *Server) { s.AllowAnonymous = true })
	a := e.raw()
	a.login("alice")
	anon := a.genurlauth(e.rump("/;SECTION=2;EXPIRE=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + ";URLAUTH=anonymous"))
	auth := a.genurlauth(e.rump("/;SECTION=2;URLAUTH=authuser"))
	m := e.raw()
	if lines, _ := m.cmd("CAPABILITY"); !strings.Contains(lines[0], " AUTH=ANONYMOUS") {
		t.Fatalf("pre-auth capabilities: %q", lines)
	}
	_, tagged := m.cmd("AUTHENTICATE ANONYMOUS %s", base64.StdEncoding.EncodeToString([]byte("media@example.net")))
	if !strings.Contains(tagged, " OK [CAPABILITY ") || !strings.Contains(tagged, " URLAUTH=BINARY ") || strings.Contains(tagged, "AUTH=ANONYMOUS") {
		t.Fatalf("AUTHENTICATE ANONYMOUS: %s", tagged)
	}
	got := m.urlfetch(fmt.Sprintf("(%q BINARY)", anon), anon)
	if !bytes.Equal(literalData(t, got), e.audio) {
		t.Fatal("anonymous URL: BINARY differs from the audio")
	}
	if got := m.urlfetch(strconv.Quote(auth), auth); got != "NIL" {
		t.Fatalf("authuser URL by an anonymous session: %.60q", got)
	}
	for _, c := range []string{"SELECT INBOX", "LIST \"\" *", fmt.Sprintf("GENURLAUTH %q INTERNAL", e.rump(";URLAUTH=authuser")), "RESETKEY", "STATUS INBOX (MESSAGES)"} {
		if _, tagged := m.cmd("%s", c); !strings.Contains(tagged, " NO [NOPERM]") {
			t.Errorf("%s by an anonymous session: %s", c, tagged)
		}
	}
	m.ok("NOOP")
	// Without AllowAnonymous the mechanism is neither offered nor taken.
	e2 := newURLEnv(t)
	n := e2.raw()
	if lines, _ := n.cmd("CAPABILITY"); strings.Contains(lines[0], "ANONYMOUS") {
		t.Fatalf("AUTH=ANONYMOUS offered: %q", lines)
	}
	if _, tagged := n.cmd("AUTHENTICATE ANONYMOUS %s", base64.StdEncoding.EncodeToString([]byte("x"))); !strings.Contains(tagged, " NO ") {
		t.Fatalf("ANONYMOUS without AllowAnonymous: %s", tagged)
	}
}

// TestURLAuthCapabilitiesImapclient: go-imap's client sees URLAUTH,
// URLAUTH=BINARY and URL-PARTIAL after login only, and a server without a
// resolver announces none of them.
func TestURLAuthCapabilitiesImapclient(t *testing.T) {
	e := newURLEnv(t)
	c := e.client("bob")
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []imap.Cap{"URLAUTH", "URLAUTH=BINARY", "URL-PARTIAL"} {
		if !caps.Has(want) {
			t.Errorf("after login: no %s in %v", want, caps)
		}
	}
	plain := newTestEnv(t).client("bob")
	caps, err = plain.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if caps.Has("URLAUTH") || caps.Has("URL-PARTIAL") {
		t.Errorf("without a resolver: %v", caps)
	}
}
