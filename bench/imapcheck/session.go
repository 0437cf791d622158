package imapcheck

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Session is one IMAP connection whose view of the selected mailbox is
// tracked from the responses it receives. Its methods are not safe for
// concurrent use.
type Session struct {
	ID    int
	Check *Checker
	// Timeout bounds each command (0 means 30 s).
	Timeout time.Duration

	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tag  int

	// Mailbox is the selected mailbox ("" when none).
	Mailbox string
	qresync bool

	uids     []uint32 // sequence number - 1 -> UID; 0 not known yet
	flags    map[uint32][]string
	modseq   map[uint32]uint64 // highest MODSEQ told
	flagsAt  map[uint32]uint64 // MODSEQ the cached flags were told with (0: unknown)
	source   map[uint32]string // what last set a UID's flags, for error reports
	keywords map[string]bool   // listed by the last FLAGS, lower case
	unlisted map[string]bool   // keywords already reported as used before FLAGS
	contexts map[string]*searchContext
	caps     map[string]bool
	recent   []string // last lines, for error reports
	lastCmd  string
	commands int
}

// Result is the outcome of one command.
type Result struct {
	Status string // OK, NO or BAD
	Code   string // response code of the tagged line, without brackets
	Text   string
	// Fetched holds the UIDs of the FETCH responses received, solicited
	// or not; FlagsFetched those of the FETCH responses with FLAGS.
	Fetched      map[uint32]bool
	FlagsFetched map[uint32]bool
	// Search holds the numbers of a SEARCH or ESEARCH ALL response.
	Search []uint32
	// Codes holds the response codes of untagged OK responses.
	Codes []string
}

// ErrStatus is returned (wrapped) for a NO or BAD.
var ErrStatus = errors.New("imapcheck: command failed")

// Dial connects and reads the greeting.
func Dial(addr string, id int, chk *Checker) (*Session, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	s := &Session{ID: id, Check: chk, conn: nc, r: bufio.NewReaderSize(nc, 32<<10), w: bufio.NewWriter(nc)}
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := s.readResponse(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("greeting: %w", err)
	}
	return s, nil
}

// Close ends the connection without LOGOUT.
func (s *Session) Close() error { return s.conn.Close() }

// HasCapability reports whether the server announced capability c (asks
// for CAPABILITY the first time).
func (s *Session) HasCapability(c string) bool {
	if s.caps == nil {
		if _, err := s.Do("CAPABILITY"); err != nil {
			return false
		}
	}
	return s.caps[strings.ToUpper(c)]
}

// Commands counts the commands sent.
func (s *Session) Commands() int { return s.commands }

// Login authenticates and enables CONDSTORE, or QRESYNC when qresync is
// set (then unsolicited FETCH carry UIDs and expunges come as VANISHED).
func (s *Session) Login(user, pass string, qresync bool) error {
	if _, err := s.Do("LOGIN " + quote(user) + " " + quote(pass)); err != nil {
		return err
	}
	ext := "CONDSTORE"
	if qresync {
		ext = "QRESYNC"
	}
	if _, err := s.Do("ENABLE " + ext); err != nil {
		return err
	}
	s.qresync = qresync
	return nil
}

// Select selects mailbox and learns the UID, flags and MODSEQ of every
// message.
func (s *Session) Select(mailbox string) error { return s.open("SELECT", mailbox) }

// Examine is Select read-only.
func (s *Session) Examine(mailbox string) error { return s.open("EXAMINE", mailbox) }

func (s *Session) open(cmd, mailbox string) error {
	s.Mailbox = ""
	s.uids, s.flags, s.modseq, s.keywords = nil, map[uint32][]string{}, map[uint32]uint64{}, map[string]bool{}
	s.flagsAt = map[uint32]uint64{}
	s.contexts = nil // updates end with the selection (RFC 5267 s4.3)
	if _, err := s.Do(cmd + " " + quote(mailbox) + " (CONDSTORE)"); err != nil {
		return err
	}
	s.Mailbox = mailbox
	return s.learn()
}

