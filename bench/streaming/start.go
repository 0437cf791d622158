package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/transcode"
	"github.com/lemonvox/lemonvox/vmstore"
)

// startLatency measures, n times, the time from sending IMAP UID CHANNEL
// to the first RTP packet read by a client that follows the URL over
// RTSPS (new TLS connection, DESCRIBE, SETUP interleaved, PLAY).
func startLatency(n int) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1,
		Logger: quietLogger()})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	if _, err := st.CreateAccount(vmstore.AccountSpec{Name: "alice", Password: "pw-alice-1"}); err != nil {
		panic(err)
	}
	wav, dur, _ := transcode.SampleVoice(30 * time.Second)
	if _, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: vmstore.VoiceMessage{From: "+1555@x.invalid", To: "alice@x.invalid",
		MediaType: "audio/wav", Duration: dur, Media: bytes.NewReader(wav)}.Compose()}); err != nil {
		panic(err)
	}
	grants, err := channel.NewGrants(st)
	if err != nil {
		panic(err)
	}
	e := streaming.NewEngine(streaming.EngineConfig{Store: st, Logger: quietLogger()})
	defer e.Close()
	tlsConf := benchTLS()
	srv := streaming.NewRTSPServer(streaming.RTSPConfig{Engine: e, Store: st, Grants: grants, TLS: tlsConf, Logger: quietLogger()})
	defer srv.Close()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(l, true)
	is := &imap.Server{Store: st, Addr: "127.0.0.1:0", Logger: quietLogger(),
		Channel: &imap.ChannelService{Grants: grants, URLs: map[string]string{"RTSPS": "rtsps://" + l.Addr().String() + "/"}}}
	if err := is.Initialize(); err != nil {
		panic(err)
	}
	defer is.Close()
	c, err := net.Dial("tcp", is.PlainAddr())
	if err != nil {
		panic(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	br.ReadString('\n')
	tagN := 0
	cmd := func(s string) string {
		tagN++
		tag := fmt.Sprintf("b%d", tagN)
		fmt.Fprintf(c, "%s %s\r\n", tag, s)
		var all strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				panic(err)
			}
			all.WriteString(line)
			if strings.HasPrefix(line, tag+" ") {
				return all.String()
			}
		}
	}
	cmd("LOGIN alice pw-alice-1")
	cmd("SELECT INBOX")
	re := regexp.MustCompile(`"(rtsps://[^"]+)"`)
	var lat []time.Duration
	for range n {
		t0 := time.Now()
		m := re.FindStringSubmatch(cmd("UID CHANNEL 1 ([1] [2]) RTSPS"))
		if m == nil {
			panic("no CHANNEL URL")
		}
		firstPacket(m[1])
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	fmt.Printf("\nCHANNEL command to first RTP packet (RTSPS, new TLS connection each, %d runs, load %s): p50 %v p99 %v max %v\n",
		n, loadavg(), lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
}

func firstPacket(url string) {
	host := strings.SplitN(strings.TrimPrefix(url, "rtsps://"), "/", 2)[0]
	c, err := tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	seq := 0
	do := func(method, u string, hdr ...string) map[string]string {
		seq++
		fmt.Fprintf(c, "%s %s RTSP/1.0\r\nCSeq: %d\r\n%s\r\n", method, u, seq, strings.Join(append(hdr, ""), "\r\n"))
		h := map[string]string{}
		line, err := br.ReadString('\n')
		if err != nil || !strings.Contains(line, " 200 ") {
			panic(fmt.Sprintf("%s: %q %v", method, line, err))
		}
		for {
			l, _ := br.ReadString('\n')
			l = strings.TrimSpace(l)
			if l == "" {
				break
			}
			k, v, _ := strings.Cut(l, ":")
			h[strings.ToLower(k)] = strings.TrimSpace(v)
		}
		if n := h["content-length"]; n != "" {
			var k int
			fmt.Sscan(n, &k)
			io.CopyN(io.Discard, br, int64(k))
		}
		return h
	}
	h := do("DESCRIBE", url, "Accept: application/sdp")
	base := h["content-base"]
	h = do("SETUP", base+"track1", "Transport: RTP/AVP/TCP;unicast;interleaved=0-1")
	sess, _, _ := strings.Cut(h["session"], ";")
	do("PLAY", base, "Session: "+sess, "Range: npt=0.000-")
	for {
		b, err := br.ReadByte()
		if err != nil {
			panic(err)
		}
		if b == '$' {
			var hdr [3]byte
			io.ReadFull(br, hdr[:])
			if hdr[0] == 0 {
				break
			}
			io.CopyN(io.Discard, br, int64(hdr[1])<<8|int64(hdr[2]))
		}
	}
	fmt.Fprintf(c, "TEARDOWN %s RTSP/1.0\r\nCSeq: %d\r\nSession: %s\r\n\r\n", base, seq+1, sess)
}

func benchTLS() *tls.Config {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}
