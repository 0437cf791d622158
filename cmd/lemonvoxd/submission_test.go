package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lemonvox/lemonvox/admin"
)

// TestSubmissionHoldSurvivesKill: a message held by FUTURERELEASE in the
// built daemon survives kill -9 and is delivered after the restart, no
// sooner than its release time.
func TestSubmissionHoldSurvivesKill(t *testing.T) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 missing")
		}
		t.Skip("SKIP: /usr/bin/python3 missing")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "lemonvoxd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sub, adm := freePort(t), freePort(t)
	data := filepath.Join(dir, "data")
	conf := filepath.Join(dir, "lemonvox.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`data_dir = %q
hostname = "vm.example.net"
[imap]
listen = ""
listen_tls = ""
[sip]
listen = ""
[lmtp]
listen = ""
[rtsp]
listen = ""
listen_tls = ""
[submission]
listen = %q
[admin]
listen = %q
`, data, sub, adm)), 0o600)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-config", conf)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; ; i++ {
			if c, err := net.Dial("tcp", sub); err == nil {
				c.Close()
				break
			}
			if i > 1200 {
				cmd.Process.Kill()
				t.Fatal("daemon did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		return cmd
	}
	d := start()
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	submitted := time.Now()
	out, err := exec.Command(py, "-c", `
import smtplib, ssl, sys
host, port = sys.argv[1].rsplit(":", 1)
s = smtplib.SMTP(host, int(port), timeout=60)
s.starttls(context=ssl._create_unverified_context())
s.login("demo", "demo")
print(s.sendmail("demo@vm.example.net", ["demo@vm.example.net"], "Subject: held\r\n\r\nheld body\r\n", mail_options=["HOLDFOR=4"]))
s.quit()
`, sub).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	d.Process.Signal(syscall.SIGKILL)
	d.Wait()
	d = start()
	var ri *admin.RunInfo
	for i := 0; ; i++ {
		if ri, err = admin.ReadRunInfo(data); err == nil {
			break
		}
		if i > 1200 {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cl, err := admin.NewClient(ri)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		l, err := cl.Messages("demo", "INBOX")
		if err == nil && len(l.Messages) > 0 {
			found := false
			for _, m := range l.Messages {
				found = found || strings.Contains(m.Subject, "held")
			}
			if found {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("held message not delivered after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if el := time.Since(submitted); el < 4*time.Second {
		t.Fatalf("delivered after %v, before its release time", el)
	}
	// The entry leaves the queue after the delivery is committed (at
	// least once: delivered, then dequeued), so it may still be there for
	// a moment.
	for {
		q, err := cl.Queue("")
		if err == nil && len(q) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue after release: %v %v", q, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
