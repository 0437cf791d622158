package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/vmstore"
)

// SubmissionConfig is the [submission] section: the message submission
// listener (STARTTLS, AUTH, BURL, CHUNKING, FUTURERELEASE).
type SubmissionConfig struct {
	Listener
	AllowInsecureAuth bool     `toml:"allow_insecure_auth"`
	MaxMessageSize    int64    `toml:"max_message_size"`
	MaxRecipients     int      `toml:"max_recipients"`
	FutureRelease     bool     `toml:"future_release"`
	MaxHold           duration `toml:"max_hold"`
	LocalDomains      []string `toml:"local_domains"`
	SentMailbox       string   `toml:"sent_mailbox"`
	BURL              bool     `toml:"burl"`
	BURLRemoteUser    string   `toml:"burl_remote_username"`
	BURLRemotePass    string   `toml:"burl_remote_password"`
	Smarthost         string   `toml:"smarthost"`
	SmarthostStartTLS bool     `toml:"smarthost_starttls"`
	SmarthostUsername string   `toml:"smarthost_username"`
	SmarthostPassword string   `toml:"smarthost_password"`
	RetryInterval     duration `toml:"retry_interval"`
	MaxRetryAge       duration `toml:"max_retry_age"`
	CommandTimeout    duration `toml:"command_timeout"`
	MaxConnections    int      `toml:"max_connections"`
	MaxPerSource      int      `toml:"max_connections_per_source"`
}

// startSubmission starts the submission listener(s) and the queue
// scheduler; BURL URLs of this appliance resolve through urlRes.
func startSubmission(cfg *Config, dir string, st *vmstore.Store, tlsConfig *tls.Config, authLim *authlimit.Limiter,
	urlRes *channel.Resolver, listeners *netlimit.Registry, log *slog.Logger) (closer, error) {
	c := cfg.Submission
	s := &smtp.Submission{Store: st, Hostname: cfg.Hostname, TLSConfig: tlsConfig, AllowInsecureAuth: c.AllowInsecureAuth,
		MaxMessageBytes: c.MaxMessageSize, MaxRecipients: c.MaxRecipients, MaxHold: c.MaxHold.Duration,
		LocalDomains: c.LocalDomains, AuthLimiter: authLim, SentMailbox: c.SentMailbox,
		SpoolDir: filepath.Join(dir, "spool", "submission"), CommandTimeout: c.CommandTimeout.Duration,
		RetryInterval: c.RetryInterval.Duration, MaxRetryAge: c.MaxRetryAge.Duration, Logger: log.With("service", "submission")}
	if !c.FutureRelease {
		s.MaxHold = -1
	}
	if c.BURL && urlRes != nil {
		f := smtp.Fetchers{Local: smtp.ResolverFetcher{R: urlRes}}
		if c.BURLRemoteUser != "" {
			f.Remote = &smtp.IMAPFetcher{Username: c.BURLRemoteUser, Password: c.BURLRemotePass}
		}
		s.Fetcher = f
	}
	if c.Smarthost != "" {
		s.Relay = &smtp.Relay{Addr: c.Smarthost, StartTLS: c.SmarthostStartTLS, Username: c.SmarthostUsername,
			Password: c.SmarthostPassword, HelloName: cfg.Hostname}
	}
	if err := os.MkdirAll(s.SpoolDir, 0o700); err != nil {
		return closer{}, fmt.Errorf("submission: %w", err)
	}
	s.Start()
	for _, l := range []struct {
		addr     string
		implicit bool
	}{{c.Listen, false}, {c.ListenTLS, true}} {
		if l.addr == "" {
			continue
		}
		name := "submission"
		if l.implicit {
			name = "submissions"
		}
		var ln net.Listener
		ln, err := smtp.Listen(smtp.ListenConfig{Name: name, Addr: l.addr, MaxConns: c.MaxConnections,
			MaxPerSource: c.MaxPerSource, Registry: listeners, Logger: log})
		if err != nil {
			s.Close()
			return closer{}, err
		}
		if l.implicit {
			ln = tls.NewListener(ln, tlsConfig)
		}
		go s.Serve(ln)
	}
	log.Info("submission listening", "listen", c.Listen, "listen_tls", c.ListenTLS, "burl", s.Fetcher != nil,
		"smarthost", c.Smarthost, "future_release", c.FutureRelease)
	return closer{"submission", s.Close}, nil
}
