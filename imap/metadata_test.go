package imap

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

func TestMetadata(t *testing.T) {
	e := newTestEnv(t)
	c := e.client("alice")
	v := []byte("call me back")
	srv := []byte("sip:media@example.net")
	if err := c.SetMetadata("INBOX", map[string]*[]byte{"/private/comment": &v, "/shared/comment": &v}).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.SetMetadata("", map[string]*[]byte{"/shared/mediaServers": &srv, "/shared/vendor/lemonvox/a/b": &srv, "/shared/vendor/lemonvox/c": &srv}).Wait(); err != nil {
		t.Fatal(err)
	}
	md, err := c.GetMetadata("INBOX", []string{"/private/comment", "/shared/comment", "/private/nothing"}, nil).Wait()
	if err != nil || string(*md.Entries["/private/comment"]) != "call me back" || md.Entries["/private/nothing"] != nil {
		t.Fatalf("GETMETADATA: %+v %v", md, err)
	}
	md, err = c.GetMetadata("", []string{"/shared/vendor/lemonvox"}, &imapclient.GetMetadataOptions{Depth: imapclient.GetMetadataDepthInfinity}).Wait()
	if err != nil || len(md.Entries) != 3 || string(*md.Entries["/shared/vendor/lemonvox/a/b"]) != string(srv) {
		t.Fatalf("GETMETADATA depth: %+v %v", md, err)
	}
	rc := e.raw()
	rc.login("alice")
	// Options before and after the mailbox; MAXSIZE gives LONGENTRIES.
	lines, tagged := rc.cmd("GETMETADATA (MAXSIZE 5) INBOX (/private/comment)")
	if !strings.Contains(tagged, "[METADATA LONGENTRIES 12]") || lines[0] != "* METADATA INBOX ()" {
		t.Fatalf("%q %s", lines, tagged)
	}
	if lines := rc.ok(`GETMETADATA "" (DEPTH 1) /shared/vendor/lemonvox`); lines[0] != `* METADATA "" (/shared/vendor/lemonvox/c "sip:media@example.net" /shared/vendor/lemonvox NIL)` {
		t.Fatal(lines)
	}
	// Invalid names are BAD.
	for _, bad := range []string{"/private", "/other/x", "/private/a*", "/private//x", "/private/x/"} {
		if _, tagged := rc.cmd("GETMETADATA INBOX %s", bad); !strings.Contains(tagged, "BAD") {
			t.Fatalf("%s: %s", bad, tagged)
		}
	}
	// literal8 with NUL round-trips; NIL deletes.
	rc.send("s1 SETMETADATA INBOX (/private/vendor/lemonvox/pin ~{3+}\r\na\x00b)")
	if _, tagged := rc.until("s1"); !strings.Contains(tagged, "OK") {
		t.Fatal(tagged)
	}
	lines = rc.ok("GETMETADATA INBOX /private/vendor/lemonvox/pin")
	if lines[0] != "* METADATA INBOX (/private/vendor/lemonvox/pin ~{3}" {
		t.Fatalf("%q", lines)
	}
	if lines[1] != "a\x00b)" {
		t.Fatalf("literal8 value: %q", lines)
	}
	rc.ok("SETMETADATA INBOX (/private/comment NIL)")
	if lines := rc.ok("GETMETADATA INBOX /private/comment"); lines[0] != "* METADATA INBOX (/private/comment NIL)" {
		t.Fatalf("%q", lines)
	}
	// Too large.
	big := strings.Repeat("x", metadataMaxSize+1)
	rc.send("s2 SETMETADATA INBOX (/private/comment {" + itoa64(int64(len(big))) + "+}\r\n" + big + ")")
	if _, tagged := rc.until("s2"); !strings.Contains(tagged, "NO [METADATA MAXSIZE") {
		t.Fatal(tagged)
	}
	// Unsolicited change report after ENABLE METADATA.
	rc.ok("ENABLE METADATA")
	rc.ok("SELECT INBOX")
	v2 := []byte("changed")
	if err := c.SetMetadata("INBOX", map[string]*[]byte{"/shared/comment": &v2}).Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if lines := rc.ok("NOOP"); len(lines) != 1 || lines[0] != "* METADATA INBOX /shared/comment" {
		t.Fatalf("unsolicited: %q", lines)
	}
	// Our own change is not reported back.
	if lines := rc.ok("SETMETADATA INBOX (/shared/comment \"mine\")"); len(lines) != 0 {
		t.Fatalf("own change reported: %q", lines)
	}
}
