package sipep

import (
	"github.com/lemonvox/lemonvox/sipep/siptest"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func testLogger() *slog.Logger {
	if os.Getenv("SIPEP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testService is a service on the endpoint: it serves SUBSCRIBE for the
// users it knows (digest-authenticated unless the source is trusted) with
// 200 and nothing more, so that the endpoint's own behaviour shows.
type testService struct {
	mu    sync.Mutex
	users map[string]string // user -> HA1
	ok    int
}

func (s *testService) setUser(user, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[user] = HA1(user, "vm.test", secret)
}

func startEP(t *testing.T, trusted bool, tweak func(*Endpoint)) (*Endpoint, *testService) {
	t.Helper()
	e := &Endpoint{Listen: "127.0.0.1:0", Logger: testLogger(), Realm: "vm.test"}
	if trusted {
		e.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if tweak != nil {
		tweak(e)
	}
	svc := &testService{users: map[string]string{}}
	e.Handle(sip.SUBSCRIBE, func(req *sip.Request, tx sip.ServerTransaction) {
		user := req.Recipient.User
		svc.mu.Lock()
		ha1, known := svc.users[user]
		svc.mu.Unlock()
		if !known && !e.Trusted(req.Source()) {
			e.Respond(req, tx, 404, "Not Found")
			return
		}
		if !e.Authenticate(req, tx, user, ha1) {
			return
		}
		svc.mu.Lock()
		svc.ok++
		svc.mu.Unlock()
		e.Respond(req, tx, 200, "OK")
	})
	e.AllowEvents("message-summary")
	if err := e.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, svc
}

func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// OPTIONS is answered by the endpoint with the methods services
// registered and their event packages; a method nobody serves gets 405.
func TestEndpointOptionsAndUnserved(t *testing.T) {
	e, _ := startEP(t, true, nil)
	for _, network := range []string{"udp", "tcp"} {
		c := siptest.Dial(t, network, e.Addr())
		c.Send(c.Build(siptest.Req{User: "x", Method: "OPTIONS"}, e.Addr()))
		res := c.Response(5 * time.Second)
		if res.Status() != 200 || res.Get("Allow") != "OPTIONS, SUBSCRIBE" || res.Get("Allow-Events") != "message-summary" {
			t.Fatalf("%s OPTIONS: %q Allow %q Allow-Events %q", network, res.Start, res.Get("Allow"), res.Get("Allow-Events"))
		}
		c.Send(c.Build(siptest.Req{User: "x", Method: "INVITE"}, e.Addr()))
		if res := c.Response(5 * time.Second); res.Status() != 405 || res.Get("Allow") != "OPTIONS, SUBSCRIBE" {
			t.Fatalf("%s INVITE: %q Allow %q", network, res.Start, res.Get("Allow"))
		}
	}
}
