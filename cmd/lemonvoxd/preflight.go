package main

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/lemonvox/lemonvox/admin"
)

// lockExisting takes the lock of the data directory when the directory
// exists (nil, nil when it does not). A lock held by another process means
// a daemon, or a lemonvox command with the store open, uses it.
func lockExisting(dir string) (*admin.DataLock, error) {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	lock, err := admin.LockDataDir(dir)
	if errors.Is(err, admin.ErrLocked) {
		if ri, rerr := admin.ReadRunInfo(dir); rerr == nil {
			return nil, fmt.Errorf("a daemon (pid %d) already runs on %s", ri.PID, dir)
		}
		return nil, fmt.Errorf("%s is in use by another process (a daemon starting, or a lemonvox command with the store open)", dir)
	}
	return lock, err
}

// checkListeners binds every configured address once and lets it go, so
// that a taken port is reported, with the setting to change, before
// anything is created or started.
func checkListeners(cfg *Config) error {
	type addr struct{ setting, network, addr string }
	var addrs []addr
	add := func(setting, a string, networks ...string) {
		if a == "" {
			return
		}
		for _, n := range networks {
			addrs = append(addrs, addr{setting, n, a})
		}
	}
	add("admin.listen", cfg.Admin.Listen, "tcp")
	add("imap.listen", cfg.IMAP.Listen, "tcp")
	add("imap.listen_tls", cfg.IMAP.ListenTLS, "tcp")
	add("lmtp.listen", cfg.LMTP.Listen, "tcp")
	add("sip.listen", cfg.SIP.Listen, "tcp", "udp")
	add("sip.listen_tls", cfg.SIP.ListenTLS, "tcp")
	add("rtsp.listen_tls", cfg.RTSP.ListenTLS, "tcp")
	if cfg.RTSP.AllowPlain {
		add("rtsp.listen", cfg.RTSP.Listen, "tcp")
	}
	add("submission.listen", cfg.Submission.Listen, "tcp")
	add("submission.listen_tls", cfg.Submission.ListenTLS, "tcp")
	for _, a := range addrs {
		var err error
		if a.network == "udp" {
			var c net.PacketConn
			if c, err = net.ListenPacket("udp", a.addr); err == nil {
				c.Close()
			}
		} else {
			var l net.Listener
			if l, err = net.Listen("tcp", a.addr); err == nil {
				l.Close()
			}
		}
		if err != nil {
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err // "address already in use", without "listen tcp ...: bind:"
			}
			return fmt.Errorf("%s %s: %v (set %s in the config or free the port)", a.setting, a.addr, err, a.setting)
		}
	}
	return nil
}
