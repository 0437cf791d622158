package imapcheck

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes a run.
type Config struct {
	Addr           string // host:port, plain IMAP
	User, Password string // one account, shared by all sessions
	// Mailboxes are shared by the sessions (created when missing); each
	// session selects one and moves and copies to the others. Default
	// INBOX and "Check".
	Mailboxes []string
	Sessions  int           // default 12
	Duration  time.Duration // default 8 s
	Seed      uint64        // 0: from the clock
	// MinMessages and MaxMessages steer APPEND and EXPUNGE so that each
	// mailbox stays around this size (defaults 20 and 120).
	MinMessages, MaxMessages int
	// QResyncEvery: every n-th session enables QRESYNC instead of
	// CONDSTORE (default 3; negative: none).
	QResyncEvery int
	// Contexts: each session keeps one CONTEXT=SEARCH or CONTEXT=SORT
	// result (RFC 5267) up to date and checks it at the end, when the
	// server has the extension. Off by default: a server recomputes every
	// context on every change, which weighs on a throughput comparison.
	Contexts bool
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// Report is the outcome of a run.
type Report struct {
	Commands int
	Elapsed  time.Duration
	Counts   map[Kind]int
	Samples  []string
	Summary  string
}

// Run drives cfg.Sessions sessions for cfg.Duration, then brings every
// session up to date with NOOP and compares its view with the mailbox as a
// fresh session sees it. Consistency errors are in the report; the error
// is for a run that could not be carried out (connection, setup).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Mailboxes) == 0 {
		cfg.Mailboxes = []string{"INBOX", "Check"}
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = 12
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 8 * time.Second
	}
	if cfg.MinMessages <= 0 {
		cfg.MinMessages = 20
	}
	if cfg.MaxMessages <= cfg.MinMessages {
		cfg.MaxMessages = max(cfg.MinMessages*6, cfg.MinMessages+10)
	}
	if cfg.QResyncEvery == 0 {
		cfg.QResyncEvery = 3
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	chk := &Checker{}
	r := &runner{cfg: cfg, chk: chk, reg: map[string][]uint32{}}
	if err := r.setup(); err != nil {
		return nil, err
	}
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	sessions := make([]*Session, cfg.Sessions)
	for i := range sessions {
		s, err := Dial(cfg.Addr, i+1, chk)
		if err != nil {
			return nil, err
		}
		defer s.Close()
		qr := cfg.QResyncEvery > 0 && (i+1)%cfg.QResyncEvery == 0
		if err := s.Login(cfg.User, cfg.Password, qr); err != nil {
			return nil, err
		}
		if err := s.Select(cfg.Mailboxes[i%len(cfg.Mailboxes)]); err != nil {
			return nil, err
		}
		if cfg.Contexts {
			if err := openContexts(s); err != nil {
				return nil, err
			}
		}
		sessions[i] = s
	}
	logf("imapcheck: %d sessions for %s (seed %d)", cfg.Sessions, cfg.Duration, cfg.Seed)
	var wg sync.WaitGroup
	alive := make([]bool, len(sessions))
	for i, s := range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
			w := &worker{r: r, s: s, rng: rng}
			alive[i] = w.loop(ctx, deadline)
		}()
	}
	wg.Wait()
	// Every session learns what is pending, then is compared with a fresh
	// view of its mailbox.
	for i, s := range sessions {
		if !alive[i] {
			continue
		}
		if _, err := s.Do("NOOP"); err != nil {
			chk.Errorf(Protocol, s.ID, "final NOOP: %v", err)
			alive[i] = false
		}
	}
	for i, s := range sessions {
		if alive[i] {
			if err := s.VerifyContexts(); err != nil {
				chk.Errorf(Protocol, s.ID, "context check: %v", err)
			}
		}
	}
	if err := r.verify(sessions, alive); err != nil {
		return nil, err
	}
	rep := &Report{Elapsed: time.Since(start), Counts: chk.Counts(), Samples: chk.Samples(), Summary: chk.Summary()}
	for _, s := range sessions {
		rep.Commands += s.Commands()
	}
	rep.Commands += int(r.extra.Load())
	logf("imapcheck: %d commands in %s: %s", rep.Commands, rep.Elapsed.Round(time.Millisecond), rep.Summary)
	return rep, nil
}

