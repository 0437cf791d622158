package smtp

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/channel"
)

// FuzzIMAPFetcherResponses: whatever an IMAP server answers, the BURL
// client returns content or an error, never panics or hangs.
func FuzzIMAPFetcherResponses(f *testing.F) {
	for _, s := range []string{
		"* OK hi\r\ns1 NO no tls\r\ns2 OK in\r\n* URLFETCH \"u\" {5}\r\nhello\r\ns3 OK\r\n",
		"* OK hi\r\ns1 NO\r\ns2 OK\r\n* URLFETCH \"u\" NIL\r\ns3 OK\r\n",
		"* OK\r\ns1 BAD\r\ns2 NO bad\r\n", "* OK\r\ns1 NO\r\ns2 OK\r\n* URLFETCH \"u\" {99999999999}\r\n",
		"* BYE\r\n", "* OK\r\ns1 NO\r\ns2 OK\r\n* URLFETCH x\r\ns3 OK\r\n",
	} {
		f.Add([]byte(s))
	}
	u, err := channel.Parse("imap://alice@h.example/INBOX/;UID=1;URLAUTH=submit+alice:internal:" + "00000000000000000000000000000000")
	if err != nil {
		f.Fatal(err)
	}
	fe := &IMAPFetcher{Username: "s", Password: "p", AllowPlaintext: true, MaxBytes: 1 << 20}
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() {
			go io.Copy(io.Discard, b)
			b.Write(in)
			b.Close()
		}()
		ic := &imapConn{nc: a, br: bufio.NewReader(a), timeout: 2 * time.Second}
		rc, err := fe.session(context.Background(), ic, &tls.Config{InsecureSkipVerify: true}, u)
		if err == nil {
			io.Copy(io.Discard, rc)
			rc.Close()
		}
	})
}

// FuzzRelayReplies: the smarthost client's reply parser takes any bytes.
func FuzzRelayReplies(f *testing.F) {
	for _, s := range []string{"250-a\r\n250 b\r\n", "550 5.1.1 no\r\n", "2\r\n", "abc def\r\n", "451-x\r\n451"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		a, b := net.Pipe()
		defer a.Close()
		go func() { b.Write(in); b.Close() }()
		c := &rawSMTP{nc: a, br: bufio.NewReader(a), timeout: 2 * time.Second}
		for i := 0; i < 3; i++ {
			code, lines, err := c.read()
			if err != nil {
				return
			}
			c.fail(code, lines, nil, "")
		}
	})
}
