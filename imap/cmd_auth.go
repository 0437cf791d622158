package imap

import (
	"encoding/base64"
	"errors"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 9051 s6.2.1 STARTTLS.
func cmdStarttls(c *conn, tag string, p *parser) {
	p.xend()
	if c.isTLS {
		xusererrorf("", "TLS already active")
	}
	if c.srv.TLSConfig == nil {
		xusererrorf("", "TLS not available")
	}
	if c.dec.Buffered() > 0 {
		// Commands pipelined after STARTTLS would cross the TLS boundary
		// (a command injection vector, CVE-2011-0411 style).
		xsyntaxf("data after STARTTLS")
	}
	c.writeLine("%s OK begin TLS negotiation now", tag)
	c.okDone = true
	c.xflush()
	if err := c.upgradeTLS(); err != nil {
		panic(ioError{err})
	}
}

// RFC 9051 s6.2.3 LOGIN.
func cmdLogin(c *conn, tag string, p *parser) {
	p.xsp()
	user := p.xastring()
	p.xsp()
	pass := p.xastring()
	p.xend()
	if !c.plaintextAuthAllowed() {
		metricAuth.WithLabelValues("login", "refused").Inc()
		xusererrorf("PRIVACYREQUIRED", "LOGIN needs TLS (STARTTLS)")
	}
	c.xauthenticate("login", user, pass)
}

// RFC 9051 s6.2.2 AUTHENTICATE, PLAIN only (RFC 4616), with an initial
// response (SASL-IR, RFC 4959).
func cmdAuthenticate(c *conn, tag string, p *parser) {
	p.xsp()
	mech := strings.ToUpper(p.xatom())
	var initial *string
	if p.Consume(' ') {
		s := p.Rest()
		initial = &s
	}
	p.xend()
	if mech == "ANONYMOUS" && c.srv.AllowAnonymous {
		c.xanonymous(initial) // cmd_urlauth.go
		return
	}
	if mech != "PLAIN" {
		xusererrorf("CANNOT", "unsupported mechanism")
	}
	if !c.plaintextAuthAllowed() {
		metricAuth.WithLabelValues("plain", "refused").Inc()
		xusererrorf("PRIVACYREQUIRED", "AUTHENTICATE PLAIN needs TLS (STARTTLS)")
	}
	var resp string
	if initial != nil {
		resp = *initial
		if resp == "=" {
			resp = ""
		}
	} else {
		c.writeLine("+ ")
		c.xflush()
		line, err := c.dec.ReadLine()
		if err != nil {
			panic(ioError{err})
		}
		resp = line
	}
	if resp == "*" {
		xsyntaxf("authentication cancelled")
	}
	data, err := base64.StdEncoding.DecodeString(resp)
	if err != nil {
		xsyntaxf("bad base64")
	}
	var user, pass string
	srv := sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return errAuthz
		}
		user, pass = username, password
		return nil
	})
	if _, _, err := srv.Next(data); err != nil {
		if errors.Is(err, errAuthz) {
			xusererrorf("AUTHORIZATIONFAILED", "cannot act as another user")
		}
		xsyntaxf("bad PLAIN response")
	}
	c.xauthenticate("plain", user, pass)
}

var errAuthz = errors.New("authorization identity differs")

// xauthenticate checks the credentials under the authentication limiter
// (authlimit: an offending source is slowed, the account is never locked)
// and moves the session to the authenticated state.
func (c *conn) xauthenticate(mech, user, pass string) {
	ip := remoteIP(c.nc.RemoteAddr())
	att, err := c.srv.AuthLimiter.Begin(c.srv.ctx, "imap", authlimit.AddrOf(c.nc.RemoteAddr()), user)
	if err != nil {
		metricAuth.WithLabelValues(mech, "limited").Inc()
		c.log.Info("imap auth throttled", "user", user, "ip", ip, "err", err)
		xusererrorf("UNAVAILABLE", "too many failed attempts from your address, try again later")
	}
	acct, err := c.srv.Store.CheckPassword(user, pass)
	if err != nil {
		if errors.Is(err, vmstore.ErrAuth) || errors.Is(err, vmstore.ErrNotFound) || errors.Is(err, vmstore.ErrInvalidName) {
			att.Failed()
			metricAuth.WithLabelValues(mech, "fail").Inc()
			c.log.Info("imap auth failed", "user", user, "ip", ip)
			xusererrorf("AUTHENTICATIONFAILED", "invalid credentials")
		}
		xcheckf(err, "checking password")
	}
	att.Succeeded()
	metricAuth.WithLabelValues(mech, "ok").Inc()
	c.user = acct.Name
	c.acctID = acct.ID
	c.delGen = c.srv.Store.AccountDeletions()
	c.srv.mu.Lock()
	c.srv.bindLocked(c)
	c.srv.mu.Unlock()
	// Bound first, checked second: a deletion either finds this session
	// bound or is visible here.
	if c.accountGone() {
		c.srv.mu.Lock()
		c.srv.unbindLocked(c)
		c.srv.mu.Unlock()
		c.user, c.acctID = "", 0
		c.acctGone.Store(false)
		metricAuth.WithLabelValues(mech, "fail").Inc()
		xusererrorf("AUTHENTICATIONFAILED", "invalid credentials")
	}
	metricAuth.WithLabelValues(mech, "ok").Inc()
	c.state = stateAuth
	if err := c.srv.Store.RecordSession(c.user, true, "imap", c.nc.RemoteAddr().String(), c.nc.LocalAddr().String()); err != nil {
		c.log.Debug("record login", "err", err)
	}
	// RFC 5550 s3.2: the capabilities after authentication, in the OK.
	c.okText = "[CAPABILITY " + c.capabilities() + "] authenticated"
}
