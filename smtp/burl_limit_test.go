package smtp

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/vmstore"
)

// TestBURLRateLimit: BURL with a wrong URLAUTH token counts as a failed
// credential in the shared authentication limiter (RFC 4467 s10, RFC
// 4468 s8): past the free failures each is delayed, then the address is
// refused unchecked with 451 4.7.0 (even for a valid URL) until its
// delays run out. Python's smtplib drives it.
func TestBURLRateLimit(t *testing.T) {
	const d = time.Second
	var mu sync.Mutex
	var slept []time.Duration
	t0 := time.Now()
	lim := authlimit.New(authlimit.Config{FreeFailures: 1, BaseDelay: d, MaxDelay: d, MaxQueue: 1,
		Now: func() time.Time { return t0 },
		Sleep: func(_ context.Context, x time.Duration) error {
			mu.Lock()
			slept = append(slept, x)
			mu.Unlock()
			return nil
		}})
	var res *channel.Resolver
	e := newEnv(t, func(s *Submission) {
		res = channel.NewResolver(s.Store, "vm.example.net")
		s.Fetcher = Fetchers{Local: ResolverFetcher{R: res}}
		s.AuthLimiter = lim
	})
	msg := "From: alice@vm.example.net\r\nTo: bob@vm.example.net\r\nSubject: voice\r\n\r\nhello\r\n"
	dep, err := e.st.Deposit(vmstore.DepositReq{User: "alice", Mailbox: "INBOX", Body: strings.NewReader(msg)})
	if err != nil {
		t.Fatal(err)
	}
	mb, err := e.st.Mailbox("alice", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	good, err := res.AuthorizeMessage("alice", "INBOX", mb.UIDValidity, dep.Message.UID, "", channel.Access{Kind: channel.AccessSubmit, User: "alice"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	last := good[len(good)-1]
	wrong := good[:len(good)-1] + map[bool]string{true: "1", false: "0"}[last == '0']
	out := runPy(t, map[string]string{"ADDR": e.addr, "GOOD": good, "WRONG": wrong}, pyPrelude+`
for name in ["wrong1", "wrong2", "good3", "good4"]:
    s.docmd("RSET")
    s.docmd("MAIL FROM:<alice@vm.example.net>")
    s.docmd("RCPT TO:<bob@vm.example.net>")
    u = os.environ["WRONG" if name.startswith("wrong") else "GOOD"]
    print(name, s.docmd("BURL " + u + " LAST"))
s.quit()
`)
	for _, want := range []string{"wrong1 (554, b'5.6.6", "wrong2 (554, b'5.6.6", "good3 (250", "good4 (451, b'4.7.0 Too many failed URL authorizations"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	mu.Lock()
	if len(slept) != 2 || slept[0] != d || slept[1] != d {
		t.Errorf("delays %v, want the second failure's and the next attempt's, %v each", slept, d)
	}
	mu.Unlock()
	if src, pair, _ := lim.Failures(netip.MustParseAddr("127.0.0.1"), "alice"); src != 2 || pair != 2 {
		t.Errorf("limiter failures source %d pair %d, want 2 2", src, pair)
	}
	if got := mailboxMessages(t, e.st, "bob", "INBOX"); len(got) != 1 {
		t.Errorf("bob received %d messages, want 1", len(got))
	}
}
