package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/lemonvox/lemonvox/vmstore"
)

func TestMWISubscribeOverTLS(t *testing.T) {
	// Borrow httptest's certificate for 127.0.0.1.
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())

	s := openStore(t, "")
	mustAccount(t, s, "tls", vmstore.AccountOptions{})
	m, _ := startMWI(t, s, true, func(m *MWIServer) {
		m.Endpoint.ListenTLS = "127.0.0.1:0"
		m.Endpoint.TLSConfig = &tls.Config{Certificates: hs.TLS.Certificates}
		m.NotifyTimeout = 300 * time.Millisecond
	})
	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: pool}))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var uri sip.Uri
	if err := sip.ParseUri("sip:tls@"+m.Endpoint.TLSAddr()+";transport=tls", &uri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.SUBSCRIBE, uri)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "tls", Host: "127.0.0.1", Port: 1}})
	req.AppendHeader(sip.NewHeader("Event", "message-summary"))
	exp := sip.ExpiresHeader(120)
	req.AppendHeader(&exp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE over TLS: %v %v", res, err)
	}
	if m.Subscriptions("tls") != 1 {
		t.Fatal("no subscription")
	}
	if ct := res.Contact(); ct == nil || strconv.Itoa(ct.Address.Port) != m.Endpoint.TLSAddr()[strings.LastIndexByte(m.Endpoint.TLSAddr(), ':')+1:] {
		t.Fatalf("Contact %v", ct)
	}
}
