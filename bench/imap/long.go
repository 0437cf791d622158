package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/lemonvox/lemonvox/bench/imapcheck"
)

// The long-session mode: every client logs in once and stays, issuing a
// random mix of the commands a mail client or handset sends to a mailbox it
// keeps open, for the whole run. Sessions of one account share its INBOX, so
// every write of one session is news to the others.

// longFolders are created in every account before a long-session run, so
// that LIST has a hierarchy to walk and STATUS a mailbox that is not
// selected.
// Each server's own hierarchy delimiter replaces "/" (Dovecot's Maildir++
// uses ".").
var longFolders = []string{"Work", "Work/2026", "Family", "Kept"}

// longOp is one kind of command of the long-session mix.
type longOp struct {
	name   string
	weight int
}

// longMix: weights out of 100. APPEND and EXPUNGE have the same weight, so
// that the mailboxes keep their size (each EXPUNGE removes one message its
// session appended, flagged \Deleted with a UID STORE that counts apart).
var longMix = []longOp{
	{"SELECT", 5},
	{"FETCH FLAGS", 15},
	{"FETCH ENVELOPE", 15},
	{"FETCH BODY[]", 15},
	{"FETCH BODY[1] partial", 5},
	{"STORE", 15},
	{"APPEND", 8},
	{"EXPUNGE", 8},
	{"LIST", 7},
	{"STATUS", 7},
}

type longResult struct {
	name         string
	secs         float64
	commands     int
	errors       int64
	cmdsPerSec   float64
	p50, p99     float64
	cpuSecs      float64 // server user+system CPU over the run
	perCmd       []cmdStat
	checkErrors  int64 // -1: the checker could not run
	checkEnabled bool
	checkSummary string
	// checkCommands: the checker's commands, which the server's CPU
	// figure includes (CPU per command counts them).
	checkCommands int
	checkSamples  []string
	all           []time.Duration // every command's latency
}

type cmdStat struct {
	name     string
	n        int
	p50, p99 float64
}

// prepareLong creates the extra folders of every account.
func prepareLong(srv *server) error {
	for _, u := range srv.users {
		c, err := login(srv, u)
		if err != nil {
			return err
		}
		l, err := c.List("", "", nil).Collect()
		if err != nil || len(l) == 0 {
			c.Close()
			return fmt.Errorf("LIST \"\" \"\": %v", err)
		}
		if l[0].Delim != 0 && l[0].Delim != '/' {
			for i, f := range longFolders {
				longFolders[i] = strings.ReplaceAll(f, "/", string(l[0].Delim))
			}
		}
		for _, f := range longFolders {
			if err := c.Create(f, nil).Wait(); err != nil {
				c.Close()
				return fmt.Errorf("CREATE %s: %w", f, err)
			}
		}
		c.Logout().Wait()
		c.Close()
	}
	return nil
}

// longSession is one client of the long-session run.
type longSession struct {
	c     *imapclient.Client
	rng   *rand.Rand
	uids  []imap.UID // UIDs of the INBOX as last seen by a FETCH 1:*
	mine  []imap.UID // messages this session appended and has not expunged
	small []byte
}

func (s *longSession) randomUID() (imap.UID, bool) {
	if len(s.uids) == 0 {
		return 0, false
	}
	return s.uids[s.rng.IntN(len(s.uids))], true
}

