package imap

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lemonvox/lemonvox/vmstore"
)

// needTool finds an external program; without it the test is skipped,
// loudly, except in CI (CI=true) where it fails.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", name, err)
		}
		t.Skipf("SKIPPING: %s not installed (%v); this test runs a real client", name, err)
	}
	return p
}

func TestPythonImaplib(t *testing.T) {
	py := needTool(t, "python3")
	e := newTestEnv(t)
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	out, err := exec.Command(py, "testdata/imaplib_client.py", host, port, "alice", testPass).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("imaplib: %v\n%s", err, out)
	}
}

func TestCurl(t *testing.T) {
	curl := needTool(t, "curl")
	e := newTestEnv(t)
	msg := testMessage("curl", "fetched by curl")
	uid := e.deposit("alice", "INBOX", msg)
	base := "imap://" + e.srv.PlainAddr()
	run := func(args ...string) string {
		t.Helper()
		args = append([]string{"-sS", "--max-time", "10", "-u", "alice:" + testPass}, args...)
		out, err := exec.Command(curl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// LIST.
	if out := run(base + "/"); !strings.Contains(out, "INBOX") || !strings.Contains(out, "Trash") {
		t.Fatalf("list: %s", out)
	}
	// FETCH by UID (RFC 5092 URL).
	if out := run(base + "/INBOX/;UID=" + u32(uid)); out != msg {
		t.Fatalf("fetch: %q", out)
	}
	// SEARCH via custom request.
	if out := run(base + "/INBOX?SUBJECT%20curl"); !strings.Contains(out, "SEARCH 1") {
		// curl sends the query as SEARCH criteria.
		t.Fatalf("search: %q", out)
	}
	// APPEND by upload.
	up := filepath.Join(t.TempDir(), "up.eml")
	os.WriteFile(up, []byte(testMessage("uploaded", "via curl")), 0o644)
	run("-T", up, base+"/INBOX")
	if mb, _ := e.store.Mailbox("alice", "INBOX"); mb.Counts.Messages != 2 {
		t.Fatalf("upload: %d messages", mb.Counts.Messages)
	}
	// EXAMINE through a custom command.
	if out := run(base+"/INBOX", "-X", "EXAMINE INBOX"); !strings.Contains(out, "2 EXISTS") {
		t.Fatalf("examine: %q", out)
	}
}

// TestMbsync syncs a mailbox both ways with isync's mbsync: messages come
// down into a Maildir, a flag set in the Maildir goes up, a flag set on the
// server comes down, and a message added to the Maildir is uploaded.
func TestMbsync(t *testing.T) {
	mbsync := needTool(t, "mbsync")
	e := newTestEnv(t)
	e.deposit("alice", "INBOX", testMessage("first", "one"))
	e.deposit("alice", "INBOX", testMessage("second", "two"))
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(e.srv.PlainAddr())
	maildir := filepath.Join(dir, "mail") + "/"
	os.MkdirAll(maildir, 0o755)
	conf := "IMAPAccount test\nHost " + host + "\nPort " + port + "\nUser alice\nPass " + testPass +
		"\nSSLType None\nAuthMechs LOGIN\n\nIMAPStore remote\nAccount test\n\n" +
		"MaildirStore local\nPath " + maildir + "\nInbox " + maildir + "INBOX\nSubFolders Verbatim\n\n" +
		"Channel sync\nFar :remote:\nNear :local:\nPatterns INBOX\nCreate Both\nExpunge Both\nSyncState *\nSync All\n"
	confPath := filepath.Join(dir, "mbsyncrc")
	os.WriteFile(confPath, []byte(conf), 0o600)
	sync := func() {
		t.Helper()
		cmd := exec.Command(mbsync, "-c", confPath, "-a")
		cmd.Env = append(os.Environ(), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
	}
	sync()
	cur := filepath.Join(maildir, "INBOX", "cur")
	newDir := filepath.Join(maildir, "INBOX", "new")
	files := func() []string {
		var out []string
		for _, d := range []string{cur, newDir} {
			ents, _ := os.ReadDir(d)
			for _, en := range ents {
				out = append(out, filepath.Join(d, en.Name()))
			}
		}
		return out
	}
	if n := len(files()); n != 2 {
		t.Fatalf("after first sync: %d files", n)
	}
	// Local flag change: mark "first" as flagged (F) and seen (S).
	var firstPath string
	for _, f := range files() {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte("Subject: first")) {
			firstPath = f
		}
	}
	base := filepath.Base(firstPath)
	if i := strings.Index(base, ":2,"); i >= 0 {
		base = base[:i]
	}
	if err := os.Rename(firstPath, filepath.Join(cur, base+":2,FS")); err != nil {
		t.Fatal(err)
	}
	// Remote flag change on "second", and a local new message.
	mb, _ := e.store.Mailbox("alice", "INBOX")
	if _, err := e.store.StoreFlags(vmstore.StoreReq{User: "alice", MailboxID: mb.ID, UIDs: []uint32{2}, Op: vmstore.FlagsAdd, Flags: []string{vmstore.FlagAnswered}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(newDir, "1700000000.local1.host"), []byte(testMessage("local", "written offline")), 0o644)
	sync()
	m1, _ := e.store.Message(mb.ID, 1)
	if !m1.Has(vmstore.FlagFlagged) || !m1.Has(vmstore.FlagSeen) {
		t.Fatalf("local flags not uploaded: %v", m1.Flags)
	}
	mb, _ = e.store.Mailbox("alice", "INBOX")
	if mb.Counts.Messages != 3 {
		t.Fatalf("local message not uploaded: %d", mb.Counts.Messages)
	}
	found := false
	for _, f := range files() {
		b, _ := os.ReadFile(f)
		_, info, _ := strings.Cut(filepath.Base(f), ":2,")
		if bytes.Contains(b, []byte("Subject: second")) && strings.Contains(info, "R") {
			found = true
		}
	}
	if !found {
		t.Fatalf("remote \\Answered not downloaded: %v", files())
	}
	// A second sync in a row changes nothing and keeps both sides.
	sync()
	if n := len(files()); n != 3 {
		t.Fatalf("after resync: %d files", n)
	}
}
