package imap

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/imap/wire"
	"github.com/lemonvox/lemonvox/vmstore"
)

// writeTimeout bounds each write to the client: one that stops reading
// must not hold its session (and the notifier) forever.
const writeTimeout = 5 * time.Minute

// levelTrace is below debug: protocol lines, credentials redacted.
const levelTrace = slog.LevelDebug - 4

// state is a session state (RFC 9051 s3), as a bit so that the command table
// can hold a set.
type state uint8

const (
	stateNotAuth state = 1 << iota
	stateAuth
	stateSelected

	statesAny     = stateNotAuth | stateAuth | stateSelected
	statesAuthSel = stateAuth | stateSelected
)

func (s state) String() string {
	switch s {
	case stateNotAuth:
		return "not authenticated"
	case stateAuth:
		return "authenticated"
	case stateSelected:
		return "selected"
	}
	return "unknown"
}

// ioError wraps a connection read/write failure: the connection ends.
type ioError struct{ err error }

// byeError ends the connection after sending * BYE with its text.
type byeError struct{ text string }

// conn is one client connection and its session.
type conn struct {
	srv    *Server
	id     uint64
	nc     net.Conn // TLS conn once TLS is active
	isTLS  bool
	dec    *wire.Decoder
	enc    *wire.Encoder
	zw     *flate.Writer // COMPRESS=DEFLATE output, when active
	zbuf   *bufio.Writer // collects the compressed octets of one flush
	zin    *dirtyWriter  // in front of zw: was anything written since the last flush
	zr     *wire.Inflater
	log    *slog.Logger
	remote string // client address, for the logs
	// connected is when the connection was accepted: the pre-auth
	// deadline counts from it.
	connected time.Time

	state   state
	user    string
	sub     *vmstore.Subscription
	sel     *selected
	rev2    bool // ENABLE IMAP4rev2
	cstore  bool // CONDSTORE enabled (by any enabling command)
	qresync bool // ENABLE QRESYNC
	// anonymous: logged in with SASL ANONYMOUS (user is ""); only the
	// commands of anonymousCommands are served (cmd_urlauth.go).
	anonymous bool

	// acctID is the identity of the account logged in (vmstore.Account.ID);
	// acctGone is set once that account is deleted: every command then
	// ends the session with BYE (account.go).
	acctID   uint64
	acctGone atomic.Bool
	delGen   uint64 // vmstore.Store.AccountDeletions when last checked

	// modseqSent: a MODSEQ went out in this command (see flushUpdates).
	modseqSent bool
	enabled    map[string]bool
	bad        int

	ownMeta    []string    // metadata entries this session set, not to report back
	pendMeta   [][2]string // unsolicited METADATA (mailbox, entry) to send
	pendNotify []string    // NOTIFY responses for other mailboxes
	ownNames   []string    // mailbox names this session changed (no NOTIFY echo)

	// mu is held while a command runs; the notifier goroutine takes it to
	// push changes during IDLE or under NOTIFY.
	mu        sync.Mutex
	idling    bool
	idleTag   string // tag of the IDLE command in progress
	endOnce   sync.Once
	pushing   atomic.Bool // a notifyPush runs
	pushAgain atomic.Bool // another notification came meanwhile
	notify    *notifySpec
	done      chan struct{}

	cmd     string // current command name, upper case
	okText  string // tagged OK text of the current command, "" = default
	okDone  bool   // the handler wrote the tagged OK itself (STARTTLS, COMPRESS)
	closing bool
}

func newConn(s *Server, nc net.Conn, implicitTLS bool) *conn {
	c := &conn{
		srv:   s,
		id:    s.nextConn.Add(1),
		nc:    nc,
		isTLS: implicitTLS,
		state: stateNotAuth,
		done:  make(chan struct{}),

		connected: time.Now(),
	}
	c.remote = nc.RemoteAddr().String()
	c.log = slog.New(connHandler{s.Logger.Handler(), c})
	c.dec = wire.NewDecoder(nc)
	c.enc = wire.NewEncoder(deadlineWriter{nc})
	c.setLimits()
	c.dec.Continue = func() error {
		c.enc.Raw("+ Ready for literal data\r\n")
		return c.flush()
	}
	return c
}

func (c *conn) netConn() net.Conn { return c.nc }

func (c *conn) setLimits() {
	c.dec.MaxLiteral = maxStringLiteral
	c.dec.MaxNonSync = 0
	if c.literalMinus() {
		c.dec.MaxNonSync = wire.MaxNonSyncLiteral
	}
}

