package imap

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// RFC 5256 THREAD / UID THREAD with the ORDEREDSUBJECT and REFERENCES
// algorithms (capabilities in capability.go). Everything the algorithms
// need is in the message records (base subject from Subject, sent date,
// normalized Message-ID and references), so THREAD reads no message
// content; records stored before the references were kept are threaded
// from their envelope's Message-ID and In-Reply-To.
func init() {
	register("THREAD", stateSelected, cmdThread)
	register("UID THREAD", stateSelected, cmdThread)
}

// threadStructureReads counts messages THREAD had to read the structure
// of (records without keys); tests check that new records need none.
var threadStructureReads atomic.Int64

// threadMsg is what the algorithms know of one message.
type threadMsg struct {
	num     uint32 // sequence number or UID, as answered
	seq     uint32
	sent    time.Time
	subject string // base subject, case-folded
	reply   bool   // the subject marked a reply or forward
	id      string
	refs    []string
}

// tnode is a thread tree node; a dummy has no message.
type tnode struct {
	m        *threadMsg
	parent   *tnode
	children []*tnode
}

func cmdThread(c *conn, tag string, p *parser) {
	c.xselected()
	isUID := c.cmd == "UID THREAD"
	p.xsp()
	alg := strings.ToUpper(p.xatom())
	if alg != "ORDEREDSUBJECT" && alg != "REFERENCES" {
		xsyntaxf("unknown thread algorithm %s", alg)
	}
	_, found := c.xcharsetSearch(p)
	msgs := make([]*threadMsg, len(found))
	for i := range found {
		msgs[i] = c.xthreadMsg(&found[i], isUID, alg == "REFERENCES")
	}
	var roots []*tnode
	if alg == "ORDEREDSUBJECT" {
		roots = threadOrderedSubject(msgs)
	} else {
		roots = threadReferences(msgs)
	}
	var b strings.Builder
	b.WriteString("* THREAD")
	if len(roots) > 0 {
		b.WriteByte(' ')
	}
	for _, r := range roots {
		writeThreadList(&b, r)
	}
	c.enc.Raw(b.String()).CRLF()
}

func (c *conn) xthreadMsg(m *vmstore.Message, isUID, refs bool) *threadMsg {
	t := &threadMsg{sent: m.SentDate}
	t.seq, _ = c.sel.seqOf(m.UID)
	t.num = t.seq
	if isUID {
		t.num = m.UID
	}
	if t.sent.IsZero() {
		t.sent = m.InternalDate
	}
	base, reply := extractBaseSubject(m.Subject)
	t.subject, t.reply = casemap(base), reply
	if !refs {
		return t
	}
	if k := m.HeaderKeys(); k != nil {
		t.id, t.refs = k.MessageID, k.Refs
		return t
	}
	// A record from before the keys were kept: its cached structure has
	// Message-ID and In-Reply-To (References is not in the envelope).
	threadStructureReads.Add(1)
	part, err := c.srv.Store.Structure(m)
	xcheckf(err, "structure")
	if env := part.Envelope; env != nil {
		if ids := vmstore.ParseMsgIDs(env.MessageID); len(ids) > 0 {
			t.id = ids[0]
		}
		if ids := vmstore.ParseMsgIDs(env.InReplyTo); len(ids) > 0 {
			t.refs = ids[:1]
		}
	}
	return t
}

// compareThread orders by sent date, then sequence number (RFC 5256
// s2.2); a dummy sorts as its first child.
func compareThread(a, b *tnode) int {
	for a.m == nil && len(a.children) > 0 {
		a = a.children[0]
	}
	for b.m == nil && len(b.children) > 0 {
		b = b.children[0]
	}
	if a.m == nil || b.m == nil {
		return 0
	}
	if r := a.m.sent.Compare(b.m.sent); r != 0 {
		return r
	}
	return cmp.Compare(a.m.seq, b.m.seq)
}

// threadOrderedSubject: messages sorted by base subject then sent date;
// each run of one base subject is a thread whose first message is the
// parent of all the others; threads in the order of their first
// message's sent date.
func threadOrderedSubject(msgs []*threadMsg) []*tnode {
	sorted := slices.Clone(msgs)
	slices.SortStableFunc(sorted, func(a, b *threadMsg) int {
		if r := strings.Compare(a.subject, b.subject); r != 0 {
			return r
		}
		if r := a.sent.Compare(b.sent); r != 0 {
			return r
		}
		return cmp.Compare(a.seq, b.seq)
	})
	var roots []*tnode
	var cur *tnode
	for _, m := range sorted {
		if cur != nil && cur.m.subject == m.subject {
			cur.children = append(cur.children, &tnode{m: m, parent: cur})
			continue
		}
		cur = &tnode{m: m}
		roots = append(roots, cur)
	}
	slices.SortStableFunc(roots, compareThread)
	return roots
}

// isAncestor reports whether a is b or one of b's ancestors (making a a
// child of b would close a loop). A node without children is nobody's
// ancestor: the common case costs no walk up the tree.
func isAncestor(a, b *tnode) bool {
	if a != b && len(a.children) == 0 {
		return false
	}
	for n := b; n != nil; n = n.parent {
		if n == a {
			return true
		}
	}
	return false
}

func (n *tnode) unlink() {
	if p := n.parent; p != nil {
		if i := slices.Index(p.children, n); i >= 0 {
			p.children = slices.Delete(p.children, i, i+1)
		}
		n.parent = nil
	}
}

func (n *tnode) adopt(child *tnode) {
	child.unlink()
	child.parent = n
	n.children = append(n.children, child)
}

