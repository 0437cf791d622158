// Command urlauth measures URLAUTH on Lemonvox's IMAP server, started in
// process on loopback with one 60-s voicemail (8 kHz 16-bit WAV, base64):
//
//   - URLFETCH throughput (MB/s of part octets) of the audio part, plain
//     (encoded octets) and URLAUTH=BINARY (decoded), each against the
//     FETCH that serves the same octets to the owner in the same run
//     (UID FETCH BODY.PEEK[2] and BINARY.PEEK[2]): the ratio is the cost of
//     the URL checks and the URLFETCH path.
//
//   - channel.Resolver.ResolveURL latency (µs) of a valid URL, of a wrong
//     token, and of a token for a mailbox that does not exist, against
//     opening the same part through the part API directly (no URL checks).
//     The two refusals should take about the same time: that is the
//     mailbox-existence timing the lookup is shaped against.
//
//     go run ./bench/urlauth [-rounds 20] [-resolves 20000]
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/message"
)

func main() {
	rounds := flag.Int("rounds", 20, "fetches of the audio part per measurement")
	resolves := flag.Int("resolves", 20000, "Resolve calls per measurement")
	flag.Parse()
	if err := run(*rounds, *resolves); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func wav60() []byte {
	const rate, secs = 8000, 60
	pcm := make([]byte, rate*secs*2)
	for i := 0; i < len(pcm)/2; i++ {
		v := int16((i*37)%2000 - 1000)
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	h := make([]byte, 44)
	copy(h, "RIFF")
	binary.LittleEndian.PutUint32(h[4:], uint32(36+len(pcm)))
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], 1)
	binary.LittleEndian.PutUint32(h[24:], rate)
	binary.LittleEndian.PutUint32(h[28:], rate*2)
	binary.LittleEndian.PutUint16(h[32:], 2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], uint32(len(pcm)))
	return append(h, pcm...)
}

func voicemail(audio []byte) string {
	var b strings.Builder
	b.WriteString("From: <+15551234@example.net>\r\nTo: <alice@example.net>\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nVoice message.\r\n" +
		"--b\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	for i := 0; i < len(audio); i += 57 {
		b.WriteString(base64.StdEncoding.EncodeToString(audio[i:min(i+57, len(audio))]))
		b.WriteString("\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

type client struct {
	c   net.Conn
	r   *bufio.Reader
	n   int
	lit *regexp.Regexp
}

func dial(addr, user string) (*client, error) {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &client{c: nc, r: bufio.NewReaderSize(nc, 256<<10), lit: regexp.MustCompile(`~?\{(\d+)\}\r\n$`)}
	if _, err := c.r.ReadString('\n'); err != nil {
		return nil, err
	}
	if _, _, err := c.cmd("LOGIN " + user + " pw"); err != nil {
		return nil, err
	}
	return c, nil
}

// cmd runs a command; it returns the tagged line and the literal octets
// received (discarded).
func (c *client) cmd(s string) (string, int64, error) {
	c.n++
	tag := "b" + strconv.Itoa(c.n)
	if _, err := io.WriteString(c.c, tag+" "+s+"\r\n"); err != nil {
		return "", 0, err
	}
	var got int64
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return "", got, err
		}
		if m := c.lit.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseInt(m[1], 10, 64)
			if _, err := io.CopyN(io.Discard, c.r, n); err != nil {
				return "", got, err
			}
			got += n
			continue
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return l, got, fmt.Errorf("%s: %s", s, strings.TrimSpace(l))
			}
			return l, got, nil
		}
	}
}