type runner struct {
	cfg   Config
	chk   *Checker
	extra atomic.Int64

	mu  sync.Mutex
	reg map[string][]uint32 // mailbox -> UIDs recently appended or copied in
	kw  atomic.Int64        // fresh keywords created
}

func (r *runner) remember(mailbox string, uids ...uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := append(r.reg[mailbox], uids...)
	if len(l) > 16 {
		l = l[len(l)-16:]
	}
	r.reg[mailbox] = l
}

func (r *runner) recentUIDs(mailbox string) []uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reg[mailbox])
}

// setup creates the mailboxes and fills them to MinMessages.
func (r *runner) setup() error {
	s, err := Dial(r.cfg.Addr, 0, r.chk)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Login(r.cfg.User, r.cfg.Password, false); err != nil {
		return err
	}
	for _, mb := range r.cfg.Mailboxes {
		if !strings.EqualFold(mb, "INBOX") {
			if _, err := s.Do("CREATE " + quote(mb)); err != nil && !errors.Is(err, ErrStatus) {
				return err
			}
		}
		if err := s.Select(mb); err != nil {
			return err
		}
		for n := len(s.UIDs()); n < r.cfg.MinMessages; n++ {
			msg := message(0, n)
			if _, err := s.Do(fmt.Sprintf("APPEND %s {%d+}\r\n%s", quote(mb), len(msg), msg)); err != nil {
				return err
			}
		}
	}
	r.extra.Add(int64(s.Commands()))
	return nil
}

// verify compares each live session's view with a fresh EXAMINE of its
// mailbox.
func (r *runner) verify(sessions []*Session, alive []bool) error {
	v, err := Dial(r.cfg.Addr, 0, nil)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := v.Login(r.cfg.User, r.cfg.Password, false); err != nil {
		return err
	}
	for _, mb := range r.cfg.Mailboxes {
		if err := v.Examine(mb); err != nil {
			return err
		}
		truth := v.UIDs()
		for i, s := range sessions {
			if !alive[i] || s.Mailbox != mb {
				continue
			}
			view := s.UIDs()
			if !slices.Equal(view, truth) {
				missing := slices.DeleteFunc(slices.Clone(truth), func(u uint32) bool { return slices.Contains(view, u) })
				extra := slices.DeleteFunc(slices.Clone(view), func(u uint32) bool { return slices.Contains(truth, u) })
				r.chk.Errorf(ViewMismatch, s.ID, "%s: %d messages in the view, %d in the mailbox; missing UIDs %s, extra %s",
					mb, len(view), len(truth), FormatSet(missing), FormatSet(extra))
			}
			for _, u := range truth {
				want, _ := v.Flags(u)
				got, ok := s.Flags(u)
				if ok && !sameFlags(got, want) {
					r.chk.Errorf(FlagsMismatch, s.ID, "%s UID %d: session has %v (MODSEQ %d), mailbox %v (MODSEQ %d)",
						mb, u, got, s.ModSeq(u), want, v.ModSeq(u))
				}
			}
		}
	}
	r.extra.Add(int64(v.Commands()))
	return nil
}

// message is a small message body.
func message(session, n int) string {
	return fmt.Sprintf("From: caller%d@example.net\r\nTo: box@example.net\r\nSubject: check %d-%d\r\nMessage-ID: <%d.%d@check>\r\n\r\nvoice message %d\r\n",
		session, session, n, session, n, n)
}

var systemPool = []string{`\Seen`, `\Flagged`, `\Answered`, `\Draft`}

type worker struct {
	r   *runner
	s   *Session
	rng *rand.Rand
	n   int
}