// literalMinus: non-synchronizing literals are bounded to 4096 octets
// (RFC 7888 s5) when the server is configured so.
func (c *conn) literalMinus() bool { return c.srv.LiteralMinus }

// flush sends buffered responses through the compressor if active.
func (c *conn) flush() error {
	if err := c.enc.Flush(); err != nil {
		return err
	}
	if c.zw != nil {
		// An empty sync flush would reach the client as a read that
		// inflates to nothing, which some clients take for a broken
		// response.
		if !c.zin.dirty {
			return nil
		}
		c.zin.dirty = false
		if err := c.zw.Flush(); err != nil {
			return err
		}
		return c.zbuf.Flush()
	}
	return nil
}

// xflush flushes or ends the connection.
func (c *conn) xflush() {
	if err := c.flush(); err != nil {
		panic(ioError{err})
	}
}

func (c *conn) writeLine(format string, args ...any) {
	if len(args) == 0 {
		c.enc.Raw(format)
	} else {
		c.enc.Raw(fmt.Sprintf(format, args...))
	}
	c.enc.CRLF()
}

func (c *conn) serve() {
	metricOpen.Inc()
	c.log.Debug("imap connection")
	if tc, ok := c.nc.(*tls.Conn); ok {
		c.nc.SetDeadline(time.Now().Add(c.srv.handshakeTimeout()))
		if err := tc.Handshake(); err != nil {
			c.log.Debug("imap tls handshake", "err", err)
			c.end()
			return
		}
		c.nc.SetDeadline(time.Time{})
	}
	host := c.srv.Hostname
	if host == "" {
		host = "Lemonvox"
	}
	c.writeLine("* OK [CAPABILITY %s] %s IMAP4rev2 server ready", c.capabilities(), host)
	if c.flush() != nil {
		c.end()
		return
	}
	c.run()
}

// end tears the connection down (once).
func (c *conn) end() {
	c.endOnce.Do(func() {
		c.mu.Lock()
		if c.idling { // ended in IDLE (timeout, hangup, shutdown)
			c.idling = false
			metricIdle.Dec()
		}
		c.mu.Unlock()
		c.cleanup()
		c.nc.Close()
		metricOpen.Dec()
		s := c.srv
		s.mu.Lock()
		delete(s.conns, c)
		s.unbindLocked(c)
		s.mu.Unlock()
		s.wg.Done()
	})
}

// run serves commands until the connection ends or parks. Waiting for the
// client (for the next command, or for DONE in IDLE), a session holds no
// buffers and no grown stack: this goroutine ends and a fresh one, with a
// small stack, waits (park.go), so that an idle session does not keep the
// stack grown while serving commands.
func (c *conn) run() {
	for {
		// Before authentication the deadline is absolute, from connect:
		// commands (NOOP...) do not extend it.
		deadline := c.connected.Add(c.srv.preAuthTimeout())
		if c.state != stateNotAuth {
			deadline = time.Now().Add(c.srv.idleTimeout())
		}
		c.nc.SetReadDeadline(deadline)
		c.mu.Lock() // the notifier writes too
		c.enc.Park()
		c.mu.Unlock()
		c.dec.Park()
		if c.dec.Parked() {
			go c.waitAndRun()
			return
		}
		if !c.step() {
			c.end()
			return
		}
	}
}

// waitAndRun waits, on a fresh goroutine, until the client sends
// something, then serves it.
func (c *conn) waitAndRun() {
	if err := c.waitForClient(); err != nil {
		c.readFailed(err)
		c.end()
		return
	}
	if !c.step() {
		c.end()
		return
	}
	c.run()
}

// step reads and serves one command, or the DONE that ends IDLE. It
// reports whether the connection goes on.
func (c *conn) step() bool {
	if c.idling {
		return c.idleDone()
	}
	err := c.dec.Begin()
	if errors.Is(err, wire.ErrLineTooLong) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.writeLine("* BAD [TOOBIG] command line too long")
		return !c.countBad() && c.flush() == nil
	}
	if err != nil {
		c.readFailed(err)
		return false
	}
	return c.command()
}

// readFailed ends a connection whose read failed: a timeout is an
// autologout (RFC 9051 s5.4).
func (c *conn) readFailed(err error) {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.mu.Lock()
		if c.state == stateNotAuth {
			c.writeLine("* BYE autologout; not authenticated in time")
		} else {
			c.writeLine("* BYE autologout; idle for too long")
		}
		c.flush()
		c.mu.Unlock()
	} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		c.log.Debug("imap read", "err", err)
	}
}

