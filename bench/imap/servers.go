package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lemonvox/lemonvox/admin"
)

// server is an IMAP server under test.
type server struct {
	name string
	addr string
	pids func() []int // processes whose memory counts
	// quiesce, if set, makes the server return free memory to the system
	// before a measurement (a Go heap otherwise keeps garbage of earlier
	// work for a while, which would count for or against the connections).
	quiesce func() string
	stop    func()
	users   []string // password = user name
	// profile, if set, writes a CPU profile of the server over the next
	// secs seconds to path.
	profile func(secs int, path string) error
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitPort(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

// startDovecot runs Debian's Dovecot with a private configuration on
// loopback: plaintext auth from a passwd-file, Maildir under dir.
// hibernate enables imap_hibernate_timeout (its best case for idle memory);
// fsync is its mail_fsync setting ("always", "optimized" = Dovecot's default).
func startDovecot(dir string, users []string, hibernate bool, maxConns int, fsync string) (*server, error) {
	bin, err := exec.LookPath("dovecot")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/dovecot"); err2 == nil {
			bin = "/usr/sbin/dovecot"
		} else {
			return nil, fmt.Errorf("dovecot not installed (apt-get install dovecot-imapd)")
		}
	}
	// Dovecot's auth process runs as user dovecot and must reach the files.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	for _, d := range []string{"run", "state", "mail", "home"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	// Mail is owned by nobody: Dovecot refuses root as a mail user.
	for _, d := range []string{"mail", "home"} {
		if err := os.Chown(filepath.Join(dir, d), 65534, 65534); err != nil {
			return nil, err
		}
	}
	var pw strings.Builder
	for _, u := range users {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", u, u)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o644); err != nil {
		return nil, err
	}
	addr := freePort()
	_, port, _ := net.SplitHostPort(addr)
	hib := ""
	if hibernate {
		hib = "imap_hibernate_timeout = 1s\n"
	}
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
info_log_path = %[1]s/dovecot.log
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:%[1]s/mail/%%u
mail_fsync = %[6]s
default_process_limit = %[3]d
default_client_limit = %[4]d
%[5]spassdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/passwd
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=%[1]s/home/%%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]s
  }
  inet_listener imaps {
    port = 0
  }
  process_min_avail = 2
  service_count = 0
  client_limit = %[4]d
}
service imap {
  process_limit = %[3]d
  # Hibernation: the imap processes (uid nobody) hand idle connections to
  # imap-hibernate over its socket, which gets them back through
  # imap-master (Dovecot's documented setup for hibernation).
  extra_groups = $default_internal_group
  unix_listener imap-master {
    user = $default_internal_user
  }
}
protocol imap {
  mail_max_userip_connections = %[4]d
}
service auth {
  client_limit = %[4]d
}
service anvil {
  client_limit = %[4]d
}
service imap-hibernate {
  client_limit = %[4]d
  unix_listener imap-hibernate {
    mode = 0660
    group = $default_internal_group
  }
}
`, dir, port, maxConns+100, maxConns+100, hib, fsync)
	cfg := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-F", "-c", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	if err := waitPort(addr, 15*time.Second); err != nil {
		cmd.Process.Kill()
		log, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
		return nil, fmt.Errorf("dovecot: %v\n%s%s", err, out.String(), log)
	}
	return &server{
		name: "dovecot", addr: addr, users: users,
		pids: func() []int { return descendants(cmd.Process.Pid) },
		stop: func() { cmd.Process.Signal(os.Interrupt); waitOrKill(cmd) },
	}, nil
}

// startLemonvox builds and runs lemonvoxd with IMAP on a free port and the
// accounts created through the admin API.
func startLemonvox(dir string, users []string) (*server, error) {
	return startLemonvoxBin(dir, users, "")
}

// startLemonvoxBin is startLemonvox with a lemonvoxd already built (bin),
// or built from this tree if bin is empty.
func startLemonvoxBin(dir string, users []string, bin string) (*server, error) {
	if bin == "" {
		bin = filepath.Join(dir, "lemonvoxd")
		build := exec.Command("go", "build", "-o", bin, "./cmd/lemonvoxd")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("build lemonvoxd: %v\n%s", err, out)
		}
	}
	addr := freePort()
	conf := fmt.Sprintf(`[log]
level = "warn"
[imap]
listen = %q
listen_tls = ""
[lmtp]
listen = ""
[submission]
listen = ""
[rtsp]
listen = ""
[sip]
listen = ""
[admin]
listen = "127.0.0.1:0"
[demo]
enabled = false
`, addr)
	cfg := filepath.Join(dir, "lemonvox.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(bin, "-config", cfg, "-data", data)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() { cmd.Process.Signal(os.Interrupt); waitOrKill(cmd) }
	var ri *admin.RunInfo
	for i := 0; i < 300; i++ {
		if r, err := admin.ReadRunInfo(data); err == nil {
			ri = r
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if ri == nil {
		stop()
		return nil, fmt.Errorf("lemonvoxd did not start:\n%s", out.String())
	}
	if err := waitPort(addr, 10*time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("lemonvoxd IMAP: %v\n%s", err, out.String())
	}
	cl, err := admin.NewClient(ri)
	if err != nil {
		stop()
		return nil, err
	}
	for _, u := range users {
		p := u
		if _, err := cl.CreateAccount(admin.AccountRequest{Name: u, Password: &p}); err != nil {
			stop()
			return nil, err
		}
	}
	return &server{name: "lemonvox", addr: addr, users: users,
		pids: func() []int { return []int{cmd.Process.Pid} },
		quiesce: func() string {
			m, err := cl.FreeMemory()
			if err != nil {
				return err.Error()
			}
			return fmt.Sprintf("heap in use %.1f MiB, stacks %.1f MiB, %d goroutines",
				float64(m["heapInuseBytes"])/(1<<20), float64(m["stackInuseBytes"])/(1<<20), m["goroutines"])
		},
		profile: profileLemonvox(cl.BaseURL, cl.Token, cl.HTTP),
		stop:    stop}, nil
}

func waitOrKill(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}