// threadReferences is RFC 5256 s2.2's REFERENCES algorithm.
func threadReferences(msgs []*threadMsg) []*tnode {
	byID := make(map[string]*tnode, len(msgs))
	var all []*tnode // in creation order, for a stable root set
	get := func(id string) *tnode {
		n := byID[id]
		if n == nil {
			n = &tnode{}
			byID[id] = n
			all = append(all, n)
		}
		return n
	}
	// Message-IDs: a message without one, or with one an earlier message
	// (lower sequence number) already has, gets a unique one.
	inSeq := slices.Clone(msgs)
	slices.SortFunc(inSeq, func(a, b *threadMsg) int { return cmp.Compare(a.seq, b.seq) })
	nodes := make(map[*threadMsg]*tnode, len(msgs))
	for _, m := range inSeq {
		var n *tnode
		if m.id != "" {
			if x := byID[m.id]; x == nil || x.m == nil {
				n = get(m.id)
			}
		}
		if n == nil {
			n = &tnode{}
			all = append(all, n)
		}
		n.m = m
		nodes[m] = n
	}
	// (1) Link the references to one another and the message to the last.
	for _, m := range inSeq {
		n := nodes[m]
		var prev *tnode
		for _, r := range m.refs {
			rn := get(r)
			// (A) an existing parent is kept; no loops.
			if prev != nil && rn.parent == nil && !isAncestor(rn, prev) {
				prev.adopt(rn)
			}
			prev = rn
		}
		// (B) the last reference is the parent, replacing a parent found
		// through a truncated References; no loops; no references means
		// no parent.
		if prev == nil {
			n.unlink()
		} else if n.parent != prev && !isAncestor(n, prev) {
			prev.adopt(n)
		}
	}
	// (2) The root set.
	var roots []*tnode
	for _, n := range all {
		if n.parent == nil {
			roots = append(roots, n)
		}
	}
	// (3) Prune dummies.
	roots = pruneDummies(roots, true)
	for _, r := range roots {
		r.parent = nil
	}
	// (4) Sort the roots by sent date (a dummy by its first child's,
	// once its children are sorted).
	for _, r := range roots {
		if r.m == nil {
			slices.SortStableFunc(r.children, compareThread)
		}
	}
	slices.SortStableFunc(roots, compareThread)
	// (5) Gather threads of one base subject.
	threadSubject := func(n *tnode) *threadMsg {
		if n.m == nil {
			if len(n.children) == 0 {
				return nil
			}
			return n.children[0].m
		}
		return n.m
	}
	table := map[string]*tnode{}
	for _, r := range roots {
		tm := threadSubject(r)
		if tm == nil || tm.subject == "" {
			continue
		}
		old, ok := table[tm.subject]
		if !ok {
			table[tm.subject] = r
			continue
		}
		if old.m != nil && (r.m == nil || (old.m.reply && !r.m.reply)) {
			table[tm.subject] = r
		}
	}
	slot := make(map[*tnode]int, len(roots))
	for i, r := range roots {
		slot[r] = i
	}
	orig := slices.Clone(roots)
	for _, r := range orig {
		tm := threadSubject(r)
		if tm == nil || tm.subject == "" {
			continue
		}
		t := table[tm.subject]
		if t == nil || t == r {
			continue
		}
		switch {
		case t.m == nil && r.m == nil:
			for _, ch := range slices.Clone(r.children) {
				t.adopt(ch)
			}
			roots[slot[r]] = nil
		case t.m == nil:
			roots[slot[r]] = nil
			t.adopt(r)
		case r.m.reply && !t.m.reply:
			roots[slot[r]] = nil
			t.adopt(r)
		default:
			d := &tnode{}
			i := slot[t]
			roots[slot[r]] = nil
			d.adopt(t)
			d.adopt(r)
			roots[i] = d
			slot[d] = i
			table[tm.subject] = d
		}
	}
	roots = slices.DeleteFunc(roots, func(n *tnode) bool { return n == nil })
	// (6) Sort every set of siblings by sent date, depth first.
	var sortTree func(l []*tnode)
	sortTree = func(l []*tnode) {
		for _, n := range l {
			sortTree(n.children)
		}
		slices.SortStableFunc(l, compareThread)
	}
	sortTree(roots)
	return roots
}

// pruneDummies is step (3): a dummy without children goes; a dummy's
// children take its place, except that several children are not promoted
// to the root level.
func pruneDummies(l []*tnode, root bool) []*tnode {
	var out []*tnode
	for _, n := range l {
		n.children = pruneDummies(n.children, false)
		for _, ch := range n.children {
			ch.parent = n
		}
		if n.m != nil {
			out = append(out, n)
			continue
		}
		switch {
		case len(n.children) == 0:
		case !root || len(n.children) == 1:
			out = append(out, n.children...)
		default:
			out = append(out, n)
		}
	}
	return out
}

// writeThreadList writes one thread-list (RFC 5256 s4): a chain of single
// children is a run of numbers, several children are nested lists, a
// dummy is a list of its children's lists.
func writeThreadList(b *strings.Builder, n *tnode) {
	b.WriteByte('(')
	writeThreadMembers(b, n)
	b.WriteByte(')')
}

func writeThreadMembers(b *strings.Builder, n *tnode) {
	for {
		if n.m == nil {
			if len(n.children) == 1 {
				n = n.children[0]
				continue
			}
			for _, ch := range n.children {
				writeThreadList(b, ch)
			}
			return
		}
		b.WriteString(strconv.FormatUint(uint64(n.m.num), 10))
		switch len(n.children) {
		case 0:
			return
		case 1:
			b.WriteByte(' ')
			n = n.children[0]
			if n.m == nil && len(n.children) > 1 {
				for _, ch := range n.children {
					writeThreadList(b, ch)
				}
				return
			}
			continue
		default:
			b.WriteByte(' ')
			for _, ch := range n.children {
				writeThreadList(b, ch)
			}
			return
		}
	}
}
