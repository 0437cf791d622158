package main

import (
	"log/slog"
	"path/filepath"

	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/smtp"
	"github.com/lemonvox/lemonvox/vmstore"
)

// LMTPConfig is the [lmtp] section: the LMTP deposit listener.
type LMTPConfig struct {
	// Listen is a TCP address ("" for none); loopback by default.
	Listen string `toml:"listen"`
	// Socket is a unix socket path ("" for none); relative to the data
	// directory unless absolute.
	Socket string `toml:"socket"`
	// SocketMode is the socket's permission bits (default 0660).
	SocketMode uint32 `toml:"socket_mode"`
	// Domains accepted in recipient addresses; empty accepts any.
	Domains        []string `toml:"domains"`
	MaxConnections int      `toml:"max_connections"`
	MaxMessageSize int64    `toml:"max_message_size"`
	MaxRecipients  int      `toml:"max_recipients"`
	IdleTimeout    duration `toml:"idle_timeout"`
}

// startLMTP starts the LMTP deposit listener when one is configured.
func startLMTP(cfg *Config, dir string, st *vmstore.Store, reg *netlimit.Registry, log *slog.Logger) ([]closer, error) {
	c := cfg.LMTP
	if c.Listen == "" && c.Socket == "" {
		return nil, nil
	}
	sock := c.Socket
	if sock != "" && !filepath.IsAbs(sock) {
		sock = filepath.Join(dir, sock)
	}
	maxSize := c.MaxMessageSize
	if maxSize <= 0 || (cfg.Store.MaxMessageSize > 0 && maxSize > cfg.Store.MaxMessageSize) {
		maxSize = cfg.Store.MaxMessageSize
	}
	l := smtp.NewLMTP(st, smtp.LMTPConfig{Listen: c.Listen, Socket: sock, SocketMode: c.SocketMode,
		Domain: cfg.Hostname, Domains: c.Domains, MaxConnections: c.MaxConnections, MaxMessageSize: maxSize,
		MaxRecipients: c.MaxRecipients, IdleTimeout: c.IdleTimeout.Duration, Registry: reg, Logger: log})
	if err := l.Start(); err != nil {
		return nil, err
	}
	return []closer{{"lmtp", l.Close}}, nil
}
