package smtp

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// FuzzSubmissionParams: the command, path and parameter parsers never
// panic and what they accept is well-formed.
func FuzzSubmissionParams(f *testing.F) {
	for _, s := range []string{"MAIL FROM:<a@b> SIZE=10 BODY=8BITMIME", "RCPT TO:<@x,@y:u@h>", "MAIL FROM:<> HOLDFOR=20",
		"MAIL FROM:<a@b> HOLDUNTIL=2030-01-01T00:00:00Z", "BDAT 100 LAST", "BURL imap://u@h/INBOX/;UID=1;URLAUTH=submit+u:internal:00 LAST",
		"mail from: <x@y> body=binarymime", "RCPT TO:<a@b@c>", "EHLO \x00",
		"MAIL FROM:<a@b> RET=HDRS ENVID=QQ+2Bid", "RCPT TO:<x@y> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40y", "RCPT TO:<x@y> NOTIFY=NEVER,DELAY ORCPT=;+4"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, line string) {
		cmd, err := parseCommand(line)
		if err != nil {
			return
		}
		for _, p := range []string{"FROM:", "TO:"} {
			if addr, params, err := pathArg(cmd.arg, p); err == nil {
				if checkAddress(addr) != nil {
					t.Fatalf("accepted bad address %q", addr)
				}
				mp, perr := parseMailParams(params, now, time.Hour)
				if perr == nil && mp.hold && mp.releaseTime(now).After(now.Add(time.Hour)) {
					t.Fatalf("hold beyond the limit: %q", line)
				}
				if perr == nil && mp.dsn.EnvID != "" {
					if back, ok := parseXtext(encodeXtext(mp.dsn.EnvID)); !ok || back != mp.dsn.EnvID {
						t.Fatalf("ENVID does not round-trip: %q", mp.dsn.EnvID)
					}
				}
				if r, perr := parseRcptParams(params); perr == nil {
					if back, ok := parseXtext(encodeXtext(r.ORcpt)); !ok || back != r.ORcpt {
						t.Fatalf("ORCPT does not round-trip: %q", r.ORcpt)
					}
					if containsFold(r.Notify, "NEVER") && len(r.Notify) != 1 {
						t.Fatalf("NOTIFY=NEVER with others accepted: %q", line)
					}
				}
			}
		}
		if n, _, err := bdatArg(cmd.arg); err == nil && n < 0 {
			t.Fatalf("negative BDAT size from %q", line)
		}
		burlArg(cmd.arg)
	})
}

// FuzzSubmissionSession: arbitrary bytes from a client never panic or
// hang the command loop (the session ends when the input does).
func FuzzSubmissionSession(f *testing.F) {
	for _, s := range []string{"EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", "BDAT 3\r\nabcBDAT x\r\n", "DATA\r\n.\r\n",
		"EHLO x\r\nAUTH PLAIN\r\n*\r\nAUTH PLAIN =\r\n", "HELO\r\nRSET\r\nNOOP\r\nVRFY x\r\n"} {
		f.Add([]byte(s))
	}
	st := fuzzStore(f)
	srv := &Submission{Store: st, AllowInsecureAuth: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SpoolDir: f.TempDir(), CommandTimeout: 5 * time.Second, GreetingTimeout: 5 * time.Second}
	srv.init()
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		c := newSubConn(srv, a)
		done := make(chan struct{})
		go func() { defer close(done); c.serve() }()
		go func() { io.Copy(io.Discard, bufio.NewReader(b)) }()
		b.Write(bytes.Clone(in))
		b.Close()
		<-done
	})
}