// run executes one command of kind op.
func (s *longSession) run(op string) error {
	c := s.c
	switch op {
	case "SELECT":
		_, err := c.Select("INBOX", nil).Wait()
		return err
	case "FETCH FLAGS":
		// A client's resynchronisation: every UID with its flags.
		msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, Flags: true}).Collect()
		if err != nil {
			return err
		}
		s.uids = s.uids[:0]
		for _, m := range msgs {
			if m.UID != 0 {
				s.uids = append(s.uids, m.UID)
			}
		}
		return nil
	case "FETCH ENVELOPE":
		// A message list page: the newest ten messages' headers.
		var set imap.UIDSet
		for i := max(0, len(s.uids)-10); i < len(s.uids); i++ {
			set.AddNum(s.uids[i])
		}
		if len(set) == 0 {
			set.AddNum(1)
		}
		_, err := c.Fetch(set, &imap.FetchOptions{UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true}).Collect()
		return err
	case "FETCH BODY[]":
		u, ok := s.randomUID()
		if !ok {
			u = 1
		}
		_, err := c.Fetch(imap.UIDSetNum(u), &imap.FetchOptions{UID: true,
			BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		return err
	case "FETCH BODY[1] partial":
		// A player's first second of audio (part 1 of the VPIM message
		// is the voice attachment) with the structure that locates it.
		u, ok := s.randomUID()
		if !ok {
			u = 1
		}
		_, err := c.Fetch(imap.UIDSetNum(u), &imap.FetchOptions{UID: true, BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
			BodySection: []*imap.FetchItemBodySection{{Peek: true, Part: []int{1}, Partial: &imap.SectionPartial{Offset: 0, Size: 8000}}}}).Collect()
		return err
	case "STORE":
		u, ok := s.randomUID()
		if !ok {
			u = 1
		}
		flag := imap.FlagSeen
		if s.rng.IntN(3) == 0 {
			flag = imap.FlagFlagged
		}
		sop := imap.StoreFlagsAdd
		if s.rng.IntN(2) == 0 {
			sop = imap.StoreFlagsDel
		}
		return c.Store(imap.UIDSetNum(u), &imap.StoreFlags{Op: sop, Silent: true, Flags: []imap.Flag{flag}}, nil).Close()
	case "APPEND":
		cmd := c.Append("INBOX", int64(len(s.small)), nil)
		if _, err := cmd.Write(s.small); err != nil {
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		d, err := cmd.Wait()
		if err == nil && d != nil && d.UID != 0 {
			s.mine = append(s.mine, d.UID)
		}
		return err
	case "STATUS":
		name := "INBOX"
		if s.rng.IntN(2) == 0 {
			name = longFolders[s.rng.IntN(len(longFolders))]
		}
		_, err := c.Status(name, &imap.StatusOptions{NumMessages: true, UIDNext: true, NumUnseen: true}).Wait()
		return err
	case "LIST":
		_, err := c.List("", "*", nil).Collect()
		return err
	}
	return fmt.Errorf("unknown command %q", op)
}

// runLong runs the long-session workload against srv. check, if set, is
// the consistency checker's hook (see -check).
func runLong(srv *server, corpus [][]byte, clients int, secs float64, check bool) longResult {
	rec := &recorder{lat: map[string][]time.Duration{}}
	var errs atomic.Int64
	small := corpus[len(corpus)-1]
	total := 0
	for _, o := range longMix {
		total += o.weight
	}
	// Every session logs in and selects before the clock starts: the run
	// measures sessions that are already open.
	sessions := make([]*longSession, clients)
	var wg sync.WaitGroup
	for i := range sessions {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := login(srv, srv.users[i%len(srv.users)])
			if err != nil {
				errs.Add(1)
				return
			}
			s := &longSession{c: c, rng: rand.New(rand.NewPCG(uint64(i), 7)), small: small}
			if err := s.run("SELECT"); err != nil {
				errs.Add(1)
				c.Close()
				return
			}
			if err := s.run("FETCH FLAGS"); err != nil {
				errs.Add(1)
				c.Close()
				return
			}
			sessions[i] = s
		}(i)
	}
	wg.Wait()
	pids := srv.pids()
	cpu0 := cpuSeconds(pids)
	start := time.Now()
	stop := start.Add(time.Duration(secs * float64(time.Second)))
	for _, s := range sessions {
		if s == nil {
			continue
		}
		wg.Add(1)
		go func(s *longSession) {
			defer wg.Done()
			timed := func(op string, f func() error) bool {
				t := time.Now()
				if err := f(); err != nil {
					if errs.Add(1) <= 5 {
						fmt.Fprintf(os.Stderr, "bench/imap: %s %s: %v\n", srv.name, op, err)
					}
					return false
				}
				rec.add(op, time.Since(t))
				return true
			}
			for time.Now().Before(stop) {
				r := s.rng.IntN(total)
				var op string
				for _, o := range longMix {
					if r < o.weight {
						op = o.name
						break
					}
					r -= o.weight
				}
				ok := true
				if op == "EXPUNGE" {
					// Remove the oldest message this session appended.
					if len(s.mine) > 0 {
						u := s.mine[0]
						s.mine = s.mine[1:]
						ok = timed("STORE", func() error {
							return s.c.Store(imap.UIDSetNum(u), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
						})
					}
					ok = ok && timed("EXPUNGE", func() error { return s.c.Expunge().Close() })
				} else {
					ok = timed(op, func() error { return s.run(op) })
				}
				if !ok {
					return // a broken session stops; its errors are counted
				}
			}
		}(s)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	cpu1 := cpuSeconds(append(pids, srv.pids()...))
	for _, s := range sessions {
		if s != nil {
			s.c.Close()
		}
	}
	res := longResult{name: srv.name, secs: el, errors: errs.Load(), cpuSecs: cpu1 - cpu0, checkEnabled: check}
	var all []time.Duration
	for op, d := range rec.lat {
		all = append(all, d...)
		res.perCmd = append(res.perCmd, cmdStat{name: op, n: len(d), p50: pct(d, 0.50), p99: pct(d, 0.99)})
	}
	sort.Slice(res.perCmd, func(i, j int) bool { return res.perCmd[i].name < res.perCmd[j].name })
	res.commands = len(all)
	res.all = all
	res.cmdsPerSec = float64(len(all)) / el
	res.p50 = pct(all, 0.50)
	res.p99 = pct(all, 0.99)
	return res
}

func (r longResult) print() {
	cpuPer := 0.0
	if r.commands > 0 {
		cpuPer = r.cpuSecs * 1e6 / float64(r.commands+r.checkCommands)
	}
	fmt.Printf("%-22s long: %8.1f cmd/s  p50 %6.2f ms  p99 %7.2f ms  CPU %6.1f s = %6.0f µs/cmd  errors %d\n",
		r.name, r.cmdsPerSec, r.p50, r.p99, r.cpuSecs, cpuPer, r.errors)
	for _, c := range r.perCmd {
		fmt.Printf("    %-24s %8d  p50 %7.2f ms  p99 %7.2f ms\n", c.name, c.n, c.p50, c.p99)
	}
	if r.checkEnabled {
		fmt.Printf("    consistency checker: %d errors (%s)\n", r.checkErrors, r.checkSummary)
		for i, s := range r.checkSamples {
			if i == 5 {
				break
			}
			fmt.Printf("      %s\n", s)
		}
	}
}

// cpuSeconds sums user and system time of the processes (their threads
// included) and of their children that have already been waited for.
func cpuSeconds(pids []int) float64 {
	const hz = 100 // USER_HZ on Linux
	var ticks int64
	seen := map[int]bool{}
	for _, p := range pids {
		if seen[p] {
			continue
		}
		seen[p] = true
		f := procStat(p) // utime, stime, cutime, cstime at 11..14
		if len(f) < 15 {
			continue
		}
		for _, k := range []int{11, 12, 13, 14} {
			v, _ := strconv.ParseInt(f[k], 10, 64)
			ticks += v
		}
	}
	return float64(ticks) / hz
}

// longConfig is one server set-up of the long-session comparison.
type longConfig struct {
	label string
	name  string // lemonvox or dovecot
	fsync string // Dovecot's mail_fsync
	bin   string // lemonvoxd to run instead of building this tree's
}

// longRun starts a fresh server, loads it and runs the long-session mix.
func longRun(cfg longConfig, users []string, corpus [][]byte, clients int, secs float64, check bool, profile string) (longResult, bool) {
	dir, err := os.MkdirTemp("", "lemonvox-bench-imap-long-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	all := users
	if check {
		// The checker's sessions have an account of their own: its final
		// comparison needs mailboxes that nobody else changes.
		all = append(slices.Clone(users), checkUser)
	}
	var srv *server
	if cfg.name == "dovecot" {
		srv, err = startDovecot(dir, all, false, max(2*clients, 200), cfg.fsync)
	} else {
		srv, err = startLemonvoxBin(dir, all, cfg.bin)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/imap: %s: %v (skipped)\n", cfg.label, err)
		return longResult{}, false
	}
	defer srv.stop()
	srv.users = users
	if err := load(srv, corpus); err != nil {
		fatal(fmt.Errorf("%s: loading mailboxes: %w", cfg.label, err))
	}
	if err := prepareLong(srv); err != nil {
		fatal(fmt.Errorf("%s: creating folders: %w", cfg.label, err))
	}
	var prof sync.WaitGroup
	if profile != "" && srv.profile != nil {
		prof.Add(1)
		go func() {
			defer prof.Done()
			if err := srv.profile(int(secs*0.8), profile); err != nil {
				fmt.Fprintf(os.Stderr, "bench/imap: %s profile: %v\n", cfg.label, err)
			}
		}()
	}
	type checked struct {
		rep *imapcheck.Report
		err error
	}
	var chk chan checked
	if check {
		// The consistency checker runs alongside, for the same time, with
		// as many sessions again on its own account: every session tracks
		// flags and MODSEQ per UID from what it is told (bench/imapcheck).
		chk = make(chan checked, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs*float64(time.Second))+3*time.Minute)
			defer cancel()
			rep, err := imapcheck.Run(ctx, imapcheck.Config{Addr: srv.addr, User: checkUser, Password: checkUser,
				Sessions: clients, Duration: time.Duration(secs * float64(time.Second)), Seed: 1})
			chk <- checked{rep, err}
		}()
	}
	r := runLong(srv, corpus, clients, secs, check)
	prof.Wait()
	r.name = cfg.label
	if chk != nil {
		c := <-chk
		if c.err != nil {
			fmt.Fprintf(os.Stderr, "bench/imap: %s: consistency checker: %v\n", cfg.label, c.err)
			r.checkErrors = -1
		} else {
			r.checkErrors = 0
			for _, n := range c.rep.Counts {
				r.checkErrors += int64(n)
			}
			r.checkSummary = fmt.Sprintf("%d checker commands, %s", c.rep.Commands, c.rep.Summary)
			r.checkCommands = c.rep.Commands
			r.checkSamples = c.rep.Samples
		}
	}
	return r, true
}

// checkUser is the consistency checker's account (password = name).
const checkUser = "check00"

// longMain runs the long-session comparison: Lemonvox with its durable
// defaults (and, with baseline, an earlier lemonvoxd) and Dovecot with each
// mail_fsync setting, one after the other, for the given rounds; every
// other round runs them in the reverse order, so that a change of machine
// load during a round does not favour whoever runs first. It prints each
// run, the ratios of each round and of all rounds together.
func longMain(servers []string, fsyncs []string, users []string, corpus [][]byte, clients int, secs float64, check bool, profile, baseline string, rounds int) {
	var cfgs []longConfig
	for _, s := range servers {
		switch s {
		case "dovecot":
			for _, f := range fsyncs {
				cfgs = append(cfgs, longConfig{label: fmt.Sprintf("dovecot(mail_fsync=%s)", f), name: s, fsync: f})
			}
		default:
			cfgs = append(cfgs, longConfig{label: s, name: s})
			if baseline != "" {
				cfgs = append(cfgs, longConfig{label: s + "-baseline", name: s, bin: baseline})
			}
		}
	}
	fmt.Printf("long sessions: %d clients, %.0f s, %d accounts, %d round(s)\n", clients, secs, len(users), rounds)
	total := map[string]*longResult{}
	for r := 0; r < max(rounds, 1); r++ {
		order := slices.Clone(cfgs)
		if r%2 == 1 {
			slices.Reverse(order)
		}
		fmt.Printf("\nround %d, load average before: %s\n", r+1, loadavg())
		var results []longResult
		for i, c := range order {
			prof := ""
			if profile != "" && c.name == "lemonvox" && c.bin == "" {
				prof = fmt.Sprintf("%s.%d", profile, r+1)
			}
			res, ok := longRun(c, users, corpus, clients, secs, check, prof)
			if !ok {
				continue
			}
			if i < len(order)-1 {
				fmt.Printf("  (load average %s)\n", loadavg())
			}
			res.print()
			results = append(results, res)
			t := total[c.label]
			if t == nil {
				t = &longResult{name: c.label, checkEnabled: check}
				total[c.label] = t
			}
			t.secs += res.secs
			t.commands += res.commands
			t.errors += res.errors
			t.cpuSecs += res.cpuSecs
			t.checkErrors += res.checkErrors
			t.checkCommands += res.checkCommands
			t.all = append(t.all, res.all...)
		}
		fmt.Printf("load average after: %s\n", loadavg())
		printRatios(results)
	}
	if rounds > 1 {
		var all []longResult
		for _, c := range cfgs {
			if t := total[c.label]; t != nil {
				t.cmdsPerSec = float64(t.commands) / t.secs
				t.p50, t.p99 = pct(t.all, 0.50), pct(t.all, 0.99)
				all = append(all, *t)
			}
		}
		fmt.Printf("\nall %d rounds together:\n", rounds)
		for _, t := range all {
			fmt.Printf("%-30s %8.1f cmd/s  p50 %6.2f ms  p99 %7.2f ms  CPU %6.0f µs/cmd  errors %d",
				t.name, t.cmdsPerSec, t.p50, t.p99, t.cpuSecs*1e6/float64(max(t.commands+t.checkCommands, 1)), t.errors)
			if t.checkEnabled {
				fmt.Printf("  consistency errors %d", t.checkErrors)
			}
			fmt.Println()
		}
		printRatios(all)
	}
}

// printRatios compares lemonvox with every other result.
func printRatios(results []longResult) {
	i := slices.IndexFunc(results, func(r longResult) bool { return r.name == "lemonvox" })
	if i < 0 {
		return
	}
	l := results[i]
	for _, d := range results {
		if d.name == l.name || d.commands == 0 || l.commands == 0 {
			continue
		}
		fmt.Printf("ratio lemonvox/%s: cmd/s %.2fx, p99 %.2fx, CPU per command %.2fx (lower is better for p99 and CPU)\n",
			d.name, l.cmdsPerSec/d.cmdsPerSec, l.p99/d.p99,
			(l.cpuSecs/float64(l.commands+l.checkCommands))/(d.cpuSecs/float64(d.commands+d.checkCommands)))
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// profileLemonvox fetches a CPU profile of secs seconds from the daemon's
// admin API into path.
func profileLemonvox(base, token string, hc *http.Client) func(int, string) error {
	return func(secs int, path string) error {
		req, err := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/debug/pprof/profile?seconds=%d", base, max(secs, 1)), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("profile: %s", resp.Status)
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, resp.Body); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
}
