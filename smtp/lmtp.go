package smtp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/vmstore"
	"github.com/lemonvox/lemonvox/vmstore/deposit"
)

// LMTPConfig configures the LMTP deposit listener.
type LMTPConfig struct {
	// Listen is a TCP address (default none; the daemon's default is
	// 127.0.0.1:2424); Socket a unix socket path. Either or both.
	Listen, Socket string
	// SocketMode is the unix socket's permission bits (default 0660).
	SocketMode uint32
	// Domain names this server in its greeting (default "localhost").
	Domain string
	// Domains, if set, are the recipient domains accepted; a recipient
	// of another domain is 550 5.1.1. Empty accepts any domain (the local
	// part names the account).
	Domains []string
	// MaxConnections bounds open connections (0: no limit).
	MaxConnections int
	// MaxMessageSize bounds a message in bytes (advertised as SIZE;
	// default 64 MiB).
	MaxMessageSize int64
	// MaxRecipients bounds the recipients of one message (default 100).
	MaxRecipients int
	// IdleTimeout bounds the wait for a command or data (default 5 min);
	// FirstTimeout the time from connect to LHLO (default 30 s).
	IdleTimeout, FirstTimeout time.Duration
	Registry                  *netlimit.Registry
	Logger                    *slog.Logger
}

// LMTP is the LMTP deposit service.
type LMTP struct {
	st  *vmstore.Store
	cfg LMTPConfig
	log *slog.Logger

	mu  sync.Mutex
	srv *gosmtp.Server
	lns []net.Listener
	wg  sync.WaitGroup
}

// NewLMTP returns the service; Start opens its listeners.
func NewLMTP(st *vmstore.Store, cfg LMTPConfig) *LMTP {
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.MaxMessageSize <= 0 {
		cfg.MaxMessageSize = 64 << 20
	}
	if cfg.MaxRecipients <= 0 {
		cfg.MaxRecipients = 100
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 5 * time.Minute
	}
	if cfg.FirstTimeout <= 0 {
		cfg.FirstTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &LMTP{st: st, cfg: cfg, log: cfg.Logger.With("service", "lmtp")}
	s := gosmtp.NewServer(gosmtp.BackendFunc(l.newSession))
	s.LMTP = true
	s.Domain = cfg.Domain
	s.MaxMessageBytes = cfg.MaxMessageSize
	s.MaxRecipients = cfg.MaxRecipients
	s.MaxLineLength = 4096
	s.EnableBINARYMIME = true
	s.WriteTimeout = time.Minute
	s.ErrorLog = slogPrinter{l.log}
	l.srv = s
	return l
}

// Start listens on the configured TCP address and/or socket and serves.
func (l *LMTP) Start() error {
	type where struct{ network, addr string }
	var ws []where
	if l.cfg.Listen != "" {
		ws = append(ws, where{"tcp", l.cfg.Listen})
	}
	if l.cfg.Socket != "" {
		ws = append(ws, where{"unix", l.cfg.Socket})
	}
	if len(ws) == 0 {
		return errors.New("smtp: lmtp: neither listen nor socket configured")
	}
	for _, w := range ws {
		ln, err := Listen(ListenConfig{Name: "lmtp", Network: w.network, Addr: w.addr,
			SocketMode: fsMode(l.cfg.SocketMode), MaxConns: l.cfg.MaxConnections,
			FirstDeadline: l.cfg.FirstTimeout, IdleTimeout: l.cfg.IdleTimeout,
			Registry: l.cfg.Registry, Logger: l.cfg.Logger})
		if err != nil {
			l.Close()
			return err
		}
		l.mu.Lock()
		l.lns = append(l.lns, ln)
		l.mu.Unlock()
		l.log.Info("lmtp: listening", "network", w.network, "addr", ln.Addr().String())
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			if err := l.srv.Serve(&dataListener{Listener: ln, maxSize: l.cfg.MaxMessageSize}); err != nil && !errors.Is(err, gosmtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				l.log.Error("lmtp: serve", "err", err)
			}
		}()
	}
	return nil
}

// Addrs returns the addresses listened on.
func (l *LMTP) Addrs() []net.Addr {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []net.Addr
	for _, ln := range l.lns {
		out = append(out, ln.Addr())
	}
	return out
}

// Close stops listening and closes open connections; a deposit being
// committed finishes first (the store acknowledges only durable commits).
func (l *LMTP) Close() error {
	err := l.srv.Close()
	l.wg.Wait()
	if l.cfg.Socket != "" {
		_ = removeSocket(l.cfg.Socket)
	}
	if errors.Is(err, gosmtp.ErrServerClosed) {
		err = nil
	}
	return err
}

func (l *LMTP) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	Activate(c.Conn())
	return &lmtpSession{l: l, conn: c, remote: c.Conn().RemoteAddr().String()}, nil
}

// lmtpSession is one LMTP connection's transaction state.
type lmtpSession struct {
	l      *LMTP
	conn   *gosmtp.Conn
	remote string

	from  string
	size  int64
	body  gosmtp.BodyType
	rcpts []rcpt
}

// rcpt is an accepted recipient: its address and the local account it
// names ("" for a remote recipient of a submission).
type rcpt struct {
	addr, user string
}

func (s *lmtpSession) Reset() {
	s.from, s.size, s.body, s.rcpts = "", 0, "", nil
}

func (s *lmtpSession) Logout() error { return nil }

