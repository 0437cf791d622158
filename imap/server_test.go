package imap

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestMain(m *testing.M) {
	// Panics in handlers fail the tests instead of being answered.
	os.Setenv("LEMONVOX_IMAP_PANIC", "1")
	os.Exit(m.Run())
}

type testEnv struct {
	t     testing.TB
	store *vmstore.Store
	srv   *Server
}

const testPass = "secret-pass"

func newTestEnv(t testing.TB, configure ...func(*Server)) *testEnv {
	t.Helper()
	st, err := vmstore.Open(vmstore.Options{
		InMemory:   true,
		Hash:       vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1},
		GCInterval: -1,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: testPass}); err != nil {
			t.Fatal(err)
		}
	}
	level := slog.LevelWarn
	if os.Getenv("IMAPTEST_DEBUG") != "" {
		level = levelTrace
	}
	srv := &Server{
		Store:  st,
		Addr:   "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	}
	for _, f := range configure {
		f(srv)
	}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &testEnv{t: t, store: st, srv: srv}
}

// client logs in with go-imap's client.
func (e *testEnv) client(user string) *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.srv.PlainAddr(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(user, testPass).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *testEnv) deposit(user, mailbox, msg string, flags ...string) uint32 {
	e.t.Helper()
	res, err := e.store.Deposit(vmstore.DepositReq{User: user, Mailbox: mailbox, Body: strings.NewReader(msg), Flags: flags})
	if err != nil {
		e.t.Fatal(err)
	}
	return res.Message.UID
}

// rawClient is a line-level client for exact protocol checks.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	n    int
}

func (e *testEnv) raw() *rawClient {
	e.t.Helper()
	nc, err := net.Dial("tcp", e.srv.PlainAddr())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { nc.Close() })
	rc := &rawClient{t: e.t, conn: nc, r: bufio.NewReader(nc)}
	rc.line() // greeting
	return rc
}

func newRaw(t *testing.T, nc net.Conn) *rawClient {
	return &rawClient{t: t, conn: nc, r: bufio.NewReader(nc)}
}

func (rc *rawClient) line() string {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	l, err := rc.r.ReadString('\n')
	if err != nil {
		rc.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

func (rc *rawClient) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.conn, s+"\r\n"); err != nil {
		rc.t.Fatal(err)
	}
}

// cmd sends a command and returns the untagged lines and the tagged line.
func (rc *rawClient) cmd(format string, args ...any) ([]string, string) {
	rc.t.Helper()
	rc.n++
	tag := fmt.Sprintf("t%d", rc.n)
	rc.send(tag + " " + fmt.Sprintf(format, args...))
	return rc.until(tag)
}

func (rc *rawClient) until(tag string) ([]string, string) {
	rc.t.Helper()
	var lines []string
	for {
		l := rc.line()
		if strings.HasPrefix(l, tag+" ") {
			return lines, l
		}
		lines = append(lines, l)
	}
}

// ok runs a command that must succeed.
func (rc *rawClient) ok(format string, args ...any) []string {
	rc.t.Helper()
	lines, tagged := rc.cmd(format, args...)
	if !strings.Contains(tagged, " OK") {
		rc.t.Fatalf("%s: %s (untagged %q)", fmt.Sprintf(format, args...), tagged, lines)
	}
	return lines
}

func (rc *rawClient) login(user string) {
	rc.ok("LOGIN %s %s", user, testPass)
}

func testMessage(subject, body string) string {
	return "From: Caller <caller@example.net>\r\nTo: alice@example.net\r\nSubject: " + subject +
		"\r\nDate: Sat, 21 Nov 2026 10:00:00 +0000\r\nMessage-ID: <" + subject + "@example.net>\r\n\r\n" + body + "\r\n"
}

var _ = tls.VersionTLS13

func storeReq(t *testing.T, e *testEnv, user string, uid uint32, flags ...string) vmstore.StoreReq {
	mb, err := e.store.Mailbox(user, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	return vmstore.StoreReq{User: user, MailboxID: mb.ID, UIDs: []uint32{uid}, Op: vmstore.FlagsAdd, Flags: flags}
}
