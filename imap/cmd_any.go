package imap

import "strings"

// RFC 9051 s6.1.1.
func cmdCapability(c *conn, tag string, p *parser) {
	p.xend()
	c.writeLine("* CAPABILITY %s", c.capabilities())
}

// RFC 9051 s6.1.2: NOOP (and CHECK) only give pending updates a chance,
// which the command boundary does.
func cmdNoop(c *conn, tag string, p *parser) {
	p.xend()
	c.pollEvents()
}

// RFC 9051 s6.1.3.
func cmdLogout(c *conn, tag string, p *parser) {
	p.xend()
	panic(errLogout)
}

// RFC 2971: ID; the client's parameters are only logged.
func cmdID(c *conn, tag string, p *parser) {
	p.xsp()
	if p.PeekFold("NIL") {
		p.ConsumeFold("NIL")
	} else {
		var kv []string
		p.xlist(func() {
			v, err := p.Nstring()
			p.xcheck(err)
			kv = append(kv, string(v))
			p.xsp()
			v, err = p.Nstring()
			p.xcheck(err)
			kv = append(kv, string(v))
		})
		if len(kv) > 60 {
			xsyntaxf("too many ID parameters")
		}
		c.log.Debug("imap client id", "id", strings.Join(kv, " "))
	}
	p.xend()
	c.writeLine(`* ID ("name" "Lemonvox" "vendor" "Lemonvox")`)
}

// RFC 5161 ENABLE. IMAP4rev2 (RFC 9051 s6.3.1), CONDSTORE and QRESYNC
// (RFC 7162 s3.2.3) are the extensions that can be enabled.
func cmdEnable(c *conn, tag string, p *parser) {
	var done []string
	for !p.AtEnd() {
		p.xsp()
		name := strings.ToUpper(p.xatom())
		switch name {
		case "IMAP4REV2":
			c.rev2 = true
			c.enc.UTF8 = true
		case "CONDSTORE":
			c.enableCondstore()
		case "QRESYNC":
			c.enableCondstore()
			c.qresync = true
		case "METADATA", "METADATA-SERVER":
			// RFC 5464 s4.4: unsolicited METADATA responses.
			name = "METADATA"
		case "UTF8=ACCEPT":
			// RFC 6855: UTF-8 mailbox names and strings, APPEND UTF8.
			c.enc.UTF8 = true
		default:
			continue
		}
		if !c.enabled[name] {
			if c.enabled == nil {
				c.enabled = map[string]bool{}
			}
			c.enabled[name] = true
			done = append(done, name)
		}
	}
	if len(done) > 0 {
		c.writeLine("* ENABLED %s", strings.Join(done, " "))
	} else {
		c.writeLine("* ENABLED")
	}
}

// enableCondstore turns CONDSTORE on; when a mailbox is selected, the
// client learns its HIGHESTMODSEQ now (RFC 7162 s3.1).
func (c *conn) enableCondstore() {
	if c.cstore {
		return
	}
	c.cstore = true
	if c.sel != nil {
		c.writeLine("* OK [HIGHESTMODSEQ %d] CONDSTORE enabled", c.sel.reportableModseq())
	}
}

// RFC 2342: one personal namespace, no others.
func cmdNamespace(c *conn, tag string, p *parser) {
	p.xend()
	c.writeLine(`* NAMESPACE (("" "/")) NIL NIL`)
}
