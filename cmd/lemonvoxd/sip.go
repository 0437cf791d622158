package main

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/sipep"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/vmstore"
)

// newSIPEndpoint builds the appliance's one SIP endpoint from [sip]; nil
// when sip.listen is empty. Services register their methods on it, then
// startSIPEndpoint opens its listeners.
func newSIPEndpoint(cfg *Config, tlsConfig *tls.Config, authLim *authlimit.Limiter, listeners *netlimit.Registry, log *slog.Logger) (*sipep.Endpoint, error) {
	if cfg.SIP.Listen == "" {
		return nil, nil
	}
	ep := &sipep.Endpoint{Listen: cfg.SIP.Listen, ListenTLS: cfg.SIP.ListenTLS, TLSConfig: tlsConfig,
		Domain: cfg.SIP.Domain, Logger: log.With("service", "sip"), AuthLimiter: authLim, Listeners: listeners,
		MaxConns: cfg.SIP.MaxConnections, MaxConnsPerSource: cfg.SIP.MaxPerSource,
		FirstMessageTimeout: cfg.SIP.FirstMessage.Duration, ConnIdleTimeout: cfg.SIP.IdleTimeout.Duration,
		MaxRequestRate: cmp.Or(cfg.SIP.MaxRequestRate, -1), // 0 in the file: no limit
		NonceLifetime:  cfg.SIP.NonceLifetime.Duration}
	for _, n := range cfg.SIP.TrustedNetworks {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("sip.trusted_networks: %w", err)
		}
		ep.TrustedNetworks = append(ep.TrustedNetworks, p)
	}
	return ep, nil
}

// startSIPEndpoint opens the endpoint's listeners once every service has
// registered; its closer goes before the services' (closed after them).
func startSIPEndpoint(ep *sipep.Endpoint) error {
	if ep == nil {
		return nil
	}
	if err := ep.Start(); err != nil {
		return fmt.Errorf("sip: %w", err)
	}
	return nil
}

// sipCloser closes the endpoint (a no-op when it never started).
func sipCloser(ep *sipep.Endpoint) closer {
	return closer{"sip endpoint", func() error {
		if ep != nil {
			ep.Close()
		}
		return nil
	}}
}

// startMediaServer registers the SIP media server on the endpoint, with
// the daemon's playback engine and part cache and the IMAP URL resolver
// (play= URLs are checked as URLFETCH checks them); it returns its closer.
func startMediaServer(cfg *Config, st *vmstore.Store, ep *sipep.Endpoint, pb *playback, res *channel.Resolver, log *slog.Logger) ([]closer, error) {
	if ep == nil || !cfg.SIP.MediaServer {
		return nil, nil
	}
	ms := &streaming.SIPServer{Endpoint: ep, Store: st, Resolver: res, Engine: pb.engine, Cache: pb.cache,
		RequireSRTP: cfg.SIP.RequireSRTP, PlainSDES: cfg.SIP.SDESOverPlain, MaxCalls: cfg.SIP.MaxCalls,
		MaxCallsPerSource: cfg.SIP.MaxCallsSource, MediaAddr: cfg.SIP.MediaAddress, Logger: log.With("service", "sip"),
		SessionExpires: cfg.SIP.SessionExpires.Duration, MinSE: cfg.SIP.MinSE.Duration, MediaTimeout: cfg.SIP.MediaTimeout.Duration}
	if err := ms.Initialize(); err != nil {
		return nil, fmt.Errorf("sip media server: %w", err)
	}
	return []closer{{"sip media server", func() error { ms.Close(); return nil }}}, nil
}