func (c *conn) cleanup() {
	if c.sub != nil {
		c.sub.SetNotify(nil)
	}
	close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zr != nil {
		c.zr.Close()
	}
	if c.sub != nil {
		c.sub.Close()
		c.sub = nil
	}
	if c.user != "" && !c.acctGone.Load() {
		if err := c.srv.Store.RecordSession(c.user, false, "imap", c.nc.RemoteAddr().String(), c.nc.LocalAddr().String()); err != nil {
			c.log.Debug("record logout", "err", err)
		}
	}
}

// countBad counts a BAD reply and reports whether the connection must end.
func (c *conn) countBad() bool {
	c.bad++
	if c.bad >= maxBadCommands {
		c.writeLine("* BYE too many invalid commands")
		c.flush()
		return true
	}
	c.flush()
	return false
}

// command reads, runs and answers one command. It reports whether the
// connection continues.
func (c *conn) command() (cont bool) {
	start := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.acctGone.Load() || c.accountDeletedMeanwhile() {
		c.writeLine("* BYE %s", accountGoneText)
		c.flush()
		return false
	}
	p := &parser{Decoder: c.dec, c: c}
	tag := "*"
	name := ""
	c.cmd, c.okText, c.okDone = "", "", false
	defer func() {
		x := recover()
		switch x.(type) {
		case nil, syntaxError, ioError, byeError:
		default:
			if x != errLogout && c.accountGone() {
				// What failed is the account itself: the session ends
				// (account.go), whatever the command was.
				x = byeError{accountGoneText}
			}
		}
		result := "ok"
		label := "unknown"
		if commands[name] != nil {
			label = name
		}
		cont = true
		switch e := x.(type) {
		case nil:
			c.bad = 0
			if c.okDone {
				break
			}
			c.flushUpdates(!noExpungeDuring[name])
			if c.okText == "" {
				c.okText = name + " completed"
			}
			c.writeLine("%s OK %s", tag, c.okText)
			c.bad = 0
		case syntaxError:
			result = "bad"
			if err := c.dec.SkipCommand(); err != nil {
				cont = false
				return
			}
			code := ""
			if e.code != "" {
				code = "[" + e.code + "] "
			}
			c.writeLine("%s BAD %s%s", tag, code, e.msg)
			cont = !c.countBad()
		case userError:
			result = "no"
			if err := c.dec.SkipCommand(); err != nil {
				cont = false
				return
			}
			c.flushUpdates(!noExpungeDuring[name])
			code := ""
			if e.code != "" {
				code = "[" + e.code + "] "
			}
			c.writeLine("%s NO %s%s", tag, code, e.msg)
			c.bad = 0
		case serverError:
			result = "error"
			c.log.Error("imap command failed", "cmd", name, "err", e.err)
			c.writeLine("%s NO [SERVERBUG] internal error, logged", tag)
		case ioError:
			result = "error"
			cont = false
			if !errors.Is(e.err, io.EOF) && !errors.Is(e.err, net.ErrClosed) {
				c.log.Debug("imap connection i/o", "cmd", name, "err", e.err)
			}
		case byeError:
			c.writeLine("* BYE %s", e.text)
			cont = false
		default:
			if e == errLogout {
				c.writeLine("* BYE logging out")
				c.writeLine("%s OK LOGOUT completed", tag)
				cont = false
				break
			}
			result = "error"
			c.log.Error("imap command panic", "cmd", name, "panic", x, "stack", string(debug.Stack()))
			if os.Getenv("LEMONVOX_IMAP_PANIC") != "" {
				panic(x)
			}
			c.writeLine("%s NO [SERVERBUG] internal error, logged", tag)
		}
		metricCommand.WithLabelValues(label, result).Observe(time.Since(start).Seconds())
		if c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("imap command", "cmd", label, "result", result, "duration", time.Since(start))
		}
		if err := c.flush(); err != nil || c.closing {
			cont = false
		}
	}()

	if c.log.Enabled(context.Background(), levelTrace) {
		c.log.Log(context.Background(), levelTrace, "imap C", "line", redactLine(c.dec.Line()))
	}
	var err error
	tag, err = c.dec.Atom()
	if err != nil || strings.ContainsRune(tag, '+') {
		tag = "*"
		xsyntaxf("bad tag")
	}
	p.xsp()
	name = strings.ToUpper(p.xatom())
	if name == "UID" {
		p.xsp()
		name = "UID " + strings.ToUpper(p.xatom())
	}
	c.cmd = name
	cmd := commands[name]
	if cmd == nil {
		xsyntaxf("unknown command")
	}
	if cmd.states&c.state == 0 {
		xsyntaxf("%s not allowed in %s state", name, c.state)
	}
	if c.anonymous && !anonymousCommands[name] {
		xusererrorf("NOPERM", "%s is not available to anonymous sessions", name)
	}
	if strings.HasPrefix(name, "UID ") {
		c.announceNewForUID()
	}
	cmd.handler(c, tag, p)
	return true
}

