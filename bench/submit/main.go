// Command submit measures forwarding a 60-s voicemail to R local
// recipients through the submission listener, in one run, two ways:
//
//   - burl: GENURLAUTH over IMAP for a submit+ URL to the voice part, then
//     BDAT with the new header and BURL <url> LAST (the server pulls the
//     audio from the store);
//   - reference: the download-and-reupload path, UID FETCH BODY[2] of the
//     voice part over IMAP, then DATA with the whole message.
//
// It reports the bytes the client sends and receives and the wall time of
// each (median of -rounds), and the ratios. Both servers run in process on
// loopback over a store on disk (durable commits); no link shaping, so
// the time ratio is what the server saves, not what a slow link would.
//
//	go run ./bench/submit [-rcpts 10] [-rounds 5] [-seconds 60]
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/vmstore"
)

// counted counts a client connection's bytes both ways.
type counted struct {
	net.Conn
	in, out *int64
}

func (c counted) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	*c.in += int64(n)
	return n, err
}

func (c counted) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	*c.out += int64(n)
	return n, err
}

type client struct {
	c  net.Conn
	br *bufio.Reader
}

func dial(addr string, in, out *int64) *client {
	nc, err := net.Dial("tcp", addr)
	check(err)
	cc := counted{nc, in, out}
	return &client{c: cc, br: bufio.NewReaderSize(cc, 64<<10)}
}

func (c *client) line() string {
	l, err := c.br.ReadString('\n')
	check(err)
	return l
}

// smtpReply reads one reply.
func (c *client) smtpReply() string {
	for {
		l := c.line()
		if len(l) < 4 || l[3] == ' ' {
			return l
		}
	}
}

func (c *client) smtp(cmd string, want string) {
	fmt.Fprintf(c.c, "%s\r\n", cmd)
	if r := c.smtpReply(); !strings.HasPrefix(r, want) {
		fail("%s: %s", cmd, r)
	}
}

// imap sends a tagged command and returns the lines before the tagged OK,
// literals included.
func (c *client) imap(cmd string) []byte {
	fmt.Fprintf(c.c, "t %s\r\n", cmd)
	var out bytes.Buffer
	for {
		l := c.line()
		if strings.HasPrefix(l, "t ") {
			if !strings.HasPrefix(l, "t OK") {
				fail("%s: %s", cmd, l)
			}
			return out.Bytes()
		}
		out.WriteString(l)
		if i := strings.LastIndexByte(l, '{'); i >= 0 && strings.HasSuffix(l, "}\r\n") {
			var n int64
			fmt.Sscanf(l[i+1:], "%d", &n)
			_, err := io.CopyN(&out, c.br, n)
			check(err)
		}
	}
}