// loop runs random operations until the deadline; it reports whether the
// session is still usable.
func (w *worker) loop(ctx context.Context, deadline time.Time) bool {
	ops := []struct {
		weight int
		fn     func() error
	}{
		{22, w.store},
		{14, w.uidStore},
		{10, w.uidFetch},
		{8, w.fetch},
		{8, w.search},
		{10, w.append},
		{6, w.expunge},
		{5, w.move},
		{3, w.copy},
		{4, w.noop},
		{2, w.freshKeyword},
		{1, w.reselect},
	}
	total := 0
	for _, o := range ops {
		total += o.weight
	}
	for time.Now().Before(deadline) && ctx.Err() == nil {
		k := w.rng.IntN(total)
		for _, o := range ops {
			if k < o.weight {
				if err := o.fn(); err != nil && !errors.Is(err, ErrStatus) {
					w.r.chk.Errorf(Protocol, w.s.ID, "%v", err)
					return false
				}
				break
			}
			k -= o.weight
		}
	}
	return true
}

func (w *worker) flagList() []string {
	var out []string
	for range 1 + w.rng.IntN(2) {
		if w.rng.IntN(2) == 0 {
			out = append(out, systemPool[w.rng.IntN(len(systemPool))])
		} else {
			out = append(out, "$k"+strconv.Itoa(w.rng.IntN(10)))
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// pickUIDs takes 1-3 UIDs: of the view, or recently appended by any
// session (perhaps not announced to this one yet).
func (w *worker) pickUIDs() []uint32 {
	view := w.s.UIDs()
	recent := w.r.recentUIDs(w.s.Mailbox)
	var out []uint32
	for range 1 + w.rng.IntN(3) {
		if len(recent) > 0 && (w.rng.IntN(2) == 0 || len(view) == 0) {
			out = append(out, recent[w.rng.IntN(len(recent))])
		} else if len(view) > 0 {
			out = append(out, view[w.rng.IntN(len(view))])
		}
	}
	slices.Sort(out)
	return slices.Compact(slices.DeleteFunc(out, func(u uint32) bool { return u == 0 }))
}

// pickSeqs takes a short run of sequence numbers ("a:b"), or "".
func (w *worker) pickSeqs() string {
	n := len(w.s.UIDs())
	if n == 0 {
		return ""
	}
	a := 1 + w.rng.IntN(n)
	b := min(n, a+w.rng.IntN(3))
	if a == b {
		return strconv.Itoa(a)
	}
	return fmt.Sprintf("%d:%d", a, b)
}

func opString(rng *rand.Rand) (string, int) {
	switch rng.IntN(5) {
	case 0, 1:
		return "+", 0
	case 2, 3:
		return "-", 1
	}
	return "", 2
}

// store: STORE by sequence number, +/-/replace, perhaps .SILENT and
// UNCHANGEDSINCE.
func (w *worker) store() error {
	set := w.pickSeqs()
	if set == "" {
		return nil
	}
	sign, op := opString(w.rng)
	flags := w.flagList()
	silent := w.rng.IntN(5) == 0
	mod := ""
	if w.rng.IntN(3) == 0 {
		lo, _, _ := strings.Cut(set, ":")
		q, _ := strconv.Atoi(lo)
		if u := w.s.UIDs()[q-1]; u != 0 {
			mod = fmt.Sprintf("(UNCHANGEDSINCE %d) ", w.s.ModSeq(u))
		}
	}
	item := "FLAGS"
	if silent {
		item += ".SILENT"
	}
	before := w.s.UIDs()
	res, err := w.s.Do(fmt.Sprintf("STORE %s %s%s%s (%s)", set, mod, sign, item, strings.Join(flags, " ")))
	if err != nil {
		return err
	}
	if silent {
		w.applySilent(before, set, op, flags, res, mod != "")
	}
	return nil
}

// applySilent applies a .SILENT STORE to the session's flags, as a client
// does, for the messages no FETCH reported flags of. Under UNCHANGEDSINCE
// only the messages reported (MODSEQ alone, RFC 7162 s3.1.3) were
// changed; the others failed the test or needed no change.
func (w *worker) applySilent(before []uint32, set string, op int, flags []string, res *Result, conditional bool) {
	lo, hi, _ := strings.Cut(set, ":")
	a, _ := strconv.Atoi(lo)
	b := a
	if hi != "" {
		b, _ = strconv.Atoi(hi)
	}
	for q := a; q <= b && q <= len(before); q++ {
		u := before[q-1]
		if u == 0 || res.FlagsFetched[u] || conditional && !res.Fetched[u] {
			continue
		}
		cur, ok := w.s.Flags(u)
		if !ok {
			continue
		}
		switch op {
		case 0:
			for _, f := range flags {
				if !slices.ContainsFunc(cur, func(x string) bool { return strings.EqualFold(x, f) }) {
					cur = append(cur, f)
				}
			}
		case 1:
			cur = slices.DeleteFunc(cur, func(x string) bool {
				return slices.ContainsFunc(flags, func(f string) bool { return strings.EqualFold(x, f) })
			})
		default:
			cur = slices.Clone(flags)
		}
		w.s.SetFlags(u, cur)
	}
}

// checkNoop reports the UIDs of set that a UID command left out although
// they existed: a UID FETCH after a NOOP still finds them (a UID is never
// used again, so existing now means existing then). A UID expunged
// meanwhile is not found, and no error is claimed for it.
func (w *worker) checkNoop(cmd string, left []uint32) error {
	left, res, err := w.refetch(left, "UID")
	if res == nil || err != nil {
		return err
	}
	for _, u := range left {
		if res.Fetched[u] {
			w.r.chk.Errorf(UIDNoop, w.s.ID, "%s left out UID %d, which exists [last: %s]", cmd, u, w.s.Recent())
		}
	}
	return nil
}

// uidStore: UID STORE, never silent, on UIDs that may not be announced
// yet. An existing UID of the set that got no FETCH must show the change
// (a server may leave out messages the STORE did not change).
func (w *worker) uidStore() error {
	uids := w.pickUIDs()
	if len(uids) == 0 {
		return nil
	}
	sign, op := opString(w.rng)
	if op == 2 {
		sign = "+" // a replaced set cannot be told from another session's change
	}
	flags := w.flagList()
	cmd := fmt.Sprintf("UID STORE %s %sFLAGS (%s)", FormatSet(uids), sign, strings.Join(flags, " "))
	prior := w.priorModseqs(uids)
	res, err := w.s.Do(cmd)
	if err != nil {
		return err
	}
	return w.checkStored(cmd, slices.DeleteFunc(uids, func(u uint32) bool { return res.Fetched[u] }), sign == "+", flags, prior)
}

// priorModseqs notes the MODSEQ the session knows of each UID (0 for a
// message it has not been told of).
func (w *worker) priorModseqs(uids []uint32) map[uint32]uint64 {
	m := make(map[uint32]uint64, len(uids))
	for _, u := range uids {
		m[u] = w.s.ModSeq(u)
	}
	return m
}

// checkStored reports the UIDs a UID STORE left out that exist and do not
// show its change (+ adds flags, else removes them). When the session
// knew the message's MODSEQ before, it must also be unchanged: then no
// other session changed the message back in between.
func (w *worker) checkStored(cmd string, left []uint32, add bool, flags []string, prior map[uint32]uint64) error {
	left, res, err := w.refetch(left, "UID FLAGS MODSEQ")
	if res == nil || err != nil {
		return err
	}
	for _, u := range left {
		if !res.Fetched[u] {
			continue // expunged meanwhile
		}
		cur, _ := w.s.Flags(u)
		applied := true
		for _, f := range flags {
			has := slices.ContainsFunc(cur, func(x string) bool { return strings.EqualFold(x, f) })
			if has != add {
				applied = false
			}
		}
		if p := prior[u]; p != 0 && w.s.ModSeq(u) != p {
			applied = true // changed since: by this STORE or by another session
		}
		if !applied {
			w.r.chk.Errorf(UIDNoop, w.s.ID, "%s: no FETCH for UID %d and its flags are %v [last: %s]", cmd, u, cur, w.s.Recent())
		}
	}
	return nil
}

func (w *worker) uidFetch() error {
	uids := w.pickUIDs()
	if len(uids) == 0 {
		return nil
	}
	cmd := fmt.Sprintf("UID FETCH %s (UID FLAGS MODSEQ)", FormatSet(uids))
	res, err := w.s.Do(cmd)
	if err != nil {
		return err
	}
	return w.checkNoop(cmd, slices.DeleteFunc(uids, func(u uint32) bool { return res.Fetched[u] }))
}

func (w *worker) fetch() error {
	set := w.pickSeqs()
	if set == "" {
		return nil
	}
	_, err := w.s.Do("FETCH " + set + " (FLAGS MODSEQ)")
	return err
}

func (w *worker) search() error {
	switch w.rng.IntN(3) {
	case 0:
		uids := w.pickUIDs()
		if len(uids) == 0 {
			return nil
		}
		cmd := "UID SEARCH UID " + FormatSet(uids)
		res, err := w.s.Do(cmd)
		if err != nil {
			return err
		}
		return w.checkNoop(cmd, slices.DeleteFunc(uids, func(u uint32) bool { return slices.Contains(res.Search, u) }))
	case 1:
		res, err := w.s.Do("SEARCH UNSEEN")
		if err != nil {
			return err
		}
		n := len(w.s.UIDs())
		for _, q := range res.Search {
			if int(q) > n || q == 0 {
				w.r.chk.Errorf(BadSequence, w.s.ID, "SEARCH gave %d with %d messages in the view", q, n)
			}
		}
		return nil
	default:
		_, err := w.s.Do("UID SEARCH KEYWORD $k" + strconv.Itoa(w.rng.IntN(10)))
		return err
	}
}

func (w *worker) append() error {
	mb := w.s.Mailbox
	if w.rng.IntN(4) == 0 {
		mb = w.r.cfg.Mailboxes[w.rng.IntN(len(w.r.cfg.Mailboxes))]
	}
	if len(w.s.UIDs()) > w.r.cfg.MaxMessages && mb == w.s.Mailbox {
		return w.expunge()
	}
	w.n++
	msg := message(w.s.ID, w.n)
	flags := ""
	if w.rng.IntN(2) == 0 {
		flags = "(" + strings.Join(w.flagList(), " ") + ") "
	}
	res, err := w.s.Do(fmt.Sprintf("APPEND %s %s{%d+}\r\n%s", quote(mb), flags, len(msg), msg))
	if err != nil {
		return err
	}
	if f := strings.Fields(res.Code); len(f) == 3 && strings.EqualFold(f[0], "APPENDUID") {
		if u, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			w.r.remember(mb, uint32(u))
		}
	}
	return nil
}

func (w *worker) expunge() error {
	if len(w.s.UIDs()) < w.r.cfg.MinMessages {
		return w.append()
	}
	uids := w.pickUIDs()
	if len(uids) == 0 {
		return nil
	}
	set := FormatSet(uids)
	if _, err := w.s.Do("UID STORE " + set + ` +FLAGS (\Deleted)`); err != nil {
		return err
	}
	if w.rng.IntN(2) == 0 {
		_, err := w.s.Do("UID EXPUNGE " + set)
		return err
	}
	_, err := w.s.Do("EXPUNGE")
	return err
}

func (w *worker) other() string {
	for {
		mb := w.r.cfg.Mailboxes[w.rng.IntN(len(w.r.cfg.Mailboxes))]
		if mb != w.s.Mailbox || len(w.r.cfg.Mailboxes) == 1 {
			return mb
		}
	}
}

// copyUIDs records the destination UIDs of COPYUID (tagged for COPY,
// untagged for MOVE) and returns its source UIDs.
func (w *worker) copyUIDs(dst string, res *Result) []uint32 {
	for _, code := range append([]string{res.Code}, res.Codes...) {
		f := strings.Fields(code)
		if len(f) != 4 || !strings.EqualFold(f[0], "COPYUID") {
			continue
		}
		src, err1 := parseSet(f[2])
		to, err2 := parseSet(f[3])
		if err1 == nil && err2 == nil {
			w.r.remember(dst, to...)
			return src
		}
	}
	return nil
}

func (w *worker) move() error {
	dst := w.other()
	if w.rng.IntN(5) == 0 {
		dst = w.s.Mailbox // COPY plus EXPUNGE (RFC 6851 s3.3)
	}
	if w.rng.IntN(2) == 0 {
		set := w.pickSeqs()
		if set == "" {
			return nil
		}
		res, err := w.s.Do("MOVE " + set + " " + quote(dst))
		if err == nil {
			w.copyUIDs(dst, res)
		}
		return err
	}
	uids := w.pickUIDs()
	if len(uids) == 0 {
		return nil
	}
	cmd := "UID MOVE " + FormatSet(uids) + " " + quote(dst)
	res, err := w.s.Do(cmd)
	if err != nil {
		return err
	}
	w.copyUIDs(dst, res)
	// The moved UIDs must be gone from the source.
	return w.checkNoop(cmd, uids)
}

func (w *worker) copy() error {
	dst := w.other()
	uids := w.pickUIDs()
	if len(uids) == 0 {
		return nil
	}
	cmd := "UID COPY " + FormatSet(uids) + " " + quote(dst)
	res, err := w.s.Do(cmd)
	if err != nil {
		return err
	}
	src := w.copyUIDs(dst, res)
	return w.checkNoop(cmd, slices.DeleteFunc(uids, func(u uint32) bool { return slices.Contains(src, u) }))
}

func (w *worker) noop() error {
	_, err := w.s.Do("NOOP")
	return err
}

// freshKeyword stores a keyword no message had before (bounded in all).
func (w *worker) freshKeyword() error {
	if w.r.kw.Add(1) > 200 {
		return w.uidStore()
	}
	uids := w.pickUIDs()
	if len(uids) == 0 {
		return nil
	}
	kw := fmt.Sprintf("$new%dx%d", w.s.ID, w.rng.IntN(1<<20))
	cmd := fmt.Sprintf("UID STORE %s +FLAGS (%s)", FormatSet(uids), kw)
	prior := w.priorModseqs(uids)
	res, err := w.s.Do(cmd)
	if err != nil {
		return err
	}
	return w.checkStored(cmd, slices.DeleteFunc(uids, func(u uint32) bool { return res.Fetched[u] }), true, []string{kw}, prior)
}

func (w *worker) reselect() error {
	if err := w.s.Select(w.other()); err != nil {
		return err
	}
	if !w.r.cfg.Contexts {
		return nil
	}
	return openContexts(w.s)
}

// openContexts starts one CONTEXT=SEARCH or CONTEXT=SORT result kept up
// to date (RFC 5267), chosen by the session's number, when the server has
// the extension. QRESYNC sessions keep UID results only.
func openContexts(s *Session) error {
	kind := s.ID % 4
	if s.qresync && kind%2 == 1 {
		kind--
	}
	switch {
	case kind <= 1 && !s.HasCapability("CONTEXT=SEARCH"),
		kind >= 2 && !s.HasCapability("CONTEXT=SORT"):
		return nil
	}
	var err error
	switch kind {
	case 0:
		err = s.OpenContext(true, false, "KEYWORD $k1")
	case 1:
		err = s.OpenContext(false, false, "FLAGGED")
	case 2:
		err = s.OpenContext(true, true, "(ARRIVAL) UTF-8 UNSEEN")
	default:
		err = s.OpenContext(false, true, "(REVERSE ARRIVAL) UTF-8 KEYWORD $k2")
	}
	if errors.Is(err, ErrStatus) {
		return nil
	}
	return err
}

// refetch asks again, after a NOOP has brought the session up to date,
// for the UIDs of left that the session still knows (a UID is never used
// again, so existing now means existing when the command ran); res is nil
// when none is left.
func (w *worker) refetch(left []uint32, items string) ([]uint32, *Result, error) {
	if len(left) == 0 {
		return nil, nil, nil
	}
	if _, err := w.s.Do("NOOP"); err != nil {
		return nil, nil, err
	}
	left = slices.DeleteFunc(left, func(u uint32) bool { return !w.s.Has(u) })
	if len(left) == 0 {
		return nil, nil, nil
	}
	res, err := w.s.Do("UID FETCH " + FormatSet(left) + " (" + items + ")")
	return left, res, err
}
