package imap

import (
	"slices"
	"strconv"
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
	// vals caches the sort values of the result's messages: the keys of
	// RFC 5256/5957 do not change with flags, only the sequence number
	// (the last tie-break) is refreshed.
	vals map[uint32]*sortValues
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
// what was removed and added.
func (c *conn) updateContexts() {
	s := c.sel
	for _, ctx := range s.contexts {
		found := c.xsearch(&ctx.req.crit)
		var now []uint32
		if ctx.keys != nil {
			vals := make([]*sortValues, len(found))
			cache := make(map[uint32]*sortValues, len(found))
			for i, m := range found {
				v := ctx.vals[m.UID]
				if v == nil {
					v = c.xsortValues(m, ctx.keys)
				} else {
					v.seq, _ = s.seqOf(m.UID)
				}
				vals[i] = v
				cache[m.UID] = v
			}
			ctx.vals = cache
			slices.SortStableFunc(vals, func(a, b *sortValues) int { return compareSort(a, b, ctx.keys) })
			for _, v := range vals {
				now = append(now, v.m.UID)
			}
		} else {
			for _, m := range found {
				now = append(now, m.UID)
			}
		}
		c.sendContextDiff(ctx, now)
	}
}

// contextsExpunge sends, before the EXPUNGE responses of gone, the
// REMOVEFROM of the contexts that held them: their sequence numbers are
// valid until the EXPUNGE (RFC 5267 s4.3.4).
func (c *conn) contextsExpunge(gone []uint32) {
	for _, ctx := range c.sel.contexts {
		now := slices.DeleteFunc(slices.Clone(ctx.uids), func(u uint32) bool { return slices.Contains(gone, u) })
		if len(now) != len(ctx.uids) {
			c.sendContextDiff(ctx, now)
		}
	}
}

// sendContextDiff sends the ESEARCH that turns the context's result into
// now and records now. Numbers are UIDs or the current sequence numbers.
func (c *conn) sendContextDiff(ctx *searchContext, now []uint32) {
	s := c.sel
	num := func(u uint32) uint32 {
		if ctx.isUID {
			return u
		}
		q, _ := s.seqOf(u)
		return q
	}
	removed, added := contextDiff(ctx.uids, now, ctx.keys != nil, num)
	ctx.uids = now
	if removed == "" && added == "" {
		return
	}
	c.enc.Raw("* ESEARCH (TAG ").String(ctx.tag).Raw(")")
	if ctx.isUID {
		c.enc.Raw(" UID")
	}
	if removed != "" {
		c.enc.Raw(" REMOVEFROM (").Raw(removed).Raw(")")
	}
	if added != "" {
		c.enc.Raw(" ADDTO (").Raw(added).Raw(")")
	}
	c.enc.CRLF()
}

// contextDiff gives the REMOVEFROM and ADDTO payloads (RFC 5267 s4.3.3,
// s4.3.4) that turn the result old into now; the client applies the
// removals, then the additions, each pair in order.
//
// A SEARCH result is in mailbox order: one pair each, position 0 and the
// numbers as a set in mailbox order ("0 3:5,9"). A SORT result is in the
// requested order: one pair per run of consecutive removed (or added)
// results, at the position its first result has before removal (after
// insertion), the run written in result order ("2 7:9,4").
func contextDiff(old, now []uint32, sorted bool, num func(uint32) uint32) (removed, added string) {
	inOld := make(map[uint32]bool, len(old))
	for _, u := range old {
		inOld[u] = true
	}
	inNow := make(map[uint32]bool, len(now))
	for _, u := range now {
		inNow[u] = true
	}
	if !sorted {
		var rem, add []uint32
		for _, u := range old {
			if !inNow[u] {
				rem = append(rem, num(u))
			}
		}
		for _, u := range now {
			if !inOld[u] {
				add = append(add, num(u))
			}
		}
		if len(rem) > 0 {
			slices.Sort(rem)
			removed = "0 " + uidListString(rem)
		}
		if len(add) > 0 {
			slices.Sort(add)
			added = "0 " + uidListString(add)
		}
		return removed, added
	}
	// Results kept in both keep their relative order (sort keys do not
	// change); if they did not, everything is removed and added again.
	keep := func(u uint32) bool { return inOld[u] && inNow[u] }
	if !slices.Equal(slices.DeleteFunc(slices.Clone(old), func(u uint32) bool { return !keep(u) }),
		slices.DeleteFunc(slices.Clone(now), func(u uint32) bool { return !keep(u) })) {
		keep = func(uint32) bool { return false }
	}
	runs := func(list []uint32, pos func(i, kept int) int) string {
		var b strings.Builder
		kept := 0
		for i := 0; i < len(list); {
			if keep(list[i]) {
				kept++
				i++
				continue
			}
			j := i
			var run []uint32
			for ; j < len(list) && !keep(list[j]); j++ {
				run = append(run, num(list[j]))
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(strconv.Itoa(pos(i, kept)))
			b.WriteByte(' ')
			b.WriteString(uidListString(run))
			i = j
		}
		return b.String()
	}
	// Removals: earlier runs are gone when a run is removed, so it starts
	// right after the results kept before it. Additions: everything before
	// a run in now is in place when it is inserted.
	removed = runs(old, func(_, kept int) int { return kept + 1 })
	added = runs(now, func(i, _ int) int { return i + 1 })
	return removed, added
}
