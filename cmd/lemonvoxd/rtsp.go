package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/lemonvox/lemonvox/authlimit"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/imap"
	"github.com/lemonvox/lemonvox/netlimit"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/vmstore"
)

// RTSPConfig is [rtsp]: the RTSP(S) server of CHANNEL URLs.
type RTSPConfig struct {
	Listen              string   `toml:"listen"`
	ListenTLS           string   `toml:"listen_tls"`
	AllowPlain          bool     `toml:"allow_plain"`
	PublicHost          string   `toml:"public_host"`
	SessionTimeout      duration `toml:"session_timeout"`
	FirstRequestTimeout duration `toml:"first_request_timeout"`
	MaxConnections      int      `toml:"max_connections"`
	MaxPerSource        int      `toml:"max_connections_per_source"`
}

// StreamingConfig is [streaming]: the playback engine shared by RTSP,
// SIP and WHEP.
type StreamingConfig struct {
	SeenThreshold float64 `toml:"seen_threshold"`
	Workers       int     `toml:"workers"`
	CacheBytes    int64   `toml:"cache_bytes"`
}

// playback is the started playback core.
type playback struct {
	engine  *streaming.Engine
	grants  *channel.Grants
	cache   *streaming.PartCache
	channel *imap.ChannelService
}

// startPlayback starts the engine and the RTSP(S) listeners and returns
// what IMAP CHANNEL needs.
func startPlayback(cfg *Config, st *vmstore.Store, tlsConfig *tls.Config, authLim *authlimit.Limiter, reg *netlimit.Registry, log *slog.Logger) ([]closer, *playback, error) {
	var cl []closer
	sc := cfg.Streaming
	if sc.SeenThreshold < 0 || sc.SeenThreshold > 1 {
		return nil, nil, fmt.Errorf("streaming.seen_threshold %v: must be from 0 to 1", sc.SeenThreshold)
	}
	grants, err := channel.NewGrants(st)
	if err != nil {
		return nil, nil, err
	}
	if authLim != nil {
		grants.Limiter = grantLimiter{authLim}
	}
	thr := sc.SeenThreshold
	if thr == 0 {
		thr = -1 // 0 in the configuration: never mark
	}
	pb := &playback{grants: grants, cache: streaming.NewPartCache(max(sc.CacheBytes, 1<<20)),
		engine: streaming.NewEngine(streaming.EngineConfig{Store: st, Workers: sc.Workers, SeenThreshold: thr,
			Logger: log.With("service", "streaming")})}
	cl = append(cl, closer{"streaming engine", pb.engine.Close})
	rc := cfg.RTSP
	if rc.ListenTLS == "" && !(rc.AllowPlain && rc.Listen != "") {
		return cl, pb, nil
	}
	srv := streaming.NewRTSPServer(streaming.RTSPConfig{Engine: pb.engine, Store: st, Grants: grants, TLS: tlsConfig,
		AllowPlainRTP: rc.AllowPlain, SessionTimeout: rc.SessionTimeout.Duration, FirstRequestTimeout: rc.FirstRequestTimeout.Duration,
		MaxConns: rc.MaxConnections, MaxPerSource: rc.MaxPerSource, Registry: reg, Cache: pb.cache, Logger: log.With("service", "rtsp")})
	cl = append(cl, closer{"rtsp", func() error { err := srv.Close(); srv.Wait(); return err }})
	pb.channel = &imap.ChannelService{Grants: grants, URLs: map[string]string{}}
	listen := func(addr, scheme string, secure bool) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("rtsp: %w", err)
		}
		go func() {
			if err := srv.Serve(l, secure); err != nil {
				log.Error("rtsp listener stopped", "addr", addr, "err", err)
			}
		}()
		pb.channel.URLs[scheme] = scheme2URL(scheme, rc.PublicHost, l.Addr().String())
		log.Info("rtsp listening", "addr", l.Addr().String(), "scheme", scheme)
		return nil
	}
	if rc.ListenTLS != "" {
		if err := listen(rc.ListenTLS, "RTSPS", true); err != nil {
			return cl, pb, err
		}
	}
	if rc.AllowPlain && rc.Listen != "" {
		if err := listen(rc.Listen, "RTSP", false); err != nil {
			return cl, pb, err
		}
	}
	return cl, pb, nil
}

// scheme2URL is the URL prefix of a listener: public_host (with the
// listener's port unless it names one) or the listener's address.
func scheme2URL(scheme, public, addr string) string {
	host := addr
	if public != "" {
		host = public
		if _, _, err := net.SplitHostPort(public); err != nil {
			_, port, _ := net.SplitHostPort(addr)
			host = net.JoinHostPort(public, port)
		}
	}
	if scheme == "RTSPS" {
		return "rtsps://" + host + "/"
	}
	return "rtsp://" + host + "/"
}

// channelService is nil when playback has no RTSP listener.
func (pb *playback) channelService() *imap.ChannelService {
	if pb == nil {
		return nil
	}
	return pb.channel
}

// grantLimiter is the shared authentication limiter as channel.Grants
// takes it: an invalid playback grant is a failed credential of the
// address that presented it (RTSP DESCRIBE/SETUP, WHEP).
type grantLimiter struct{ l *authlimit.Limiter }

func (g grantLimiter) Begin(ctx context.Context, service string, src netip.Addr, account string) (channel.LimitedAttempt, error) {
	a, err := g.l.Begin(ctx, service, src, account)
	if err != nil {
		return nil, err
	}
	return a, nil
}
