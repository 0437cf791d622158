package imap

import "strings"

func init() {
	registerCap("COMPRESS=DEFLATE", authenticated) // RFC 4978
	register("COMPRESS", statesAuthSel, cmdCompress)
}

// RFC 4978 COMPRESS DEFLATE: after the tagged OK both directions are raw
// DEFLATE streams; each response batch ends with a sync flush so that the
// client can decode it at once.
func cmdCompress(c *conn, tag string, p *parser) {
	p.xsp()
	mech := strings.ToUpper(p.xatom())
	p.xend()
	if mech != "DEFLATE" {
		xsyntaxf("unknown compression mechanism %s", mech)
	}
	if c.zw != nil {
		xusererrorf("COMPRESSIONACTIVE", "compression already active")
	}
	// Octets that followed the command are already compressed: clients
	// such as isync start compressing right after sending COMPRESS.
	ahead := c.dec.TakeBuffered()
	c.flushUpdates(true)
	c.writeLine("%s OK DEFLATE active", tag)
	c.okDone = true
	c.xflush()
	if err := c.startCompress(ahead); err != nil {
		panic(ioError{err})
	}
}