func (s *lmtpSession) Mail(from string, opts *gosmtp.MailOptions) error {
	s.Reset()
	s.from = from
	if opts != nil {
		s.size = opts.Size
		s.body = opts.Body
	}
	if s.size > s.l.cfg.MaxMessageSize {
		return s.refuse(ErrTooBig)
	}
	return nil
}

// Rcpt accepts a recipient whose account exists and whose quota has room
// for the message as far as is known now (its SIZE=, else an empty one).
func (s *lmtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	user, rerr := s.userOf(to)
	if rerr != nil {
		return s.refuse(rerr)
	}
	if err := deposit.CheckQuota(s.l.st, user, s.size); err != nil {
		return s.refuse(StoreReply(err))
	}
	s.rcpts = append(s.rcpts, rcpt{addr: to, user: user})
	return nil
}

// userOf maps a recipient address to an account name: the local part,
// folded as account names are, of an accepted domain.
func (s *lmtpSession) userOf(addr string) (string, *gosmtp.SMTPError) {
	local, domain, ok := strings.Cut(addr, "@")
	if !ok || local == "" {
		if addr == "" || strings.ContainsAny(addr, " <>") {
			return "", ErrBadMailbox
		}
		local = addr
	}
	if len(s.l.cfg.Domains) > 0 {
		okDomain := false
		for _, d := range s.l.cfg.Domains {
			if strings.EqualFold(d, domain) {
				okDomain = true
			}
		}
		if !okDomain {
			return "", ErrUnknownUser
		}
	}
	if strings.HasPrefix(local, `"`) {
		return "", ErrUnknownUser
	}
	a, err := s.l.st.GetAccount(vmstore.FoldUserName(local))
	if err != nil {
		if errors.Is(err, vmstore.ErrNotFound) || errors.Is(err, vmstore.ErrInvalidName) {
			return "", ErrUnknownUser
		}
		return "", ErrTempFailure
	}
	return a.Name, nil
}

func (s *lmtpSession) refuse(e *gosmtp.SMTPError) error {
	CountRefusal("lmtp", e.Code)
	return e
}

// Data is not used in LMTP mode (LMTPData is); it stores for all
// recipients and answers with the first refusal.
func (s *lmtpSession) Data(r io.Reader) error {
	var first error
	s.deliver(r, func(_ string, err error) {
		if first == nil && err != nil {
			first = err
		}
	})
	return first
}

// LMTPData stores the message for every recipient in one durable commit
// and gives each recipient its reply.
func (s *lmtpSession) LMTPData(r io.Reader, status gosmtp.StatusCollector) error {
	if dc, ok := s.conn.Conn().(*dataConn); ok {
		if fb := dc.takeData(); fb != nil {
			// The body is read from the connection in bulk (fastdata.go);
			// go-smtp's reader then sees an empty one.
			defer fb.drain()
			r = fb
		}
	}
	s.deliver(r, status.SetStatus)
	return nil
}

func (s *lmtpSession) deliver(r io.Reader, set func(rcpt string, err error)) {
	start := time.Now()
	cr := &countingReader{r: r}
	users := make([]string, len(s.rcpts))
	for i, rc := range s.rcpts {
		users[i] = rc.user
	}
	body := s.withTrace(bufio.NewReaderSize(cr, 4096))
	res, err := deposit.DepositEach(s.l.st, users, body, deposit.Options{Service: "lmtp"})
	// The reader must be consumed (a refusal before the end of the data).
	_, _ = io.Copy(io.Discard, cr)
	CountBytes("lmtp", cr.n)
	accepted := 0
	for i, rc := range s.rcpts {
		var e error
		switch {
		case err != nil:
			e = StoreReply(err)
		case res[i].Err != nil:
			e = StoreReply(res[i].Err)
		}
		if e != nil {
			CountRefusal("lmtp", e.(*gosmtp.SMTPError).Code)
			set(rc.addr, e)
			continue
		}
		accepted++
		CountDelivery("lmtp")
		set(rc.addr, Reply(250, 2, 1, 5, fmt.Sprintf("Delivered, uid %d", res[i].Res.Message.UID)))
	}
	attrs := []any{"remote", s.remote, "from", s.from, "recipients", len(s.rcpts), "accepted", accepted,
		"bytes", cr.n, "body", string(s.body), "elapsed", time.Since(start).Round(time.Microsecond)}
	if err != nil {
		s.l.log.Warn("lmtp: delivery failed", append(attrs, "err", err)...)
	} else {
		s.l.log.Info("lmtp: delivered", attrs...)
	}
}

// withTrace puts Return-Path and Received fields before a message (not
// before a bare MMS PDU, which is no RFC 5322 message until it is mapped).
func (s *lmtpSession) withTrace(br *bufio.Reader) io.Reader {
	head, _ := br.Peek(16)
	if deposit.IsMMSPDU(head) {
		return br
	}
	helo := s.conn.Hostname()
	trace := fmt.Sprintf("Return-Path: <%s>\r\nReceived: from %s by %s with LMTP; %s\r\n",
		sanitize(s.from), sanitize(helo), s.l.cfg.Domain, time.Now().Format(time.RFC1123Z))
	return io.MultiReader(strings.NewReader(trace), br)
}

// sanitize keeps a client-supplied name printable and on one line.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x21 || r > 0x7e || r == '(' || r == ')' || r == '<' || r == '>' {
			return -1
		}
		return r
	}, s)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// slogPrinter is go-smtp's Logger on slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) {
	p.l.Warn("lmtp: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (p slogPrinter) Println(v ...any) { p.l.Warn("lmtp: " + strings.TrimSpace(fmt.Sprintln(v...))) }
