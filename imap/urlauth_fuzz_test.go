package imap

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
)

// FuzzURLAuthCommand feeds arbitrary GENURLAUTH, RESETKEY and URLFETCH
// input to a session of a server with a URL resolver: the answers are OK
// (a NIL per URL that does not resolve), BAD or NO, never a panic nor NO
// [SERVERBUG]. Seeds: testdata/fuzz/FuzzURLAuthCommand and the lines below.
func FuzzURLAuthCommand(f *testing.F) {
	// Wrong tokens count in the authentication limiter; its delays are
	// not slept here, or the seeds' failures would add up to a hang.
	e := newURLEnv(f, func(s *Server) {
		s.AuthLimiter = authlimit.New(authlimit.Config{Sleep: func(context.Context, time.Duration) error { return nil }})
	})
	good := "imap://alice@vm.test/INBOX/;UID=1/;SECTION=2;URLAUTH=anonymous:internal:02" + string(bytes.Repeat([]byte("ab"), 32))
	for _, s := range []string{
		"a GENURLAUTH \"imap://alice@vm.test/INBOX/;UID=1/;SECTION=2;URLAUTH=user+bob\" INTERNAL\r\n",
		"a GENURLAUTH \"imap://alice@vm.test/INBOX/;UID=1/;SECTION=1/;PARTIAL=0.5;URLAUTH=authuser\" internal \"imap://alice@vm.test/INBOX/;UID=1;EXPIRE=2099-01-01T00:00:00Z;URLAUTH=anonymous\" INTERNAL\r\n",
		"a URLFETCH \"" + good + "\"  (\"" + good + "\" BODYPARTSTRUCTURE BINARY) (\"" + good + "\" BODY)\r\n",
		"a URLFETCH (\"" + good + "\")\r\n",
		"a URLFETCH ({5+}\r\nimap: BINARY BINARY)\r\n",
		"a RESETKEY INBOX INTERNAL\r\na RESETKEY\r\na RESETKEY NoSuch\r\n",
		"a URLFETCH imap://alice@vm.test/INBOX/;UID=1;URLAUTH=authuser:internal:00000000000000000000000000000000\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		srvSide, cliSide := net.Pipe()
		c := newConn(e.srv, srvSide, false)
		acct, err := e.store.GetAccount("alice")
		if err != nil {
			t.Fatal(err)
		}
		c.user, c.acctID, c.state = "alice", acct.ID, stateAuth
		var wg sync.WaitGroup
		var out bytes.Buffer
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.Copy(&out, cliSide)
		}()
		in := append(append([]byte{}, data...), "\r\nz LOGOUT\r\n"...)
		c.dec.Reset(io.MultiReader(bytes.NewReader(in), &blockReader{}))
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				srvSide.SetReadDeadline(time.Now().Add(time.Second))
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
		if i := bytes.Index(out.Bytes(), []byte("[SERVERBUG]")); i >= 0 {
			t.Fatalf("server bug on input %q:\n%s", data, out.Bytes()[max(0, i-200):i+20])
		}
	})
}