func (c *client) throughput(cmd string, rounds int) (float64, int64, error) {
	if _, _, err := c.cmd(cmd); err != nil { // warm
		return 0, 0, err
	}
	start := time.Now()
	var total, per int64
	for i := 0; i < rounds; i++ {
		_, n, err := c.cmd(cmd)
		if err != nil {
			return 0, 0, err
		}
		total += n
		per = n
	}
	return float64(total) / 1e6 / time.Since(start).Seconds(), per, nil
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

func run(rounds, resolves int) error {
	dir := mustTemp()
	defer os.RemoveAll(dir)
	st, err := vmstore.Open(vmstore.Options{Dir: dir, Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer st.Close()
	for _, u := range []string{"alice", "bob"} {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw"}); err != nil {
			return err
		}
	}
	audio := wav60()
	dep, err := st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(voicemail(audio))})
	if err != nil {
		return err
	}
	res := channel.NewResolver(st, "vm.test")
	srv := &imap.Server{Store: st, Addr: "127.0.0.1:0", URLResolver: res, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := srv.Initialize(); err != nil {
		return err
	}
	defer srv.Close()
	rump := fmt.Sprintf("imap://alice@vm.test/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=2;URLAUTH=user+bob", dep.Mailbox.UIDValidity, dep.Message.UID)
	url, err := res.AuthorizeURL("alice", rump, "INTERNAL")
	if err != nil {
		return err
	}
	a, err := dial(srv.PlainAddr(), "alice")
	if err != nil {
		return err
	}
	b, err := dial(srv.PlainAddr(), "bob")
	if err != nil {
		return err
	}
	if _, _, err := a.cmd("SELECT INBOX"); err != nil {
		return err
	}
	fmt.Printf("load before: %s\n", loadavg())
	fmt.Printf("audio part: %d octets decoded, 60 s 8 kHz 16-bit WAV, base64 in the message\n", len(audio))
	uid := strconv.Itoa(int(dep.Message.UID))
	type row struct{ name, ref, cmd, refCmd string }
	for _, r := range []row{
		{"URLFETCH url (encoded)", "UID FETCH BODY.PEEK[2]", fmt.Sprintf("URLFETCH %q", url), "UID FETCH " + uid + " BODY.PEEK[2]"},
		{"URLFETCH (url BINARY)", "UID FETCH BINARY.PEEK[2]", fmt.Sprintf("URLFETCH (%q BINARY)", url), "UID FETCH " + uid + " BINARY.PEEK[2]"},
	} {
		// Reference first, then the URL, then the reference again: the
		// reference figure is the mean of both (the machine is shared).
		ref1, _, err := a.throughput(r.refCmd, rounds)
		if err != nil {
			return err
		}
		got, per, err := b.throughput(r.cmd, rounds)
		if err != nil {
			return err
		}
		ref2, _, err := a.throughput(r.refCmd, rounds)
		if err != nil {
			return err
		}
		ref := (ref1 + ref2) / 2
		fmt.Printf("%-24s %7.1f MB/s (%d octets each)   reference %-26s %7.1f MB/s   ratio %.2f\n", r.name, got, per, r.ref, ref, got/ref)
	}

	// Resolve latency.
	ctx := context.Background()
	bob := channel.Requester{User: "bob", Authenticated: true}
	last := "0"
	if strings.HasSuffix(url, "0") {
		last = "1"
	}
	bad := url[:len(url)-1] + last
	missing := strings.Replace(url, "/INBOX;", "/NoSuchBox;", 1)
	sec, _ := message.Parse("2")
	timeIt := func(f func() error) (float64, error) {
		for i := 0; i < resolves/10; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		start := time.Now()
		for i := 0; i < resolves; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return float64(time.Since(start).Microseconds()) / float64(resolves), nil
	}
	direct, err := timeIt(func() error {
		p, err := message.Open(st, "alice", "INBOX", dep.Message.UID, sec, message.Raw)
		if err != nil {
			return err
		}
		return p.Close()
	})
	if err != nil {
		return err
	}
	valid, err := timeIt(func() error {
		r, err := res.ResolveURL(ctx, url, bob)
		if err != nil {
			return err
		}
		return r.Close()
	})
	if err != nil {
		return err
	}
	refuse := func(u string) func() error {
		return func() error {
			if _, err := res.ResolveURL(ctx, u, bob); err == nil {
				return fmt.Errorf("refusal resolved")
			}
			return nil
		}
	}
	wrong, err := timeIt(refuse(bad))
	if err != nil {
		return err
	}
	nobox, err := timeIt(refuse(missing))
	if err != nil {
		return err
	}
	wrong2, err := timeIt(refuse(bad))
	if err != nil {
		return err
	}
	nobox2, err := timeIt(refuse(missing))
	if err != nil {
		return err
	}
	fmt.Printf("Resolve valid URL        %7.1f µs   reference message.Open (no URL checks) %6.1f µs   ratio %.2f\n", valid, direct, valid/direct)
	fmt.Printf("Resolve wrong token      %7.1f µs / %.1f µs\n", wrong, wrong2)
	fmt.Printf("Resolve missing mailbox  %7.1f µs / %.1f µs   ratio to wrong token %.2f\n", nobox, nobox2, (nobox+nobox2)/(wrong+wrong2))
	fmt.Printf("load after: %s\n", loadavg())
	return nil
}

func mustTemp() string {
	d, err := os.MkdirTemp("", "lemonvox-bench-urlauth-")
	if err != nil {
		panic(err)
	}
	return d
}
