package imap

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 5256 SORT, RFC 5267 ESORT; comparisons use i;unicode-casemap
// (RFC 5255 I18NLEVEL=1, casemap.go).
func init() {
	registerCap("SORT", authenticated)
	registerCap("ESORT", authenticated)
	registerCap("SORT=DISPLAY", authenticated) // RFC 5957
	registerCap("I18NLEVEL=1", authenticated)
	register("SORT", stateSelected, cmdSort)
	register("UID SORT", stateSelected, cmdSort)
}

type sortKey struct {
	name    string
	reverse bool
}

// sortValues caches what the keys need of one message.
type sortValues struct {
	m       vmstore.Message
	seq     uint32
	sent    time.Time
	from    string
	to      string
	dfrom   string // RFC 5957 display forms
	dto     string
	cc      string
	subject string
	haveEnv bool
}

// xsortValues takes the sort keys from the message record (the store keeps
// From, Subject with RFC 2047 words decoded, the Date header and the
// addr-mailbox and display form of the first From, To and Cc address), so
// SORT reads no message structure. Records stored before the keys were
// kept fall back to their first To and Cc addr-spec.
func (c *conn) xsortValues(m vmstore.Message, keys []sortKey) *sortValues {
	v := &sortValues{m: m}
	v.seq, _ = c.sel.seqOf(m.UID)
	v.sent = m.SentDate
	if v.sent.IsZero() {
		v.sent = m.InternalDate
	}
	if k := m.HeaderKeys(); k != nil {
		v.from, v.to, v.cc = casemap(k.FromMailbox), casemap(k.ToMailbox), casemap(k.CcMailbox)
		v.dfrom, v.dto = casemap(k.DisplayFrom), casemap(k.DisplayTo)
	} else {
		v.from = localPart(m.From)
		v.to, v.cc = localPart(m.To), localPart(m.Cc)
		for _, k := range keys {
			switch k.name {
			case "DISPLAYFROM":
				v.dfrom = displayForm(m.From)
			case "DISPLAYTO":
				v.dto = displayForm(m.To)
			}
		}
	}
	v.subject = baseSubject(m.Subject)
	return v
}

// localPart is the addr-mailbox RFC 5256 s3 sorts on, lower case.
func localPart(s string) string {
	if l := vmstore.ParseAddressList(s); len(l) > 0 {
		return casemap(l[0].Mailbox)
	}
	return ""
}

// displayForm is RFC 5957's sort value of the first address: its display
// name if it has one, else the addr-spec, case-folded.
func displayForm(s string) string {
	if l := vmstore.ParseAddressList(s); len(l) > 0 {
		if n := strings.TrimSpace(l[0].DisplayName()); n != "" {
			return casemap(n)
		}
		return casemap(l[0].AddrSpec())
	}
	return ""
}

func compareSort(a, b *sortValues, keys []sortKey) int {
	for _, k := range keys {
		var r int
		switch k.name {
		case "ARRIVAL":
			r = a.m.InternalDate.Compare(b.m.InternalDate)
		case "DATE":
			r = a.sent.Compare(b.sent)
		case "FROM":
			r = strings.Compare(a.from, b.from)
		case "TO":
			r = strings.Compare(a.to, b.to)
		case "DISPLAYFROM":
			r = strings.Compare(a.dfrom, b.dfrom)
		case "DISPLAYTO":
			r = strings.Compare(a.dto, b.dto)
		case "CC":
			r = strings.Compare(a.cc, b.cc)
		case "SUBJECT":
			r = strings.Compare(a.subject, b.subject)
		case "SIZE":
			r = cmp.Compare(a.m.Size, b.m.Size)
		}
		if k.reverse {
			r = -r
		}
		if r != 0 {
			return r
		}
	}
	return cmp.Compare(a.seq, b.seq)
}

// RFC 5256 s3 SORT / UID SORT, with RFC 5267 RETURN options (ESORT).
func cmdSort(c *conn, tag string, p *parser) {
	s := c.xselected()
	isUID := c.cmd == "UID SORT"
	p.xsp()
	var ret []string
	var partial *[2]uint32
	if p.ConsumeFold("RETURN ") {
		ret, partial = p.xreturnOpts()
		p.xsp()
	}
	var keys []sortKey
	p.xlist(func() {
		k := strings.ToUpper(p.xatom())
		rev := false
		if k == "REVERSE" {
			rev = true
			p.xsp()
			k = strings.ToUpper(p.xatom())
		}
		switch k {
		case "ARRIVAL", "CC", "DATE", "FROM", "SIZE", "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO":
		default:
			xsyntaxf("unknown sort key %s", k)
		}
		keys = append(keys, sortKey{k, rev})
	})
	if len(keys) == 0 {
		xsyntaxf("empty sort criteria")
	}
	req, found := c.xcharsetSearch(p)
	vals := make([]*sortValues, len(found))
	var maxMod uint64
	for i, m := range found {
		vals[i] = c.xsortValues(m, keys)
		maxMod = max(maxMod, m.ModSeq)
	}
	slices.SortStableFunc(vals, func(a, b *sortValues) int { return compareSort(a, b, keys) })
	nums := make([]uint32, len(vals))
	for i, v := range vals {
		if isUID {
			nums[i] = v.m.UID
		} else {
			nums[i] = v.seq
		}
	}
	if ret == nil {
		c.enc.Raw("* SORT")
		for _, n := range nums {
			c.enc.SP().Number(uint64(n))
		}
		if req.modseq && len(nums) > 0 {
			c.enc.Raw(" (MODSEQ ").Number(maxMod).Raw(")")
		}
		c.enc.CRLF()
		return
	}
	if slices.Contains(ret, "SAVE") {
		s.searchRes = s.searchRes[:0]
		for _, v := range vals {
			s.searchRes = append(s.searchRes, v.m.UID)
		}
		slices.Sort(s.searchRes)
		if len(ret) == 1 {
			return
		}
	}
	if slices.Contains(ret, "UPDATE") {
		req.ret, req.partial = ret, partial
		sorted := make([]vmstore.Message, len(vals))
		for i, v := range vals {
			sorted[i] = v.m
		}
		c.addContext(tag, isUID, keys, req, sorted)
	}
	c.writeESearchOrdered(tag, isUID, ret, partial, nums, req.modseq, maxMod, true)
}

