package imap

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	"i IDLE\r\nDONE\r\nn NOOP\r\n",
	"i IDLE\r\nNOPE\r\n",
	"e ENABLE UTF8=ACCEPT\r\na APPEND INBOX (\\Seen) UTF8 (~{6+}\r\nX: y\r\n)\r\n",
	"a APPEND INBOX UTF8 ({6+}\r\nX: y\r\n)\r\n",
	"a SORT (DISPLAYFROM REVERSE DISPLAYTO) UTF-8 ALL\r\n",
	"a THREAD REFERENCES UTF-8 OR SUBJECT x NOT FROM y\r\na UID THREAD ORDEREDSUBJECT US-ASCII 1:*\r\n",
	"a SELECT INBOX (CONDSTORE)\r\n",
	"a FETCH 1:* (FLAGS UID ENVELOPE BODYSTRUCTURE BODY.PEEK[HEADER.FIELDS (SUBJECT)]<0.10> BINARY.SIZE[1])\r\n",
	"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)\r\n",
	"a STORE 1 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Seen $Forwarded)\r\n",
	"a UID SEARCH RETURN (MIN MAX COUNT SAVE) OR (FROM x SINCE 1-Jan-2020) NOT KEYWORD $Junk\r\n",
	"a SEARCH $ MODSEQ \"/flags/\\\\seen\" all 4\r\n",
	"a APPEND INBOX (\\Seen) \"21-Nov-2026 10:00:00 +0000\" {3+}\r\nabc\r\n",
	"a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (INBOX \"*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
	"a STATUS INBOX (MESSAGES UIDNEXT HIGHESTMODSEQ SIZE DELETED)\r\n",
	"a CREATE Foo/Bar (USE (\\Archive))\r\na RENAME Foo Baz\r\na DELETE Baz/Bar\r\n",
	"a UID MOVE 1:* Trash\r\na UID COPY $ INBOX\r\na UID EXPUNGE 1:5\r\n",
	"a ENABLE QRESYNC IMAP4rev2\r\na SELECT INBOX (QRESYNC (1 2 1:4 (1,3 1,3)))\r\n",
	"a ID (\"name\" \"x\")\r\na NAMESPACE\r\na IDLE\r\nDONE\r\n",
	"a NOTIFY SET STATUS (SELECTED (MessageNew (UID FLAGS) MessageExpunge FlagChange)) (SUBTREE (INBOX Trash) (MailboxName))\r\na NOTIFY NONE\r\n",
	"a SETMETADATA INBOX (/private/comment {3+}\r\nabc /shared/x NIL)\r\na GETMETADATA (DEPTH infinity MAXSIZE 2) \"\" (/shared /private/comment)\r\n",
	"a UID SORT RETURN (UPDATE MIN PARTIAL 1:3) (REVERSE SUBJECT DATE) UTF-8 OR SEEN $\r\na CANCELUPDATE \"a\"\r\n",
	"a GETQUOTAROOT INBOX\r\na GETQUOTA \"user/alice\"\r\na COMPRESS DEFLATE\r\n",
	"a FETCH 2 (BODY[2.HEADER] BODY[2.1] BINARY[1]<0.1> BODY[1.MIME] RFC822.HEADER)\r\n",
}

// FuzzCommand feeds arbitrary input to an authenticated session with
// INBOX selected. Handlers must answer BAD/NO, never panic (TestMain makes
// a panic fatal) nor answer NO [SERVERBUG].
func FuzzCommand(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	e := newTestEnv(f)
	e.deposit("alice", "INBOX", testMessage("fuzz", "body"))
	e.deposit("alice", "INBOX", "Content-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\ny\r\n--B--\r\n")
	f.Fuzz(func(t *testing.T, data []byte) {
		srvSide, cliSide := net.Pipe()
		c := newConn(e.srv, srvSide, false)
		c.user, c.state = "alice", stateAuth
		var wg sync.WaitGroup
		var out bytes.Buffer
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(&out, cliSide)
		}()
		in := append([]byte("s SELECT INBOX\r\n"), data...)
		in = append(in, "\r\nz LOGOUT\r\n"...)
		c.dec.Reset(io.MultiReader(bytes.NewReader(in), &blockReader{}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				srvSide.SetReadDeadline(time.Now().Add(time.Second))
				// step reads a command, or DONE after IDLE.
				if !c.step() {
					return
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("session hangs")
		}
		c.cleanup()
		srvSide.Close()
		cliSide.Close()
		wg.Wait()
		// Bad input gets BAD or NO with the right code; SERVERBUG means a
		// handler failed on it.
		if i := bytes.Index(out.Bytes(), []byte("[SERVERBUG]")); i >= 0 {
			line := out.Bytes()[max(0, bytes.LastIndexByte(out.Bytes()[:i], '\n')+1):]
			line, _, _ = bytes.Cut(line, []byte("\r\n"))
			t.Fatalf("server bug on input %q:\n%s", data, line)
		}
	})
}

// blockReader ends the input.
type blockReader struct{}

func (blockReader) Read([]byte) (int, error) { return 0, io.EOF }