func main() {
	rcpts := flag.Int("rcpts", 10, "local recipients")
	rounds := flag.Int("rounds", 5, "rounds of each path (median reported)")
	seconds := flag.Int("seconds", 60, "voicemail length (8 kHz 16-bit WAV)")
	flag.Parse()
	dir, err := os.MkdirTemp("", "bench-submit-")
	check(err)
	defer os.RemoveAll(dir)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := vmstore.Open(vmstore.Options{Dir: dir + "/store", GCInterval: -1, Logger: log})
	check(err)
	defer st.Close()
	users := []string{"alice"}
	for i := 0; i < *rcpts; i++ {
		users = append(users, fmt.Sprintf("r%02d", i))
	}
	for _, u := range users {
		_, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: "pw-bench-1"})
		check(err)
	}
	wav := tone(*seconds * 8000)
	voice := "From: +15551234567@pstn.example\r\nTo: alice@vm.example.net\r\nSubject: voice\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/voice-message; boundary=b1\r\nMessage-Context: voice-message\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nVoice message\r\n--b1\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
		wrap76(base64.StdEncoding.EncodeToString(wav)) + "--b1--\r\n"
	_, err = st.Deposit(vmstore.DepositReq{User: "alice", Body: strings.NewReader(voice)})
	check(err)
	mb, err := st.Mailbox("alice", "INBOX")
	check(err)

	res := channel.NewResolver(st, "vm.example.net")
	isrv := &imap.Server{Store: st, Addr: "127.0.0.1:0", Logger: log, AllowInsecureAuth: true, URLResolver: res, SpoolDir: dir + "/spool"}
	check(isrv.Initialize())
	defer isrv.Close()
	sub := &smtp.Submission{Store: st, Hostname: "vm.example.net", AllowInsecureAuth: true, Logger: log, SpoolDir: dir,
		Fetcher: smtp.Fetchers{Local: smtp.ResolverFetcher{R: res}}, SentMailbox: "-"}
	sub.Start()
	ln, err := sub.ListenAndServe("127.0.0.1:0")
	check(err)
	defer sub.Close()
	auth := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw-bench-1"))
	head := "From: alice@vm.example.net\r\nSubject: Fwd: voice\r\nMIME-Version: 1.0\r\nContent-Type: audio/wav\r\nContent-Transfer-Encoding: base64\r\n\r\n"

	forward := func(burl bool) (in, out int64, d time.Duration) {
		start := time.Now()
		ic := dial(isrv.PlainAddr(), &in, &out)
		ic.line()
		ic.imap("LOGIN alice pw-bench-1")
		ic.imap("SELECT INBOX")
		var part []byte
		url := ""
		if burl {
			rump := fmt.Sprintf("imap://alice@vm.example.net/INBOX;UIDVALIDITY=%d/;UID=1/;SECTION=2;URLAUTH=submit+alice", mb.UIDValidity)
			r := ic.imap(`GENURLAUTH "` + rump + `" INTERNAL`)
			s := strings.TrimSpace(string(r))
			url = strings.Trim(strings.TrimPrefix(s, "* GENURLAUTH "), `"`)
		} else {
			r := ic.imap("UID FETCH 1 BODY.PEEK[2]")
			i := bytes.IndexByte(r, '\n')
			part = bytes.TrimSuffix(r[i+1:], []byte(")\r\n"))
			if !bytes.HasSuffix(part, []byte("\r\n")) {
				part = append(part, '\r', '\n')
			}
		}
		ic.imap("LOGOUT")
		ic.c.Close()
		sc := dial(ln.Addr().String(), &in, &out)
		sc.smtpReply()
		sc.smtp("EHLO bench", "250")
		sc.smtp("AUTH PLAIN "+auth, "235")
		sc.smtp("MAIL FROM:<alice@vm.example.net>", "250")
		for _, u := range users[1:] {
			sc.smtp("RCPT TO:<"+u+"@vm.example.net>", "250")
		}
		if burl {
			fmt.Fprintf(sc.c, "BDAT %d\r\n%s", len(head), head)
			if r := sc.smtpReply(); !strings.HasPrefix(r, "250") {
				fail("BDAT: %s", r)
			}
			sc.smtp("BURL "+url+" LAST", "250")
		} else {
			sc.smtp("DATA", "354")
			w := bufio.NewWriterSize(sc.c, 64<<10)
			w.WriteString(head)
			w.Write(part) // base64 lines: no dot-stuffing needed
			w.WriteString(".\r\n")
			check(w.Flush())
			if r := sc.smtpReply(); !strings.HasPrefix(r, "250") {
				fail("DATA: %s", r)
			}
		}
		sc.smtp("QUIT", "221")
		sc.c.Close()
		return in, out, time.Since(start)
	}
	type result struct {
		in, out int64
		d       []time.Duration
	}
	var ref, burl result
	for i := 0; i < *rounds; i++ {
		for _, b := range []bool{false, true} {
			in, out, d := forward(b)
			r := &ref
			if b {
				r = &burl
			}
			r.in, r.out = in, out
			r.d = append(r.d, d)
		}
	}
	med := func(ds []time.Duration) time.Duration { slices.Sort(ds); return ds[len(ds)/2] }
	fmt.Printf("forward a %d-s voicemail (%d bytes WAV, %d bytes base64 part) to %d local recipients, median of %d rounds\n",
		*seconds, len(wav), len(wrap76(base64.StdEncoding.EncodeToString(wav))), *rcpts, *rounds)
	fmt.Printf("%-28s %12s %12s %10s\n", "path", "client-sent", "client-recv", "time")
	fmt.Printf("%-28s %12d %12d %10s\n", "FETCH + DATA (reference)", ref.out, ref.in, med(ref.d).Round(time.Millisecond))
	fmt.Printf("%-28s %12d %12d %10s\n", "GENURLAUTH + BDAT + BURL", burl.out, burl.in, med(burl.d).Round(time.Millisecond))
	fmt.Printf("client bytes (both ways): %.1fx fewer with BURL; time: %.2fx of the reference\n",
		float64(ref.in+ref.out)/float64(burl.in+burl.out), float64(med(burl.d))/float64(med(ref.d)))
}

func tone(n int) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, binary.LittleEndian, []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)})
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	for i := 0; i < n; i++ {
		binary.Write(&b, binary.LittleEndian, int16(8000*math.Sin(float64(i)/5)+float64(i%97)))
	}
	return b.Bytes()
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	return b.String() + s + "\r\n"
}

func check(err error) {
	if err != nil {
		panic(err)
	}
}

func fail(f string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench/submit: "+f+"\n", a...)
	os.Exit(1)
}
