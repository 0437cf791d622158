package imap

import (
	"bytes"
	"slices"
	"strconv"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 5464 METADATA, server and mailbox entries, private and shared.
func init() {
	registerCap("METADATA", authenticated)
	register("GETMETADATA", statesAuthSel, cmdGetMetadata)
	register("SETMETADATA", statesAuthSel, cmdSetMetadata)
}

// Limits announced in the NO [METADATA ...] codes (RFC 5464 s4.3 asks for
// at least 1024 octets and 10 entries).
const (
	metadataMaxSize    = 64 * 1024
	metadataMaxEntries = 200
)

// xmetadataMailbox resolves "" (server entries, mailbox id 0) or a mailbox.
func (c *conn) xmetadataMailbox(name string) uint64 {
	if name == "" {
		return 0
	}
	mb, err := c.srv.Store.Mailbox(c.user, name)
	xstoreErr(err, "METADATA")
	return mb.ID
}

func (p *parser) xentry() string {
	e := p.xastring()
	if !vmstore.ValidMetadataName(e) {
		xsyntaxf("invalid entry name %q", e)
	}
	return strings.ToLower(e)
}

// RFC 5464 s4.2 GETMETADATA [options] mailbox entries; the options are also
// accepted after the mailbox, as some RFC examples put them.
func cmdGetMetadata(c *conn, tag string, p *parser) {
	p.xsp()
	maxSize := int64(-1)
	depth := 0
	options := func() {
		p.xlist(func() {
			switch o := strings.ToUpper(p.xatom()); o {
			case "MAXSIZE":
				p.xsp()
				maxSize = int64(p.xnumber())
			case "DEPTH":
				p.xsp()
				switch d := strings.ToLower(p.xatom()); d {
				case "0":
					depth = 0
				case "1":
					depth = 1
				case "infinity":
					depth = -1
				default:
					xsyntaxf("bad DEPTH %s", d)
				}
			default:
				xsyntaxf("unknown GETMETADATA option %s", o)
			}
		})
		p.xsp()
	}
	if p.Peek() == '(' {
		options()
	}
	name := p.xmailbox()
	p.xsp()
	if p.PeekFold("(MAXSIZE") || p.PeekFold("(DEPTH") {
		options()
	}
	var entries []string
	if p.Peek() == '(' {
		p.xlist(func() { entries = append(entries, p.xentry()) })
	} else {
		entries = append(entries, p.xentry())
		for p.Consume(' ') {
			entries = append(entries, p.xentry())
		}
	}
	p.xend()
	mbid := c.xmetadataMailbox(name)
	type kv struct {
		name  string
		value []byte
	}
	var out []kv
	var longest int64
	seen := map[string]bool{}
	for _, entry := range entries {
		all, err := c.srv.Store.Metadata(c.user, mbid, entry)
		xcheckf(err, "reading metadata")
		found := false
		for _, m := range all {
			match := m.Name == entry
			if !match && strings.HasPrefix(m.Name, entry+"/") && depth != 0 {
				rest := m.Name[len(entry)+1:]
				match = depth == -1 || !strings.Contains(rest, "/")
			}
			if !match || seen[m.Name] {
				continue
			}
			if m.Name == entry {
				found = true
			}
			seen[m.Name] = true
			if maxSize >= 0 && int64(len(m.Value)) > maxSize {
				longest = max(longest, int64(len(m.Value)))
				continue
			}
			out = append(out, kv{m.Name, m.Value})
		}
		if !found && !seen[entry] {
			// A requested entry that does not exist is returned as NIL.
			seen[entry] = true
			out = append(out, kv{entry, nil})
		}
	}
	c.enc.Raw("* METADATA ").Astring(c.mboxOut(name)).Raw(" (")
	for i, e := range out {
		if i > 0 {
			c.enc.SP()
		}
		c.enc.Astring(e.name).SP()
		c.writeValue(e.value)
	}
	c.enc.Raw(")").CRLF()
	if longest > 0 {
		c.okText = "[METADATA LONGENTRIES " + strconv.FormatInt(longest, 10) + "] GETMETADATA completed"
	}
}

// writeValue writes a metadata value: NIL, a string, or literal8 when it
// holds NUL (RFC 5464 s5, RFC 3516).
func (c *conn) writeValue(v []byte) {
	switch {
	case v == nil:
		c.enc.Raw("NIL")
	case bytes.IndexByte(v, 0) >= 0:
		c.enc.Literal(int64(len(v)), bytes.NewReader(v), true)
	default:
		c.enc.String(string(v))
	}
}

// RFC 5464 s4.3 SETMETADATA mailbox (entry value ...): all or nothing.
func cmdSetMetadata(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	p.xsp()
	var entries []vmstore.MetadataEntry
	p.xlist(func() {
		e := p.xentry()
		p.xsp()
		var v []byte
		if p.ConsumeFold("NIL") {
			v = nil
		} else {
			b, err := p.String8()
			p.xcheck(err)
			v = b
			if v == nil {
				v = []byte{}
			}
		}
		entries = append(entries, vmstore.MetadataEntry{Name: e, Value: v})
	})
	p.xend()
	if len(entries) == 0 {
		xsyntaxf("no entries")
	}
	mbid := c.xmetadataMailbox(name)
	for _, e := range entries {
		if len(e.Value) > metadataMaxSize {
			xusererrorf("METADATA MAXSIZE "+strconv.Itoa(metadataMaxSize), "value too large")
		}
		if name == "" && strings.HasPrefix(e.Name, "/shared/admin") {
			xusererrorf("NOPERM", "/shared/admin is read-only")
		}
	}
	existing, err := c.srv.Store.Metadata(c.user, mbid, "/")
	xcheckf(err, "reading metadata")
	names := map[string]bool{}
	for _, m := range existing {
		names[m.Name] = true
	}
	for _, e := range entries {
		if e.Value == nil {
			delete(names, e.Name)
		} else {
			names[e.Name] = true
		}
	}
	if len(names) > metadataMaxEntries {
		xusererrorf("METADATA TOOMANY", "too many entries")
	}
	xstoreErr(c.srv.Store.SetMetadata(c.user, mbid, entries), "SETMETADATA")
	if c.sel != nil {
		for _, e := range entries {
			c.ownMeta = append(c.ownMeta, e.Name)
		}
	}
}

// metadataChanged queues an unsolicited METADATA response (RFC 5464 s4.4,
// names only) after ENABLE METADATA, for server entries and the selected
// mailbox, unless this session made the change itself.
func (c *conn) metadataChanged(ev *vmstore.Event) {
	if !c.enabled["METADATA"] {
		return
	}
	if i := slices.Index(c.ownMeta, ev.Entry); i >= 0 {
		c.ownMeta = slices.Delete(c.ownMeta, i, i+1)
		return
	}
	if ev.MailboxID != 0 && (c.sel == nil || ev.MailboxID != c.sel.mb.ID) {
		return
	}
	c.pendMeta = append(c.pendMeta, [2]string{ev.Mailbox, ev.Entry})
}
