// Command imap loads Lemonvox's IMAP server and Debian's Dovecot, started
// by the benchmark on loopback with the same mailboxes of voice messages,
// with the same load generator in one run:
//
//   - mixed: N clients for D seconds doing SELECT, UID FETCH (FLAGS
//     ENVELOPE), UID FETCH BODY[] of a 60-s voicemail, UID STORE, APPEND,
//     UID SEARCH, EXPUNGE; ops/s and p99 latency per server, and the ratio;
//
//   - idle: C connections in IDLE, memory per connection (PSS summed over
//     the server's processes), Dovecot in its default mode and with
//     imap_hibernate_timeout, and the time until all of them see EXISTS
//     after one deposit.
//
//   - long (-mode long): N clients that log in once and stay for D
//     seconds, each issuing a random mix of SELECT, UID FETCH (FLAGS of
//     the whole mailbox, ENVELOPE of a page, BODY[], a partial of the voice
//     part with BODYSTRUCTURE), UID STORE, APPEND, EXPUNGE, LIST and STATUS
//     on mailboxes they share; Lemonvox with its durable defaults against
//     Dovecot with mail_fsync = optimized (its default) and = always;
//     commands/s, p50/p99 per command, and server CPU per command (user +
//     system time of all server processes, from /proc, before and after).
//
//     go run ./bench/imap [-clients 50] [-seconds 60] [-idle 10000] [-servers lemonvox,dovecot]
//     go run ./bench/imap -mode long [-clients 50] [-seconds 60] [-fsync optimized,always] [-rounds 2] [-baseline old-lemonvoxd] [-cpuprofile lemonvox.pprof] [-check]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

func main() {
	clients := flag.Int("clients", 50, "concurrent clients of the mixed workload")
	seconds := flag.Float64("seconds", 60, "duration of the mixed workload")
	idle := flag.Int("idle", 10000, "connections of the idle test (0 skips it)")
	users := flag.Int("users", 10, "accounts the clients share")
	msgs := flag.Int("messages", 40, "voice messages in each INBOX")
	servers := flag.String("servers", "lemonvox,dovecot", "servers to measure")
	flag.DurationVar(&settle, "settle", 3*time.Second, "wait after the idle connections are up before measuring")
	mode := flag.String("mode", "mixed", "mixed (mixed workload, then the idle test) or long (long sessions)")
	fsyncs := flag.String("fsync", "optimized,always", "long mode: Dovecot's mail_fsync settings to measure, one run each")
	cpuprofile := flag.String("cpuprofile", "", "long mode: write a CPU profile of lemonvoxd during the run to this file")
	check := flag.Bool("check", false, "long mode: run the consistency checker (bench/imapcheck) alongside, as many sessions again on an account of its own")
	baseline := flag.String("baseline", "", "long mode: also run this lemonvoxd binary (an earlier build) as lemonvox-baseline")
	rounds := flag.Int("rounds", 1, "long mode: rounds of all servers (every other one in reverse order)")
	flag.Parse()
	raiseFileLimit()
	if strings.Contains(*servers, "dovecot") {
		defer raiseInotifyInstances(2*max(*idle, *clients) + 1000)()
	}

	var names []string
	for i := 0; i < *users; i++ {
		names = append(names, fmt.Sprintf("bench%02d", i))
	}
	corpus := makeCorpus(*msgs)
	if *mode == "long" {
		longMain(strings.Split(*servers, ","), strings.Split(*fsyncs, ","), names, corpus, *clients, *seconds, *check, *cpuprofile, *baseline, *rounds)
		return
	}
	if *mode != "mixed" {
		fatal(fmt.Errorf("unknown -mode %q", *mode))
	}
	type result struct {
		name string
		mix  mixResult
	}
	var results []result
	for _, s := range strings.Split(*servers, ",") {
		dir, err := os.MkdirTemp("", "lemonvox-bench-imap-")
		if err != nil {
			fatal(err)
		}
		srv, err := start(s, dir, names, false, *idle)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench/imap: %s: %v (skipped)\n", s, err)
			os.RemoveAll(dir)
			continue
		}
		if err := load(srv, corpus); err != nil {
			srv.stop()
			fatal(fmt.Errorf("%s: loading mailboxes: %w", s, err))
		}
		mix := runMixed(srv, corpus, *clients, *seconds)
		fmt.Printf("%-10s mixed: %8.1f ops/s  p50 %6.2f ms  p99 %7.2f ms  errors %d\n", s, mix.opsPerSec, mix.p50ms, mix.p99ms, mix.errors)
		for _, op := range mix.ops {
			fmt.Printf("           %-22s %8d ops  p99 %7.2f ms\n", op.name, op.n, op.p99ms)
		}
		results = append(results, result{s, mix})
		srv.stop()
		os.RemoveAll(dir)
		if *idle > 0 {
			// A freshly started server with the same mailboxes, so that
			// memory left over from the mixed workload does not hide (or
			// add to) what the idle connections take.
			idleRun(s, names, corpus, false, *idle)
			if s == "dovecot" {
				// Dovecot's best case: hibernated idle connections.
				fmt.Printf("%-10s (imap_hibernate_timeout = 1s)\n", s)
				idleRun(s, names, corpus, true, *idle)
			}
		}
	}
	if len(results) == 2 {
		a, b := results[0].mix, results[1].mix
		fmt.Printf("\nratio %s/%s: ops/s %.2fx, p99 %.2fx (lower is better)\n", results[0].name, results[1].name,
			a.opsPerSec/b.opsPerSec, a.p99ms/b.p99ms)
	}
}

var settle time.Duration

func idleRun(name string, users []string, corpus [][]byte, hibernate bool, n int) {
	dir, err := os.MkdirTemp("", "lemonvox-bench-imap-idle-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	srv, err := start(name, dir, users, hibernate, n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench/imap: %s idle: %v\n", name, err)
		return
	}
	defer srv.stop()
	if err := load(srv, corpus); err != nil {
		fmt.Fprintf(os.Stderr, "bench/imap: %s idle: loading mailboxes: %v\n", name, err)
		return
	}
	idleTest(srv, n)
}

func start(name, dir string, users []string, hibernate bool, idle int) (*server, error) {
	switch name {
	case "dovecot":
		return startDovecot(dir, users, hibernate, max(idle, 200), "always")
	case "lemonvox":
		return startLemonvox(dir, users)
	}
	return nil, fmt.Errorf("unknown server %q", name)
}

func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// raiseInotifyInstances lets each of Dovecot's imap processes (all running
// as one user) watch its mailbox: past fs.inotify.max_user_instances (128 on
// many systems) Dovecot falls back to polling every 30 s. It returns a
// function that puts the old value back; nothing changes without the right.
func raiseInotifyInstances(n int) func() {
	const path = "/proc/sys/fs/inotify/max_user_instances"
	old, err := os.ReadFile(path)
	if err != nil {
		return func() {}
	}
	var cur int
	fmt.Sscan(strings.TrimSpace(string(old)), &cur)
	if cur >= n || os.WriteFile(path, []byte(fmt.Sprint(n)), 0o644) != nil {
		return func() {}
	}
	fmt.Printf("fs.inotify.max_user_instances raised from %d to %d for this run\n", cur, n)
	return func() { os.WriteFile(path, old, 0o644) }
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench/imap:", err)
	os.Exit(1)
}
