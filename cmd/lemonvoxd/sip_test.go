package main

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// One SIP port for the appliance: the MWI notifier and the media server
// register on one endpoint, whose OPTIONS answer lists both.
func TestOneSIPEndpoint(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.SIP.Listen = "127.0.0.1:0"
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := vmstore.Open(vmstore.Options{InMemory: true, Logger: log, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ep, err := newSIPEndpoint(cfg, nil, nil, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	closers := []closer{sipCloser(ep)}
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].fn()
		}
	}()
	nc, _, err := startNotify(cfg, t.TempDir(), st, ep, log)
	closers = append(closers, nc...)
	if err != nil {
		t.Fatal(err)
	}
	pc, pb, err := startPlayback(cfg, st, nil, nil, nil, log)
	closers = append(closers, pc...)
	if err != nil {
		t.Fatal(err)
	}
	urlRes, err := newURLResolver(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	mc, err := startMediaServer(cfg, st, ep, pb, urlRes, log)
	closers = append(closers, mc...)
	if err != nil {
		t.Fatal(err)
	}
	if err := startSIPEndpoint(ep); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("udp", ep.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	_, _ = io.WriteString(c, "OPTIONS sip:annc@"+ep.Addr()+" SIP/2.0\r\nVia: SIP/2.0/UDP "+local+";branch=z9hG4bK-o1\r\n"+
		"From: <sip:t@"+local+">;tag=1\r\nTo: <sip:annc@"+ep.Addr()+">\r\nCall-ID: one-endpoint\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	res := string(buf[:n])
	if !strings.HasPrefix(res, "SIP/2.0 200") || !strings.Contains(res, "Allow: ACK, BYE, CANCEL, INVITE, OPTIONS, SUBSCRIBE") ||
		!strings.Contains(res, "Allow-Events: message-summary") {
		t.Fatalf("OPTIONS:\n%s", res)
	}
}
