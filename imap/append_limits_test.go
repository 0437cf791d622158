package imap

import (
	"bufio"
	"compress/flate"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// bigMessage is a message of exactly size octets (compressible).
func bigMessage(subject string, size int) string {
	h := "From: <caller@example.net>\r\nSubject: " + subject + "\r\n\r\n"
	return h + strings.Repeat("a", size-len(h))
}

// expectNoContinuation reads the reply to a literal marker: it must be the
// tagged refusal (with code), never a "+" continuation.
func (rc *rawClient) expectRefusal(tag, code string) {
	rc.t.Helper()
	l := rc.line()
	if strings.HasPrefix(l, "+") {
		rc.t.Fatalf("continuation %q sent for a literal that must be refused", l)
	}
	if !strings.HasPrefix(l, tag+" NO ["+code+"]") {
		rc.t.Fatalf("got %q, want %s NO [%s]", l, tag, code)
	}
}

func TestMultiAppendQuotaBeforeContinuation(t *testing.T) {
	e := newTestEnv(t)
	if err := e.store.SetQuota("alice", vmstore.Quota{Bytes: 1000000}); err != nil {
		t.Fatal(err)
	}
	rc := e.raw()
	rc.login("alice")
	rc.send("a1 APPEND INBOX {600000}")
	if l := rc.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("first literal: %q", l)
	}
	io.WriteString(rc.conn, bigMessage("one", 600000))
	// The second literal would take the account past 1 MB with the first.
	rc.send(" {600000}")
	rc.expectRefusal("a1", "OVERQUOTA")
	if u, _ := e.store.Usage("alice"); u.Messages != 0 {
		t.Fatalf("MULTIAPPEND is all or nothing: %d stored", u.Messages)
	}
	rc.ok("NOOP")
	// Alone, the first fits.
	rc.send("a2 APPEND INBOX {600000}")
	rc.line()
	io.WriteString(rc.conn, bigMessage("one", 600000)+"\r\n")
	if _, tagged := rc.until("a2"); !strings.HasPrefix(tagged, "a2 OK") {
		t.Fatalf("single APPEND: %q", tagged)
	}
	// Now a single literal that does not fit is refused at once.
	rc.send("a3 APPEND INBOX {500000}")
	rc.expectRefusal("a3", "OVERQUOTA")

	// The message count quota, counting this command's literals.
	if err := e.store.SetQuota("bob", vmstore.Quota{Messages: 2}); err != nil {
		t.Fatal(err)
	}
	e.deposit("bob", "INBOX", testMessage("first", "x"))
	rb := e.raw()
	rb.login("bob")
	m := testMessage("m", "y")
	rb.send(fmt.Sprintf("b1 APPEND INBOX {%d}", len(m)))
	rb.line()
	io.WriteString(rb.conn, m)
	rb.send(fmt.Sprintf(" {%d}", len(m)))
	rb.expectRefusal("b1", "OVERQUOTA")
}

func TestAppendTooBigAndNonSyncLiterals(t *testing.T) {
	e := newTestEnv(t, func(s *Server) { s.AppendLimit = 100000 })
	if err := e.store.SetQuota("bob", vmstore.Quota{Messages: 1}); err != nil {
		t.Fatal(err)
	}
	e.deposit("bob", "INBOX", testMessage("first", "x"))
	rc := e.raw()
	rc.login("alice")
	rc.send("a1 APPEND INBOX {200000}")
	rc.expectRefusal("a1", "TOOBIG")
	rc.ok("NOOP")
	// LITERAL+: a refused literal that is small enough is read and
	// discarded, and the session goes on.
	io.WriteString(rc.conn, "a2 APPEND INBOX {200000+}\r\n"+bigMessage("nonsync", 200000)+"\r\n")
	if l := rc.line(); !strings.HasPrefix(l, "a2 NO [TOOBIG]") {
		t.Fatalf("non-synchronizing too big: %q", l)
	}
	rc.ok("NOOP")
	rb := e.raw()
	rb.login("bob")
	m := testMessage("over", "z")
	io.WriteString(rb.conn, fmt.Sprintf("b1 APPEND INBOX {%d+}\r\n%s\r\n", len(m), m))
	if l := rb.line(); !strings.HasPrefix(l, "b1 NO [OVERQUOTA]") {
		t.Fatalf("non-synchronizing over quota: %q", l)
	}
	rb.ok("NOOP")
	// One too large to read ends the session instead (RFC 7888 s4).
	rb.send("b2 APPEND INBOX {300000000+}")
	if bye := rb.waitBye("huge non-synchronizing literal"); !strings.Contains(bye, "[TOOBIG]") {
		t.Fatalf("BYE %q", bye)
	}
}

