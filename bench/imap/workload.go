package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/lemonvox/lemonvox/vmstore"
)

// makeCorpus builds n voice messages (8 kHz µ-law WAV in VPIM messages);
// the first is the 60-second one that the workload fetches whole.
func makeCorpus(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		secs := 5 + rng.IntN(40)
		if i == 0 {
			secs = 60
		}
		audio := make([]byte, 44+secs*8000)
		copy(audio, "RIFF")
		for j := 44; j < len(audio); j++ {
			audio[j] = byte(rng.Uint32())
		}
		r := vmstore.VoiceMessage{From: fmt.Sprintf("+1555%07d@example.net", i), Subject: fmt.Sprintf("Voice message %d", i),
			MediaType: "audio/wav", Duration: time.Duration(secs) * time.Second, Media: bytes.NewReader(audio),
			Date: time.Date(2026, 11, 1, 0, 0, i, 0, time.UTC)}.Compose()
		b, _ := io.ReadAll(r)
		out[i] = b
	}
	return out
}

func login(srv *server, user string) (*imapclient.Client, error) {
	c, err := imapclient.DialInsecure(srv.addr, nil)
	if err != nil {
		return nil, err
	}
	if err := c.Login(user, user).Wait(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func appendMsg(c *imapclient.Client, b []byte) error {
	cmd := c.Append("INBOX", int64(len(b)), nil)
	if _, err := cmd.Write(b); err != nil {
		return err
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	_, err := cmd.Wait()
	return err
}

// load appends the corpus to every user's INBOX.
func load(srv *server, corpus [][]byte) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(srv.users))
	for _, u := range srv.users {
		wg.Add(1)
		go func(u string) {
			defer wg.Done()
			c, err := login(srv, u)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			for _, m := range corpus {
				if err := appendMsg(c, m); err != nil {
					errs <- err
					return
				}
			}
			c.Logout().Wait()
		}(u)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

type opStat struct {
	name  string
	n     int
	p99ms float64
}

type mixResult struct {
	opsPerSec, p50ms, p99ms float64
	errors                  int64
	ops                     []opStat
}

type recorder struct {
	mu  sync.Mutex
	lat map[string][]time.Duration
}

func (r *recorder) add(op string, d time.Duration) {
	r.mu.Lock()
	r.lat[op] = append(r.lat[op], d)
	r.mu.Unlock()
}

func pct(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return float64(d[min(len(d)-1, int(float64(len(d))*p))]) / 1e6
}

// runMixed runs the mixed workload: each client loops over the operations
// on the INBOX of one of the shared accounts.
func runMixed(srv *server, corpus [][]byte, clients int, secs float64) mixResult {
	rec := &recorder{lat: map[string][]time.Duration{}}
	var errs atomic.Int64
	stop := time.Now().Add(time.Duration(secs * float64(time.Second)))
	small := corpus[len(corpus)-1]
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			user := srv.users[i%len(srv.users)]
			c, err := login(srv, user)
			if err != nil {
				errs.Add(1)
				return
			}
			defer func() { c.Close() }()
			failed := false
			timed := func(op string, f func() error) {
				if failed {
					return
				}
				t := time.Now()
				if err := f(); err != nil {
					errs.Add(1)
					failed = true
					return
				}
				rec.add(op, time.Since(t))
			}
			for time.Now().Before(stop) {
				if failed {
					// Start over on a new connection after an error.
					c.Close()
					time.Sleep(10 * time.Millisecond)
					if c, err = login(srv, user); err != nil {
						errs.Add(1)
						return
					}
					failed = false
				}
				var uids []imap.UID
				timed("SELECT", func() error { _, err := c.Select("INBOX", nil).Wait(); return err })
				timed("UID SEARCH", func() error {
					d, err := c.UIDSearch(&imap.SearchCriteria{NotFlag: []imap.Flag{imap.FlagDeleted}}, nil).Wait()
					if err == nil {
						uids = d.AllUIDs()
					}
					return err
				})
				if len(uids) == 0 {
					continue
				}
				timed("UID FETCH FLAGS ENVELOPE", func() error {
					all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
					_, err := c.Fetch(all, &imap.FetchOptions{UID: true, Flags: true, Envelope: true}).Collect()
					return err
				})
				timed("UID FETCH BODY[] 60s", func() error {
					_, err := c.Fetch(imap.UIDSetNum(uids[0]), &imap.FetchOptions{UID: true,
						BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
					return err
				})
				u := uids[rng.IntN(len(uids))]
				op := imap.StoreFlagsAdd
				if rng.IntN(2) == 0 {
					op = imap.StoreFlagsDel
				}
				timed("UID STORE", func() error {
					return c.Store(imap.UIDSetNum(u), &imap.StoreFlags{Op: op, Silent: true, Flags: []imap.Flag{imap.FlagSeen}}, nil).Close()
				})
				timed("APPEND", func() error { return appendMsg(c, small) })
				// Keep the mailbox size steady: delete the newest message.
				timed("UID STORE", func() error {
					return c.Store(imap.SeqSetNum(0), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close()
				})
				timed("EXPUNGE", func() error { return c.Expunge().Close() })
			}
		}(i)
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	var all []time.Duration
	var res mixResult
	for op, d := range rec.lat {
		all = append(all, d...)
		res.ops = append(res.ops, opStat{name: op, n: len(d), p99ms: pct(d, 0.99)})
	}
	sort.Slice(res.ops, func(i, j int) bool { return res.ops[i].name < res.ops[j].name })
	res.opsPerSec = float64(len(all)) / el
	res.p50ms = pct(all, 0.50)
	res.p99ms = pct(all, 0.99)
	res.errors = errs.Load()
	return res
}

// idleTest opens n connections in IDLE on one INBOX, measures the server's
// memory per connection, deposits one message and times until every
// connection has seen the EXISTS.
func idleTest(srv *server, n int) {
	detailBefore := ""
	if srv.quiesce != nil {
		detailBefore = srv.quiesce()
	}
	before := pssKiB(srv.pids())
	user := srv.users[0]
	var seen atomic.Int64
	var ready sync.WaitGroup
	clients := make([]*imapclient.Client, 0, n)
	idles := make([]*imapclient.IdleCommand, 0, n)
	var mu sync.Mutex
	sem := make(chan struct{}, 64)
	var failed atomic.Int64
	for i := 0; i < n; i++ {
		ready.Add(1)
		sem <- struct{}{}
		go func() {
			defer ready.Done()
			defer func() { <-sem }()
			var once sync.Once
			opts := &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
				Mailbox: func(d *imapclient.UnilateralDataMailbox) {
					if d.NumMessages != nil {
						once.Do(func() { seen.Add(1) })
					}
				},
			}}
			c, err := imapclient.DialInsecure(srv.addr, opts)
			if err != nil {
				failed.Add(1)
				return
			}
			if err := c.Login(user, user).Wait(); err != nil {
				failed.Add(1)
				c.Close()
				return
			}
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				failed.Add(1)
				c.Close()
				return
			}
			idle, err := c.Idle()
			if err != nil {
				failed.Add(1)
				c.Close()
				return
			}
			mu.Lock()
			clients = append(clients, c)
			idles = append(idles, idle)
			mu.Unlock()
		}()
	}
	ready.Wait()
	time.Sleep(settle) // let hibernation (Dovecot) and idle collection (ours) settle
	seen.Store(0)
	detail := ""
	if srv.quiesce != nil {
		detail = srv.quiesce()
	}
	after := pssKiB(srv.pids())
	ok := len(clients)
	per := float64(after-before) / float64(max(ok, 1))
	fmt.Printf("%-10s idle: %d connections (%d failed), %.1f MiB for them, %.1f KiB per connection (whole server %.1f MiB, %.1f KiB per connection)\n",
		srv.name, ok, failed.Load(), float64(after-before)/1024, per, float64(after)/1024, float64(after)/float64(max(ok, 1)))
	if detail != "" {
		fmt.Printf("%-10s        before: %s\n", srv.name, detailBefore)
		fmt.Printf("%-10s        after:  %s\n", srv.name, detail)
	}
	// One deposit; time until every idle connection saw EXISTS.
	c, err := login(srv, user)
	if err == nil {
		t := time.Now()
		_ = appendMsg(c, []byte("Subject: wake\r\n\r\nwake up\r\n"))
		for seen.Load() < int64(ok) && time.Since(t) < 30*time.Second {
			time.Sleep(2 * time.Millisecond)
		}
		fmt.Printf("%-10s EXISTS reached %d/%d idle connections in %.0f ms\n", srv.name, seen.Load(), ok, float64(time.Since(t))/1e6)
		c.Close()
	}
	for i, idle := range idles {
		idle.Close()
		clients[i].Close()
	}
}
