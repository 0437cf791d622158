package notify

import (
	"github.com/lemonvox/lemonvox/sipep/siptest"
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
	c := siptest.Dial(t, "udp", m.Addr())
	r := siptest.Req{User: "jill", Expires: 60, Contact: "<sip:jill@" + victim.LocalAddr().String() + ">",
		Extra: "Record-Route: <sip:" + victim.LocalAddr().String() + ";lr>\r\n"}
	nonce := c.ChallengeNonce(r, m.Addr())
	r.Auth = siptest.Digest("jill", "vm.test", "pw", "SUBSCRIBE", "sip:jill@"+m.Addr(), nonce, "auth", 1)
	r.CSeq = 2
	c.Send(c.Build(r, m.Addr()))
	var notify *siptest.Msg
	for notify == nil {
		msg := c.Read(5 * time.Second)
		switch {
		case msg.Status() == 200:
		case strings.HasPrefix(msg.Start, "NOTIFY "):
			notify = msg
			c.Answer(msg, 200)
		default:
			t.Fatalf("unexpected %q", msg.Start)
		}
	}
	// The NOTIFY came to the source; nothing went to the victim.
	victim.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, _, err := victim.ReadFrom(make([]byte, 2048)); err == nil {
		t.Fatalf("victim received %d bytes", n)
	}
}
