package imapcheck

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// searchContext is a result kept up to date by ESEARCH ADDTO and
// REMOVEFROM (RFC 5267 s4.3).
type searchContext struct {
	tag    string
	cmd    string // the searching command without RETURN, to run it again
	uid    bool
	sorted bool
	nums   []uint32 // in result order (mailbox order for SEARCH)
}

// OpenContext runs "[UID] SEARCH|SORT RETURN (UPDATE ALL) <program>" and
// keeps its result up to date from the server's updates; program is what
// follows RETURN (...) (for SORT, the sort criteria, charset and search
// keys). VerifyContexts compares the results with the search run again.
func (s *Session) OpenContext(uid, sorted bool, program string) error {
	cmd := "SEARCH"
	if sorted {
		cmd = "SORT"
	}
	if uid {
		cmd = "UID " + cmd
	}
	ctx := &searchContext{tag: "c" + strconv.Itoa(s.tag+1), cmd: cmd + " " + program, uid: uid, sorted: sorted}
	if s.contexts == nil {
		s.contexts = map[string]*searchContext{}
	}
	s.contexts[ctx.tag] = ctx
	if _, err := s.Do(cmd + " RETURN (UPDATE ALL) " + program); err != nil {
		delete(s.contexts, ctx.tag)
		return err
	}
	return nil
}

// VerifyContexts runs each context's search again and reports results
// that differ from the kept ones. Call it when no other session changes
// the mailbox, after a NOOP.
func (s *Session) VerifyContexts() error {
	tags := make([]string, 0, len(s.contexts))
	for t := range s.contexts {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	for _, t := range tags {
		ctx := s.contexts[t]
		res, err := s.Do(ctx.cmd)
		if err != nil {
			return err
		}
		if !slices.Equal(res.Search, ctx.nums) {
			s.errorf(ContextMismatch, "context %s (%s) holds %s, the search gives %s", t, ctx.cmd, listString(ctx.nums), listString(res.Search))
		}
	}
	return nil
}

func listString(l []uint32) string {
	if len(l) == 0 {
		return "nothing"
	}
	return FormatSet(l)
}

// esearch applies an ESEARCH response to its context (or takes ALL into
// the command's Result).
func (s *Session) esearch(rest string, lits []string, res *Result) {
	toks, err := tokenize(rest, lits)
	if err != nil || len(toks) == 0 {
		s.errorf(Protocol, "bad ESEARCH %q", rest)
		return
	}
	var ctx *searchContext
	if corr, ok := toks[0].([]any); ok {
		if len(corr) == 2 {
			if tag, _ := corr[1].(string); tag != "" {
				ctx = s.contexts[tag]
			}
		}
		toks = toks[1:]
	}
	if len(toks) > 0 {
		if a, _ := toks[0].(string); strings.EqualFold(a, "UID") {
			toks = toks[1:]
		}
	}
	for i := 0; i+1 < len(toks); i += 2 {
		name, _ := toks[i].(string)
		switch strings.ToUpper(name) {
		case "ALL":
			v, _ := toks[i+1].(string)
			nums, err := parseSetOrdered(v)
			if err != nil {
				s.errorf(Protocol, "bad ESEARCH ALL %q", rest)
				return
			}
			res.Search = nums
			if ctx != nil {
				ctx.nums = nums
			}
		case "ADDTO", "REMOVEFROM":
			if ctx == nil {
				continue
			}
			pairs, _ := toks[i+1].([]any)
			if len(pairs)%2 != 0 {
				s.errorf(Protocol, "bad %s in %q", name, rest)
				return
			}
			for j := 0; j < len(pairs); j += 2 {
				ps, _ := pairs[j].(string)
				pos, err1 := strconv.Atoi(ps)
				set, _ := pairs[j+1].(string)
				items, err2 := parseSetOrdered(set)
				if err1 != nil || err2 != nil || pos < 0 {
					s.errorf(Protocol, "bad %s pair in %q", name, rest)
					return
				}
				if !ctx.uid {
					for _, q := range items {
						if int(q) > len(s.uids) || q == 0 {
							s.errorf(ContextMismatch, "%s of message %d with %d in the view: %q", name, q, len(s.uids), rest)
							return
						}
					}
				}
				if strings.EqualFold(name, "ADDTO") {
					ctx.add(pos, items)
				} else if err := ctx.remove(pos, items); err != nil {
					// One error per response: the rest no longer applies.
					s.errorf(ContextMismatch, "context %s: %v: %q", ctx.tag, err, rest)
					return
				}
			}
		}
	}
}

func (c *searchContext) add(pos int, items []uint32) {
	if pos == 0 {
		c.nums = append(c.nums, items...)
		slices.Sort(c.nums)
		c.nums = slices.Compact(c.nums)
		return
	}
	pos = min(pos-1, len(c.nums))
	c.nums = slices.Insert(c.nums, pos, items...)
}

func (c *searchContext) remove(pos int, items []uint32) error {
	if pos == 0 {
		for _, n := range items {
			i := slices.Index(c.nums, n)
			if i < 0 {
				return fmt.Errorf("REMOVEFROM of %d, not in the result", n)
			}
			c.nums = slices.Delete(c.nums, i, i+1)
		}
		return nil
	}
	if pos-1+len(items) > len(c.nums) || !slices.Equal(c.nums[pos-1:pos-1+len(items)], items) {
		return fmt.Errorf("REMOVEFROM (%d %s) does not match the result %s", pos, FormatSet(items), listString(c.nums))
	}
	c.nums = slices.Delete(c.nums, pos-1, pos-1+len(items))
	return nil
}

// expunged renumbers the sequence-number contexts after "* n EXPUNGE";
// n itself must have been removed before (RFC 5267 s4.3.4).
func (s *Session) contextsExpunged(n uint32) {
	for _, ctx := range s.contexts {
		if ctx.uid {
			continue
		}
		if i := slices.Index(ctx.nums, n); i >= 0 {
			s.errorf(ContextMismatch, "EXPUNGE %d still in context %s: REMOVEFROM must come first", n, ctx.tag)
			ctx.nums = slices.Delete(ctx.nums, i, i+1)
		}
		for i, q := range ctx.nums {
			if q > n {
				ctx.nums[i] = q - 1
			}
		}
	}
}

// parseSetOrdered expands a set keeping its order ("5:7,3" is 5 6 7 3).
func parseSetOrdered(s string) ([]uint32, error) {
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		nums, err := parseSet(part)
		if err != nil {
			return nil, err
		}
		out = append(out, nums...)
	}
	return out, nil
}
