package admin

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// emfileListener fails every Accept with EMFILE while failing is set.
type emfileListener struct {
	net.Listener
	failing atomic.Bool
}

func (l *emfileListener) Accept() (net.Conn, error) {
	for {
		if l.failing.Load() {
			time.Sleep(time.Millisecond)
			return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
		}
		return l.Listener.Accept()
	}
}

// /healthz answers 503 naming a listener whose accepts fail, and 200 again
// once it accepts.
func TestHealthzReportsListenerNotAccepting(t *testing.T) {
	st, err := vmstore.Open(vmstore.Options{InMemory: true, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &emfileListener{Listener: raw}
	fl.failing.Store(true)
	reg := &netlimit.Registry{}
	ln := netlimit.Wrap(fl, netlimit.Config{Name: "sip-tcp", Registry: reg})
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	hs := httptest.NewServer((&Server{Store: st, Token: "t", Listeners: reg}).Handler())
	defer hs.Close()
	get := func() (int, map[string]any) {
		res, err := http.Get(hs.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body map[string]any
		json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body
	}
	deadline := time.Now().Add(5 * time.Second)
	code, body := get()
	for code != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d %v while the listener fails", code, body)
		}
		time.Sleep(5 * time.Millisecond)
		code, body = get()
	}
	ls, _ := body["listeners"].([]any)
	if len(ls) != 1 || ls[0].(map[string]any)["name"] != "sip-tcp" || ls[0].(map[string]any)["accepting"] != false ||
		body["detail"] != "not accepting connections: sip-tcp" {
		t.Fatalf("body %v", body)
	}
	fl.failing.Store(false)
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d %v after recovery", code, body)
		}
		time.Sleep(5 * time.Millisecond)
		code, body = get()
	}
}
