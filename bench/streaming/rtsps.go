package main

// -path rtsps: each session is a CHANNEL grant played the way a handset
// plays its URL: TLS connection to the RTSPS listener, DESCRIBE (SDP with
// the SDES key), SETUP (RTP/AVP over UDP to the receiver), PLAY; the
// control connection stays open for the step.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/streaming"
)

type rtspsPath struct {
	srv  *streaming.RTSPServer
	addr string
	cfg  *tls.Config
	imap *imap.Server
	ic   *rtspConn // one IMAP connection (loopback, plain), mailbox selected
	tag  int
}

func (b *bench) startRTSPS() {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		fatal(err)
	}
	srv := streaming.NewRTSPServer(streaming.RTSPConfig{Engine: b.eng, Store: b.st, Grants: b.grants,
		TLS:            &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		SessionTimeout: 5 * time.Minute, MaxConns: 50000, MaxPerSource: 50000, Cache: b.cache, Logger: slog.New(slog.DiscardHandler)})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go func() { _ = srv.Serve(l, true) }()
	b.rtsps = &rtspsPath{srv: srv, addr: l.Addr().String(), cfg: &tls.Config{InsecureSkipVerify: true}} // the bench's own certificate
	// The IMAP server hands out the CHANNEL URLs.
	is := &imap.Server{Store: b.st, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Channel: &imap.ChannelService{Grants: b.grants, URLs: map[string]string{"RTSPS": "rtsps://" + b.rtsps.addr + "/"}}}
	if err := is.Initialize(); err != nil {
		fatal(err)
	}
	b.rtsps.imap = is
	c, err := net.Dial("tcp4", is.PlainAddr())
	if err != nil {
		fatal(err)
	}
	b.rtsps.ic = &rtspConn{c: c, r: bufio.NewReader(c)}
	if _, err := b.rtsps.ic.r.ReadString('\n'); err != nil { // greeting
		fatal(err)
	}
	for _, cmd := range []string{"LOGIN bench bench-pw", "SELECT INBOX"} {
		if _, err := b.rtsps.imapCmd(cmd); err != nil {
			fatal(fmt.Errorf("IMAP %s: %w", cmd, err))
		}
	}
}

// imapCmd sends one command and returns its untagged lines.
func (p *rtspsPath) imapCmd(cmd string) ([]string, error) {
	p.tag++
	tag := fmt.Sprintf("b%d", p.tag)
	if _, err := fmt.Fprintf(p.ic.c, "%s %s\r\n", tag, cmd); err != nil {
		return nil, err
	}
	var lines []string
	for {
		l, err := p.ic.r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if rest, ok := strings.CutPrefix(l, tag+" "); ok {
			if !strings.HasPrefix(rest, "OK") {
				return nil, fmt.Errorf("%s", rest)
			}
			return lines, nil
		}
		lines = append(lines, l)
	}
}

// rtspConn is one handset's control connection.
type rtspConn struct {
	c    net.Conn
	r    *bufio.Reader
	cseq int
}

func (c *rtspConn) do(method, url string, hdr ...string) (int, map[string]string, string, error) {
	c.cseq++
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s RTSP/1.0\r\nCSeq: %d\r\nUser-Agent: lemonvox-bench\r\n", method, url, c.cseq)
	for _, h := range hdr {
		sb.WriteString(h + "\r\n")
	}
	sb.WriteString("\r\n")
	if _, err := io.WriteString(c.c, sb.String()); err != nil {
		return 0, nil, "", err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return 0, nil, "", err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, nil, "", fmt.Errorf("status line %q", line)
	}
	code, _ := strconv.Atoi(f[1])
	h := map[string]string{}
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return 0, nil, "", err
		}
		l = strings.TrimRight(l, "\r\n")
		if l == "" {
			break
		}
		k, v, _ := strings.Cut(l, ":")
		h[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	var body string
	if n, _ := strconv.Atoi(h["content-length"]); n > 0 {
		buf := make([]byte, n)
		if _, err := io.ReadFull(c.r, buf); err != nil {
			return 0, nil, "", err
		}
		body = string(buf)
	}
	return code, h, body, nil
}

// startRTSPSOne asks IMAP for message i%len's CHANNEL URL (UID CHANNEL)
// and plays it over RTSPS; it returns the SSRC, the a=crypto key, the
// wall time the CHANNEL command was sent and the control connection.
func (b *bench) startRTSPSOne(i int) (uint32, string, int64, net.Conn, error) {
	uid := b.uids[i%len(b.uids)]
	t0 := time.Now().UnixNano()
	lines, err := b.rtsps.imapCmd(fmt.Sprintf("UID CHANNEL %d ([2]) RTSPS", uid))
	if err != nil {
		return 0, "", 0, nil, fmt.Errorf("CHANNEL: %w", err)
	}
	var url string
	for _, l := range lines {
		if _, rest, ok := strings.Cut(l, `"rtsps://`); ok {
			u, _, _ := strings.Cut(rest, `"`)
			url = "rtsps://" + u
		}
	}
	if url == "" {
		return 0, "", 0, nil, fmt.Errorf("CHANNEL gave no URL: %q", lines)
	}
	c, err := tls.Dial("tcp4", b.rtsps.addr, b.rtsps.cfg)
	if err != nil {
		return 0, "", 0, nil, err
	}
	rc := &rtspConn{c: c, r: bufio.NewReader(c)}
	fail := func(err error) (uint32, string, int64, net.Conn, error) {
		c.Close()
		return 0, "", 0, nil, err
	}
	code, h, sdp, err := rc.do("DESCRIBE", url, "Accept: application/sdp")
	if err != nil || code != 200 {
		return fail(fmt.Errorf("DESCRIBE: %d %v", code, err))
	}
	var crypto string
	for _, l := range strings.Split(sdp, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=crypto:"); ok {
			crypto = v
		}
	}
	base := h["content-base"]
	port := b.rcv[i%len(b.rcv)].Port
	code, h, _, err = rc.do("SETUP", base+"track1", fmt.Sprintf("Transport: RTP/AVP;unicast;client_port=%d-%d", port, port+1))
	if err != nil || code != 200 {
		return fail(fmt.Errorf("SETUP: %d %v", code, err))
	}
	var ssrc uint32
	for _, p := range strings.Split(h["transport"], ";") {
		if v, ok := strings.CutPrefix(p, "ssrc="); ok {
			x, _ := strconv.ParseUint(v, 16, 32)
			ssrc = uint32(x)
		}
	}
	sess, _, _ := strings.Cut(h["session"], ";")
	code, _, _, err = rc.do("PLAY", base, "Session: "+sess, "Range: npt=0-")
	if err != nil || code != 200 {
		return fail(fmt.Errorf("PLAY: %d %v", code, err))
	}
	return ssrc, crypto, t0, c, nil
}
