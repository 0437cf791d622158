package imap

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// exact sends a command and checks the tagged reply (without its tag)
// byte for byte and the number of untagged responses (-1: any number,
// for updates that arrive asynchronously).
func (rc *rawClient) exact(wantTagged string, wantUntagged int, format string, args ...any) []string {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("t%d", rc.n)
	rc.send(tag + " " + fmt.Sprintf(format, args...))
	var lines []string
	for {
		r := rc.resp()
		if strings.HasPrefix(r, tag+" ") {
			if got := strings.TrimPrefix(r, tag+" "); got != wantTagged {
				rc.t.Errorf("%.120s:\n got %q\nwant %q", fmt.Sprintf(format, args...), got, wantTagged)
			}
			break
		}
		lines = append(lines, r)
	}
	if wantUntagged >= 0 && len(lines) != wantUntagged {
		rc.t.Errorf("%.120s: %d untagged responses %.300q, want %d", fmt.Sprintf(format, args...), len(lines), lines, wantUntagged)
	}
	return lines
}

// TestGenURLAuthResponses: the exact tagged replies of GENURLAUTH and
// RESETKEY over a socket. RFC 4467 s7.1: a URL failing the server's
// validation (mailbox exists, owner userid in the server part that the
// logged-in user owns, valid access identifier, supported mechanism; MAY:
// UID and section) is tagged BAD and nothing is returned, whichever of
// the command's URLs failed; RESETKEY of a mailbox whose key cannot be
// changed is NO.
func TestGenURLAuthResponses(t *testing.T) {
	e := newURLEnv(t)
	pre := e.raw()
	pre.exact("BAD GENURLAUTH not allowed in not authenticated state", 0, "GENURLAUTH %q INTERNAL", e.rump(";URLAUTH=authuser"))

	a := e.raw()
	a.login("alice")
	future := time.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	bad := []struct{ args, reply string }{
		{fmt.Sprintf("%q INTERNAL", e.rump("")), "BAD not a URLAUTH rump URL: no ;URLAUTH=<access> to authorize"},
		{fmt.Sprintf("%q INTERNAL", strings.Replace(e.rump(";URLAUTH=authuser"), "alice@", "", 1)),
			"BAD not a URLAUTH rump URL: URL names no user (imap://<user>@host/ is required)"},
		{fmt.Sprintf("%q INTERNAL", e.rump(";URLAUTH=authuser:internal:"+strings.Repeat("ab", 33))),
			"BAD not a URLAUTH rump URL: URL is already authorized (it has :mechanism:token)"},
		{fmt.Sprintf("%q INTERNAL", e.rump(";URLAUTH=authuser")+"x"), "BAD invalid access identifier: unknown application \"authuserx\""},
		{fmt.Sprintf("%q INTERNAL", "imap://alice@vm.test/NoSuchBox/;UID=1;URLAUTH=authuser"), "BAD no such mailbox, message or part"},
		{fmt.Sprintf("%q INTERNAL", e.rump(";URLAUTH=authuser")[:strings.Index(e.rump(""), ";UID=")]+";UID=999;URLAUTH=authuser"),
			"BAD no such mailbox, message or part"},
		{fmt.Sprintf("%q INTERNAL", e.rump("/;SECTION=7;URLAUTH=authuser")), "BAD no such mailbox, message or part"},
		{fmt.Sprintf("%q INTERNAL", strings.Replace(e.rump(";URLAUTH=authuser"), fmt.Sprint(e.uidv), fmt.Sprint(e.uidv+1), 1)),
			"BAD no such mailbox, message or part"},
		{fmt.Sprintf("%q INTERNAL", strings.Replace(e.rump(";URLAUTH=authuser"), "alice@", "bob@", 1)),
			"BAD URLs can be authorized for your own mailboxes only"},
		{fmt.Sprintf("%q INTERNAL", strings.Replace(e.rump(";URLAUTH=authuser"), urlHost, "other.test", 1)), "BAD the URL names another server"},
		{fmt.Sprintf("%q X-OTHER", e.rump(";URLAUTH=authuser")), "BAD unsupported URLAUTH mechanism (INTERNAL only)"},
		{fmt.Sprintf("%q INTERNAL", e.rump(";EXPIRE=2001-01-01T00:00:00Z;URLAUTH=authuser")), "BAD the URL's ;EXPIRE= is in the past"},
		{fmt.Sprintf("%q INTERNAL", e.rump(";URLAUTH=foo")), "BAD invalid access identifier: unknown application \"foo\""},
		{fmt.Sprintf("%q INTERNAL", e.rump(";URLAUTH=user+")), "BAD invalid access identifier: empty userid in access identifier"},
		// One bad URL of two: BAD, and the good one is not returned.
		{fmt.Sprintf("%q INTERNAL %q INTERNAL", e.rump(";URLAUTH=authuser"), e.rump("/;SECTION=9;URLAUTH=authuser")),
			"BAD no such mailbox, message or part"},
	}
	for i, c := range bad {
		if i%5 == 4 {
			a.exact("OK NOOP completed", 0, "NOOP") // ten BADs in a row end the connection
		}
		a.exact(c.reply, 0, "GENURLAUTH %s", c.args)
	}
	// Valid URLs the policy refuses: NO ("can't generate a URLAUTH").
	a.exact("NO [CANNOT] anonymous URLs need an ;EXPIRE= at most 24h0m0s ahead", 0, "GENURLAUTH %q INTERNAL", e.rump(";URLAUTH=anonymous"))
	a.exact("NO [CANNOT] anonymous URLs need an ;EXPIRE= at most 24h0m0s ahead", 0, "GENURLAUTH %q INTERNAL",
		e.rump(";EXPIRE="+time.Now().Add(48*time.Hour).UTC().Format(time.RFC3339)+";URLAUTH=anonymous"))
	// RFC 5616 s3.2: an anonymous URL expiring within the hour is accepted.
	lines := a.exact("OK GENURLAUTH completed", 1, "GENURLAUTH %q INTERNAL %q inTernal",
		e.rump(";EXPIRE="+future+";URLAUTH=anonymous"), e.rump("/;SECTION=2;URLAUTH=submit+alice"))
	want := `* GENURLAUTH "` + e.rump(";EXPIRE="+future+";URLAUTH=anonymous") + `:internal:`
	if len(lines) == 1 && (!strings.HasPrefix(lines[0], want) || !strings.Contains(lines[0], `" "`+e.rump("/;SECTION=2;URLAUTH=submit+alice")+":internal:")) {
		t.Errorf("GENURLAUTH answer %q", lines[0])
	}
	// An unknown userid in the access identifier gives a URL nobody can
	// redeem (RFC 4467 s7.1: the exception that hides which userids exist).
	a.exact("OK GENURLAUTH completed", 1, "GENURLAUTH %q INTERNAL", e.rump(";URLAUTH=user+nosuchuser"))

	// RESETKEY (RFC 4467 s7.1 BASE.6.3.RESETKEY).
	a.exact("NO [NONEXISTENT] no such mailbox", 0, "RESETKEY NoSuchBox")
	a.exact("BAD unsupported URLAUTH mechanism \"X-OTHER\" (INTERNAL only)", 0, "RESETKEY INBOX X-OTHER")
	a.exact("OK [URLMECH INTERNAL] RESETKEY completed", 0, "RESETKEY INBOX")
	a.exact("OK [URLMECH INTERNAL] RESETKEY completed", 0, "RESETKEY INBOX internal")
	a.exact("OK RESETKEY completed, every mailbox access key removed", 0, "RESETKEY")
}

