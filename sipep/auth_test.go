package sipep

import (
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
)

// Digest hardening over UDP with raw messages: a captured Authorization is
// not accepted again, the digest uri must be the Request-URI, RFC 2069
// (no qop) is refused, an expired nonce gets stale=true.
func TestSIPDigestReplayURIAndQop(t *testing.T) {
	m, svc := startEP(t, false, func(e *Endpoint) { e.NonceLifetime = 2 * time.Second })
	svc.setUser("hank", "pw")
	c := siptest.Dial(t, "udp", m.Addr())
	ruri := "sip:hank@" + m.Addr()
	sub := func(auth string) int {
		t.Helper()
		c.Send(c.Build(siptest.Req{User: "hank", Expires: 60, Auth: auth}, m.Addr()))
		return c.Response(5 * time.Second).Status()
	}

	nonce := c.ChallengeNonce(siptest.Req{User: "hank", Expires: 60}, m.Addr())
	good := siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", ruri, nonce, "auth", 1)
	if st := sub(good); st != 200 {
		t.Fatalf("valid credentials: %d", st)
	}
	// The same header again, in a new SUBSCRIBE: a replay.
	if st := sub(good); st != 401 {
		t.Fatalf("replayed Authorization: %d, want 401", st)
	}
	// The next nonce count with the same nonce is fine.
	if st := sub(siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", ruri, nonce, "auth", 2)); st != 200 {
		t.Fatalf("nc=2: %d", st)
	}
	// A lower count is a replay too.
	if st := sub(siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", ruri, nonce, "auth", 2)); st != 401 {
		t.Fatalf("nc=2 again: %d", st)
	}
	// uri other than the Request-URI.
	if st := sub(siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", "sip:other@example.net", nonce, "auth", 3)); st != 400 {
		t.Fatalf("digest uri mismatch: %d, want 400", st)
	}
	// RFC 2069: no qop, no nc.
	if st := sub(siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", ruri, nonce, "", 0)); st != 403 {
		t.Fatalf("RFC 2069 response: %d, want 403", st)
	}
	// A nonce we never issued.
	if st := sub(siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", ruri, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "auth", 1)); st != 401 {
		t.Fatalf("forged nonce: %d, want 401", st)
	}
	// An expired nonce: 401 with stale=true.
	nonce2 := c.ChallengeNonce(siptest.Req{User: "hank", Expires: 60}, m.Addr())
	time.Sleep(2100 * time.Millisecond) // past NonceLifetime
	c.Send(c.Build(siptest.Req{User: "hank", Expires: 60, Auth: siptest.Digest("hank", "vm.test", "pw", "SUBSCRIBE", ruri, nonce2, "auth", 1)}, m.Addr()))
	res := c.Response(5 * time.Second)
	if res.Status() != 401 || !strings.Contains(res.Get("WWW-Authenticate"), "stale=true") {
		t.Fatalf("expired nonce: %q %q", res.Start, res.Get("WWW-Authenticate"))
	}
}

func TestNonceTableBounded(t *testing.T) {
	tb := newNonceTable([]byte("k"), time.Minute, 10)
	now := time.Now()
	first := tb.issue(now)
	for i := 0; i < 100; i++ {
		tb.issue(now)
	}
	if len(tb.nc) > 10 {
		t.Fatalf("%d nonces tracked, cap 10", len(tb.nc))
	}
	if tb.check(first, now) != nonceStale {
		t.Fatal("evicted nonce not stale")
	}
	if tb.check(first[:len(first)-2]+"AA", now) != nonceForged {
		t.Fatal("tampered nonce accepted")
	}
}

// Wrong digest responses slow their source down (in parallel, beyond the
// queue: 503 with Retry-After) and never keep the user, from its
// own address, out.
func TestSIPDigestGuessingThrottledNotLockedOut(t *testing.T) {
	m, svc := startEP(t, false, func(e *Endpoint) {
		e.AuthLimiter = authlimit.New(authlimit.Config{FreeFailures: 1, BaseDelay: 3 * time.Second, MaxDelay: 3 * time.Second, MaxQueue: 1})
	})
	svc.setUser("omar", "pw")
	ruri := "sip:omar@" + m.Addr()
	att := siptest.DialFrom(t, "udp", "127.0.0.2", m.Addr())
	nonce := att.ChallengeNonce(siptest.Req{User: "omar", Expires: 60}, m.Addr())
	// Two wrong guesses one after the other put the source over its free
	// failure: the second is answered late.
	nc := 0
	guess := func() {
		nc++
		att.Send(att.Build(siptest.Req{User: "omar", Expires: 60, Auth: siptest.Digest("omar", "vm.test", "guess", "SUBSCRIBE", ruri, nonce, "auth", nc)}, m.Addr()))
	}
	for i := 0; i < 2; i++ {
		start := time.Now()
		guess()
		if st := att.Response(10 * time.Second).Status(); st != 403 {
			t.Fatalf("guess %d: %d", i, st)
		}
		if d := time.Since(start); i == 1 && d < time.Second {
			t.Fatalf("second failure answered after %v, not slowed", d)
		}
	}
	// Then four at once: one queues, the others are told to retry later.
	for i := 0; i < 4; i++ {
		guess()
	}
	codes := map[int]int{}
	for i := 0; i < 4; i++ {
		res := att.Response(10 * time.Second)
		codes[res.Status()]++
		if res.Status() == 503 && res.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
	}
	if codes[503] == 0 || codes[403] == 0 {
		t.Fatalf("parallel guesses answered %v, want some 403 and some 503", codes)
	}
	// The subscriber, from another address, is served at once.
	phone := siptest.Dial(t, "udp", m.Addr())
	n2 := phone.ChallengeNonce(siptest.Req{User: "omar", Expires: 60}, m.Addr())
	start := time.Now()
	phone.Send(phone.Build(siptest.Req{User: "omar", Expires: 60, Auth: siptest.Digest("omar", "vm.test", "pw", "SUBSCRIBE", ruri, n2, "auth", 1)}, m.Addr()))
	if st := phone.Response(5 * time.Second).Status(); st != 200 {
		t.Fatalf("subscriber: %d", st)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("subscriber delayed %v by guessing from elsewhere", d)
	}
}
