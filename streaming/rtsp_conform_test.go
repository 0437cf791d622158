package streaming

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
)

// The RTSP edge cases a conformance probe tries, each answered with an
// exact status line over a real connection.

// expectLine fails unless the last response's status line is want.
func (r *rtspClient) expectLine(what, want string) {
	r.t.Helper()
	if r.last != want {
		r.t.Fatalf("%s: status line %q, want %q", what, r.last, want)
	}
}

// frame reads the next interleaved frame.
func (r *rtspClient) frame() *Frame {
	r.t.Helper()
	b, err := r.br.Peek(1)
	if err != nil {
		r.t.Fatal(err)
	}
	if b[0] != '$' {
		r.t.Fatalf("expected an interleaved frame, got %q", b)
	}
	f, err := readFrame(r.br)
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// sdpPT is the payload type of an SDP's first m= line.
func sdpPT(t *testing.T, body string) byte {
	t.Helper()
	for l := range strings.SplitSeq(body, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "m=audio "); ok {
			f := strings.Fields(rest)
			var pt int
			fmt.Sscanf(f[2], "%d", &pt)
			return byte(pt)
		}
	}
	t.Fatalf("no m=audio in\n%s", body)
	return 0
}

// TestRTSPSetupWithoutDescribe: SETUP straight on the grant URL (RFC
// 2326 s10.4 allows it) plays plain RTP where plain RTP is allowed,
// interleaved and over UDP; RTSPS without plain RTP refuses it with 461
// saying DESCRIBE first, and the refused SETUP does not use the grant.
func TestRTSPSetupWithoutDescribe(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	plain := "rtsp://" + env.plainAddr + "/"
	c := dialRTSP(t, env.plainAddr, false)
	_, _, sdp := c.do("DESCRIBE", plain+env.grant(t, channel.Grant{}), "Accept: application/sdp")
	pt := sdpPT(t, sdp)

	// Interleaved.
	tok := env.grant(t, channel.Grant{})
	code, h, _ := c.do("SETUP", plain+tok+"/track1", "Transport: RTP/AVP/TCP;unicast;interleaved=4-5")
	c.expectLine("SETUP without DESCRIBE", "RTSP/1.0 200 OK")
	if code != 200 || !strings.HasPrefix(h["transport"], "RTP/AVP/TCP;unicast;interleaved=4-5;ssrc=") {
		t.Fatalf("SETUP %v", h)
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	code, h, _ = c.do("PLAY", plain+tok, "Session: "+sess, "Range: npt=0.000-")
	if code != 200 || !strings.Contains(h["rtp-info"], "url="+plain+tok+"/track1;seq=") || h["range"] != "npt=0.000-2.000" {
		t.Fatalf("PLAY %d %v", code, h)
	}
	for n := 0; n < 5; {
		f := c.frame()
		if f.Channel == 5 {
			continue // RTCP sender report
		}
		n++
		if f.Channel != 4 || len(f.Data) < 12 || f.Data[0]>>6 != 2 || f.Data[1]&0x7f != pt {
			t.Fatalf("frame on channel %d, %d bytes, PT %d (want channel 4, plain RTP PT %d)", f.Channel, len(f.Data), f.Data[1]&0x7f, pt)
		}
	}
	if code, _, _ := c.do("TEARDOWN", plain+tok, "Session: "+sess); code != 200 {
		t.Fatalf("TEARDOWN %d", code)
	}

	// UDP.
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	port := u.LocalAddr().(*net.UDPAddr).Port
	tok = env.grant(t, channel.Grant{})
	code, h, _ = c.do("SETUP", plain+tok, fmt.Sprintf("Transport: RTP/AVP;unicast;client_port=%d-%d", port, port+1))
	if code != 200 || !strings.Contains(h["transport"], ";server_port=") {
		t.Fatalf("UDP SETUP %d %v", code, h)
	}
	sess, _, _ = strings.Cut(h["session"], ";")
	if code, _, _ := c.do("PLAY", plain+tok, "Session: "+sess); code != 200 {
		t.Fatalf("UDP PLAY %d", code)
	}
	buf := make([]byte, 2048)
	u.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := u.Read(buf)
	if err != nil || n < 12 || buf[1]&0x7f != pt {
		t.Fatalf("UDP RTP: %d bytes, %v", n, err)
	}
	c.do("TEARDOWN", plain+tok, "Session: "+sess)

	// RTSPS: the key would only be in DESCRIBE.
	s := dialRTSP(t, env.tlsAddr, true)
	secure := "rtsps://" + env.tlsAddr + "/"
	tok = env.grant(t, channel.Grant{})
	s.do("SETUP", secure+tok+"/track1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	s.expectLine("RTSPS SETUP without DESCRIBE", "RTSP/1.0 461 "+reasonDescribeFirst)
	// The grant (one use) is still good: DESCRIBE, SETUP.
	_, h, _ = s.do("DESCRIBE", secure+tok, "Accept: application/sdp")
	s.do("SETUP", h["content-base"]+"track1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	s.expectLine("SETUP after the refused one", "RTSP/1.0 200 OK")
	// A bad grant is refused as in DESCRIBE.
	c.do("SETUP", plain+"nosuchgrant/track1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	c.expectLine("SETUP of a bad grant", "RTSP/1.0 403 Forbidden")
}

// TestRTSPSetupWithoutDescribePlainAllowed: with allow_plain_rtp an RTSPS
// client may SETUP first with RTP/AVP; RTP/SAVP alone still gets 461.
func TestRTSPSetupWithoutDescribePlainAllowed(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{AllowPlainRTP: true}, time.Second)
	s := dialRTSP(t, env.tlsAddr, true)
	secure := "rtsps://" + env.tlsAddr + "/"
	s.do("SETUP", secure+env.grant(t, channel.Grant{}), "Transport: RTP/SAVP/TCP;unicast;interleaved=0-1")
	s.expectLine("SAVP without DESCRIBE", "RTSP/1.0 461 "+reasonDescribeFirst)
	code, h, _ := s.do("SETUP", secure+env.grant(t, channel.Grant{}), "Transport: RTP/SAVP/TCP;interleaved=0-1, RTP/AVP/TCP;unicast;interleaved=0-1")
	if code != 200 || !strings.HasPrefix(h["transport"], "RTP/AVP/TCP;unicast;interleaved=0-1") {
		t.Fatalf("AVP after SAVP: %s %v", s.last, h)
	}
}

// TestRTSPStatusLines: methods in the wrong state (455 with Allow),
// unknown methods (501 with Public), CSeq missing or malformed (400),
// sessions unknown or of another URL (454), Require (551 with
// Unsupported), Range formats (npt now, ranges, clock and smpte).
func TestRTSPStatusLines(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	c := dialRTSP(t, env.plainAddr, false)
	base := "rtsp://" + env.plainAddr + "/"
	tok, other := env.grant(t, channel.Grant{MaxUses: 3}), env.grant(t, channel.Grant{})

	for _, m := range []string{"PLAY", "PAUSE"} {
		_, h, _ := c.do(m, base+tok)
		c.expectLine(m+" in Init", "RTSP/1.0 455 Method Not Valid in This State")
		if h["allow"] != allowInit {
			t.Fatalf("%s in Init: Allow %q", m, h["allow"])
		}
	}
	_, h, _ := c.do("FOOBAR", base+tok)
	c.expectLine("unknown method", "RTSP/1.0 501 Not Implemented")
	if h["public"] != publicMethods {
		t.Fatalf("501 Public %q", h["public"])
	}
	_, h, _ = c.do("RECORD", base+tok)
	c.expectLine("RECORD", "RTSP/1.0 405 Method Not Allowed")
	if h["allow"] != publicMethods {
		t.Fatalf("405 Allow %q", h["allow"])
	}
	_, h, _ = c.do("OPTIONS", "*", "Require: play.scale,  com.example.x")
	c.expectLine("Require", "RTSP/1.0 551 Option not supported")
	if h["unsupported"] != "play.scale, com.example.x" {
		t.Fatalf("Unsupported %q", h["unsupported"])
	}
	c.do("TEARDOWN", base+tok)
	c.expectLine("TEARDOWN in Init", "RTSP/1.0 200 OK")
	for _, m := range []string{"PLAY", "PAUSE", "GET_PARAMETER", "SET_PARAMETER", "TEARDOWN", "OPTIONS"} {
		c.do(m, base+tok, "Session: 0123456789ABCDEF")
		c.expectLine(m+" of an unknown session", "RTSP/1.0 454 Session Not Found")
	}

	_, h, _ = c.do("SETUP", base+tok, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	sess, _, _ := strings.Cut(h["session"], ";")
	_, h, _ = c.do("SETUP", base+tok, "Session: "+sess, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3")
	c.expectLine("second SETUP in a session", "RTSP/1.0 455 Method Not Valid in This State")
	if h["allow"] != allowSession {
		t.Fatalf("SETUP in Ready: Allow %q", h["allow"])
	}
	c.do("PLAY", base+other, "Session: "+sess)
	c.expectLine("PLAY of another grant's URL", "RTSP/1.0 454 Session Not Found (not a session of this URL)")
	c.do("PAUSE", base+tok, "Session: "+sess)
	c.expectLine("PAUSE in Ready", "RTSP/1.0 200 OK")
	c.do("SET_PARAMETER", base+tok, "Session: "+sess)
	c.expectLine("empty SET_PARAMETER", "RTSP/1.0 200 OK")
	c.do("SET_PARAMETER", base+tok, "Session: "+sess, "Content-Type: text/parameters", "Content-Length: 9", "\r\nvolume: 1")
	c.expectLine("SET_PARAMETER", "RTSP/1.0 451 Parameter Not Understood")
	if _, h, _ = c.do("OPTIONS", base+tok, "Session: "+sess); h["session"] != sess {
		t.Fatalf("OPTIONS keep-alive: %s %v", c.last, h)
	}

	for _, tc := range []struct{ rng, line, rangeReply string }{
		{"clock=19961108T142300Z-", "RTSP/1.0 501 Not Implemented", ""},
		{"smpte=0:10:00-", "RTSP/1.0 501 Not Implemented", ""},
		{"smpte-25=0:10:00-", "RTSP/1.0 501 Not Implemented", ""},
		{"npt=abc-", "RTSP/1.0 400 Bad Request", ""},
		{"npt=1", "RTSP/1.0 400 Bad Request", ""},
		{"npt=-", "RTSP/1.0 400 Bad Request", ""},
		{"npt=1.5-0.5", "RTSP/1.0 457 Invalid Range", ""},
		{"npt=2-", "RTSP/1.0 457 Invalid Range", ""},
		{"npt=0:00:03-", "RTSP/1.0 457 Invalid Range", ""},
		{"npt=0.5-1.5", "RTSP/1.0 200 OK", "npt=0.500-2.000"},
		{"npt=now-", "RTSP/1.0 200 OK", "npt=0.500-2.000"},
		{"npt=0:00:01.25-", "RTSP/1.0 200 OK", "npt=1.240-2.000"},
		{"npt=-1.8", "RTSP/1.0 200 OK", ""},
	} {
		_, h, _ := c.do("PLAY", base+tok, "Session: "+sess, "Range: "+tc.rng)
		c.expectLine("Range "+tc.rng, tc.line)
		if tc.rangeReply != "" && h["range"] != tc.rangeReply {
			// now- resumes where the stream stands: at or after 0.5 s.
			if tc.rng != "npt=now-" || !strings.HasPrefix(h["range"], "npt=") {
				t.Fatalf("Range %s: reply Range %q, want %q", tc.rng, h["range"], tc.rangeReply)
			}
		}
		if strings.Contains(tc.line, "501") && h["accept-ranges"] != "npt" {
			t.Fatalf("Range %s: Accept-Ranges %q", tc.rng, h["accept-ranges"])
		}
		if tc.line == "RTSP/1.0 200 OK" {
			c.do("PAUSE", base+tok, "Session: "+sess)
		}
	}
	_, h, _ = c.do("SETUP", base+tok, "Session: "+sess, "Transport: RTP/AVP/TCP;unicast;interleaved=2-3")
	c.expectLine("SETUP again", "RTSP/1.0 455 Method Not Valid in This State")

	// CSeq missing or not a number: 400 without a CSeq.
	for _, req := range []string{"OPTIONS * RTSP/1.0\r\n\r\n", "OPTIONS * RTSP/1.0\r\nCSeq: abc\r\n\r\n", "OPTIONS * RTSP/1.0\r\nCSeq: 1234567890\r\n\r\n"} {
		io.WriteString(c.c, req)
		_, h, _ := c.read()
		c.expectLine(fmt.Sprintf("%q", req), "RTSP/1.0 400 Bad Request (CSeq missing or malformed)")
		if _, ok := h["cseq"]; ok {
			t.Fatalf("400 echoes CSeq %q", h["cseq"])
		}
	}
	// Another version.
	io.WriteString(c.c, "OPTIONS * RTSP/2.0\r\nCSeq: 9\r\n\r\n")
	c.read()
	c.expectLine("RTSP/2.0", "RTSP/1.0 505 RTSP Version Not Supported")
}

// TestRTSPPipelined: requests written in one go are answered in order,
// each with its CSeq.
func TestRTSPPipelined(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, time.Second)
	c := dialRTSP(t, env.plainAddr, false)
	url := "rtsp://" + env.plainAddr + "/" + env.grant(t, channel.Grant{})
	var b strings.Builder
	reqs := []struct{ method, extra, line string }{
		{"OPTIONS", "", "RTSP/1.0 200 OK"},
		{"DESCRIBE", "Accept: application/sdp\r\n", "RTSP/1.0 200 OK"},
		{"GET_PARAMETER", "", "RTSP/1.0 200 OK"},
		{"BREW", "", "RTSP/1.0 501 Not Implemented"},
		{"SETUP", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n", "RTSP/1.0 200 OK"},
		{"PLAY", "", "RTSP/1.0 455 Method Not Valid in This State"},
		{"OPTIONS", "", "RTSP/1.0 200 OK"},
	}
	for i, r := range reqs {
		fmt.Fprintf(&b, "%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n", r.method, url, i+10, r.extra)
	}
	if _, err := io.WriteString(c.c, b.String()); err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		_, h, _ := c.read()
		c.expectLine(r.method, r.line)
		if h["cseq"] != fmt.Sprint(i+10) {
			t.Fatalf("response %d: CSeq %q", i, h["cseq"])
		}
	}
}

// TestRTSPInterleavedMisuse: frames on channels nobody set up (before any
// SETUP, of the largest size) are dropped without breaking the
// connection; a second session asking for channels in use gets the next
// free pair; channels beyond 255 are refused.
func TestRTSPInterleavedMisuse(t *testing.T) {
	env := newRTSPEnv(t, RTSPConfig{}, 2*time.Second)
	c := dialRTSP(t, env.plainAddr, false)
	base := "rtsp://" + env.plainAddr + "/"
	junk := make([]byte, 4+65535)
	junk[0], junk[1], junk[2], junk[3] = '$', 7, 0xff, 0xff
	c.c.Write(junk)
	c.c.Write([]byte{'$', 0, 0, 0}) // empty frame
	c.do("OPTIONS", "*")
	c.expectLine("OPTIONS after stray frames", "RTSP/1.0 200 OK")

	_, h, _ := c.do("SETUP", base+env.grant(t, channel.Grant{}), "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	if !strings.Contains(h["transport"], "interleaved=0-1;") {
		t.Fatalf("first session: %v", h)
	}
	_, h, _ = c.do("SETUP", base+env.grant(t, channel.Grant{}), "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	c.expectLine("second session on channels in use", "RTSP/1.0 200 OK")
	if !strings.Contains(h["transport"], "interleaved=2-3;") {
		t.Fatalf("second session got %q, want channels 2-3", h["transport"])
	}
	_, h, _ = c.do("SETUP", base+env.grant(t, channel.Grant{}), "Transport: RTP/AVP/TCP;unicast;interleaved=1-2")
	if !strings.Contains(h["transport"], "interleaved=4-5;") {
		t.Fatalf("third session (1-2 overlaps) got %q, want 4-5", h["transport"])
	}
	c.do("SETUP", base+env.grant(t, channel.Grant{}), "Transport: RTP/AVP/TCP;unicast;interleaved=300-301")
	c.expectLine("channel 300", "RTSP/1.0 461 Unsupported Transport")
	// RTCP from the client on its channel and a frame on a channel of
	// nobody: the connection serves on.
	c.c.Write([]byte{'$', 1, 0, 8, 0x80, 0xc9, 0, 1, 0, 0, 0, 1})
	c.c.Write([]byte{'$', 200, 0, 2, 1, 2})
	c.do("GET_PARAMETER", "*")
	c.expectLine("GET_PARAMETER after frames", "RTSP/1.0 200 OK")
}
