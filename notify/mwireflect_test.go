package notify

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// An untrusted subscriber cannot make the server send NOTIFYs to another
// address by naming it in Contact (or Record-Route): they go to the
// source address (RFC 3581).
func TestSIPNoNotifyReflection(t *testing.T) {
	s := openStore(t, "")
	mustAccount(t, s, "jill", vmstore.AccountOptions{Notify: map[string]string{"sip_ha1": SIPHA1("jill", "vm.test", "pw")}})
	m, _ := startMWI(t, s, false, func(m *MWIServer) { m.NotifyTimeout = 300 * time.Millisecond })
	victim, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	c := dialSIP(t, "udp", m.Addr())
	r := subReq{user: "jill", expires: 60, contact: "<sip:jill@" + victim.LocalAddr().String() + ">",
		extra: "Record-Route: <sip:" + victim.LocalAddr().String() + ";lr>\r\n"}
	nonce := c.challengeNonce(r, m.Addr())
	r.auth = digestHeader("jill", "vm.test", "pw", "SUBSCRIBE", "sip:jill@"+m.Addr(), nonce, "auth", 1)
	r.cseq = 2
	c.send(c.build(r, m.Addr()))
	var notify *sipMsg
	for notify == nil {
		msg := c.read(5 * time.Second)
		switch {
		case msg.status() == 200:
		case strings.HasPrefix(msg.start, "NOTIFY "):
			notify = msg
			c.answer(msg, 200)
		default:
			t.Fatalf("unexpected %q", msg.start)
		}
	}
	// The NOTIFY came to the source; nothing went to the victim.
	victim.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := victim.ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatalf("victim received %d bytes", n)
	}
}
