package streaming

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
)

// The call over SIPS (TLS signalling) from sipgo's dialog client: SDES
// keys are allowed there without sdes_over_plain; the SRTP that arrives
// decrypts with the answer's key; our BYE at the end comes back over the
// caller's TLS connection.
func TestSIPCallOverTLS(t *testing.T) {
	hs := httptest.NewTLSServer(http.NotFoundHandler())
	defer hs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	ms := startMediaServer(t, time.Second, func(s *SIPServer) {
		s.PlainSDES = false
		s.Endpoint.ListenTLS = "127.0.0.1:0"
		s.Endpoint.TLSConfig = &tls.Config{Certificates: hs.TLS.Certificates}
	})
	rx := newReceiver(t)
	ua, err := sipgo.NewUA(sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: pool}), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	dc := sipgo.NewDialogClientCache(cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: 5099}})
	bye := make(chan struct{}, 1)
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := dc.ReadBye(req, tx); err != nil {
			t.Errorf("BYE: %v", err)
		}
		bye <- struct{}{}
	})
	var ruri sip.Uri
	if err := sip.ParseUri("sip:annc@"+ms.ep.TLSAddr()+";transport=tls;play="+ms.playURL(t, 0), &ruri); err != nil {
		t.Fatal(err)
	}
	k, _ := NewSDESKey(1, SuiteAES80)
	offer := strings.Replace(plainOffer(rx.port(), "sendrecv"), "RTP/AVP 0\r\n", "RTP/SAVP 0\r\na=crypto:"+k.Attribute()+"\r\n", 1)
	ct := sip.ContentTypeHeader("application/sdp")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sess, err := dc.Invite(ctx, ruri, []byte(offer), &ct)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		t.Fatalf("INVITE over TLS: %v", err)
	}
	ans := string(sess.InviteResponse.Body())
	m := reAnswerKey.FindStringSubmatch("SIP/2.0 200 OK\r\n" + ans)
	if m == nil || !strings.Contains(ans, "RTP/SAVP 0") {
		t.Fatalf("answer over TLS:\n%s", ans)
	}
	if c := sess.InviteResponse.Contact(); c == nil || !strings.HasSuffix(ms.ep.TLSAddr(), ":"+strconv.Itoa(c.Address.Port)) {
		t.Fatalf("Contact %v, want the TLS port", c)
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bye:
	case <-ctx.Done():
		t.Fatal("no BYE over TLS at the end")
	}
	waitFor(t, "call ended", func() bool { return ms.srv.Calls() == 0 })
	rx.settle()
	pcm, _ := decodeCall(t, rx.packets(), m[1])
	if c := correlation(pcm, decodePCM(t, ms.wav)); c < 0.95 {
		t.Fatalf("correlation %.3f", c)
	}
}