// UIDs returns the view: the UID of each sequence number.
func (s *Session) UIDs() []uint32 { return slices.Clone(s.uids) }

// Flags returns the flags last told for uid (without \Recent) and whether
// the session knows the message.
func (s *Session) Flags(uid uint32) ([]string, bool) {
	f, ok := s.flags[uid]
	return slices.Clone(f), ok
}

// ModSeq returns the MODSEQ last told for uid.
func (s *Session) ModSeq(uid uint32) uint64 { return s.modseq[uid] }

// Has reports whether uid is in the view.
func (s *Session) Has(uid uint32) bool { return slices.Contains(s.uids, uid) }

// Seq returns the sequence number of uid (0 if not in the view).
func (s *Session) Seq(uid uint32) uint32 {
	if i := slices.Index(s.uids, uid); i >= 0 {
		return uint32(i + 1)
	}
	return 0
}

// SetFlags replaces what the session believes of uid's flags (a client
// applying its own STORE .SILENT).
func (s *Session) SetFlags(uid uint32, flags []string) {
	if s.Has(uid) {
		s.flags[uid] = withoutRecent(flags)
		s.flagsAt[uid] = 0
		s.setSource(uid, "set by the client after: "+s.lastCmd)
	}
}

// Do sends one command (literals must be non-synchronizing, "{n+}"),
// processes every response up to its tagged reply, then fetches the UIDs
// of messages announced by EXISTS. A NO or BAD is returned as an error
// wrapping ErrStatus, together with the Result.
func (s *Session) Do(cmd string) (*Result, error) {
	res, err := s.do(cmd)
	if err != nil {
		return res, err
	}
	if s.Mailbox != "" {
		if err := s.learn(); err != nil {
			return res, err
		}
	}
	return res, nil
}

func (s *Session) do(cmd string) (*Result, error) {
	s.tag++
	s.commands++
	tag := "c" + strconv.Itoa(s.tag)
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	s.conn.SetDeadline(time.Now().Add(timeout))
	s.note("C: " + firstLine(tag+" "+cmd))
	s.lastCmd = firstLine(tag + " " + cmd)
	if _, err := s.w.WriteString(tag + " " + cmd + "\r\n"); err != nil {
		return nil, err
	}
	if err := s.w.Flush(); err != nil {
		return nil, err
	}
	res := &Result{Fetched: map[uint32]bool{}, FlagsFetched: map[uint32]bool{}}
	for {
		line, lits, err := s.readResponse()
		if err != nil {
			return nil, fmt.Errorf("session %d: %s: %w", s.ID, firstLine(cmd), err)
		}
		if strings.HasPrefix(line, tag+" ") {
			rest := line[len(tag)+1:]
			res.Status, rest, _ = strings.Cut(rest, " ")
			res.Code, res.Text = cutCode(rest)
			if res.Status != "OK" {
				return res, fmt.Errorf("%w: session %d: %s: %s", ErrStatus, s.ID, firstLine(cmd), line)
			}
			return res, nil
		}
		if strings.HasPrefix(line, "* ") {
			s.untagged(line[2:], lits, res)
		}
		// Continuation requests are not expected: literals are sent
		// non-synchronizing.
	}
}

