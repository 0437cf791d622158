package imap

import "strings"

// RFC 8970 PREVIEW: FETCH PREVIEW returns a short text of the message
// (vmstore/preview.go says how it is made: for a voice message, caller,
// duration and time, and the text part; else the start of the text). It
// is kept with the message's structure at deposit, so fetching it reads
// no body. With (LAZY), a message stored before previews were kept gets
// NIL until a FETCH without LAZY has computed its preview.
func init() {
	registerCap("PREVIEW", always)
	registerFetch("PREVIEW", parsePreviewFetch)
}

func parsePreviewFetch(p *parser, name string) []fetchItem {
	lazy := false
	if p.PeekFold(" (LAZY") {
		p.xsp()
		p.xlist(func() {
			if m := strings.ToUpper(p.xatom()); m != "LAZY" {
				xsyntaxf("unknown PREVIEW modifier %s", m)
			}
			lazy = true
		})
	}
	return []fetchItem{{name: "PREVIEW", needsPart: true,
		check: func(c *conn, fm *fetchMsg) {
			text, ok, err := c.srv.Store.Preview(fm.msg, c.xpart(fm), lazy)
			xcheckf(err, "preview")
			fm.preview = nil
			if ok {
				fm.preview = &text
			}
		},
		write: func(c *conn, fm *fetchMsg) {
			c.enc.Raw("PREVIEW ").Nstring(fm.preview)
		}}}
}
