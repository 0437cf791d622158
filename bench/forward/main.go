// Command forward measures forwarding a voice message from a handset on a
// slow link, two ways, in one run against the same store:
//
//   - reference, download and re-upload: UID FETCH BODY[] of the
//     voicemail, APPEND of the forward to Sent, then SMTP submission of
//     it to the recipients with DATA;
//   - CATENATE + BURL: the forward is assembled on the server (APPEND
//     CATENATE of new headers and the audio part by URL, RFC 4469),
//     authorized for the submission server (GENURLAUTH submit+<user>,
//     RFC 4467) and submitted by reference (BURL, RFC 4468): the
//     submission server reads it from the store.
//
// The handset's link is a shaping proxy in this program (proxy.go):
// -kbps each way, and a second variant with -rtt round-trip time added.
// For each it reports the octets the client sent and received and the
// wall time, and the ratios against the reference. Every recipient's copy
// is checked: its audio decodes to the original's bytes.
//
//	go run ./bench/forward [-kbps 256] [-rtt 100ms] [-recipients 10] [-seconds 60] [-rounds 1]
package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/textproto"
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

const (
	sender   = "alice"
	password = "forward-bench-pass"
	urlHost  = "vm.example.net:1993" // the public name URLs carry ([imap] url_host)
	domain   = "vm.example.net"
)

type env struct {
	st        *vmstore.Store
	res       *channel.Resolver
	imapAddr  string
	smtpAddr  string
	smtpNote  string
	uid       uint32
	uidv      uint32
	audioHash [32]byte
	rcpts     []string
	msgSize   int64
}

type result struct {
	bytes int64
	wall  time.Duration
	notes []string
	// undelivered: the path stopped before submission (no BURL).
	undelivered bool
	// steps: the time each step took, in order.
	steps []string
	last  time.Time
}

// step records the time since the previous step (or the start).
func (r *result) step(name string) {
	now := time.Now()
	r.steps = append(r.steps, fmt.Sprintf("%s %.2f s", name, now.Sub(r.last).Seconds()))
	r.last = now
}

func main() {
	kbps := flag.Float64("kbps", 256, "link rate each way, kbit/s")
	rtt := flag.Duration("rtt", 100*time.Millisecond, "round-trip time of the second variant (0 skips it)")
	nrcpt := flag.Int("recipients", 10, "recipients of the forward")
	seconds := flag.Int("seconds", 60, "length of the voicemail (8 kHz G.711 in WAV)")
	rounds := flag.Int("rounds", 1, "rounds of both paths per variant")
	flag.Parse()

	e, cleanup, err := setup(*nrcpt, *seconds)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		os.Exit(1)
	}
	defer cleanup()
	fmt.Printf("forward of a %d-s voicemail (message %d octets) to %d recipients, link %.0f kbit/s each way\n",
		*seconds, e.msgSize, *nrcpt, *kbps)
	fmt.Printf("submission: %s\nload average at start: %s\n", e.smtpNote, loadavg())
	variants := []time.Duration{0}
	if *rtt > 0 {
		variants = append(variants, *rtt)
	}
	failed := false
	for _, v := range variants {
		for r := 0; r < *rounds; r++ {
			ref, err := e.measure(*kbps*1000, v, e.reupload)
			if err != nil {
				fmt.Fprintln(os.Stderr, "download and re-upload:", err)
				os.Exit(1)
			}
			cat, err := e.measure(*kbps*1000, v, e.catenateBURL)
			if err != nil {
				fmt.Fprintln(os.Stderr, "CATENATE + BURL:", err)
				os.Exit(1)
			}
			fmt.Printf("\nRTT %v, round %d\n", v, r+1)
			fmt.Printf("  %-28s %10d octets  %8.2f s\n", "download + re-upload", ref.bytes, ref.wall.Seconds())
			label := "CATENATE + BURL"
			if cat.undelivered {
				label = "CATENATE (no BURL)"
			}
			fmt.Printf("  %-28s %10d octets  %8.2f s\n", label, cat.bytes, cat.wall.Seconds())
			br, tr := float64(ref.bytes)/float64(cat.bytes), ref.wall.Seconds()/cat.wall.Seconds()
			fmt.Printf("  ratio: %.0fx fewer octets (goal >= 50x), %.0fx faster (goal >= 20x)\n", br, tr)
			fmt.Printf("  steps, reference: %s\n  steps, CATENATE: %s\n", strings.Join(ref.steps, ", "), strings.Join(cat.steps, ", "))
			for _, n := range append(ref.notes, cat.notes...) {
				fmt.Println("  note:", n)
			}
			if br < 50 || tr < 20 {
				failed = true
			}
		}
	}
	fmt.Printf("\nload average at end: %s\n", loadavg())
	if failed {
		fmt.Println("GOAL MISSED in at least one variant")
	}
}

