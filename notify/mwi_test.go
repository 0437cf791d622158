package notify

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/vmstore"
)

func TestFormatAndParseSummary(t *testing.T) {
	m := &vmstore.MWI{Counts: map[vmstore.Context]vmstore.MWICount{
		vmstore.ContextVoice: {New: 2, Old: 8, UrgentNew: 1},
		vmstore.ContextFax:   {Old: 1},
		vmstore.ContextVideo: {New: 1}, vmstore.ContextMultimedia: {Old: 2},
	}}
	got := string(FormatSummary("sip:alice@vm.example.net", m))
	want := "Messages-Waiting: yes\r\nMessage-Account: sip:alice@vm.example.net\r\nVoice-Message: 2/8 (1/0)\r\nFax-Message: 0/1 (0/0)\r\nMultimedia-Message: 1/2 (0/0)\r\n"
	if got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if got := string(FormatSummary("", nil)); got != "Messages-Waiting: no\r\nVoice-Message: 0/0 (0/0)\r\n" {
		t.Fatalf("empty: %q", got)
	}
	// Bodies as Asterisk and the RFC examples write them.
	for _, c := range []struct {
		body string
		want Summary
	}{
		{"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vm.example.net\r\nVoice-Message: 2/8 (1/0)\r\nFax-Message: 0/1\r\n",
			Summary{true, "sip:alice@vm.example.net", map[string]vmstore.MWICount{"Voice-Message": {New: 2, Old: 8, UrgentNew: 1}, "Fax-Message": {Old: 1}}}},
		{"messages-waiting:no\nvoice-message: 0/0 (0/0)\n\nTo: x\nSubject: y\n",
			Summary{false, "", map[string]vmstore.MWICount{"Voice-Message": {}}}},
		{"Messages-Waiting: yes\r\nMessage-Account: sip:*97@pbx\r\nVoice-Message: 4 / 2 ( 1 / 0 )\r\n",
			Summary{true, "sip:*97@pbx", map[string]vmstore.MWICount{"Voice-Message": {New: 4, Old: 2, UrgentNew: 1}}}},
	} {
		s, err := ParseSummary([]byte(c.body))
		if err != nil {
			t.Fatalf("%q: %v", c.body, err)
		}
		if s.Waiting != c.want.Waiting || s.Account != c.want.Account || len(s.Counts) != len(c.want.Counts) {
			t.Fatalf("%q: %+v", c.body, s)
		}
		for k, v := range c.want.Counts {
			if s.Counts[k] != v {
				t.Fatalf("%q: %s = %+v", c.body, k, s.Counts[k])
			}
		}
	}
	for _, bad := range []string{"", "Voice-Message: 1/0\r\n", "Messages-Waiting: maybe\r\n", "Messages-Waiting: yes\r\nVoice-Message: 1\r\n"} {
		if _, err := ParseSummary([]byte(bad)); !errors.Is(err, ErrMWIFormat) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// Round trip.
	s, err := ParseSummary([]byte(want))
	if err != nil || s.Counts["Multimedia-Message"] != (vmstore.MWICount{New: 1, Old: 2}) {
		t.Fatal(s, err)
	}
}

// sippPath returns the sipp binary or skips (fails under CI=true).
func sippPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sipp (Debian package sip-tester) is required under CI")
		}
		t.Skip("SKIPPING: sipp not found; install Debian package sip-tester to run the SIP MWI interop tests")
	}
	return p
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// runSipp starts sipp with a scenario; the returned func waits for it.
func runSipp(t *testing.T, scenario string, port int, args ...string) func() error {
	t.Helper()
	bin := sippPath(t)
	dir := t.TempDir()
	sf := filepath.Join(dir, "scenario.xml")
	if err := os.WriteFile(sf, []byte(scenario), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	all := append([]string{"-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-m", "1",
		"-nostdin", "-timeout", "20s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(dir, "err.log")}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() error {
		defer cancel()
		err := cmd.Wait()
		if err != nil {
			el, _ := os.ReadFile(filepath.Join(dir, "err.log"))
			tail := out.String()
			if len(tail) > 3000 {
				tail = tail[len(tail)-3000:]
			}
			return errors.New(err.Error() + "\n" + string(el) + "\n" + tail)
		}
		return nil
	}
}

func scenario(t *testing.T, name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", "sipp", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func startMWI(t *testing.T, s *vmstore.Store, trusted bool, tweak func(*MWIServer)) (*MWIServer, *Dispatcher) {
	t.Helper()
	ep := &sipep.Endpoint{Listen: "127.0.0.1:0", Logger: testLogger(t), Realm: "vm.test"}
	m := &MWIServer{Store: s, Endpoint: ep, Logger: testLogger(t), MinExpires: time.Second,
		Coalesce: 100 * time.Millisecond, NotifyTimeout: 3 * time.Second}
	if trusted {
		ep.TrustedNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	}
	if tweak != nil {
		tweak(m)
	}
	if err := m.Initialize(); err != nil {
		t.Fatal(err)
	}
	if err := ep.Start(); err != nil {
		m.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(); ep.Close() })
	d := startDispatcher(t, s, t.TempDir(), m)
	return m, d
}

func markSeen(t *testing.T, s *vmstore.Store, user string, res *vmstore.DepositRes) {
	t.Helper()
	if _, err := s.StoreFlags(vmstore.StoreReq{User: user, MailboxID: res.Mailbox.ID, UIDs: []uint32{res.Message.UID},
		Op: vmstore.FlagsAdd, Flags: []string{vmstore.FlagSeen}}); err != nil {
		t.Fatal(err)
	}
}

func TestMWISippSubscribe(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "alice", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, nil)
	wait := runSipp(t, scenario(t, "subscribe.xml"), freeUDPPort(t), "-s", "alice", m.Addr())
	done := make(chan error, 1)
	go func() { done <- wait() }()
	waitAck := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for m.ackedNotifies("alice") < n {
			select {
			case err := <-done:
				t.Fatalf("sipp ended early: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for NOTIFY %d", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAck(1)
	res := deposit(t, s, "alice")
	waitAck(2)
	markSeen(t, s, "alice", res)
	if err := <-done; err != nil {
		t.Fatalf("sipp: %v", err)
	}
	waitFor(t, 5*time.Second, "subscription removed", func() bool { return m.Subscriptions("") == 0 })
}

func TestMWISippExpiry(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "bob", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, nil)
	if err := runSipp(t, scenario(t, "expiry.xml"), freeUDPPort(t), "-s", "bob", m.Addr())(); err != nil {
		t.Fatalf("sipp: %v", err)
	}
	if n := m.Subscriptions(""); n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

func TestMWISippUnsolicited(t *testing.T) {
	sippPath(t)
	port := freeUDPPort(t)
	s := openStore(t, "")
	mustAccount(t, s, "carol", vmstore.AccountOptions{MWITargets: []vmstore.MWITarget{
		{URI: "sip:carol@127.0.0.1:" + strconv.Itoa(port), Transport: "udp"}}})
	startMWI(t, s, false, nil)
	tmpl := scenario(t, "unsolicited.xml")
	expect := func(waiting, counts string) string {
		return strings.Replace(tmpl, "EXPECT_BODY", "Messages-Waiting: "+waiting+
			"[[:space:]]+Message-Account: sip:carol@127.0.0.1[[:space:]]+Voice-Message: "+counts, -1)
	}
	wait := runSipp(t, expect("yes", `1/0 \(0/0\)`), port)
	time.Sleep(200 * time.Millisecond) // let sipp bind; NOTIFY retransmissions cover the rest
	res := deposit(t, s, "carol")
	if err := wait(); err != nil {
		t.Fatalf("sipp (after deposit): %v", err)
	}
	wait = runSipp(t, expect("no", `0/1 \(0/0\)`), port)
	time.Sleep(200 * time.Millisecond)
	markSeen(t, s, "carol", res)
	if err := wait(); err != nil {
		t.Fatalf("sipp (after read): %v", err)
	}
}

// sipClient is a sipgo UA for the error-path tests.
func sipClient(t *testing.T) *sipgo.Client {
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func subscribeReq(t *testing.T, addr, user, event string, expires int) *sip.Request {
	var uri sip.Uri
	if err := sip.ParseUri("sip:"+user+"@"+addr, &uri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.SUBSCRIBE, uri)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: 1}})
	req.AppendHeader(sip.NewHeader("Event", event))
	exp := sip.ExpiresHeader(uint32(expires))
	req.AppendHeader(&exp)
	return req
}

func TestMWISubscribeErrorsAndDigest(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "dave", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("dave", "vm.test", "s3cret")}})
	mustAccount(t, s, "erin", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, false, func(m *MWIServer) { m.NotifyTimeout = 300 * time.Millisecond })
	c := sipClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	do := func(req *sip.Request) *sip.Response {
		t.Helper()
		res, err := c.Do(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// Wrong event package -> 489 + Allow-Events.
	res := do(subscribeReq(t, m.Addr(), "dave", "presence", 60))
	if res.StatusCode != 489 || res.GetHeader("Allow-Events") == nil || res.GetHeader("Allow-Events").Value() != "message-summary" {
		t.Fatalf("489: %v", res)
	}
	// Unknown account -> 404 (it is checked before authentication).
	if res := do(subscribeReq(t, m.Addr(), "nobody", "message-summary", 60)); res.StatusCode != 404 {
		t.Fatalf("404: %v", res.StatusCode)
	}
	// No credentials -> 401 challenge.
	req := subscribeReq(t, m.Addr(), "dave", "message-summary", 60)
	res = do(req)
	if res.StatusCode != 401 || res.GetHeader("WWW-Authenticate") == nil {
		t.Fatalf("401: %v", res)
	}
	// Wrong password -> 403.
	bad, err := c.DoDigestAuth(ctx, req.Clone(), res, sipgo.DigestAuth{Username: "dave", Password: "wrong"})
	if err != nil || bad.StatusCode != 403 {
		t.Fatalf("wrong password: %v %v", bad, err)
	}
	// Another account's credentials -> 403.
	req2 := subscribeReq(t, m.Addr(), "erin", "message-summary", 60)
	res2 := do(req2)
	if res2.StatusCode != 401 {
		t.Fatalf("erin 401: %v", res2.StatusCode)
	}
	if r, err := c.DoDigestAuth(ctx, req2, res2, sipgo.DigestAuth{Username: "dave", Password: "s3cret"}); err != nil || r.StatusCode != 403 {
		t.Fatalf("foreign mailbox: %v %v", r, err)
	}
	// Right password -> 200 with To tag and Expires.
	req3 := subscribeReq(t, m.Addr(), "dave", "message-summary", 60)
	res3 := do(req3)
	ok, err := c.DoDigestAuth(ctx, req3, res3, sipgo.DigestAuth{Username: "dave", Password: "s3cret"})
	if err != nil || ok.StatusCode != 200 {
		t.Fatalf("digest: %v %v", ok, err)
	}
	if tag, _ := ok.To().Params.Get("tag"); tag == "" || ok.GetHeader("Expires").Value() != "60" {
		t.Fatalf("200: %v", ok)
	}
	waitFor(t, 2*time.Second, "subscription", func() bool { return m.Subscriptions("dave") == 1 })
	// Unknown dialog -> 481.
	req4 := subscribeReq(t, m.Addr(), "dave", "message-summary", 60)
	to := &sip.ToHeader{Address: req4.Recipient, Params: sip.NewParams()}
	to.Params.Add("tag", "nope")
	req4.AppendHeader(to)
	if r := do(req4); r.StatusCode != 481 {
		t.Fatalf("481: %v", r.StatusCode)
	}
	// Accept without our type -> 406.
	req5 := subscribeReq(t, m.Addr(), "dave", "message-summary", 60)
	req5.AppendHeader(sip.NewHeader("Accept", "application/pidf+xml"))
	if r := do(req5); r.StatusCode != 406 {
		t.Fatalf("406: %v", r.StatusCode)
	}
}

func TestMWIMinExpires(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "fay", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, func(m *MWIServer) { m.MinExpires = 60 * time.Second })
	c := sipClient(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, subscribeReq(t, m.Addr(), "fay", "message-summary", 10))
	if err != nil || res.StatusCode != 423 || res.GetHeader("Min-Expires").Value() != "60" {
		t.Fatalf("423: %v %v", res, err)
	}
}

