package admin

import (
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// Wrong tokens from an address slow that address down; they never make the
// right token fail, from that address or any other, and trusted networks
// are not slowed at all. Over a real socket (RemoteAddr from the kernel).
func TestTokenGuessingDoesNotLockOutTheOperator(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const base = 100 * time.Millisecond
	lim := authlimit.New(authlimit.Config{FreeFailures: 3, BaseDelay: base, MaxDelay: 2 * base,
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}})
	srv := &Server{Store: st, Token: "right", Listen: "127.0.0.1:0", AuthLimiter: lim}
	if err := srv.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	do := func(local, tok string) (int, time.Duration) {
		t.Helper()
		c := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}).DialContext}}
		req, _ := http.NewRequest("GET", srv.URL()+"/api/v1/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		start := time.Now()
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, time.Since(start)
	}
	var slowest time.Duration
	for i := 0; i < 10; i++ {
		c, d := do("127.0.0.2", "wrong")
		if c != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, c)
		}
		slowest = max(slowest, d)
	}
	if slowest < 2*base {
		t.Fatalf("wrong tokens not slowed: slowest %v", slowest)
	}
	if c, _ := do("127.0.0.2", "right"); c != http.StatusOK {
		t.Fatalf("right token after 10 failures from the same address: %d, want 200", c)
	}
	if c, d := do("127.0.0.3", "right"); c != http.StatusOK || d > 2*base {
		t.Fatalf("right token from another address: %d after %v", c, d)
	}
	for i := 0; i < 10; i++ {
		if c, _ := do("127.0.0.9", "wrong"); c != http.StatusUnauthorized {
			t.Fatalf("trusted address: %d", c)
		}
	}
	if src, _, _ := lim.Failures(netip.MustParseAddr("127.0.0.9"), ""); src != 0 {
		t.Fatalf("trusted address counted: %d failures", src)
	}
}
