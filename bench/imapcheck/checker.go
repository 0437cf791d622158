// Package imapcheck checks what IMAP sessions are told while many of them
// change the same mailboxes. Each Session wraps a raw connection, parses
// the untagged responses it receives and keeps the client's view: the
// UID of every sequence number, and the flags and MODSEQ of every UID as
// last told. A Checker collects what no correct server may do:
//
//   - a MODSEQ older than one already told for the UID, or the same MODSEQ
//     with other flags;
//   - a FETCH carrying a keyword that no FLAGS response listed;
//   - a sequence number outside the view (EXPUNGE, FETCH), EXISTS that
//     shrinks, or a FETCH whose UID contradicts an earlier one;
//   - a UID command that left out a UID of its set that existed;
//   - at the end, after a NOOP, a view (UIDs, flags) other than the
//     mailbox's, or a CONTEXT=SEARCH/SORT result (RFC 5267) other than
//     the search run again.
//
// Run drives N sessions with a random mix of STORE, APPEND, EXPUNGE, COPY,
// MOVE, FETCH and SEARCH (UID and sequence forms, keywords, UNCHANGEDSINCE)
// against a server and verifies every session at the end. The package
// uses only the standard library, so it runs against any IMAP server with
// CONDSTORE, UIDPLUS and MOVE.
package imapcheck

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Kind classifies a consistency error.
type Kind string

// The kinds of error a Checker counts.
const (
	// ModseqBackwards: a FETCH told a MODSEQ lower than one the session
	// was already told for that UID.
	ModseqBackwards Kind = "modseq-backwards"
	// ModseqConflict: the same MODSEQ for a UID with other flags.
	ModseqConflict Kind = "modseq-conflict"
	// KeywordBeforeFlags: a FETCH carried a keyword before a FLAGS
	// response listed it (RFC 9051 s7.3.5); counted once per session and
	// keyword.
	KeywordBeforeFlags Kind = "keyword-before-flags"
	// BadSequence: EXPUNGE or FETCH of a sequence number beyond the view,
	// or EXISTS lower than the view's size.
	BadSequence Kind = "bad-sequence"
	// UIDMismatch: a FETCH gave a sequence number another UID than the
	// session was told before.
	UIDMismatch Kind = "uid-mismatch"
	// UIDNoop: a UID command left out an existing UID of its set (no
	// FETCH for UID STORE/FETCH, not in COPYUID, not moved, not found by
	// UID SEARCH UID).
	UIDNoop Kind = "uid-noop"
	// ViewMismatch: after the run and a NOOP, the session's UIDs (what
	// EXISTS, EXPUNGE and VANISHED told it) differ from the mailbox's.
	ViewMismatch Kind = "view-mismatch"
	// FlagsMismatch: after the run and a NOOP, the session's flags of a
	// UID differ from the mailbox's.
	FlagsMismatch Kind = "flags-mismatch"
	// ContextMismatch: a CONTEXT=SEARCH/SORT result kept up to date from
	// ADDTO and REMOVEFROM (RFC 5267) differs, after a NOOP, from the same
	// search run again; or a message sequence number still in a context
	// was expunged before its REMOVEFROM; or an update does not fit the
	// result.
	ContextMismatch Kind = "context-mismatch"
	// Protocol: a response the checker could not parse, a failed command
	// that should not fail, or a lost connection.
	Protocol Kind = "protocol"
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{ModseqBackwards, ModseqConflict, KeywordBeforeFlags, BadSequence, UIDMismatch, UIDNoop, ViewMismatch, FlagsMismatch, ContextMismatch, Protocol}

// Checker collects errors from any number of sessions. The zero value is
// ready to use.
type Checker struct {
	// MaxSamples bounds the error descriptions kept per kind (0 means 3).
	MaxSamples int

	mu      sync.Mutex
	counts  map[Kind]int
	samples []string
}

// Errorf records one error of kind k seen by session id.
func (c *Checker) Errorf(k Kind, id int, format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[Kind]int{}
	}
	c.counts[k]++
	limit := c.MaxSamples
	if limit == 0 {
		limit = 3
	}
	if c.counts[k] <= limit {
		c.samples = append(c.samples, fmt.Sprintf("%s: session %d: %s", k, id, fmt.Sprintf(format, args...)))
	}
}

// Counts returns the number of errors per kind.
func (c *Checker) Counts() map[Kind]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[Kind]int, len(c.counts))
	for k, n := range c.counts {
		out[k] = n
	}
	return out
}

// Total is the number of errors of all kinds.
func (c *Checker) Total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.counts {
		n += v
	}
	return n
}

// Samples returns descriptions of the first errors of each kind.
func (c *Checker) Samples() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.samples)
}

// Summary is "kind=n ..." for the kinds with errors, or "0 errors".
func (c *Checker) Summary() string {
	counts := c.Counts()
	var parts []string
	for _, k := range Kinds {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
		}
	}
	var other []string
	for k, n := range counts {
		if !slices.Contains(Kinds, k) && n > 0 {
			other = append(other, fmt.Sprintf("%s=%d", k, n))
		}
	}
	sort.Strings(other)
	parts = append(parts, other...)
	if len(parts) == 0 {
		return "0 errors"
	}
	return strings.Join(parts, " ")
}
