package imap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// testTLSConfig returns a server config with a fresh self-signed
// certificate for 127.0.0.1 and a client config trusting it.
func testTLSConfig(t *testing.T) (*tls.Config, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "lemonvox test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func TestTLS(t *testing.T) {
	srvConf, cliConf := testTLSConfig(t)
	e := newTestEnv(t, func(s *Server) {
		s.TLSAddr = "127.0.0.1:0"
		s.TLSConfig = srvConf
	})
	// Implicit TLS.
	c, err := imapclient.DialTLS(e.srv.TLSAddrBound(), &imapclient.Options{TLSConfig: cliConf})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Login("alice", testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// The session waits parked under TLS too (the first octet read through
	// TLS on a fresh goroutine); it is served again, with what happened
	// meanwhile.
	for i := 0; i < 3; i++ {
		time.Sleep(30 * time.Millisecond)
		e.deposit("alice", "INBOX", testMessage(fmt.Sprint("tls", i), "x"))
		if err := c.Noop().Wait(); err != nil {
			t.Fatal(err)
		}
		if n := c.Mailbox().NumMessages; n != uint32(i+1) {
			t.Fatalf("after deposit %d: %d messages", i+1, n)
		}
	}
	c.Close()
	// STARTTLS.
	c, err = imapclient.DialStartTLS(e.srv.PlainAddr(), &imapclient.Options{TLSConfig: cliConf})
	if err != nil {
		t.Fatal(err)
	}
	if caps := c.Caps(); caps.Has("STARTTLS") {
		t.Fatal("STARTTLS still offered after TLS")
	}
	if err := c.Login("alice", testPass).Wait(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	// STARTTLS with pipelined data is refused.
	rc := e.raw()
	rc.send("a STARTTLS\r\nb NOOP")
	if l := rc.line(); !strings.HasPrefix(l, "a BAD") {
		t.Fatal(l)
	}
}

func TestPlaintextPolicy(t *testing.T) {
	remote := &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}
	loop := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 40000}
	loop6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 40000}
	for _, tc := range []struct {
		tls, insecure bool
		addr          net.Addr
		want          bool
	}{
		{false, false, remote, false},
		{true, false, remote, true},
		{false, true, remote, true},
		{false, false, loop, true},
		{false, false, loop6, true},
	} {
		if got := plaintextAuthAllowed(tc.tls, tc.addr, tc.insecure); got != tc.want {
			t.Errorf("tls=%v insecure=%v %v: got %v", tc.tls, tc.insecure, tc.addr, got)
		}
	}
	// What a remote plaintext client sees: LOGINDISABLED, no AUTH=PLAIN,
	// and LOGIN refused.
	e := newTestEnv(t)
	c := &conn{srv: e.srv, state: stateNotAuth, nc: fakeAddrConn{remote}}
	caps := c.capabilities()
	if !strings.Contains(caps, "LOGINDISABLED") || strings.Contains(caps, "AUTH=PLAIN") {
		t.Fatal(caps)
	}
}

type fakeAddrConn struct{ remote net.Addr }

func (f fakeAddrConn) Read([]byte) (int, error)         { return 0, net.ErrClosed }
func (f fakeAddrConn) Write(b []byte) (int, error)      { return len(b), nil }
func (f fakeAddrConn) Close() error                     { return nil }
func (f fakeAddrConn) LocalAddr() net.Addr              { return f.remote }
func (f fakeAddrConn) RemoteAddr() net.Addr             { return f.remote }
func (f fakeAddrConn) SetDeadline(time.Time) error      { return nil }
func (f fakeAddrConn) SetReadDeadline(time.Time) error  { return nil }
func (f fakeAddrConn) SetWriteDeadline(time.Time) error { return nil }