// noExpungeDuring lists commands during which EXPUNGE/VANISHED must not be
// sent, because the client numbers messages by sequence number
// (RFC 9051 s7.5.1).
var noExpungeDuring = map[string]bool{
	"FETCH":  true,
	"STORE":  true,
	"SEARCH": true,
	"SORT":   true,
	"":       true,
}

// upgradeTLS switches the connection to TLS after STARTTLS.
func (c *conn) upgradeTLS() error {
	tc := tls.Server(c.nc, c.srv.TLSConfig)
	tc.SetDeadline(time.Now().Add(c.srv.handshakeTimeout()))
	if err := tc.Handshake(); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{})
	c.nc = tc
	c.isTLS = true
	c.dec.Reset(tc)
	c.enc.Reset(deadlineWriter{tc})
	return nil
}

// startCompress switches both directions to DEFLATE (RFC 4978).
func (c *conn) startCompress(ahead []byte) error {
	c.zbuf = bufio.NewWriterSize(deadlineWriter{c.nc}, 4096)
	zw, err := flate.NewWriter(c.zbuf, flate.BestSpeed)
	if err != nil {
		return err
	}
	c.zw = zw
	var in io.Reader = c.nc
	if len(ahead) > 0 {
		in = io.MultiReader(bytes.NewReader(ahead), c.nc)
	}
	c.zr = wire.NewInflater(in)
	c.dec.Reset(c.zr)
	c.zin = &dirtyWriter{w: zw}
	c.enc.Reset(c.zin)
	return nil
}

// ensureSub subscribes the session to its account's changes and starts the
// notifier goroutine.
func (c *conn) ensureSub() {
	if c.sub != nil {
		return
	}
	c.sub = c.srv.Store.Hub().SubscribeAccount(c.user, c.acctID, hubLimit)
	// No goroutine of our own waits for the hub: its notification starts a
	// short-lived one (most sessions idle; each goroutine costs a stack).
	c.sub.SetNotify(func() { go c.notifyPush() })
}

// notifyPush pushes changes as soon as the hub reports them while the
// client is in IDLE or has set NOTIFY (RFC 2177, RFC 5465); otherwise they
// wait for the next command boundary. Notifications that arrive while a
// push runs are folded into it.
func (c *conn) notifyPush() {
	if !c.pushing.CompareAndSwap(false, true) {
		c.pushAgain.Store(true)
		return
	}
	defer c.pushing.Store(false)
	for {
		c.pushAgain.Store(false)
		c.mu.Lock()
		select {
		case <-c.done:
			c.mu.Unlock()
			return
		default:
		}
		if c.idling || c.notify != nil {
			c.pushUpdates()
		}
		c.mu.Unlock()
		if !c.pushAgain.Load() {
			return
		}
	}
}

// pushUpdates sends pending changes outside a command (IDLE, NOTIFY).
// Expunges go out only in IDLE or when NOTIFY asked for the selected
// mailbox's events without delay.
func (c *conn) pushUpdates() {
	defer func() {
		if x := recover(); x != nil {
			c.log.Error("imap push failed", "panic", x)
			c.nc.Close()
		}
	}()
	allow := c.idling || (c.notify != nil && c.notify.selected != nil && !c.notify.selectedDelayed)
	c.flushUpdates(allow)
	if err := c.flush(); err != nil || c.closing {
		c.nc.Close()
	}
	c.enc.Park()
}

// dirtyWriter notes that something was written.
type dirtyWriter struct {
	w     io.Writer
	dirty bool
}

func (d *dirtyWriter) Write(p []byte) (int, error) {
	if len(p) > 0 {
		d.dirty = true
	}
	return d.w.Write(p)
}

// redactLine hides the arguments of LOGIN and AUTHENTICATE in traces.
func redactLine(line []byte) string {
	f := strings.Fields(string(line))
	if len(f) >= 3 && (strings.EqualFold(f[1], "LOGIN") || strings.EqualFold(f[1], "AUTHENTICATE")) {
		return f[0] + " " + f[1] + " <redacted>"
	}
	if len(line) > 200 {
		return string(line[:200]) + "..."
	}
	return string(line)
}

// deadlineWriter renews the write deadline before every write, so that a
// long literal on a slow link is fine while a stalled client is not.
type deadlineWriter struct{ c net.Conn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	d.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	return d.c.Write(p)
}
