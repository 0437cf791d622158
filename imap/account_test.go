package imap

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// waitBye reads until the server sends "* BYE" and closes the connection,
// within a deadline; it fails on a tagged reply or on a timeout.
func (rc *rawClient) waitBye(what string) string {
	rc.t.Helper()
	rc.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var bye string
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rc.t.Fatalf("%s: no BYE and close within the deadline (bye %q)", what, bye)
			}
			if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
				rc.t.Fatalf("%s: read: %v", what, err)
			}
			if bye == "" {
				rc.t.Fatalf("%s: closed without BYE", what)
			}
			return bye
		}
		l = strings.TrimRight(l, "\r\n")
		switch {
		case strings.HasPrefix(l, "* BYE"):
			bye = l
		case strings.HasPrefix(l, "* "), strings.HasPrefix(l, "+ "):
		default:
			if bye == "" {
				rc.t.Fatalf("%s: %q instead of BYE", what, l)
			}
		}
	}
}

// A deleted account's sessions end at once, in every state, and an account
// created again under the name is not reachable through them.
func TestDeletedAccountSessionsEnd(t *testing.T) {
	e := newTestEnv(t)
	old, err := e.store.GetAccount("alice")
	if err != nil || old.ID == 0 {
		t.Fatalf("account id: %+v %v", old, err)
	}
	e.deposit("alice", "INBOX", testMessage("old", "for the first alice"))

	authed := e.raw() // logged in, nothing selected
	authed.login("alice")
	idle := e.raw() // in IDLE, nothing selected
	idle.login("alice")
	idle.send("i1 IDLE")
	if l := idle.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	selected := e.raw() // a mailbox selected
	selected.login("alice")
	selected.ok("SELECT INBOX")
	selIdle := e.raw() // selected and in IDLE
	selIdle.login("alice")
	selIdle.ok("SELECT INBOX")
	selIdle.send("i2 IDLE")
	if l := selIdle.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("IDLE: %q", l)
	}
	other := e.raw() // another account is not touched
	other.login("bob")

	if err := e.store.DeleteAccount("alice"); err != nil {
		t.Fatal(err)
	}
	for name, rc := range map[string]*rawClient{"authenticated": authed, "idle": idle, "selected": selected, "selected idle": selIdle} {
		if bye := rc.waitBye(name); !strings.Contains(bye, "account deleted") {
			t.Errorf("%s: %q", name, bye)
		}
	}
	other.ok("NOOP")

	// The name comes back as another account: a new identity, and the
	// old sessions (closed) cannot reach its messages.
	a2, err := e.store.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: testPass})
	if err != nil {
		t.Fatal(err)
	}
	if a2.ID == old.ID || a2.ID == 0 {
		t.Fatalf("re-created account has id %d, old %d", a2.ID, old.ID)
	}
	e.deposit("alice", "INBOX", testMessage("new", "for the new subscriber"))
	for name, rc := range map[string]*rawClient{"authenticated": authed, "selected": selected} {
		rc.conn.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(rc.conn, "x FETCH 1:* BODY[]\r\nx2 EXPUNGE\r\n")
		b, _ := io.ReadAll(rc.r)
		if strings.Contains(string(b), "new subscriber") || strings.Contains(string(b), "x2 OK") {
			t.Fatalf("%s: old session reached the new account: %q", name, b)
		}
	}
	fresh := e.raw()
	fresh.login("alice")
	if lines := fresh.ok("SELECT INBOX"); !strings.Contains(strings.Join(lines, "\n"), "* 1 EXISTS") {
		t.Fatalf("new account INBOX: %q", lines)
	}
}

// A command of a session whose account is gone gets BYE, not
// NO [SERVERBUG], even when it runs before the deletion reached the
// session (the hub's call comes after the commit).
func TestDeletedAccountCommandsGetBye(t *testing.T) {
	for _, cmd := range []string{"LIST \"\" \"*\"", "GETQUOTAROOT INBOX", "STATUS INBOX (MESSAGES)", "SELECT INBOX",
		"APPEND INBOX {3+}\r\nabc", "CREATE Foo", "GETMETADATA \"\" /private/comment", "NOOP"} {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			e := newTestEnv(t)
			if err := e.store.SetQuota("alice", vmstore.Quota{Bytes: 1 << 20}); err != nil {
				t.Fatal(err)
			}
			rc := e.raw()
			rc.login("alice")
			// The session misses the deletion's call, as one that runs
			// between the commit and the call would.
			c := findConn(t, e.srv, "alice")
			e.srv.mu.Lock()
			e.srv.unbindLocked(c)
			e.srv.mu.Unlock()
			if err := e.store.DeleteAccount("alice"); err != nil {
				t.Fatal(err)
			}
			rc.send("c1 " + cmd)
			if bye := rc.waitBye(cmd); !strings.Contains(bye, "account deleted") {
				t.Fatalf("%s: %q", cmd, bye)
			}
		})
	}
}

func findConn(t *testing.T, s *Server, user string) *conn {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.user == user {
			return c
		}
	}
	t.Fatalf("no session of %s", user)
	return nil
}