// xreturnOpts reads "(" [MIN MAX ALL COUNT SAVE UPDATE PARTIAL range] ")"
// (RFC 4731, 5182, 5267). An empty list means ALL.
func (p *parser) xreturnOpts() ([]string, *[2]uint32) {
	ret := []string{}
	var partial *[2]uint32
	p.xlist(func() {
		o := strings.ToUpper(p.xatom())
		switch o {
		case "MIN", "MAX", "ALL", "COUNT", "SAVE", "UPDATE", "CONTEXT":
		case "PARTIAL":
			p.xsp()
			lo := p.xnznumber()
			p.xexpect(':')
			hi := p.xnznumber()
			if lo > hi {
				lo, hi = hi, lo
			}
			partial = &[2]uint32{lo, hi}
		default:
			xsyntaxf("unknown RETURN option %s", o)
		}
		ret = append(ret, o)
	})
	if !slices.ContainsFunc(ret, func(o string) bool { return o != "UPDATE" && o != "CONTEXT" }) {
		ret = append(ret, "ALL")
	}
	return ret, partial
}

// seqList formats numbers in the given order, compressing ascending runs
// (ESORT ALL keeps the sort order, RFC 5267 s3.2).
func seqList(nums []uint32) string {
	return uidListString(nums)
}

// writeESearchOrdered writes ESEARCH for SEARCH (ordered false: ALL is a
// set) or SORT (ALL and PARTIAL keep the sort order).
func (c *conn) writeESearchOrdered(tag string, isUID bool, ret []string, partial *[2]uint32, nums []uint32, modseq bool, maxMod uint64, ordered bool) {
	c.enc.Raw(`* ESEARCH (TAG `).String(tag).Raw(")")
	if isUID {
		c.enc.Raw(" UID")
	}
	if len(nums) > 0 {
		if slices.Contains(ret, "MIN") {
			if ordered {
				c.enc.Raw(" MIN ").Number(uint64(nums[0]))
			} else {
				c.enc.Raw(" MIN ").Number(uint64(slices.Min(nums)))
			}
		}
		if slices.Contains(ret, "MAX") {
			if ordered {
				c.enc.Raw(" MAX ").Number(uint64(nums[len(nums)-1]))
			} else {
				c.enc.Raw(" MAX ").Number(uint64(slices.Max(nums)))
			}
		}
		if slices.Contains(ret, "ALL") {
			if ordered {
				c.enc.Raw(" ALL ").Raw(seqList(nums))
			} else {
				sorted := slices.Clone(nums)
				slices.Sort(sorted)
				c.enc.Raw(" ALL ").Raw(uidSetString(sorted))
			}
		}
	}
	if partial != nil {
		// RFC 5267 s4.4: the results at positions lo..hi (1-based).
		lo, hi := int(partial[0]), int(partial[1])
		var part []uint32
		for i := lo - 1; i < hi && i < len(nums); i++ {
			part = append(part, nums[i])
		}
		c.enc.Raw(" PARTIAL (").Number(uint64(lo)).Raw(":").Number(uint64(hi)).SP()
		if len(part) == 0 {
			c.enc.Raw("NIL")
		} else if ordered {
			c.enc.Raw(seqList(part))
		} else {
			c.enc.Raw(uidListString(part))
		}
		c.enc.Raw(")")
	}
	if slices.Contains(ret, "COUNT") {
		c.enc.Raw(" COUNT ").Number(uint64(len(nums)))
	}
	if modseq && len(nums) > 0 {
		c.enc.Raw(" MODSEQ ").Number(maxMod)
	}
	c.enc.CRLF()
}

// xcharsetSearch reads the charset and search criteria that SORT and
// THREAD share (RFC 5256 s3: only UTF-8 and US-ASCII here) and evaluates
// them over the selected mailbox.
func (c *conn) xcharsetSearch(p *parser) (*searchReq, []vmstore.Message) {
	p.xsp()
	cs := strings.ToUpper(p.xastring())
	if cs != "UTF-8" && cs != "US-ASCII" {
		xusererrorf("BADCHARSET (UTF-8 US-ASCII)", "unsupported charset")
	}
	p.xsp()
	req := p.xsearchProgram(false)
	p.xend()
	if req.modseq {
		c.enableCondstore()
	}
	return req, c.xsearch(&req.crit)
}
