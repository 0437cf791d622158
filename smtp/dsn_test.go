package smtp

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dsnSmarthost is a loopback smarthost that announces DSN, refuses the
// recipients whose local part starts with "reject" or "never", and
// records every command line it is sent.
type dsnSmarthost struct {
	addr string
	mu   sync.Mutex
	cmds []string
	msgs int
}

func startDSNSmarthost(t *testing.T) *dsnSmarthost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	h := &dsnSmarthost{addr: ln.Addr().String()}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go h.serve(nc)
		}
	}()
	return h
}

func (h *dsnSmarthost) serve(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(time.Minute))
	br := bufio.NewReader(nc)
	w := func(s string) { nc.Write([]byte(s + "\r\n")) }
	w("220 smarthost.test ESMTP")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		h.mu.Lock()
		h.cmds = append(h.cmds, line)
		h.mu.Unlock()
		up := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(up, "EHLO"):
			w("250-smarthost.test\r\n250-8BITMIME\r\n250-DSN\r\n250 SIZE 100000000")
		case strings.HasPrefix(up, "RCPT TO:<REJECT"), strings.HasPrefix(up, "RCPT TO:<NEVER"):
			w("550 5.1.1 no such user")
		case strings.HasPrefix(up, "DATA"):
			w("354 go ahead")
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			h.mu.Lock()
			h.msgs++
			h.mu.Unlock()
			w("250 2.0.0 queued")
		case strings.HasPrefix(up, "QUIT"):
			w("221 bye")
			return
		default:
			w("250 ok")
		}
	}
}

func (h *dsnSmarthost) has(prefix string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.cmds {
		if strings.HasPrefix(c, prefix) {
			return true
		}
	}
	return false
}

func (h *dsnSmarthost) messages() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.msgs
}