func TestMWISippDigest(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "gina", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("gina", "vm.test", "pa55word")}})
	m, _ := startMWI(t, s, false, func(m *MWIServer) { m.NotifyTimeout = 300 * time.Millisecond })
	// sipp's digest uri is remote_ip:remote_port unless told; the server
	// requires the Request-URI (RFC 2617 s3.2.2.5).
	authURI := "gina@" + m.Addr()
	if err := runSipp(t, scenario(t, "digest.xml"), freeUDPPort(t), "-s", "gina", "-au", "gina", "-ap", "pa55word", "-auth_uri", authURI, m.Addr())(); err != nil {
		t.Fatalf("sipp: %v", err)
	}
	if m.Subscriptions("gina") != 1 {
		t.Fatal("no subscription")
	}
	// Wrong password: 403 after the challenge.
	bad := strings.Replace(scenario(t, "digest.xml"), `<recv response="200"/>`, `<recv response="403"/>`, 1)
	bad = bad[:strings.Index(bad, `<recv request="NOTIFY">`)] + "</scenario>\n"
	if err := runSipp(t, bad, freeUDPPort(t), "-s", "gina", "-au", "gina", "-ap", "wrong", "-auth_uri", authURI, m.Addr())(); err != nil {
		t.Fatalf("sipp (wrong password): %v", err)
	}
}