// measure runs one forward through fresh shaping proxies and returns the
// client's octets and the wall time, then checks every recipient's copy.
func (e *env) measure(bps float64, rtt time.Duration, run func(imapAddr, smtpAddr string, r *result) error) (*result, error) {
	ip, err := newShaper(e.imapAddr, bps, rtt)
	if err != nil {
		return nil, err
	}
	defer ip.close()
	sp, err := newShaper(e.smtpAddr, bps, rtt)
	if err != nil {
		return nil, err
	}
	defer sp.close()
	before, err := e.inboxCounts()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	r := &result{last: start}
	if err := run(ip.addr(), sp.addr(), r); err != nil {
		return nil, err
	}
	r.wall = time.Since(start)
	r.bytes = ip.bytes() + sp.bytes()
	if r.undelivered {
		return r, nil
	}
	return r, e.checkDelivered(before)
}

func setup(nrcpt, seconds int) (*env, func(), error) {
	dir, err := os.MkdirTemp("", "lemonvox-bench-forward-")
	if err != nil {
		return nil, nil, err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := vmstore.Open(vmstore.Options{Dir: dir, Logger: logger})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	e := &env{st: st}
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		st.Close()
		os.RemoveAll(dir)
	}
	fail := func(err error) (*env, func(), error) { cleanup(); return nil, nil, err }
	users := []string{sender}
	for i := 1; i <= nrcpt; i++ {
		u := fmt.Sprintf("rcpt%02d", i)
		users = append(users, u)
		e.rcpts = append(e.rcpts, u+"@"+domain)
	}
	for _, u := range users {
		if _, err := st.CreateAccount(vmstore.AccountSpec{Name: u, Password: password}); err != nil {
			return fail(err)
		}
	}
	if _, err := st.CreateMailbox(sender, "Sent", ""); err != nil && !errors.Is(err, vmstore.ErrExists) {
		return fail(err)
	}
	// A 60-s voicemail as a PBX leaves it: G.711 mu-law WAV, base64.
	audio := make([]byte, 8000*seconds)
	rand.New(rand.NewSource(1)).Read(audio)
	wav := wavMuLaw(audio)
	e.audioHash = sha256.Sum256(wav)
	vm := vmstore.VoiceMessage{From: "+15551234567@" + domain, To: sender + "@" + domain, MediaType: "audio/wav",
		Duration: time.Duration(seconds) * time.Second, Media: bytes.NewReader(wav), Date: time.Now()}
	dr, err := st.Deposit(vmstore.DepositReq{User: sender, Body: vm.Compose()})
	if err != nil {
		return fail(err)
	}
	e.uid, e.uidv, e.msgSize = dr.Message.UID, dr.Mailbox.UIDValidity, dr.Message.Size

	e.res = channel.NewResolver(st, urlHost)
	srv := newIMAPServer(st, e.res, logger)
	if err := srv.Initialize(); err != nil {
		return fail(err)
	}
	closers = append(closers, srv.Close)
	e.imapAddr = srv.PlainAddr()
	addr, note, stop, err := startSubmission(st, e.res, logger)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, stop)
	e.smtpAddr, e.smtpNote = addr, note
	return e, cleanup, nil
}

