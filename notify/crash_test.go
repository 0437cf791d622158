package notify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/vmstore"
)

// The crash test runs the appliance side (store + dispatcher + webhook
// sink + depositors) in a child process, kills it with SIGKILL in the middle
// of a burst of deposits, starts it again to finish the burst, and checks
// what the receiver got: every MessageNew of the journal at least once,
// valid signatures, per-account order of first deliveries, and duplicates
// recognisable by webhook-id.

const (
	crashEnv      = "LEMONVOX_NOTIFY_CRASH_CHILD"
	crashAccounts = 10
)

func crashTotal() int {
	if testing.Short() {
		return 200
	}
	return 1000
}

// TestCrashChild is the child process; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	cfg := os.Getenv(crashEnv)
	if cfg == "" {
		t.Skip("child process of TestWebhookKill9MidBurst")
	}
	var dir, url string
	var total int
	if _, err := fmt.Sscan(cfg, &dir, &url, &total); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	s, err := vmstore.Open(vmstore.Options{Dir: filepath.Join(dir, "db"), Logger: testLogger(t),
		Hash: vmstore.HashParams{Time: 1, MemKiB: 64, Threads: 1}, GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < crashAccounts; i++ {
		name := "u" + strconv.Itoa(i)
		if _, err := s.GetAccount(name); err != nil {
			mustAccount(t, s, name, vmstore.AccountOptions{})
		}
	}
	w := &WebhookSink{ID: "crash", URL: url, Secrets: []string{testSecret}, Payload: PayloadBuilder{ServerName: "vm.test"},
		Events: []vmstore.EventType{vmstore.EventMessageNew}, TLSConfig: tlsWithRoots(pool), AllowPrivate: true}
	if err := w.Initialize(); err != nil {
		t.Fatal(err)
	}
	d := &Dispatcher{Store: s, Sinks: []Sink{w}, DeadLetterDir: filepath.Join(dir, "dl"), Logger: testLogger(t),
		BaseBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: 1000}
	if err := d.Initialize(); err != nil {
		t.Fatal(err)
	}
	fmt.Println("CHILD-READY")
	var wg sync.WaitGroup
	per := total / crashAccounts
	for i := 0; i < crashAccounts; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := "u" + strconv.Itoa(i)
			for {
				mb, err := s.Mailbox(user, "INBOX")
				if err != nil {
					panic(err)
				}
				if int(mb.Counts.Messages) >= per {
					return
				}
				if _, err := s.Deposit(vmstore.DepositReq{User: user, Body: bytes.NewReader(voiceMail("+15550000@example.net", 5)), Service: "lmtp"}); err != nil {
					panic(err)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	// Wait until everything is delivered, then stop cleanly.
	for {
		st, err := d.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st[0].Pending == 0 && st[0].Cursor == s.LastSeq() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	d.Close()
	s.Close()
}

func TestWebhookKill9MidBurst(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in child")
	}
	total := crashTotal()
	rc, srv, _ := newTLSReceiver(t)
	dir := t.TempDir()
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	child := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", crashEnv, dir, srv.URL, total))
		return cmd
	}
	// First run: kill -9 once a third of the burst has been delivered.
	cmd := child()
	var out1 bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out1, &out1
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for len(rc.got()) < total/3 {
		select {
		case err := <-exited:
			t.Fatalf("child exited before the kill: %v\n%s", err, out1.String())
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no progress: %d webhooks\n%s", len(rc.got()), out1.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	atKill := len(rc.got())

	// Second run finishes the burst and waits for delivery.
	cmd = child()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd2 := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
	cmd2.Env = cmd.Env
	if out, err := cmd2.CombinedOutput(); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}

	s := openStore(t, filepath.Join(dir, "db"))
	evs, err := s.ReadJournal(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]uint64{} // per account, journal order
	nNew := 0
	for _, ev := range evs {
		if ev.Type == vmstore.EventMessageNew {
			want[ev.User] = append(want[ev.User], ev.Seq)
			nNew++
		}
	}
	if nNew != total {
		t.Fatalf("journal has %d MessageNew, want %d", nNew, total)
	}
	got := rc.got()
	seen := map[uint64]bool{}
	idOf := map[uint64]string{}
	next := map[string]int{} // index into want[user] of the next new event
	dups := 0
	for _, r := range got {
		if seen[r.Seq] {
			dups++
			if idOf[r.Seq] != r.ID {
				t.Fatalf("duplicate of seq %d has webhook-id %s, first had %s", r.Seq, r.ID, idOf[r.Seq])
			}
			continue
		}
		seen[r.Seq] = true
		idOf[r.Seq] = r.ID
		w := want[r.User]
		if next[r.User] >= len(w) || w[next[r.User]] != r.Seq {
			t.Fatalf("%s: first delivery of seq %d out of order (expected %v)", r.User, r.Seq, w[next[r.User]:min(next[r.User]+1, len(w))])
		}
		next[r.User]++
	}
	for u, w := range want {
		if next[u] != len(w) {
			t.Fatalf("%s: %d of %d events delivered", u, next[u], len(w))
		}
	}
	t.Logf("%d deposits, killed after %d webhooks, %d deliveries in all, %d duplicates", total, atKill, len(got), dups)
}
