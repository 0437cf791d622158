package main

import (
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/lemonvox/lemonvox/admin"
	"github.com/lemonvox/lemonvox/channel"
	"github.com/lemonvox/lemonvox/streaming"
	"github.com/lemonvox/lemonvox/vmstore"
)

// WHEPConfig configures WebRTC playback on the admin listener ([whep]).
type WHEPConfig struct {
	Enabled        bool     `toml:"enabled"`
	ICEAddresses   []string `toml:"ice_addresses"`
	ICEPort        int      `toml:"ice_port"`
	RemoteNetworks []string `toml:"remote_networks"`
	MaxSessions    int      `toml:"max_sessions"`
	ConnectTimeout duration `toml:"connect_timeout"`
	Linger         duration `toml:"linger"`
	MaxDuration    duration `toml:"max_duration"`
}

// startWHEP mounts WHEP, the web player and the grant API on the admin
// server (before it starts) and appends the WHEP closer. It plays through
// the daemon's playback engine and CHANNEL grants, made here when the
// wiring has none yet.
func startWHEP(cfg *Config, st *vmstore.Store, pb *playback, adm *admin.Server, closers *[]closer, log *slog.Logger) error {
	c := cfg.WHEP
	if !c.Enabled || cfg.Admin.Listen == "" {
		return nil
	}
	wc := streaming.WHEPConfig{ICEPort: c.ICEPort, MaxSessions: c.MaxSessions, ConnectTimeout: c.ConnectTimeout.Duration,
		Linger: c.Linger.Duration, MaxDuration: c.MaxDuration.Duration, Logger: log.With("service", "whep")}
	for _, a := range c.ICEAddresses {
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return fmt.Errorf("whep.ice_addresses: %w", err)
		}
		wc.ICEAddresses = append(wc.ICEAddresses, ip)
	}
	nets, err := parsePrefixes("whep.remote_networks", c.RemoteNetworks)
	if err != nil {
		return err
	}
	wc.RemoteNetworks = nets
	var grants *channel.Grants
	var eng *streaming.Engine
	var cache *streaming.PartCache
	if pb != nil {
		// One pacing scheduler, grant key and part cache for every front end.
		grants, eng, cache = pb.grants, pb.engine, pb.cache
	} else {
		var err error
		if grants, err = channel.NewGrants(st); err != nil {
			return fmt.Errorf("whep: grants: %w", err)
		}
		eng = streaming.NewEngine(streaming.EngineConfig{Store: st, Logger: log})
		*closers = append(*closers, closer{"playback engine", eng.Close})
	}
	srv, err := streaming.NewWHEPServer(wc, &streaming.WHEPGrantSource{Store: st, Grants: grants, Engine: eng, Cache: cache})
	if err != nil {
		return err
	}
	*closers = append(*closers, closer{"whep", srv.Close})
	adm.WHEP = srv.Handler()
	adm.Grants = grants
	log.Info("WHEP playback on the admin listener", "path", "/whep/<grant>", "player", "/player/", "ice", srv.ICEAddrs())
	return nil
}