// TestSubmissionDSN: RFC 3461 parameters are accepted (DSN announced),
// kept with the transaction and with a held message across its queue
// entry, passed to a smarthost that announces DSN, and followed by this
// server's failure report (NOTIFY=NEVER: no report; ENVID and ORCPT
// quoted; RET=FULL: the whole message). Malformed ones are 501, unknown
// RCPT parameters 555. Python's smtplib is the client.
func TestSubmissionDSN(t *testing.T) {
	sh := startDSNSmarthost(t)
	e := newEnv(t, func(s *Submission) { s.Relay = &Relay{Addr: sh.addr} })
	out := runPy(t, map[string]string{"ADDR": e.addr}, pyPrelude+`
print("ehlo-dsn", "dsn" in s.esmtp_features)
print("m1", s.docmd("MAIL FROM:<alice@vm.example.net> RET=HDRS ENVID=QQ+2Bid"))
print("r1", s.docmd("RCPT TO:<x@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+40orig.example"))
print("r2", s.docmd("RCPT TO:<reject@remote.example> NOTIFY=FAILURE ORCPT=rfc822;reject@remote.example"))
print("r3", s.docmd("RCPT TO:<never@remote.example> NOTIFY=NEVER"))
print("d1", s.docmd("DATA"))
s.send(b"Subject: dsn one\r\n\r\nbody one\r\n.\r\n")
print("e1", s.getreply())
print("m2", s.docmd("MAIL FROM:<alice@vm.example.net> HOLDFOR=1 RET=FULL ENVID=held1"))
print("r4", s.docmd("RCPT TO:<y@remote.example> NOTIFY=DELAY ORCPT=rfc822;y@remote.example"))
print("r5", s.docmd("RCPT TO:<reject2@remote.example>"))
print("d2", s.docmd("DATA"))
s.send(b"Subject: dsn held\r\n\r\nheld body line\r\n.\r\n")
print("e2", s.getreply())
print("badret", s.docmd("MAIL FROM:<alice@vm.example.net> RET=ALL"))
print("badenvid", s.docmd("MAIL FROM:<alice@vm.example.net> ENVID=" + "x" * 101))
print("badenvid2", s.docmd("MAIL FROM:<alice@vm.example.net> ENVID=a+zz"))
print("m3", s.docmd("MAIL FROM:<alice@vm.example.net>"))
print("badnotify", s.docmd("RCPT TO:<bob@vm.example.net> NOTIFY=NEVER,SUCCESS"))
print("badnotify2", s.docmd("RCPT TO:<bob@vm.example.net> NOTIFY=SOMETIMES"))
print("badorcpt", s.docmd("RCPT TO:<bob@vm.example.net> ORCPT=bob@vm.example.net"))
print("unknown", s.docmd("RCPT TO:<bob@vm.example.net> FOO=1"))
print("dup", s.docmd("RCPT TO:<bob@vm.example.net> NOTIFY=FAILURE NOTIFY=DELAY"))
print("okrcpt", s.docmd("RCPT TO:<bob@vm.example.net> NOTIFY=SUCCESS"))
s.quit()
`)
	for _, want := range []string{"ehlo-dsn True", "m1 (250", "r1 (250", "r2 (250", "r3 (250", "e1 (250", "m2 (250", "r4 (250", "e2 (250, b'2.0.0 Message held",
		"badret (501, b'5.5.4 Bad RET", "badenvid (501, b'5.5.4 Bad ENVID", "badenvid2 (501, b'5.5.4 Bad ENVID", "badnotify (501, b'5.5.4 NOTIFY=NEVER stands alone",
		"badnotify2 (501, b'5.5.4 Bad NOTIFY", "badorcpt (501, b'5.5.4 Bad ORCPT", "unknown (555, b'5.5.4 Unsupported RCPT parameter FOO",
		"dup (501, b'5.5.4 Duplicate parameter NOTIFY", "okrcpt (250"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	// The smarthost got the parameters.
	for _, want := range []string{"RCPT TO:<x@remote.example> NOTIFY=SUCCESS,FAILURE ORCPT=RFC822;x@orig.example", "RCPT TO:<never@remote.example> NOTIFY=NEVER"} {
		if !sh.has(want) {
			t.Errorf("smarthost did not get %q: %q", want, sh.cmds)
		}
	}
	mailOK := false
	sh.mu.Lock()
	for _, c := range sh.cmds {
		if strings.HasPrefix(c, "MAIL FROM:<alice@vm.example.net>") && strings.Contains(c, " RET=HDRS") && strings.Contains(c, " ENVID=QQ+2Bid") {
			mailOK = true
		}
	}
	sh.mu.Unlock()
	if !mailOK {
		t.Errorf("smarthost MAIL lines lack RET/ENVID: %q", sh.cmds)
	}
	// The held message keeps its parameters in the queue until released.
	waitFor(t, "held message relayed", func() bool { return sh.messages() == 2 })
	if !sh.has("RCPT TO:<y@remote.example> NOTIFY=DELAY ORCPT=RFC822;y@remote.example") {
		t.Errorf("held message's RCPT lacks its parameters: %q", sh.cmds)
	}
	heldMail := false
	sh.mu.Lock()
	for _, c := range sh.cmds {
		if strings.Contains(c, " RET=FULL") && strings.Contains(c, " ENVID=held1") {
			heldMail = true
		}
	}
	sh.mu.Unlock()
	if !heldMail {
		t.Errorf("held message's MAIL lacks RET=FULL ENVID=held1: %q", sh.cmds)
	}
	// Failure reports in alice's INBOX: one per message; never@ not
	// reported; ENVID and ORCPT quoted; RET=FULL returns the message.
	var reports [][]byte
	waitFor(t, "two failure reports", func() bool {
		reports = mailboxMessages(t, e.st, "alice", "INBOX")
		return len(reports) == 2
	})
	var first, held []byte
	for _, r := range reports {
		if bytes.Contains(r, []byte("Original-Envelope-Id: QQ+2Bid")) {
			first = r
		}
		if bytes.Contains(r, []byte("Original-Envelope-Id: held1")) {
			held = r
		}
	}
	if first == nil || held == nil {
		t.Fatalf("reports without their ENVID:\n%s\n---\n%s", reports[0], reports[1])
	}
	if !bytes.Contains(first, []byte("Original-Recipient: rfc822;reject@remote.example\r\nFinal-Recipient: rfc822; reject@remote.example\r\nAction: failed\r\nStatus: 5.1.1")) ||
		bytes.Contains(first, []byte("never@remote.example")) || !bytes.Contains(first, []byte("Content-Type: text/rfc822-headers")) ||
		bytes.Contains(first, []byte("body one")) {
		t.Errorf("first report:\n%s", first)
	}
	if !bytes.Contains(held, []byte("Final-Recipient: rfc822; reject2@remote.example")) || !bytes.Contains(held, []byte("Content-Type: message/rfc822")) ||
		!bytes.Contains(held, []byte("held body line")) {
		t.Errorf("held message's report (RET=FULL):\n%s", held)
	}
}
