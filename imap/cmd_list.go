package imap

import (
	"regexp"
	"slices"
	"strings"

	"github.com/lemonvox/lemonvox/imap/wire"
	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 9051 s6.3.4 CREATE with RFC 6154 s3 CREATE-SPECIAL-USE:
// CREATE name [SP "(" "USE" SP "(" use-flags ")" ")"].
func cmdCreate(c *conn, tag string, p *parser) {
	p.xsp()
	name := strings.TrimSuffix(p.xmailbox(), "/")
	var use string
	if p.Consume(' ') {
		p.xlist(func() {
			if strings.ToUpper(p.xatom()) != "USE" {
				xsyntaxf("unknown CREATE parameter")
			}
			p.xsp()
			flags := p.xflagList(false)
			if len(flags) > 1 {
				xusererrorf("USEATTR", "one special use per mailbox")
			}
			if len(flags) == 1 {
				use = canonSpecialUse(flags[0])
				if use == "" {
					xusererrorf("USEATTR", "unknown special use %s", flags[0])
				}
			}
		})
	}
	p.xend()
	if name == "INBOX" {
		xusererrorf("ALREADYEXISTS", "INBOX exists")
	}
	c.notifyOwn(name)
	_, err := c.srv.Store.CreateMailbox(c.user, name, use)
	xstoreErr(err, "CREATE")
}

var specialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

func canonSpecialUse(f string) string {
	for _, u := range specialUses {
		if strings.EqualFold(u, f) {
			return u
		}
	}
	return ""
}

// RFC 9051 s6.3.5 DELETE.
func cmdDelete(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	p.xend()
	c.notifyOwn(name)
	xstoreErr(c.srv.Store.DeleteMailbox(c.user, name), "DELETE")
}

// RFC 9051 s6.3.6 RENAME.
func cmdRename(c *conn, tag string, p *parser) {
	p.xsp()
	from := p.xmailbox()
	p.xsp()
	to := strings.TrimSuffix(p.xmailbox(), "/")
	p.xend()
	c.notifyOwn(to)
	xstoreErr(c.srv.Store.RenameMailbox(c.user, from, to), "RENAME")
}

// RFC 9051 s6.3.7 SUBSCRIBE, s6.3.8 UNSUBSCRIBE.
func cmdSubscribe(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	p.xend()
	c.notifyOwn(name)
	xstoreErr(c.srv.Store.Subscribe(c.user, name, c.cmd == "SUBSCRIBE"), c.cmd)
}

// patternRegexp compiles a LIST pattern: "*" matches anything, "%" anything
// but the delimiter (RFC 9051 s6.3.9).
func patternRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for _, r := range pat {
		switch r {
		case '*':
			b.WriteString(".*")
		case '%':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// RFC 9051 s6.3.9 LIST with RFC 5258 LIST-EXTENDED (selection and return
// options, multiple patterns), RFC 5819 LIST-STATUS, RFC 6154 SPECIAL-USE,
// RFC 3348 CHILDREN; and the IMAP4rev1 LSUB.
func cmdList(c *conn, tag string, p *parser) {
	p.xsp()
	var selSubscribed, selSpecial, recursive bool
	extended := false
	if p.Peek() == '(' {
		extended = true
		p.xlist(func() {
			switch o := strings.ToUpper(p.xatom()); o {
			case "SUBSCRIBED":
				selSubscribed = true
			case "SPECIAL-USE":
				selSpecial = true
			case "RECURSIVEMATCH":
				recursive = true
			case "REMOTE":
			default:
				xsyntaxf("unknown LIST selection option %s", o)
			}
		})
		p.xsp()
	}
	ref := p.xastring()
	p.xsp()
	var pats []string
	listMailbox := func() string {
		if c := p.Peek(); c == '"' || c == '{' {
			return p.xstring()
		}
		s := p.TakeWhile(func(b byte) bool {
			return b == '%' || b == '*' || b == ']' || (b > 0x20 && b < 0x7f && !strings.ContainsRune("(){\"\\", rune(b)))
		})
		if s == "" {
			xsyntaxf("expected mailbox pattern")
		}
		return s
	}
	if p.Peek() == '(' && c.cmd == "LIST" {
		extended = true
		p.xlist(func() { pats = append(pats, listMailbox()) })
	} else {
		pats = append(pats, listMailbox())
	}
	if !c.utf8Names() {
		for i, pat := range pats {
			if n, err := wire.DecodeMUTF7(pat); err == nil {
				pats[i] = n
			}
		}
		if n, err := wire.DecodeMUTF7(ref); err == nil {
			ref = n
		}
	}
	var retSubscribed, retChildren, retSpecial bool
	var statusItems []string
	if p.Consume(' ') {
		if !p.ConsumeFold("RETURN ") {
			xsyntaxf("expected RETURN")
		}
		extended = true
		p.xlist(func() {
			switch o := strings.ToUpper(p.xatom()); o {
			case "SUBSCRIBED":
				retSubscribed = true
			case "CHILDREN":
				retChildren = true
			case "SPECIAL-USE":
				retSpecial = true
			case "STATUS":
				p.xsp()
				statusItems = p.xstatusItems()
			default:
				xsyntaxf("unknown LIST return option %s", o)
			}
		})
	}
	p.xend()
	if recursive && !selSubscribed {
		xsyntaxf("RECURSIVEMATCH needs another selection option")
	}
	_ = extended
	if len(pats) == 1 && pats[0] == "" {
		// RFC 9051 s6.3.9: the delimiter and root.
		c.writeLine(`* %s (\Noselect) "/" ""`, c.cmd)
		return
	}
	st := c.srv.Store
	mbs, err := st.Mailboxes(c.user)
	xcheckf(err, "listing mailboxes")
	subs, err := st.Subscriptions(c.user)
	xcheckf(err, "listing subscriptions")
	subscribed := map[string]bool{}
	for _, s := range subs {
		subscribed[s] = true
	}
	exists := map[string]*vmstore.Mailbox{}
	var names []string
	for i := range mbs {
		exists[mbs[i].Name] = &mbs[i]
		names = append(names, mbs[i].Name)
	}
	lsub := c.cmd == "LSUB"
	var res []*regexp.Regexp
	for _, pat := range pats {
		full := pat
		if ref != "" && !strings.HasPrefix(pat, "/") {
			full = strings.TrimSuffix(ref, "/") + "/" + pat
		}
		if strings.EqualFold(full, "INBOX") {
			full = "INBOX"
		}
		res = append(res, patternRegexp(full))
	}
	matches := func(name string) bool {
		return slices.ContainsFunc(res, func(re *regexp.Regexp) bool { return re.MatchString(name) })
	}
	// subChild tells whether name has a subscribed descendant; with
	// unmatched, one that no pattern returns.
	subChild := func(name string, unmatched bool) bool {
		for _, s := range subs {
			if strings.HasPrefix(s, name+"/") && (!unmatched || !matches(s)) {
				return true
			}
		}
		return false
	}
	if selSubscribed || lsub {
		// The subscribed names, and their parents: a parent is listed
		// for RECURSIVEMATCH (RFC 5258 s3.3 rule 2B: not subscribed, with
		// a subscribed descendant the patterns do not return) or by LSUB
		// with \Noselect (RFC 3501 s6.3.9: "%" stops at the parent).
		seen := map[string]bool{}
		names = names[:0]
		for _, s := range subs {
			names = append(names, s)
			seen[s] = true
		}
		if recursive || lsub {
			for _, s := range subs {
				for i := strings.LastIndex(s, "/"); i > 0; i = strings.LastIndex(s[:i], "/") {
					if p := s[:i]; !seen[p] {
						seen[p] = true
						names = append(names, p)
					}
				}
			}
		}
	}
	slices.Sort(names)
	hasChildren := func(name string) bool {
		for n := range exists {
			if strings.HasPrefix(n, name+"/") {
				return true
			}
		}
		return false
	}
	for _, name := range names {
		if !matches(name) {
			continue
		}
		mb := exists[name]
		if selSpecial && (mb == nil || mb.SpecialUse == "") {
			continue
		}
		// RFC 5258 s3.5: CHILDINFO for a subscribed mailbox with a
		// subscribed descendant, and for one that is not subscribed only
		// when such a descendant is not itself returned (redundant
		// CHILDINFO suppressed).
		childInfo := false
		parentOnly := (selSubscribed || lsub) && !subscribed[name]
		if parentOnly {
			if !subChild(name, true) {
				continue
			}
			childInfo = recursive
		} else if recursive {
			childInfo = subChild(name, false)
		}
		var attrs []string
		switch {
		case lsub && (mb == nil || parentOnly):
			attrs = append(attrs, `\Noselect`)
		case mb == nil:
			attrs = append(attrs, `\NonExistent`)
		case !lsub || retChildren:
			if hasChildren(name) {
				attrs = append(attrs, `\HasChildren`)
			} else {
				attrs = append(attrs, `\HasNoChildren`)
			}
		}
		if (selSubscribed || retSubscribed) && subscribed[name] {
			attrs = append(attrs, `\Subscribed`)
		}
		if mb != nil && mb.SpecialUse != "" && !lsub {
			attrs = append(attrs, mb.SpecialUse)
		}
		_ = retSpecial
		c.enc.Raw("* ").Raw(c.cmd).Raw(" (").Raw(strings.Join(attrs, " ")).Raw(`) "/" `)
		c.enc.Astring(c.mboxOut(name))
		if childInfo {
			c.enc.Raw(` ("CHILDINFO" ("SUBSCRIBED"))`)
		}
		c.enc.CRLF()
		if statusItems != nil && mb != nil {
			c.writeStatus(mb, statusItems)
		}
	}
}

// xstatusItems reads "(" status-att *(SP status-att) ")".
func (p *parser) xstatusItems() []string {
	items := []string{}
	p.xlist(func() {
		it := strings.ToUpper(p.xatom())
		switch it {
		case "MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "DELETED", "SIZE", "RECENT", "HIGHESTMODSEQ", "APPENDLIMIT", "DELETED-STORAGE":
		default:
			xsyntaxf("unknown status item %s", it)
		}
		items = append(items, it)
	})
	return items
}

// RFC 9051 s6.3.11 STATUS, with SIZE (RFC 8438), HIGHESTMODSEQ (RFC 7162),
// APPENDLIMIT (RFC 7889) and DELETED (RFC 9051). Served from the mailbox
// counters: no message is read.
func cmdStatus(c *conn, tag string, p *parser) {
	p.xsp()
	name := p.xmailbox()
	p.xsp()
	items := p.xstatusItems()
	p.xend()
	mb, err := c.srv.Store.Mailbox(c.user, name)
	xstoreErr(err, "STATUS")
	if slices.Contains(items, "HIGHESTMODSEQ") {
		c.enableCondstore()
	}
	c.writeStatus(mb, items)
}

func (c *conn) writeStatus(mb *vmstore.Mailbox, items []string) {
	c.enc.Raw("* STATUS ").Astring(c.mboxOut(mb.Name)).Raw(" (")
	for i, it := range items {
		if i > 0 {
			c.enc.SP()
		}
		c.enc.Raw(it).SP()
		switch it {
		case "MESSAGES":
			c.enc.Number(uint64(mb.Counts.Messages))
		case "UIDNEXT":
			c.enc.Number(uint64(mb.UIDNext))
		case "UIDVALIDITY":
			c.enc.Number(uint64(mb.UIDValidity))
		case "UNSEEN":
			c.enc.Number(uint64(mb.Counts.Unseen))
		case "DELETED":
			c.enc.Number(uint64(mb.Counts.Deleted))
		case "SIZE":
			c.enc.Number(uint64(mb.Counts.Bytes))
		case "RECENT":
			c.enc.Number(uint64(mb.Counts.Recent))
		case "HIGHESTMODSEQ":
			c.enc.Number(mb.HighestModSeq)
		case "APPENDLIMIT":
			c.enc.Number(uint64(c.srv.appendLimit()))
		case "DELETED-STORAGE":
			// RFC 9208 s4.3.2: the RFC822.SIZE sum of \Deleted messages
			// (in 1024-octet units, as STORAGE).
			c.enc.Number(uint64((mb.Counts.DeletedBytes + 1023) / 1024))
		}
	}
	c.enc.Raw(")").CRLF()
}
