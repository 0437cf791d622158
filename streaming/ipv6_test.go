package streaming

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
)

// needIPv6 skips (loudly; fails in CI) when the machine has no ::1.
func needIPv6(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("IPv6 loopback ::1 is required in CI: %v", err)
		}
		t.Skipf("SKIPPING: no IPv6 loopback (::1) on this machine (%v); IPv6 playback not tested", err)
	}
	l.Close()
}

// offer6 is an RTP/AVP PCMU offer for [::1]:port.
func offer6(port int) string {
	return fmt.Sprintf("v=0\r\no=uac 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n", port)
}

// TestSIPCallIPv6: the media server on [::1] answers an IPv6 offer with an
// IN IP6 ::1 c= line, streams the message to the caller's [::1] socket
// (the audio matches) and sends BYE at the end to the caller's address.
func TestSIPCallIPv6(t *testing.T) {
	needIPv6(t)
	ms := startMediaServerOn(t, "[::1]:0", time.Second, nil)
	rx := newReceiverOn(t, net.IPv6loopback)
	u := newUAC(t, "::1", ms.ep.Addr())
	d := u.newDialog("sip:annc@" + ms.ep.Addr() + ";play=" + ms.playURL(t, 0))
	u.Send(u.request(d, "INVITE", 1, offer6(rx.port()), false))
	ok := u.until("SIP/2.0 200")
	d.toTag = ok.ToTag()
	if !strings.Contains(ok.Body, "c=IN IP6 ::1\r\n") || !strings.Contains(ok.Body, " IN IP6 ::1\r\n") {
		t.Fatalf("answer:\n%s", ok.Body)
	}
	if !strings.Contains(ok.Get("Contact"), "[::1]:") {
		t.Fatalf("Contact %q", ok.Get("Contact"))
	}
	u.Send(u.request(d, "ACK", 1, "", false))
	bye := u.until("BYE ")
	if !strings.HasPrefix(bye.Start, "BYE sip:") || !strings.Contains(bye.Start, "[::1]:") {
		t.Fatalf("BYE %q", bye.Start)
	}
	u.answerTo(bye, 200)
	waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
	rx.settle()
	pcm := plainAudio(t, rx.packets())
	want := decodePCM(t, ms.wav)
	if c := correlation(pcm, want); c < 0.95 || len(pcm) < len(want)-160 {
		t.Fatalf("IPv6 audio: %d of %d samples, correlation %.3f", len(pcm), len(want), c)
	}
}

// TestSIPSippIPv6: sipp places the SRTP call on [::1] (UDP).
func TestSIPSippIPv6(t *testing.T) {
	needIPv6(t)
	sippBin(t)
	ms := startMediaServerOn(t, "[::1]:0", time.Second, nil)
	rx := newReceiverOn(t, net.IPv6loopback)
	key, _ := NewSDESKey(1, SuiteAES80)
	inline := strings.TrimPrefix(key.Attribute(), "1 "+SuiteAES80+" inline:")
	sc := strings.NewReplacer("IN IP4 127.0.0.1", "IN IP6 ::1").Replace(scenarioFile(t, "call.xml"))
	if _, err := runSippOn(t, ms, "::1", sc, "-t", "u1", "-key", "play", ms.playURL(t, 0),
		"-key", "rtpport", fmt.Sprint(rx.port()), "-key", "offerkey", inline); err != nil {
		t.Fatalf("sipp on [::1]: %v", err)
	}
	waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
	if n := len(rx.packets()); n == 0 {
		t.Fatal("no media on [::1]")
	}
}

// TestRTSPIPv6: RTSP on [::1]: DESCRIBE answers an IN IP6 SDP, SETUP
// with UDP client ports on [::1] and PLAY stream to them; SETUP without
// DESCRIBE too; ffmpeg records over rtsp://[::1] (UDP) and the audio
// matches.
func TestRTSPIPv6(t *testing.T) {
	needIPv6(t)
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	go env.srv.Serve(l, false)
	addr := l.Addr().String()
	c := dialRTSP(t, addr, false)
	base := "rtsp://" + addr + "/"
	tok := env.grant(t, channel.Grant{})
	code, h, body := c.do("DESCRIBE", base+tok, "Accept: application/sdp")
	if code != 200 || !strings.Contains(body, "IN IP6 ::1") || h["content-base"] == "" || !strings.HasPrefix(h["content-base"], base+tok+"/d/") {
		t.Fatalf("DESCRIBE %d %v\n%s", code, h, body)
	}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	port := u.LocalAddr().(*net.UDPAddr).Port
	code, h, _ = c.do("SETUP", h["content-base"]+"track1", fmt.Sprintf("Transport: RTP/AVP;unicast;client_port=%d-%d", port, port+1))
	if code != 200 || !strings.Contains(h["transport"], "server_port=") {
		t.Fatalf("SETUP %d %v", code, h)
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	if code, _, _ := c.do("PLAY", base+tok, "Session: "+sess); code != 200 {
		t.Fatalf("PLAY %s", c.last)
	}
	buf := make([]byte, 2048)
	u.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, from, err := u.ReadFromUDP(buf)
	if err != nil || n < 12 || !from.IP.Equal(net.IPv6loopback) {
		t.Fatalf("RTP over [::1]: %d bytes from %v, %v", n, from, err)
	}
	c.do("TEARDOWN", base+tok, "Session: "+sess)
	c.do("SETUP", base+env.grant(t, channel.Grant{}), "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	c.expectLine("SETUP without DESCRIBE on [::1]", "RTSP/1.0 200 OK")

	got, _ := record(t, base+env.grant(t, channel.Grant{}), "-rtsp_transport", "udp")
	checkAudio(t, "rtsp over [::1]", got, decodePCM(t, env.wav))
}
