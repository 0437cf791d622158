package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/notify"
	"github.com/lemonvox/lemonvox/vmstore"
)

// newURLResolver builds the IMAP URL resolver (GENURLAUTH, URLFETCH,
// CATENATE and BURL URLs) from [imap] url_host, url_aliases, url_roles
// and url_anonymous_max_lifetime.
func newURLResolver(cfg *Config, st *vmstore.Store) (*channel.Resolver, error) {
	host, err := urlHost(cfg)
	if err != nil {
		return nil, err
	}
	for _, a := range cfg.IMAP.URLAliases {
		if err := channel.CheckURLHost(a); err != nil {
			return nil, fmt.Errorf("imap.url_aliases: %q: %w", a, err)
		}
	}
	r := channel.NewResolver(st, host, cfg.IMAP.URLAliases...)
	for app, users := range cfg.IMAP.URLRoles {
		if a, err := channel.ParseAccess(app); !strings.EqualFold(app, channel.RoleSubmit) && (err != nil || a.Kind != channel.AccessApplication || a.User != "") {
			return nil, fmt.Errorf("imap.url_roles: %q is not an application name (submit, stream, ...)", app)
		}
		for _, u := range users {
			if vmstore.FoldUserName(u) != u {
				return nil, fmt.Errorf("imap.url_roles.%s: %q: account names are lower case", app, u)
			}
		}
	}
	r.Roles = cfg.IMAP.URLRoles
	if d := cfg.IMAP.URLAnonymousMaxLifetime.Duration; d > 0 {
		r.AnonymousMaxLifetime = d
	}
	return r, nil
}

// urlHost is [imap] url_host, or the appliance's hostname with the port
// of the implicit-TLS listener (else of the plaintext one) when it is not
// 143.
func urlHost(cfg *Config) (string, error) {
	if h := cfg.IMAP.URLHost; h != "" {
		if err := channel.CheckURLHost(h); err != nil {
			return "", fmt.Errorf("imap.url_host: %w", err)
		}
		return h, nil
	}
	name := cfg.Hostname
	if name == "" {
		n, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("imap.url_host not set and no hostname: %w", err)
		}
		name = n
	}
	if strings.Contains(name, ":") {
		name = "[" + name + "]"
	}
	addr := cfg.IMAP.ListenTLS
	if addr == "" {
		addr = cfg.IMAP.Listen
	}
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "" && port != "143" && port != "0" {
		name += ":" + port
	}
	if err := channel.CheckURLHost(name); err != nil {
		return "", fmt.Errorf("imap.url_host from hostname %q: %w (set imap.url_host)", name, err)
	}
	return name, nil
}

// notifyURLFor returns the webhook payload's URL maker ([notify] url_access,
// url_lifetime), nil when url_access is empty.
func notifyURLFor(cfg *Config, st *vmstore.Store, log *slog.Logger) (func(*vmstore.Event) string, error) {
	if cfg.Notify.URLAccess == "" {
		return nil, nil
	}
	r, err := newURLResolver(cfg, st)
	if err != nil {
		return nil, err
	}
	m := &notify.MessageURLs{Resolver: r, Access: cfg.Notify.URLAccess, Lifetime: cfg.Notify.URLLifetime.Duration, Logger: log}
	if err := m.Check(); err != nil {
		return nil, fmt.Errorf("notify.url_access: %w", err)
	}
	return m.URLFor, nil
}