// wavMuLaw wraps G.711 mu-law samples (8 kHz mono) in a WAV file.
func wavMuLaw(data []byte) []byte {
	var b bytes.Buffer
	le32 := func(v uint32) { b.Write([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
	le16 := func(v uint16) { b.Write([]byte{byte(v), byte(v >> 8)}) }
	b.WriteString("RIFF")
	le32(uint32(4 + 26 + 12 + 8 + len(data)))
	b.WriteString("WAVEfmt ")
	le32(18)
	le16(7) // mu-law
	le16(1)
	le32(8000)
	le32(8000)
	le16(1)
	le16(8)
	le16(0)
	b.WriteString("fact")
	le32(4)
	le32(uint32(len(data)))
	b.WriteString("data")
	le32(uint32(len(data)))
	b.Write(data)
	return b.Bytes()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// The forward both paths build: new headers and a text part, the
// voicemail's audio part (its MIME header and its body, still base64),
// the closing boundary.
func (e *env) forwardHead() string {
	return "From: Alice <" + sender + "@" + domain + ">\r\nTo: " + strings.Join(e.rcpts, ", ") +
		"\r\nSubject: Fwd: voice message\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=fwd\r\n\r\n" +
		"--fwd\r\nContent-Type: text/plain\r\n\r\nListen to this one.\r\n--fwd\r\n"
}

const forwardTail = "\r\n--fwd--\r\n"

// reupload is the reference: the handset downloads the voicemail, builds
// the forward around its audio part, uploads it to Sent and submits it.
func (e *env) reupload(imapAddr, smtpAddr string, r *result) error {
	m, err := dialIMAP(imapAddr)
	if err != nil {
		return err
	}
	defer m.close()
	m.send(fmt.Sprintf("a LOGIN %s %s\r\nb SELECT INBOX\r\nc UID FETCH %d BODY.PEEK[]\r\n", sender, password, e.uid))
	for _, tag := range []string{"a", "b"} {
		if _, _, err := m.wait(tag); err != nil {
			return err
		}
	}
	_, lits, err := m.wait("c")
	if err != nil {
		return err
	}
	r.step("login+select+fetch")
	if len(lits) != 1 {
		return fmt.Errorf("FETCH BODY[]: %d literals", len(lits))
	}
	mime, body, err := audioPart(lits[0])
	if err != nil {
		return err
	}
	fwd := e.forwardHead() + mime + body + forwardTail
	m.send(fmt.Sprintf("d APPEND Sent (\\Seen) {%d+}\r\n%s\r\n", len(fwd), fwd))
	if _, _, err := m.wait("d"); err != nil {
		return err
	}
	r.step("append")
	s, err := dialSMTP(smtpAddr)
	if err != nil {
		return err
	}
	defer s.close()
	r.step("smtp ehlo+auth")
	if err := s.envelope(e.rcpts); err != nil {
		return err
	}
	r.step("envelope")
	err = s.data(fwd)
	r.step("data")
	return err
}

// catenateBURL: the forward is assembled on the server, authorized for the
// submission server and submitted by reference.
func (e *env) catenateBURL(imapAddr, smtpAddr string, r *result) error {
	m, err := dialIMAP(imapAddr)
	if err != nil {
		return err
	}
	defer m.close()
	// The handset knows the message and its structure from its last sync;
	// it asks for BODYSTRUCTURE anyway, as a client about to forward does.
	m.send(fmt.Sprintf("a LOGIN %s %s\r\nb SELECT INBOX\r\nc UID FETCH %d BODYSTRUCTURE\r\n", sender, password, e.uid))
	for _, tag := range []string{"a", "b", "c"} {
		if _, _, err := m.wait(tag); err != nil {
			return err
		}
	}
	r.step("login+select+bodystructure")
	head := e.forwardHead()
	src := fmt.Sprintf("/INBOX;UIDVALIDITY=%d/;UID=%d/;SECTION=", e.uidv, e.uid)
	m.send(fmt.Sprintf("d APPEND Sent (\\Seen) CATENATE (TEXT {%d+}\r\n%s URL \"%s1.MIME\" URL \"%s1\" TEXT {%d+}\r\n%s)\r\n",
		len(head), head, src, src, len(forwardTail), forwardTail))
	tagged, _, err := m.wait("d")
	if err != nil {
		return err
	}
	mt := regexp.MustCompile(`APPENDUID (\d+) (\d+)`).FindStringSubmatch(tagged)
	if mt == nil {
		return fmt.Errorf("CATENATE: %q", tagged)
	}
	r.step("catenate")
	rump := fmt.Sprintf("imap://%s@%s/Sent;UIDVALIDITY=%s/;UID=%s;URLAUTH=submit+%s", sender, urlHost, mt[1], mt[2], sender)
	m.send(fmt.Sprintf("e GENURLAUTH \"%s\" INTERNAL\r\n", rump))
	tagged, lines, err := m.waitAny("e")
	if err != nil {
		return err
	}
	var url string
	if strings.HasPrefix(tagged, "e OK") {
		for _, l := range lines {
			if rest, ok := strings.CutPrefix(l, "* GENURLAUTH "); ok {
				url = strings.Trim(rest, `"`)
			}
		}
	}
	if url == "" {
		// GENURLAUTH not offered by this build: authorize in process and
		// say so (the command costs one round trip and ~250 octets).
		u, err := channel.Parse(rump)
		if err != nil {
			return err
		}
		uv, _ := strconv.ParseUint(mt[1], 10, 32)
		uid, _ := strconv.ParseUint(mt[2], 10, 32)
		url, err = e.res.AuthorizeMessage(sender, "Sent", uint32(uv), uint32(uid), "", u.Access, time.Time{})
		if err != nil {
			return err
		}
		r.notes = append(r.notes, "GENURLAUTH answered "+strconv.Quote(tagged)+": URL authorized in process")
	}
	r.step("genurlauth")
	s, err := dialSMTP(smtpAddr)
	if err != nil {
		return err
	}
	defer s.close()
	r.step("smtp ehlo+auth")
	if _, ok := s.ext["BURL"]; !ok {
		// RFC 4468 s3: BURL may show only once authenticated.
		if err := s.ehlo(); err != nil {
			return err
		}
		r.notes = append(r.notes, "BURL announced after AUTH only: one more EHLO")
	}
	if _, ok := s.ext["BURL"]; !ok {
		r.undelivered = true
		r.notes = append(r.notes, "the submission server offers no BURL: the CATENATE path is measured up to the authorized URL and one submission session (EHLO, AUTH), without the transaction")
		return nil
	}
	if err := s.envelope(e.rcpts); err != nil {
		return err
	}
	r.step("envelope")
	err = s.burl(url)
	r.step("burl")
	return err
}

// audioPart cuts part 1 of a downloaded message: its MIME header (with
// the empty line) and its body, as BODY[1.MIME] and BODY[1] would.
func audioPart(msg []byte) (string, string, error) {
	mt := regexp.MustCompile(`boundary="?([^";\r\n]+)"?`).FindSubmatch(msg)
	if mt == nil {
		return "", "", errors.New("no boundary in the downloaded message")
	}
	delim := append([]byte("--"), mt[1]...)
	i := bytes.Index(msg, append(append([]byte{}, delim...), '\r', '\n'))
	if i < 0 {
		return "", "", errors.New("no first part")
	}
	start := i + len(delim) + 2
	h := bytes.Index(msg[start:], []byte("\r\n\r\n"))
	if h < 0 {
		return "", "", errors.New("no part header end")
	}
	bodyStart := start + h + 4
	end := bytes.Index(msg[bodyStart:], append([]byte("\r\n"), delim...))
	if end < 0 {
		return "", "", errors.New("no part end")
	}
	return string(msg[start:bodyStart]), string(msg[bodyStart : bodyStart+end]), nil
}

// inboxCounts returns each recipient's INBOX UIDNEXT.
func (e *env) inboxCounts() (map[string]uint32, error) {
	n := map[string]uint32{}
	for _, r := range e.rcpts {
		u, _, _ := strings.Cut(r, "@")
		mb, err := e.st.Mailbox(u, "INBOX")
		if err != nil {
			return nil, err
		}
		n[u] = mb.UIDNext
	}
	return n, nil
}

// checkDelivered checks that every recipient received one new message
// whose part 2 decodes to the original audio.
func (e *env) checkDelivered(before map[string]uint32) error {
	for u, next := range before {
		var uid uint32
		var err error
		for try := 0; try < 100; try++ { // delivery may finish just after the reply
			var mb *vmstore.Mailbox
			if mb, err = e.st.Mailbox(u, "INBOX"); err == nil && mb.UIDNext > next {
				uid = mb.UIDNext - 1
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if uid == 0 {
			return fmt.Errorf("%s received nothing (%v)", u, err)
		}
		p, err := message.Open(e.st, u, "INBOX", uid, message.Section{Path: []int{2}}, message.Decoded)
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		h := sha256.New()
		_, err = io.Copy(h, p.Reader())
		p.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", u, err)
		}
		if !bytes.Equal(h.Sum(nil), e.audioHash[:]) {
			return fmt.Errorf("%s: the audio received differs from the original", u)
		}
	}
	return nil
}

// imapc is a minimal IMAP client: what a handset sends, nothing more.
type imapc struct {
	c net.Conn
	r *bufio.Reader
}

func dialIMAP(addr string) (*imapc, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	m := &imapc{c: c, r: bufio.NewReaderSize(c, 64<<10)}
	if l, err := m.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "* OK") {
		c.Close()
		return nil, fmt.Errorf("IMAP greeting %q: %v", l, err)
	}
	return m, nil
}

func (m *imapc) send(s string) { io.WriteString(m.c, s) }

func (m *imapc) close() {
	io.WriteString(m.c, "z LOGOUT\r\n")
	m.c.Close()
}

// wait reads the answer to tag, which must be OK.
func (m *imapc) wait(tag string) (string, [][]byte, error) {
	tagged, _, lits, err := m.read(tag)
	if err == nil && !strings.HasPrefix(tagged, tag+" OK") {
		err = fmt.Errorf("IMAP: %s", tagged)
	}
	return tagged, lits, err
}

// waitAny reads the answer to tag, whatever it is.
func (m *imapc) waitAny(tag string) (string, []string, error) {
	tagged, lines, _, err := m.read(tag)
	return tagged, lines, err
}

func (m *imapc) read(tag string) (string, []string, [][]byte, error) {
	var lines []string
	var lits [][]byte
	lit := regexp.MustCompile(`~?\{(\d+)\}$`)
	for {
		l, err := m.r.ReadString('\n')
		if err != nil {
			return "", nil, nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		if strings.HasPrefix(l, tag+" ") {
			return l, lines, lits, nil
		}
		lines = append(lines, l)
		if mt := lit.FindStringSubmatch(l); mt != nil {
			n, _ := strconv.Atoi(mt[1])
			b := make([]byte, n)
			if _, err := io.ReadFull(m.r, b); err != nil {
				return "", nil, nil, err
			}
			lits = append(lits, b)
		}
	}
}

// smtpc is a minimal submission client: EHLO, AUTH PLAIN, the envelope
// pipelined when the server offers PIPELINING, DATA or BURL.
type smtpc struct {
	t   *textproto.Conn
	ext map[string]string
}

func dialSMTP(addr string) (*smtpc, error) {
	t, err := textproto.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &smtpc{t: t, ext: map[string]string{}}
	if _, _, err := t.ReadResponse(220); err != nil {
		t.Close()
		return nil, err
	}
	if err := s.ehlo(); err != nil {
		t.Close()
		return nil, err
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + sender + "\x00" + password))
	if err := t.PrintfLine("AUTH PLAIN %s", auth); err != nil {
		return nil, err
	}
	if _, _, err := t.ReadResponse(235); err != nil {
		t.Close()
		return nil, err
	}
	return s, nil
}

func (s *smtpc) ehlo() error {
	if err := s.t.PrintfLine("EHLO handset.example.net"); err != nil {
		return err
	}
	_, msg, err := s.t.ReadResponse(250)
	if err != nil {
		return err
	}
	s.ext = map[string]string{}
	for _, l := range strings.Split(msg, "\n")[1:] {
		k, v, _ := strings.Cut(l, " ")
		s.ext[strings.ToUpper(k)] = v
	}
	return nil
}

func (s *smtpc) envelope(rcpts []string) error {
	cmds := []string{"MAIL FROM:<" + sender + "@" + domain + ">"}
	for _, r := range rcpts {
		cmds = append(cmds, "RCPT TO:<"+r+">")
	}
	_, pipelining := s.ext["PIPELINING"]
	if pipelining {
		for _, c := range cmds {
			s.t.W.WriteString(c + "\r\n")
		}
		if err := s.t.W.Flush(); err != nil {
			return err
		}
	}
	for _, c := range cmds {
		if !pipelining {
			if err := s.t.PrintfLine("%s", c); err != nil {
				return err
			}
		}
		if _, _, err := s.t.ReadResponse(250); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	return nil
}

func (s *smtpc) data(msg string) error {
	if err := s.t.PrintfLine("DATA"); err != nil {
		return err
	}
	if _, _, err := s.t.ReadResponse(354); err != nil {
		return err
	}
	w := s.t.DotWriter()
	io.WriteString(w, msg)
	if err := w.Close(); err != nil {
		return err
	}
	_, _, err := s.t.ReadResponse(250)
	return err
}

func (s *smtpc) burl(url string) error {
	if err := s.t.PrintfLine("BURL %s LAST", url); err != nil {
		return err
	}
	_, _, err := s.t.ReadResponse(250)
	return err
}

func (s *smtpc) close() {
	s.t.PrintfLine("QUIT")
	s.t.Close()
}

func newIMAPServer(st *vmstore.Store, res *channel.Resolver, logger *slog.Logger) *imap.Server {
	return &imap.Server{Store: st, Addr: "127.0.0.1:0", Logger: logger, URLResolver: res}
}
