package imap

import (
	"slices"
	"strings"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 5267 CONTEXT=SEARCH and CONTEXT=SORT: a SEARCH or SORT with RETURN
// (UPDATE) stays active; when the mailbox changes, the session sends
// ESEARCH ADDTO/REMOVEFROM for that tag until CANCELUPDATE or the mailbox
// is closed. Results are recomputed and compared by UID.
func init() {
	registerCap("CONTEXT=SEARCH", authenticated)
	registerCap("CONTEXT=SORT", authenticated)
	register("CANCELUPDATE", stateSelected, cmdCancelUpdate)
}

// maxContexts bounds the live contexts of a session.
const maxContexts = 8

type searchContext struct {
	tag   string
	isUID bool
	keys  []sortKey // nil for SEARCH
	req   *searchReq
	uids  []uint32 // the result, in result order
}

func (c *conn) addContext(tag string, isUID bool, keys []sortKey, req *searchReq, found []vmstore.Message) {
	s := c.sel
	if len(s.contexts) >= maxContexts {
		xusererrorf("LIMIT", "too many search contexts")
	}
	ctx := &searchContext{tag: tag, isUID: isUID, keys: keys, req: req}
	for _, m := range found {
		ctx.uids = append(ctx.uids, m.UID)
	}
	s.contexts = slices.DeleteFunc(s.contexts, func(x *searchContext) bool { return x.tag == tag })
	s.contexts = append(s.contexts, ctx)
}

// RFC 5267 s4.3 CANCELUPDATE tag *(SP tag).
func cmdCancelUpdate(c *conn, tag string, p *parser) {
	s := c.xselected()
	for {
		p.xsp()
		t := p.xstring()
		s.contexts = slices.DeleteFunc(s.contexts, func(x *searchContext) bool { return x.tag == t })
		if p.AtEnd() {
			return
		}
	}
}

// updateContexts recomputes each context after the view changed and sends
// what was added and removed.
func (c *conn) updateContexts() {
	s := c.sel
	for _, ctx := range s.contexts {
		found := c.xsearch(&ctx.req.crit)
		var now []uint32
		if ctx.keys != nil {
			vals := make([]*sortValues, len(found))
			for i, m := range found {
				vals[i] = c.xsortValues(m, ctx.keys)
			}
			slices.SortStableFunc(vals, func(a, b *sortValues) int { return compareSort(a, b, ctx.keys) })
			for _, v := range vals {
				now = append(now, v.m.UID)
			}
		} else {
			for _, m := range found {
				now = append(now, m.UID)
			}
		}
		num := func(u uint32) uint32 {
			if ctx.isUID {
				return u
			}
			q, _ := s.seqOf(u)
			return q
		}
		var removed, added []string
		for i, u := range ctx.uids {
			if !slices.Contains(now, u) {
				pos := uint32(0)
				if ctx.keys != nil {
					pos = uint32(i + 1)
				}
				removed = append(removed, u32(pos)+" "+u32(u))
			}
		}
		for i, u := range now {
			if !slices.Contains(ctx.uids, u) {
				pos := uint32(0)
				if ctx.keys != nil {
					pos = uint32(i + 1)
				}
				added = append(added, u32(pos)+" "+u32(num(u)))
			}
		}
		ctx.uids = now
		if len(removed) == 0 && len(added) == 0 {
			continue
		}
		c.enc.Raw("* ESEARCH (TAG ").String(ctx.tag).Raw(")")
		if ctx.isUID {
			c.enc.Raw(" UID")
		}
		if len(removed) > 0 {
			c.enc.Raw(" REMOVEFROM (").Raw(strings.Join(removed, " ")).Raw(")")
		}
		if len(added) > 0 {
			c.enc.Raw(" ADDTO (").Raw(strings.Join(added, " ")).Raw(")")
		}
		c.enc.CRLF()
	}
}