// TestURLFetchNilResponses: URLFETCH answers a URL that is invalid or not
// authorized for the session with NIL and still completes OK (RFC 4467
// s7.1 BASE.6.3.URLFETCH and BASE.7.4.URLFETCH), in the simple and the
// extended form (RFC 5524 s3: NIL instead of the metadata), each URL in
// its own response and the good ones answered.
func TestURLFetchNilResponses(t *testing.T) {
	e := newURLEnv(t)
	a := e.raw()
	a.login("alice")
	good := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=authuser"))
	forAlice := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=user+alice"))
	wrong := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
	b := e.raw()
	b.login("bob")
	q := strconv.Quote
	for _, u := range []string{forAlice, wrong, "imap://alice@vm.test/INBOX", "imap://alice@vm.test/INBOX/;UID=1", "garbage",
		strings.Replace(good, "alice@", "nosuchuser@", 1), strings.Replace(good, urlHost, "other.test", 1)} {
		lines := b.exact("OK URLFETCH completed", 1, "URLFETCH %s", q(u))
		if len(lines) == 1 && lines[0] != "* URLFETCH "+q(u)+" NIL" {
			t.Errorf("URLFETCH %.80s: %q", u, lines[0])
		}
		lines = b.exact("OK URLFETCH completed", 1, "URLFETCH (%s BODYPARTSTRUCTURE BINARY)", q(u))
		if len(lines) == 1 && lines[0] != "* URLFETCH "+q(u)+" NIL" {
			t.Errorf("extended URLFETCH %.80s: %q", u, lines[0])
		}
	}
	lines := b.exact("OK URLFETCH completed", 3, "URLFETCH %s %s (%s BODY)", q(wrong), q(good), q(forAlice))
	if len(lines) == 3 && (lines[0] != "* URLFETCH "+q(wrong)+" NIL" ||
		lines[1] != "* URLFETCH "+q(good)+" {41}\r\nYou have a voice message\r\nfrom +15551234." ||
		lines[2] != "* URLFETCH "+q(forAlice)+" NIL") {
		t.Errorf("mixed URLFETCH: %q", lines)
	}
}

