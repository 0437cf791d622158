package notify

import (
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// Subscriptions are bounded per account (403), per untrusted source (503
// with Retry-After) and in all; Expires is capped.
func TestMWISubscriptionLimits(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "kim", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("kim", "vm.test", "pw")}})
	mustAccount(t, s, "lou", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("lou", "vm.test", "pw")}})
	m, _ := startMWI(t, s, false, func(m *MWIServer) {
		m.NotifyTimeout = 300 * time.Millisecond
		m.MaxSubsPerAccount = 2
		m.MaxSubsPerSource = 3
		m.MaxExpires = time.Hour
	})
	c := siptest.Dial(t, "udp", m.Addr())
	nonces := map[string]string{}
	nc := 0
	sub := func(user string, expires int) *siptest.Msg {
		t.Helper()
		if nonces[user] == "" {
			nonces[user] = c.ChallengeNonce(siptest.Req{User: user, Expires: expires}, m.Addr())
		}
		nc++
		auth := siptest.Digest(user, "vm.test", "pw", "SUBSCRIBE", "sip:"+user+"@"+m.Addr(), nonces[user], "auth", nc)
		c.Send(c.Build(siptest.Req{User: user, Expires: expires, Auth: auth}, m.Addr()))
		return c.Response(5 * time.Second)
	}
	res := sub("kim", 100000)
	if res.Status() != 200 || res.Get("Expires") != "3600" {
		t.Fatalf("first: %q Expires %q", res.Start, res.Get("Expires"))
	}
	if st := sub("kim", 600).Status(); st != 200 {
		t.Fatalf("second: %d", st)
	}
	if st := sub("kim", 600).Status(); st != 403 {
		t.Fatalf("third for one account: %d, want 403", st)
	}
	if st := sub("lou", 600).Status(); st != 200 {
		t.Fatalf("other account: %d", st)
	}
	res = sub("lou", 600)
	if res.Status() != 503 || res.Get("Retry-After") == "" {
		t.Fatalf("fourth from one source: %q Retry-After %q", res.Start, res.Get("Retry-After"))
	}
	if n := m.Subscriptions(""); n != 3 {
		t.Fatalf("%d subscriptions", n)
	}
	// Another source still subscribes.
	c2 := siptest.DialFrom(t, "udp", "127.0.0.2", m.Addr())
	n2 := c2.ChallengeNonce(siptest.Req{User: "lou", Expires: 60}, m.Addr())
	c2.Send(c2.Build(siptest.Req{User: "lou", Expires: 60, Auth: siptest.Digest("lou", "vm.test", "pw", "SUBSCRIBE", "sip:lou@"+m.Addr(), n2, "auth", 1)}, m.Addr()))
	if st := c2.Response(5 * time.Second).Status(); st != 200 {
		t.Fatalf("second source: %d", st)
	}
}

// One account whose subscribers do not answer (every NOTIFY runs to its
// timeout) does not hold up another account's NOTIFY: fan-out is bounded
// per account, not shared.
func TestMWIFanOutDoesNotDelayOthers(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "busy", vmstore.AccountOptions{})
	mustAccount(t, s, "calm", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, func(m *MWIServer) {
		m.NotifyTimeout = time.Second
		m.FanOut = 2
		m.MaxSubsPerAccount = 20
	})
	hole, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	c := siptest.Dial(t, "udp", m.Addr())
	for i := 0; i < 20; i++ {
		c.Send(c.Build(siptest.Req{User: "busy", Expires: 600, Contact: "<sip:busy@" + hole.LocalAddr().String() + ">"}, m.Addr()))
		if st := c.Response(5 * time.Second).Status(); st != 200 {
			t.Fatalf("busy subscription %d: %d", i, st)
		}
	}
	calm := siptest.Dial(t, "udp", m.Addr())
	calm.Send(calm.Build(siptest.Req{User: "calm", Expires: 600}, m.Addr()))
	first := true
	for first {
		msg := calm.Read(5 * time.Second)
		if msg.Status() == 0 {
			calm.Answer(msg, 200) // the initial NOTIFY
			first = false
		}
	}
	deposit(t, s, "busy")
	start := time.Now()
	deposit(t, s, "calm")
	for {
		msg := calm.Read(5 * time.Second)
		if strings.HasPrefix(msg.Start, "NOTIFY ") {
			calm.Answer(msg, 200)
			if strings.Contains(msg.Body, "Voice-Message: 1/0") {
				break
			}
		}
	}
	if d := time.Since(start); d > 700*time.Millisecond {
		t.Fatalf("calm account's NOTIFY took %v while another account's fan-out was stuck", d)
	}
}