// A MULTIAPPEND of highly compressible literals under COMPRESS=DEFLATE
// cannot make the server hold them in memory: what one command keeps in
// memory is bounded, the rest is spooled to files.
func TestCompressedMultiAppendMemoryBound(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{Dir: t.TempDir(), GCInterval: -1,
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: testPass}); err != nil {
		t.Fatal(err)
	}
	srv := &Server{Store: st, Addr: "127.0.0.1:0", SpoolDir: filepath.Join(t.TempDir(), "spool"),
		AppendSpoolLimit: 1 << 30, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	nc, err := net.Dial("tcp", srv.PlainAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rc := newRaw(t, nc)
	rc.line()
	rc.login("alice")
	rc.send("z COMPRESS DEFLATE")
	if l := rc.line(); !strings.HasPrefix(l, "z OK") {
		t.Fatalf("COMPRESS: %q", l)
	}
	nc.SetReadDeadline(time.Time{}) // the deadline below applies
	zw, _ := flate.NewWriter(nc, flate.BestCompression)
	zr := bufio.NewReader(flate.NewReader(rc.r))

	const n, size = 48, 1 << 20
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	peak := base
	done := make(chan string, 1)
	go func() {
		for {
			l, err := zr.ReadString('\n')
			if err != nil {
				done <- "read: " + err.Error()
				return
			}
			if strings.HasPrefix(l, "m ") {
				done <- l
				return
			}
		}
	}()
	wire := &countWriter{w: nc}
	zw.Reset(wire)
	pad := strings.Repeat("a", size)
	go func() {
		io.WriteString(zw, "m APPEND INBOX")
		for i := 0; i < n; i++ {
			h := fmt.Sprintf("From: <caller@example.net>\r\nSubject: m%05d\r\n\r\n", i)
			fmt.Fprintf(zw, " {%d+}\r\n%s", size, h)
			io.WriteString(zw, pad[:size-len(h)])
		}
		io.WriteString(zw, "\r\n")
		zw.Flush()
	}()
	var reply string
	deadline := time.After(5 * time.Minute)
sample:
	for {
		select {
		case reply = <-done:
			break sample
		case <-deadline:
			t.Fatal("no reply to the MULTIAPPEND")
		case <-time.After(100 * time.Millisecond):
			// After a collection: what is held, not garbage not yet
			// collected.
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
		}
	}
	if !strings.HasPrefix(reply, "m OK") {
		t.Fatalf("MULTIAPPEND: %q", reply)
	}
	grew := int64(peak) - int64(base)
	t.Logf("%d MiB of literals in %d KiB on the wire: heap in use grew %d MiB at most", n*size>>20, wire.n>>10, grew>>20)
	if grew > 32<<20 {
		t.Fatalf("heap in use grew by %d MiB for %d MiB of compressed literals", grew>>20, n*size>>20)
	}
	if u, _ := st.Usage("alice"); u.Messages != n {
		t.Fatalf("%d stored", u.Messages)
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Spool files live under SpoolDir (not the system temporary directory),
// leave no name behind, and what an earlier process left is removed when
// the server starts.
func TestAppendSpoolUnderSpoolDir(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd to see open spool files")
	}
	spool := filepath.Join(t.TempDir(), "spool")
	os.MkdirAll(spool, 0o700)
	stale := filepath.Join(spool, spoolPrefix+"123")
	keep := filepath.Join(spool, "notes.txt")
	os.WriteFile(stale, []byte("left by a crash"), 0o600)
	os.WriteFile(keep, []byte("not ours"), 0o600)
	e := newTestEnv(t, func(s *Server) { s.SpoolDir = spool })
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale spool file survived the start: %v", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Fatalf("a file that is not a spool file was removed: %v", err)
	}
	openSpool := func() int {
		n := 0
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, ent := range ents {
			if l, err := os.Readlink(filepath.Join("/proc/self/fd", ent.Name())); err == nil && strings.HasPrefix(l, spool+"/"+spoolPrefix) {
				n++
			}
		}
		return n
	}
	rc := e.raw()
	rc.login("alice")
	small := testMessage("small", strings.Repeat("s", 600000))
	big := bigMessage("big", 2<<20)
	rc.send(fmt.Sprintf("a1 APPEND INBOX {%d}", len(small)))
	rc.line()
	io.WriteString(rc.conn, small)
	rc.send(fmt.Sprintf(" {%d}", len(big)))
	rc.line()
	io.WriteString(rc.conn, big[:1<<20])
	deadline := time.Now().Add(10 * time.Second)
	for openSpool() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no open spool file under SpoolDir")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 1 {
		t.Fatalf("spool file names stay in the directory: %v", ents)
	}
	io.WriteString(rc.conn, big[1<<20:]+"\r\n")
	if _, tagged := rc.until("a1"); !strings.HasPrefix(tagged, "a1 OK") {
		t.Fatalf("APPEND: %q", tagged)
	}
	if n := openSpool(); n != 0 {
		t.Fatalf("%d spool files still open after the APPEND", n)
	}
}
