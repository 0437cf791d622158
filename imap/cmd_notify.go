package imap

import (
	"slices"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 5465 NOTIFY. The client names mailbox filters and the events it wants
// for each; the session then pushes them as they happen (the notifier
// goroutine, conn.go), not only at command boundaries:
//   - the selected mailbox: the usual EXISTS/EXPUNGE/FETCH (and, for
//     MessageNew with fetch attributes, a FETCH of the new messages);
//   - other mailboxes: STATUS for message events, LIST for MailboxName and
//     SubscriptionChange, METADATA for metadata events.
//
// AnnotationChange is not offered (no per-message annotations): asking for
// it gives NO [BADEVENT].
func init() {
	registerCap("NOTIFY", authenticated)
	register("NOTIFY", statesAuthSel, cmdNotify)
}

const supportedEvents = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange MailboxMetadataChange ServerMetadataChange"

type notifyGroup struct {
	filter string   // SELECTED, SELECTED-DELAYED, INBOXES, PERSONAL, SUBSCRIBED, SUBTREE, MAILBOXES
	names  []string // SUBTREE, MAILBOXES
	events map[string]bool
}

type notifySpec struct {
	groups          []*notifyGroup
	selected        *notifyGroup // the SELECTED or SELECTED-DELAYED group
	selectedDelayed bool
	newFetch        []fetchItem // MessageNew fetch attributes for the selected mailbox
	subscribed      map[string]bool
}

// RFC 5465 s3 NOTIFY SET [STATUS] groups / NOTIFY NONE.
func cmdNotify(c *conn, tag string, p *parser) {
	p.xsp()
	if p.ConsumeFold("NONE") {
		p.xend()
		c.notify = nil
		return
	}
	if !p.ConsumeFold("SET") {
		xsyntaxf("expected SET or NONE")
	}
	p.xsp()
	status := false
	if p.ConsumeFold("STATUS ") {
		status = true
	}
	spec := &notifySpec{}
	var badEvent bool
	for {
		g := &notifyGroup{events: map[string]bool{}}
		p.xexpect('(')
		g.filter = strings.ToUpper(p.xatom())
		switch g.filter {
		case "SELECTED", "SELECTED-DELAYED":
			if spec.selected != nil {
				xsyntaxf("SELECTED given twice")
			}
			spec.selected = g
			spec.selectedDelayed = g.filter == "SELECTED-DELAYED"
		case "INBOXES", "PERSONAL", "SUBSCRIBED":
		case "SUBTREE", "MAILBOXES":
			p.xsp()
			if p.Peek() == '(' {
				p.xlist(func() { g.names = append(g.names, p.xmailbox()) })
			} else {
				g.names = append(g.names, p.xmailbox())
			}
		default:
			xsyntaxf("unknown NOTIFY filter %s", g.filter)
		}
		p.xsp()
		if p.ConsumeFold("NONE") {
		} else {
			p.xlist(func() {
				ev := p.xatom()
				canon := ""
				for _, s := range strings.Fields(supportedEvents + " AnnotationChange") {
					if strings.EqualFold(s, ev) {
						canon = s
					}
				}
				if canon == "" {
					xsyntaxf("unknown event %s", ev)
				}
				if canon == "AnnotationChange" {
					badEvent = true
				}
				g.events[canon] = true
				if canon == "MessageNew" && p.PeekFold(" (") {
					if g != spec.selected {
						xsyntaxf("fetch attributes only for SELECTED")
					}
					p.xsp()
					p.xlist(func() { spec.newFetch = append(spec.newFetch, p.xfetchAtt()...) })
				}
			})
		}
		p.xexpect(')')
		// RFC 5465 s5: MessageNew and MessageExpunge go together; FlagChange
		// and AnnotationChange need both.
		if g.events["MessageNew"] != g.events["MessageExpunge"] ||
			(g.events["FlagChange"] || g.events["AnnotationChange"]) && !g.events["MessageNew"] {
			xsyntaxf("MessageNew and MessageExpunge must be requested together")
		}
		spec.groups = append(spec.groups, g)
		if !p.Consume(' ') {
			break
		}
	}
	p.xend()
	if badEvent {
		xusererrorf("BADEVENT ("+supportedEvents+")", "AnnotationChange is not supported")
	}
	subs, err := c.srv.Store.Subscriptions(c.user)
	xcheckf(err, "subscriptions")
	spec.subscribed = map[string]bool{}
	for _, s := range subs {
		spec.subscribed[s] = true
	}
	c.ensureSub()
	c.pollEvents()
	c.notify = spec
	if status {
		mbs, err := c.srv.Store.Mailboxes(c.user)
		xcheckf(err, "mailboxes")
		for i := range mbs {
			mb := &mbs[i]
			if c.sel != nil && mb.ID == c.sel.mb.ID {
				continue
			}
			if g := spec.groupFor(mb.Name); g != nil && g.events["MessageNew"] {
				items := []string{"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN"}
				if c.cstore {
					items = append(items, "HIGHESTMODSEQ")
				}
				c.writeStatus(mb, items)
			}
		}
	}
}

// groupFor returns the first non-SELECTED group whose filter matches a
// mailbox name (RFC 5465 s6: the first match wins).
func (n *notifySpec) groupFor(name string) *notifyGroup {
	for _, g := range n.groups {
		switch g.filter {
		case "INBOXES", "PERSONAL":
			// RFC 5465 s6.4: INBOXES are the mailboxes an MDA may deliver
			// to; deposits (admin API, LMTP) may name any mailbox of the
			// account, and a server that cannot narrow the set treats
			// INBOXES as PERSONAL.
			return g
		case "SUBSCRIBED":
			if n.subscribed[name] {
				return g
			}
		case "SUBTREE":
			for _, r := range g.names {
				if name == r || strings.HasPrefix(name, r+"/") {
					return g
				}
			}
		case "MAILBOXES":
			if slices.Contains(g.names, name) {
				return g
			}
		}
	}
	return nil
}

// notifyOwn records a mailbox operation of this session, which NOTIFY does
// not echo back.
func (c *conn) notifyOwn(name string) {
	if c.notify != nil {
		c.ownNames = append(c.ownNames, name)
	}
}

func (c *conn) takeOwn(name string) bool {
	if i := slices.Index(c.ownNames, name); i >= 0 {
		c.ownNames = slices.Delete(c.ownNames, i, i+1)
		return true
	}
	return false
}

// notifyEvent turns a change of a mailbox other than the selected one into
// the responses NOTIFY asked for.
func (c *conn) notifyEvent(ev *vmstore.Event) {
	n := c.notify
	if n == nil {
		return
	}
	switch ev.Type {
	case vmstore.EventMailboxSubscribe, vmstore.EventMailboxUnSubscribe:
		on := ev.Type == vmstore.EventMailboxSubscribe
		n.subscribed[ev.Mailbox] = on
		if c.takeOwn(ev.Mailbox) {
			return
		}
		if g := n.groupFor(ev.Mailbox); g != nil && g.events["SubscriptionChange"] {
			attr := ""
			if on {
				attr = `\Subscribed`
			}
			c.pendNotify = append(c.pendNotify, `* LIST (`+attr+`) "/" `+quoteName(c.mboxOut(ev.Mailbox)))
		}
		return
	case vmstore.EventMailboxCreate, vmstore.EventMailboxDelete, vmstore.EventMailboxRename:
		if c.takeOwn(ev.Mailbox) {
			return
		}
		g := n.groupFor(ev.Mailbox)
		if g == nil && ev.OldMailbox != "" {
			g = n.groupFor(ev.OldMailbox)
		}
		if g == nil || !g.events["MailboxName"] {
			return
		}
		switch ev.Type {
		case vmstore.EventMailboxCreate:
			c.pendNotify = append(c.pendNotify, `* LIST () "/" `+quoteName(c.mboxOut(ev.Mailbox)))
		case vmstore.EventMailboxDelete:
			c.pendNotify = append(c.pendNotify, `* LIST (\NonExistent) "/" `+quoteName(c.mboxOut(ev.Mailbox)))
		default:
			c.pendNotify = append(c.pendNotify, `* LIST () "/" `+quoteName(c.mboxOut(ev.Mailbox))+` ("OLDNAME" (`+quoteName(c.mboxOut(ev.OldMailbox))+`))`)
		}
		return
	}
	if ev.MailboxID == 0 {
		return
	}
	g := n.groupFor(ev.Mailbox)
	if g == nil {
		return
	}
	var items []string
	switch ev.Type {
	case vmstore.EventMessageNew, vmstore.EventMessageAppend, vmstore.EventMessageExpunge, vmstore.EventMessageExpire:
		if !g.events["MessageNew"] {
			return
		}
		items = []string{"MESSAGES", "UIDNEXT", "UNSEEN"}
	case vmstore.EventFlagsSet, vmstore.EventFlagsClear, vmstore.EventMessageRead, vmstore.EventMessageTrash:
		if !g.events["FlagChange"] {
			return
		}
		items = []string{"UNSEEN"}
	default:
		return
	}
	if c.cstore {
		items = append(items, "HIGHESTMODSEQ")
	}
	mb, err := c.srv.Store.MailboxByID(ev.MailboxID)
	if err != nil {
		return
	}
	// Several events of one mailbox in a batch give one STATUS.
	line := c.statusLine(mb, items)
	prefix := "* STATUS " + quoteName(c.mboxOut(mb.Name)) + " "
	c.pendNotify = slices.DeleteFunc(c.pendNotify, func(l string) bool { return strings.HasPrefix(l, prefix) })
	c.pendNotify = append(c.pendNotify, line)
}

func quoteName(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

func (c *conn) statusLine(mb *vmstore.Mailbox, items []string) string {
	var b strings.Builder
	b.WriteString("* STATUS " + quoteName(c.mboxOut(mb.Name)) + " (")
	for i, it := range items {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(it + " ")
		switch it {
		case "MESSAGES":
			b.WriteString(u32(mb.Counts.Messages))
		case "UIDNEXT":
			b.WriteString(u32(mb.UIDNext))
		case "UNSEEN":
			b.WriteString(u32(mb.Counts.Unseen))
		case "HIGHESTMODSEQ":
			b.WriteString(itoa64(int64(mb.HighestModSeq)))
		}
	}
	b.WriteString(")")
	return b.String()
}

// notifyNewFetch sends the MessageNew fetch attributes for new messages of
// the selected mailbox (RFC 5465 s5.2).
func (c *conn) notifyNewFetch(uids []uint32) {
	if c.notify == nil || len(c.notify.newFetch) == 0 || len(uids) == 0 {
		return
	}
	for _, m := range c.xloadMessages(uids) {
		seq, ok := c.sel.seqOf(m.UID)
		if !ok {
			continue
		}
		fm := &fetchMsg{seq: seq, msg: &m}
		withFlags := slices.ContainsFunc(c.notify.newFetch, func(it fetchItem) bool { return it.name == "FLAGS" })
		if withFlags {
			c.announceKeywords(m.Flags)
		}
		withMod := slices.ContainsFunc(c.notify.newFetch, func(it fetchItem) bool { return it.name == "MODSEQ" })
		if withFlags || withMod {
			c.sel.noteTold(m.UID, m.ModSeq, withFlags, withMod)
		}
		c.enc.Raw("* ").Number(uint64(seq)).Raw(" FETCH (")
		for j, it := range c.notify.newFetch {
			if j > 0 {
				c.enc.SP()
			}
			it.write(c, fm)
		}
		c.enc.Raw(")").CRLF()
	}
}