// learn fetches UID, FLAGS and MODSEQ of the messages whose UIDs the view
// does not know (after EXISTS).
func (s *Session) learn() error {
	for range 4 {
		first := slices.Index(s.uids, 0)
		if first < 0 {
			return nil
		}
		if _, err := s.do(fmt.Sprintf("FETCH %d:* (UID FLAGS MODSEQ)", first+1)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Session) note(l string) {
	if len(s.recent) >= 24 {
		s.recent = s.recent[1:]
	}
	s.recent = append(s.recent, l)
}

// Recent returns the last lines sent and received, for error reports.
func (s *Session) Recent() string { return strings.Join(s.recent, " | ") }

func (s *Session) errorf(k Kind, format string, args ...any) {
	if s.Check != nil {
		s.Check.Errorf(k, s.ID, "%s [mailbox %s; last: %s]", fmt.Sprintf(format, args...), s.Mailbox, s.Recent())
	}
}

// readResponse reads one response line with its literals; the literals'
// places in the line are left as "{n}".
func (s *Session) readResponse() (string, []string, error) {
	var b strings.Builder
	var lits []string
	for {
		l, err := s.r.ReadString('\n')
		if err != nil {
			return "", nil, err
		}
		l = strings.TrimRight(l, "\r\n")
		b.WriteString(l)
		n, ok := literalSize(l)
		if !ok {
			break
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(s.r, buf); err != nil {
			return "", nil, err
		}
		lits = append(lits, string(buf))
	}
	line := b.String()
	s.note("S: " + firstLine(line))
	return line, lits, nil
}

// literalSize recognises a line ending in "{n}" or "~{n}".
func literalSize(l string) (int, bool) {
	if !strings.HasSuffix(l, "}") {
		return 0, false
	}
	i := strings.LastIndexByte(l, '{')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.Atoi(l[i+1 : len(l)-1])
	return n, err == nil && n >= 0
}

// untagged updates the view from one untagged response.
func (s *Session) untagged(line string, lits []string, res *Result) {
	word, rest, _ := strings.Cut(line, " ")
	if n, err := strconv.ParseUint(word, 10, 32); err == nil {
		kind, arg, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(kind) {
		case "EXISTS":
			if int(n) < len(s.uids) {
				s.errorf(BadSequence, "EXISTS %d with %d messages in the view", n, len(s.uids))
				return
			}
			for len(s.uids) < int(n) {
				s.uids = append(s.uids, 0)
			}
		case "EXPUNGE":
			if n < 1 || int(n) > len(s.uids) {
				s.errorf(BadSequence, "EXPUNGE %d with %d messages in the view", n, len(s.uids))
				return
			}
			u := s.uids[n-1]
			s.uids = slices.Delete(s.uids, int(n-1), int(n))
			s.forget(u)
			s.contextsExpunged(uint32(n))
		case "FETCH":
			s.fetch(uint32(n), arg, lits, res)
		}
		return
	}
	switch strings.ToUpper(word) {
	case "OK":
		if code, _ := cutCode(rest); code != "" {
			res.Codes = append(res.Codes, code)
		}
	case "CAPABILITY":
		s.caps = map[string]bool{}
		for _, c := range strings.Fields(rest) {
			s.caps[strings.ToUpper(c)] = true
		}
	case "FLAGS":
		toks, err := tokenize(rest, lits)
		if err != nil || len(toks) != 1 {
			s.errorf(Protocol, "bad FLAGS response %q", line)
			return
		}
		list, _ := toks[0].([]any)
		s.keywords = map[string]bool{}
		for _, f := range list {
			if fs, ok := f.(string); ok {
				s.keywords[strings.ToLower(fs)] = true
			}
		}
	case "VANISHED":
		if strings.HasPrefix(strings.ToUpper(rest), "(EARLIER)") {
			return
		}
		uids, err := parseSet(strings.TrimSpace(rest))
		if err != nil {
			s.errorf(Protocol, "bad VANISHED %q", line)
			return
		}
		for _, u := range uids {
			i := slices.Index(s.uids, u)
			if i < 0 {
				if j := slices.Index(s.uids, 0); j >= 0 {
					// Announced but not yet learnt: its place is unknown.
					s.uids = slices.Delete(s.uids, j, j+1)
					s.uids = slices.Repeat([]uint32{0}, len(s.uids))
				}
				continue
			}
			s.uids = slices.Delete(s.uids, i, i+1)
			s.forget(u)
			s.contextsExpunged(uint32(i + 1))
		}
	case "SEARCH", "SORT":
		for _, f := range strings.Fields(rest) {
			if strings.HasPrefix(f, "(") {
				break
			}
			if n, err := strconv.ParseUint(f, 10, 32); err == nil {
				res.Search = append(res.Search, uint32(n))
			}
		}
	case "ESEARCH":
		s.esearch(rest, lits, res)
	}
}

func (s *Session) forget(u uint32) {
	if u != 0 {
		delete(s.flags, u)
		delete(s.modseq, u)
		delete(s.flagsAt, u)
		delete(s.source, u)
	}
}

// fetch checks and records one FETCH response.
func (s *Session) fetch(seq uint32, arg string, lits []string, res *Result) {
	if seq < 1 || int(seq) > len(s.uids) {
		s.errorf(BadSequence, "FETCH %d with %d messages in the view", seq, len(s.uids))
		return
	}
	toks, err := tokenize(arg, lits)
	if err != nil || len(toks) != 1 {
		s.errorf(Protocol, "bad FETCH %d %q: %v", seq, arg, err)
		return
	}
	items, ok := toks[0].([]any)
	if !ok || len(items)%2 != 0 {
		s.errorf(Protocol, "bad FETCH %d %q", seq, arg)
		return
	}
	var uid uint32
	var flags []string
	var modseq uint64
	hasFlags := false
	for i := 0; i < len(items); i += 2 {
		name, _ := items[i].(string)
		switch strings.ToUpper(name) {
		case "UID":
			v, _ := items[i+1].(string)
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				s.errorf(Protocol, "bad UID in FETCH %q", arg)
				return
			}
			uid = uint32(n)
		case "FLAGS":
			l, _ := items[i+1].([]any)
			hasFlags = true
			flags = []string{}
			for _, f := range l {
				if fs, ok := f.(string); ok {
					flags = append(flags, fs)
				}
			}
		case "MODSEQ":
			l, _ := items[i+1].([]any)
			if len(l) == 1 {
				v, _ := l[0].(string)
				modseq, _ = strconv.ParseUint(v, 10, 64)
			}
		}
	}
	known := s.uids[seq-1]
	switch {
	case uid == 0:
		uid = known
	case known == 0:
		if slices.Contains(s.uids, uid) {
			s.errorf(UIDMismatch, "FETCH %d UID %d: UID already at sequence number %d", seq, uid, s.Seq(uid))
			return
		}
		s.uids[seq-1] = uid
	case known != uid:
		s.errorf(UIDMismatch, "FETCH %d UID %d: sequence number %d is UID %d", seq, uid, seq, known)
		return
	}
	if hasFlags {
		for _, f := range flags {
			lf := strings.ToLower(f)
			if !strings.HasPrefix(f, `\`) && !s.keywords[lf] && !s.unlisted[lf] {
				// Counted once per session and keyword.
				if s.unlisted == nil {
					s.unlisted = map[string]bool{}
				}
				s.unlisted[lf] = true
				s.errorf(KeywordBeforeFlags, "FETCH %d (UID %d) carries %s, not in FLAGS", seq, uid, f)
			}
		}
	}
	if uid == 0 {
		return // a sequence number not learnt yet: nothing to compare
	}
	res.Fetched[uid] = true
	flags = withoutRecent(flags)
	if modseq != 0 {
		old := s.modseq[uid]
		if modseq < old {
			s.errorf(ModseqBackwards, "UID %d: MODSEQ %d after %d (FLAGS %v)", uid, modseq, old, flags)
			return // keep the newer state
		}
		if hasFlags && modseq == s.flagsAt[uid] && !sameFlags(s.flags[uid], flags) {
			s.errorf(ModseqConflict, "UID %d: MODSEQ %d with FLAGS %v (from %q) and %v", uid, modseq, s.flags[uid], s.source[uid], flags)
		}
		s.modseq[uid] = modseq
	}
	if hasFlags {
		res.FlagsFetched[uid] = true
		s.flags[uid] = flags
		s.flagsAt[uid] = modseq
		s.setSource(uid, fmt.Sprintf("%d FETCH %s", seq, arg))
	}
}

func (s *Session) setSource(uid uint32, src string) {
	if s.source == nil {
		s.source = map[uint32]string{}
	}
	s.source[uid] = firstLine(src)
}

func withoutRecent(flags []string) []string {
	return slices.DeleteFunc(slices.Clone(flags), func(f string) bool { return strings.EqualFold(f, `\Recent`) })
}

func sameFlags(a, b []string) bool {
	norm := func(l []string) []string {
		out := make([]string, 0, len(l))
		for _, f := range l {
			if !strings.EqualFold(f, `\Recent`) {
				out = append(out, strings.ToLower(f))
			}
		}
		slices.Sort(out)
		return slices.Compact(out)
	}
	return slices.Equal(norm(a), norm(b))
}

// cutCode splits "[CODE args] text".
func cutCode(s string) (string, string) {
	if !strings.HasPrefix(s, "[") {
		return "", s
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return s[1:i], strings.TrimSpace(s[i+1:])
			}
		}
	}
	return "", s
}

// tokenize parses IMAP data: atoms and numbers as strings, quoted strings
// and literals as strings, parenthesised lists as []any.
func tokenize(s string, lits []string) ([]any, error) {
	p := &tokParser{s: s, lits: lits}
	out, err := p.list(false)
	if err != nil {
		return nil, err
	}
	return out, nil
}

type tokParser struct {
	s    string
	i    int
	lits []string
	lit  int
}

func (p *tokParser) list(nested bool) ([]any, error) {
	var out []any
	for {
		for p.i < len(p.s) && p.s[p.i] == ' ' {
			p.i++
		}
		if p.i >= len(p.s) {
			if nested {
				return nil, errors.New("unterminated list")
			}
			return out, nil
		}
		switch c := p.s[p.i]; c {
		case '(':
			p.i++
			l, err := p.list(true)
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		case ')':
			if !nested {
				return nil, errors.New("unbalanced )")
			}
			p.i++
			return out, nil
		case '"':
			p.i++
			var b strings.Builder
			for {
				if p.i >= len(p.s) {
					return nil, errors.New("unterminated string")
				}
				c := p.s[p.i]
				p.i++
				if c == '\\' && p.i < len(p.s) {
					b.WriteByte(p.s[p.i])
					p.i++
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			out = append(out, b.String())
		case '{', '~':
			j := strings.IndexByte(p.s[p.i:], '}')
			if j < 0 || p.lit >= len(p.lits) {
				return nil, errors.New("bad literal")
			}
			p.i += j + 1
			out = append(out, p.lits[p.lit])
			p.lit++
		default:
			start := p.i
			depth := 0
			for p.i < len(p.s) {
				c := p.s[p.i]
				if c == '[' {
					depth++
				} else if c == ']' {
					depth--
				} else if depth == 0 && (c == ' ' || c == '(' || c == ')') {
					break
				}
				p.i++
			}
			out = append(out, p.s[start:p.i])
		}
	}
}

// parseSet expands a set of numbers without "*" ("1:3,7").
func parseSet(s string) ([]uint32, error) {
	var out []uint32
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, ":")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
				return nil, err
			}
		}
		if a > b {
			a, b = b, a
		}
		if b-a > 1<<20 {
			return nil, errors.New("range too large")
		}
		for n := a; n <= b; n++ {
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

// FormatSet writes numbers as a compact set in the given order ("1:3,7").
func FormatSet(nums []uint32) string {
	var b strings.Builder
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatUint(uint64(nums[i]), 10))
		if j > i {
			b.WriteByte(':')
			b.WriteString(strconv.FormatUint(uint64(nums[j]), 10))
		}
		i = j + 1
	}
	return b.String()
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func firstLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i] + " ..."
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