// TestURLAuthRateLimit: wrong URLAUTH tokens from one address count as
// failed credentials in the shared authentication limiter: after the free
// failures each further one is delayed, then the address is throttled and
// even a valid URL gets NIL without being checked, as a client guessing
// passwords would be. Counted in the limiter and the metrics.
func TestURLAuthRateLimit(t *testing.T) {
	const d = time.Second
	var mu sync.Mutex
	var slept []time.Duration
	t0 := time.Now()
	lim := authlimit.New(authlimit.Config{FreeFailures: 2, BaseDelay: d, MaxDelay: d, MaxQueue: 1,
		Now: func() time.Time { return t0 },
		Sleep: func(_ context.Context, x time.Duration) error {
			mu.Lock()
			slept = append(slept, x)
			mu.Unlock()
			return nil
		}})
	e := newURLEnv(t, func(s *Server) { s.AuthLimiter = lim })
	a := e.raw()
	a.login("alice")
	good := a.genurlauth(e.rump("/;SECTION=1;URLAUTH=authuser"))
	wrong := good[:len(good)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", good[len(good)-1])+1)%16])
	b := e.raw()
	b.login("bob")
	badBefore := testutil.ToFloat64(metricURLAuth.WithLabelValues("urlfetch", "badtoken"))
	thrBefore := testutil.ToFloat64(metricURLAuth.WithLabelValues("urlfetch", "throttled"))
	failBefore := authAttempts(t, "urlauth", "fail")

	if got := b.urlfetch(strconv.Quote(good), good); got == "NIL" {
		t.Fatal("valid URL refused before any failure")
	}
	for i := 0; i < 3; i++ {
		if got := b.urlfetch(strconv.Quote(wrong), wrong); got != "NIL" {
			t.Fatalf("wrong token %d: %q", i, got)
		}
	}
	mu.Lock()
	if len(slept) != 1 || slept[0] != d {
		t.Errorf("delays after 3 wrong tokens (2 free): %v, want [%v]", slept, d)
	}
	mu.Unlock()
	// The next attempt waits its turn, then is checked: a valid token
	// still works.
	if got := b.urlfetch(strconv.Quote(good), good); got == "NIL" {
		t.Fatal("valid URL refused after one delay")
	}
	// With more queued than MaxQueue delays the address is throttled:
	// NIL without a check, the command still OK.
	if got := b.urlfetch(strconv.Quote(good), good); got != "NIL" {
		t.Fatalf("throttled source got data: %.60q", got)
	}
	if src, pair, acct := lim.Failures(netip.MustParseAddr("127.0.0.1"), "bob"); src != 3 || pair != 3 || acct != 3 {
		t.Errorf("limiter failures source %d pair %d account %d, want 3 3 3", src, pair, acct)
	}
	if n := testutil.ToFloat64(metricURLAuth.WithLabelValues("urlfetch", "badtoken")) - badBefore; n != 3 {
		t.Errorf("badtoken metric +%v, want +3", n)
	}
	if n := testutil.ToFloat64(metricURLAuth.WithLabelValues("urlfetch", "throttled")) - thrBefore; n != 1 {
		t.Errorf("throttled metric +%v, want +1", n)
	}
	if n := authAttempts(t, "urlauth", "fail") - failBefore; n != 3 {
		t.Errorf("lemonvox_auth_attempts_total{service=urlauth,result=fail} +%v, want +3", n)
	}
}

// authAttempts reads lemonvox_auth_attempts_total{service,result} from the
// default registry (the limiter's metric).
func authAttempts(t *testing.T, service, result string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lemonvox_auth_attempts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["service"] == service && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestURLAuthAccessMatrix: who may redeem which access identifier over
// IMAP. "authuser" is for any authorized user of the server (RFC 4467
// s3), not for the submission entity (it redeems submit+<user>, RFC 4468
// s3.3) nor a stream entity (it plays for callers who need not be users,
// RFC 5616), nor a SASL ANONYMOUS session; "anonymous" for everyone;
// user+bob only for bob; submit+alice only for the submission entity;
// stream only for the stream entity.
func TestURLAuthAccessMatrix(t *testing.T) {
	e := newURLEnv(t, func(s *Server) { s.AllowAnonymous = true })
	if _, err := e.store.CreateAccount(vmstore.AccountSpec{Name: "mediaserver", Password: testPass}); err != nil {
		t.Fatal(err)
	}
	a := e.raw()
	a.login("alice")
	exp := ";EXPIRE=" + time.Now().Add(30*time.Minute).UTC().Format(time.RFC3339)
	urls := map[string]string{}
	for _, acc := range []string{"authuser", "anonymous", "user+bob", "submit+alice", "stream"} {
		x := ""
		if acc == "anonymous" {
			x = exp
		}
		urls[acc] = a.genurlauth(e.rump("/;SECTION=1" + x + ";URLAUTH=" + acc))
	}
	sessions := map[string]*rawClient{"alice": a}
	for _, u := range []string{"bob", "submitter", "mediaserver"} {
		sessions[u] = e.raw()
		sessions[u].login(u)
	}
	anon := e.raw()
	anon.ok("AUTHENTICATE ANONYMOUS %s", base64.StdEncoding.EncodeToString([]byte("x@example.net")))
	sessions["(anonymous)"] = anon
	allowed := map[string][]string{
		"authuser":     {"alice", "bob"},
		"anonymous":    {"alice", "bob", "submitter", "mediaserver", "(anonymous)"},
		"user+bob":     {"bob"},
		"submit+alice": {"submitter"},
		"stream":       {"mediaserver"},
	}
	for acc, u := range urls {
		for who, rc := range sessions {
			got := rc.urlfetch(strconv.Quote(u), u)
			if want := slices.Contains(allowed[acc], who); want != (got != "NIL") {
				t.Errorf("%s redeemed by %s: %.40q, allowed %v", acc, who, got, want)
			}
		}
	}
}

// TestURLFetchBodyPartStructureMultipart: RFC 5524 BODYPARTSTRUCTURE of
// multipart and encapsulated parts with ;PARTIAL= (RFC 5550 s5.7.1). A
// multipart has no size of its own: its structure (children whole) is
// given for any range of it, and BINARY returns it as stored (its parts
// keep their encodings, as the structure says). A message/rfc822 part
// and a leaf part cut by a range report the range's size and lines; a
// BINARY leaf its decoded range with encoding BINARY.
func TestURLFetchBodyPartStructureMultipart(t *testing.T) {
	e := newURLEnv(t)
	msg := "From: a@b\r\nSubject: nest\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n" +
		"--o\r\nContent-Type: text/plain\r\n\r\nintro line\r\n" +
		"--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n" +
		"--i\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ=\r\n" +
		"--i\r\nContent-Type: text/html\r\n\r\n<p>hello world</p>\r\n--i--\r\n" +
		"--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--o--\r\n"
	uid := e.deposit("alice", "INBOX", msg)
	a := e.raw()
	a.login("alice")
	const alt = `("TEXT" "PLAIN" NIL NIL NIL "BASE64" 16 0 NIL NIL NIL NIL)("TEXT" "HTML" NIL NIL NIL "7BIT" 18 0 NIL NIL NIL NIL) "ALTERNATIVE" ("boundary" "i") NIL NIL NIL`
	const inner = `(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)`
	const whole = `(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 10 0 NIL NIL NIL NIL)(` + alt + `)("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 28 ` + inner + ` 2 NIL NIL NIL NIL) "MIXED" ("boundary" "o") NIL NIL NIL)`
	for _, c := range []struct{ rest, items, want string }{
		{"/;SECTION=2/;PARTIAL=10.20", "BODYPARTSTRUCTURE BODY", `(BODYPARTSTRUCTURE (` + alt + `)) (BODY {20}` + "\r\nnt-Type: text/plain\r)"},
		{"/;SECTION=2/;PARTIAL=10.20", "BODYPARTSTRUCTURE BINARY", `(BODYPARTSTRUCTURE (` + alt + `)) (BINARY {20}` + "\r\nnt-Type: text/plain\r)"},
		{"/;PARTIAL=0.30", "BODYPARTSTRUCTURE BINARY", `(BODYPARTSTRUCTURE ` + whole + `) (BINARY {30}` + "\r\nFrom: a@b\r\nSubject: nest\r\nMIME)"},
		{"/;SECTION=3", "BODYPARTSTRUCTURE BODY", `(BODYPARTSTRUCTURE ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 28 ` + inner + ` 2 NIL NIL NIL NIL)) (BODY {28}` + "\r\nSubject: inner\r\n\r\ninner body)"},
		{"/;SECTION=3/;PARTIAL=2.5", "BODYPARTSTRUCTURE BODY", `(BODYPARTSTRUCTURE ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 5 ` + inner + ` 0 NIL NIL NIL NIL)) (BODY {5}` + "\r\nbject)"},
		{"/;SECTION=3/;PARTIAL=0.18", "BODYPARTSTRUCTURE BINARY", `(BODYPARTSTRUCTURE ("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 18 ` + inner + ` 2 NIL NIL NIL NIL)) (BINARY {18}` + "\r\nSubject: inner\r\n\r\n)"},
		{"/;SECTION=2.1/;PARTIAL=1.3", "BODYPARTSTRUCTURE BODY", `(BODYPARTSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "BASE64" 3 0 NIL NIL NIL NIL)) (BODY {3}` + "\r\nGVs)"},
		{"/;SECTION=2.1/;PARTIAL=1.3", "BODYPARTSTRUCTURE BINARY", `(BODYPARTSTRUCTURE ("TEXT" "PLAIN" NIL NIL NIL "BINARY" 3 0 NIL NIL NIL NIL)) (BINARY {3}` + "\r\nell)"},
	} {
		u := a.genurlauth(fmt.Sprintf("imap://alice@%s/INBOX;UIDVALIDITY=%d/;UID=%d%s;URLAUTH=authuser", urlHost, e.uidv, uid, c.rest))
		if got := a.urlfetch(fmt.Sprintf("(%q %s)", u, c.items), u); got != c.want {
			t.Errorf("%s (%s):\n got %q\nwant %q", c.rest, c.items, got, c.want)
		}
	}
}
